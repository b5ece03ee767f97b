package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRun(t *testing.T) {
	doc := `{"exit_code": 0, "signal": null, "command": ["sh", "-c", "x"],
		"memory": {"events": {"oom_kill": 3}, "peak_bytes": 6291456000},
		"backpressure": {"paused": 12, "max_pause_seconds": 0.25},
		"notes": "two\nlines"}`
	file := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want string
	}{
		{"exit_code", "0"},
		{"memory.events.oom_kill", "3"},
		{"memory.peak_bytes", "6291456000"}, // as written, not 6.291456e+09
		{"backpressure.max_pause_seconds", "0.25"},
		{"backpressure", `{"max_pause_seconds":0.25,"paused":12}`},
		{"backpressure.forced_resumes", "-"}, // a field this report lacks
		{"signal", "null"},
		{"signal.name", "-"}, // below null
		{"command", `["sh","-c","x"]`},
		{"command.0", "-"}, // arrays are not indexed
		{"notes", "two lines"},
	} {
		var out, errb bytes.Buffer
		if code := run([]string{file, tc.path}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.path, code, errb.String())
		}
		if got := out.String(); got != tc.want+"\n" {
			t.Errorf("%s: got %q, want %q", tc.path, got, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{file, "exit_code", "memory.events.oom_kill"}, &out, &errb); code != 0 || out.String() != "0\n3\n" {
		t.Errorf("two paths: exit %d, output %q", code, out.String())
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no path", []string{bad}, 2},
		{"missing file", []string{filepath.Join(dir, "none.json"), "x"}, 1},
		{"not JSON", []string{bad, "x"}, 1},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.want {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.name, code, tc.want, errb.String())
		}
	}
}
