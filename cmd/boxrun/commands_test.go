package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMistypedCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"polcy", "list"}, "policy list"},
		{[]string{"polcy"}, "policy"},
		{[]string{"policy", "lsit"}, "policy list"},
		{[]string{"polcy", "lsit", "-f", "x"}, "policy list"},
		{[]string{"polcy", "frob"}, "policy"},
		{[]string{"stauts", "--json"}, "status"},
		{[]string{"docter"}, "doctor"},
		{[]string{"gv"}, "gc"},
		{[]string{"unistall", "user-unit"}, "uninstall"},
		// Nothing mistyped, or nothing near.
		{[]string{"policy", "list"}, ""},
		{[]string{"policy", "frob"}, ""},
		{[]string{"status"}, ""},
		{[]string{"cargo", "test"}, ""},
		{[]string{"make"}, ""},
		{[]string{"g"}, ""},
		{[]string{"__complet"}, ""}, // hidden commands are not suggested
		{nil, ""},
	}
	for _, tt := range tests {
		if got := mistypedCommand(tt.args); got != tt.want {
			t.Errorf("mistypedCommand(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestMistypedCommandHint: a word that is no program and near a command
// gets one hint; after "--", or when the program exists, none.
func TestMistypedCommandHint(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "polcy"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		hint string // "" for none
		path string // put first on PATH
	}{
		{"not a program", []string{"polcy", "list"}, 127, "boxrun: hint: did you mean boxrun policy list?", ""},
		{"after --", []string{"--", "polcy", "list"}, 127, "", ""},
		{"a path", []string{"./polcy"}, 127, "", ""},
		{"nothing near", []string{"no-such-command-xyz"}, 127, "", ""},
		{"a program of that name runs", []string{"-q", "--backend", "none", "polcy", "list"}, 0, "", bin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			if tt.path != "" {
				t.Setenv("PATH", tt.path+":"+os.Getenv("PATH"))
			}
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			var hints []string
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(l, "boxrun: hint: ") {
					hints = append(hints, l)
				}
			}
			if got := strings.Join(hints, "\n"); got != tt.hint {
				t.Errorf("hints %q, want %q\n%s", got, tt.hint, stderr)
			}
		})
	}
}
