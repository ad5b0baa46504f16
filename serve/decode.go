package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// decode reads r's body, at most limit bytes, strictly into v: unknown
// fields, a wrong type, trailing data and a body that is not JSON are 400s
// naming the field (or "body"); a body past the limit is a 413 naming "body".
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return newError(http.StatusRequestEntityTooLarge, "body", "body: larger than %d bytes (--max-body)", limit)
		}
		return badField("body", "body: %v", err)
	}
	return decodeJSON(raw, v)
}

// decodeJSON is decode's strict decoding of a body already read.
func decodeJSON(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return badField("body", "body: empty, want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return badField("body", "body: more than one JSON value")
	}
	return nil
}

// decodeError names the field of a decoder's error: an UnmarshalTypeError
// carries its path (Field), an unknown field's name is only in the message
// (encoding/json has no type for it).
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return badField("body", "body: a JSON %s, want an object", te.Value)
		}
		return badField(te.Field, "%s: a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badField(name, "%s: unknown field", name)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badField("body", "body: not JSON: %v", err)
	}
	var f *fieldError
	if errors.As(err, &f) {
		return badField(f.field, "%s: %v", f.field, f.err)
	}
	return badField("body", "body: %v", err)
}

// jsonKind says a Go kind the way a JSON client reads it.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "a list"
	}
	return "an object"
}

// fieldError is an error of a field's own UnmarshalJSON, naming the field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
