package main

import (
	"io/fs"
	"strings"
	"testing"
)

func TestPrivilegeError(t *testing.T) {
	user := ids{1000, 1000, 1000, 1000, 1000, 1000}
	root := ids{}
	tests := []struct {
		name string
		id   ids
		mode fs.FileMode
		want string // "" for no error
	}{
		{"a user", user, 0o755, ""},
		{"root", root, 0o755, ""},
		{"binary not found", user, 0, ""},
		{"setuid binary", user, 0o755 | fs.ModeSetuid, "the binary /usr/bin/boxrun is setuid"},
		{"setuid binary run by root", root, 0o755 | fs.ModeSetuid, "chmod u-s /usr/bin/boxrun"},
		{"setgid binary", user, 0o755 | fs.ModeSetgid, "the binary /usr/bin/boxrun is setgid"},
		{"effective uid differs", ids{1000, 0, 0, 1000, 1000, 1000}, 0o755, "user ids real 1000, effective 0, saved 0"},
		{"saved uid differs", ids{1000, 1000, 0, 1000, 1000, 1000}, 0o755, "user ids real 1000, effective 1000, saved 0"},
		{"effective gid differs", ids{1000, 1000, 1000, 1000, 42, 42}, 0o755, "group ids real 1000, effective 42, saved 42"},
		{"saved gid differs", ids{1000, 1000, 1000, 1000, 1000, 42}, 0o755, "must not run setgid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := privilegeError(tt.id, "/usr/bin/boxrun", tt.mode)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRunsUnprivileged checks that the test binary itself, like an
// ordinary boxrun, passes the check that run makes first.
func TestRunsUnprivileged(t *testing.T) {
	if err := checkUnprivileged(); err != nil {
		t.Fatal(err)
	}
}
