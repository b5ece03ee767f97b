// Command jsonget prints values from a JSON document, one line per path,
// for shell scripts on machines without jq (bench/native.sh reads boxrun's
// --report-json with it).
//
//	jsonget report.json memory.events.oom_kill backpressure.max_pause_seconds backpressure
//
// A path is object keys joined by dots. Each value is printed on its own
// line in the order asked: a string as it is, a number as written in the
// document, anything else (objects, arrays, true, false, null) as compact
// JSON, and "-" when the path is not in the document, so that a caller can
// tell a missing field from a zero and print what the document has instead.
// It exits 1 when the file cannot be read or is not JSON, 2 on bad usage.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: jsonget FILE PATH...")
		return 2
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "jsonget: %v\n", err)
		return 1
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		fmt.Fprintf(stderr, "jsonget: reading %s: %v\n", args[0], err)
		return 1
	}
	for _, p := range args[1:] {
		fmt.Fprintln(stdout, format(get(doc, p)))
	}
	return 0
}

// missing marks a path that is not in the document.
type missing struct{}

// get follows a dotted path of object keys.
func get(v any, path string) any {
	for _, key := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return missing{}
		}
		if v, ok = obj[key]; !ok {
			return missing{}
		}
	}
	return v
}

// format renders one value on one line.
func format(v any) string {
	switch x := v.(type) {
	case missing:
		return "-"
	case string:
		return strings.ReplaceAll(x, "\n", " ")
	case json.Number:
		return x.String()
	}
	out, err := json.Marshal(v)
	if err != nil {
		return "-"
	}
	return string(out)
}
