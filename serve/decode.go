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
		return decodeError(err, "")
	}
	if dec.More() {
		return badField("body", "body: more than one JSON value")
	}
	return nil
}

// decodeField decodes a field's raw JSON strictly into v, its errors naming
// the field (an unknown key inside it as field.key: encoding/json names
// unknown keys without their path, so nested objects that need it are
// decoded apart).
func decodeField(field string, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, field)
	}
	return nil
}

// decodeError names the field of a decoder's error, within parent ("": the
// body): an UnmarshalTypeError carries its path (Field), an unknown field's
// name is only in the message (encoding/json has no type for it).
func decodeError(err error, parent string) error {
	name := func(field string) string {
		switch {
		case parent == "":
			return field
		case field == "":
			return parent
		}
		return parent + "." + field
	}
	whole := "body"
	if parent != "" {
		whole = parent
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return badField(whole, "%s: a JSON %s, want an object", whole, te.Value)
		}
		f := name(te.Field)
		return badField(f, "%s: a JSON %s, want %s", f, te.Value, jsonKind(te.Type.Kind().String()))
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f := name(strings.Trim(field, `"`))
		return badField(f, "%s: unknown field", f)
	}
	return badField(whole, "%s: not JSON: %v", whole, err)
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
