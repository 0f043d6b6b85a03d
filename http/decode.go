package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/strictjson"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads exactly one JSON object into v, refusing unknown
// fields, trailing data and bodies that are not application/json.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fmt.Errorf("%w: Content-Type must be application/json", errUnsupportedMedia)
		}
	}
	return DecodeStrict(r.Body, v)
}

var errUnsupportedMedia = errors.New("unsupported media type")

// DecodeStrict decodes one JSON value from body into v: unknown fields,
// trailing data, invalid UTF-8 and bodies over MaxBodyBytes are errors
// (400, 413), and so is an object, at any depth, with two keys that are
// equal or differ only in case (422, naming the key; see strictjson).
// It is exported for the fuzz tests of every request decoder.
func DecodeStrict(body io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return err
	}
	if len(data) > MaxBodyBytes {
		return &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: body is not valid UTF-8", errBadRequest)
	}
	// A body that is not valid JSON is left to the decoder, whose message
	// says where it breaks.
	var repeated *strictjson.KeyError
	if err := strictjson.CheckKeys(data); errors.As(err, &repeated) {
		return fmt.Errorf("%w: %w", domain.ErrInvalid, repeated)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %s", errBadRequest, jsonErrorText(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", errBadRequest)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", errBadRequest)
	}
	return nil
}

func jsonErrorText(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// pageFrom reads ?after= and ?limit= (1–500).
func pageFrom(r *http.Request) (projections.Page, error) {
	q := r.URL.Query()
	p := projections.Page{After: q.Get("after")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > projections.MaxPageLimit {
			return p, fmt.Errorf("%w: limit must be between 1 and %d", errBadRequest, projections.MaxPageLimit)
		}
		p.Limit = n
	}
	if len(p.After) > 256 {
		return p, fmt.Errorf("%w: after is too long", errBadRequest)
	}
	return p, nil
}
