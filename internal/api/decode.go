package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decodeAction reads an action body strictly into req: one JSON object
// whose field names match exactly (no case folding, no unknown fields),
// each value of its field's type, nothing after the object. Every error
// names the field, so the caller can fix the request from the message.
func decodeAction(body []byte, req *ActionRequest) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("the body must be a JSON object, not a JSON %s", te.Value)
		}
		return fmt.Errorf("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON body: unexpected data after the JSON object")
	}
	if fields == nil {
		return errors.New("the body must be a JSON object, not null")
	}
	dst := jsonFields(req)
	for name, raw := range fields {
		ptr, ok := dst[name]
		if !ok {
			return fmt.Errorf("unknown field %.60q", name)
		}
		if err := strictUnmarshal(raw, ptr); err != nil {
			return fmt.Errorf("%s: %s", name, describeJSONError(err))
		}
	}
	return nil
}

// jsonFields maps the JSON names of v's fields (a pointer to a struct) to
// pointers to them.
func jsonFields(v any) map[string]any {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	out := make(map[string]any, rt.NumField())
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = rv.Field(i).Addr().Interface()
		}
	}
	return out
}

func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// describeJSONError says what was wrong with one field's value.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "an integer"
		case reflect.String:
			want = "a string"
		case reflect.Struct, reflect.Map:
			want = "an object"
		}
		at := ""
		if te.Field != "" {
			at = " at " + te.Field
		}
		return fmt.Sprintf("a JSON %s%s is not valid here, want %s", te.Value, at, want)
	}
	msg := err.Error()
	return strings.TrimPrefix(msg, "json: ")
}
