package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schema is a JSON Schema (draft 2020-12) node. validate implements the
// subset report/schema.json uses — type, enum, required, properties,
// additionalProperties: false, items, minimum — and rejects any other
// keyword, so that the schema cannot come to rely on one the test ignores.
type schema map[string]any

// annotations are keywords without effect on validation.
var annotations = []string{"$schema", "$id", "title", "description"}

func loadSchema(t *testing.T) schema {
	t.Helper()
	b, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	return s
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, b)
	}
	return v
}

func (s schema) validate(v any) error { return s.check("$", v) }

func (s schema) check(at string, v any) error {
	for k := range s {
		switch {
		case slices.Contains(annotations, k):
		case slices.Contains([]string{"type", "enum", "required", "properties", "additionalProperties", "items", "minimum"}, k):
		default:
			return fmt.Errorf("%s: schema keyword %q is not supported by this test's validator", at, k)
		}
	}
	if ty, ok := s["type"]; ok {
		var types []string
		switch ty := ty.(type) {
		case string:
			types = []string{ty}
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return fmt.Errorf("%s: %v is not of type %s", at, v, strings.Join(types, " or "))
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	if min, ok := s["minimum"].(float64); ok {
		if n, isNum := v.(json.Number); isNum {
			if f, _ := n.Float64(); f < min {
				return fmt.Errorf("%s: %v is below the minimum %v", at, v, min)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range asStrings(s["required"]) {
			if _, ok := obj[r]; !ok {
				return fmt.Errorf("%s: required property %q is missing", at, r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub, ok := props[k]
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: property %q is not in the schema", at, k)
				}
				continue
			}
			if err := schema(sub.(map[string]any)).check(at+"."+k, obj[k]); err != nil {
				return err
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				if err := schema(items).check(fmt.Sprintf("%s[%d]", at, i), x); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hasType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		if err != nil {
			// Integers beyond int64 (byte counts near 2^64) are still integers.
			return !strings.ContainsAny(n.String(), ".eE")
		}
		return true
	}
	return false
}

func asStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestSchemaValidator checks the validator itself: a schema test that
// accepts everything proves nothing.
func TestSchemaValidator(t *testing.T) {
	s := loadSchema(t)
	var good bytes.Buffer
	r := runs()["issue-example"]
	r.Diagnosis = Diagnose(r)
	if err := JSON(&good, r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		mutate     func(m map[string]any)
	}{
		{"unchanged", "", func(m map[string]any) {}},
		{"extra field", `"surprise" is not in the schema`, func(m map[string]any) { m["surprise"] = 1 }},
		{"missing field", `required property "exit_code"`, func(m map[string]any) { delete(m, "exit_code") }},
		{"wrong type", "$.wall_seconds", func(m map[string]any) { m["wall_seconds"] = "3m" }},
		{"not an integer", "$.pid", func(m map[string]any) { m["pid"] = json.Number("1.5") }},
		{"negative", "below the minimum", func(m map[string]any) { m["exit_code"] = json.Number("-1") }},
		{"bad enum", "$.backend", func(m map[string]any) { m["backend"] = "docker" }},
		{"nested extra field", "$.memory.events", func(m map[string]any) {
			m["memory"].(map[string]any)["events"].(map[string]any)["oom_kills"] = json.Number("1")
		}},
		{"bad array item", "$.diagnosis[0].kind", func(m map[string]any) {
			m["diagnosis"].([]any)[0].(map[string]any)["kind"] = "bad"
		}},
		{"null where not allowed", "$.command", func(m map[string]any) { m["command"] = nil }},
		{"null allowed", "", func(m map[string]any) { m["signal"] = nil; m["backpressure"] = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := decodeJSON(t, good.Bytes()).(map[string]any)
			tt.mutate(m)
			err := s.validate(m)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
	if err := (schema{"pattern": "x"}).validate("x"); err == nil {
		t.Error("an unsupported keyword was accepted")
	}
}
