package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is an error answer: OpenAI's shape on every API,
// {"error": {"message", "type", "param"}}.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param,omitempty"` // the field at fault, dotted; "body" for the body as a whole
	// RetryAfter, in seconds, becomes the Retry-After header (429, 503).
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Message }

// The error types of the contract's table, by status code.
var errorTypes = map[int]string{
	http.StatusBadRequest:            "invalid_request_error",
	http.StatusUnauthorized:          "authentication_error",
	http.StatusNotFound:              "not_found_error",
	http.StatusMethodNotAllowed:      "invalid_request_error",
	http.StatusRequestEntityTooLarge: "invalid_request_error",
	http.StatusTooManyRequests:       "rate_limit_error",
	http.StatusInternalServerError:   "server_error",
	http.StatusServiceUnavailable:    "server_error",
	http.StatusGatewayTimeout:        "timeout_error",
}

func newError(status int, param, format string, args ...any) *apiError {
	return &apiError{Status: status, Type: errorTypes[status], Param: param, Message: fmt.Sprintf(format, args...)}
}

// badField is a 400 naming param.
func badField(param, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, param, format, args...)
}

// writeError answers err: an *apiError as it is, anything else as a 500
// whose message is err's.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = newError(http.StatusInternalServerError, "", "%s", err.Error())
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// writeJSON answers v as JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":{"message":"serve: encoding the answer failed","type":"server_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}
