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
		caps bool
		want string // "" for no error
	}{
		{"a user", user, 0o755, false, ""},
		{"root", root, 0o755, false, ""},
		{"binary not found", user, 0, false, ""},
		{"setuid binary", user, 0o755 | fs.ModeSetuid, false, "the binary /usr/bin/boxrun is setuid"},
		{"setuid binary run by root", root, 0o755 | fs.ModeSetuid, false, "chmod u-s /usr/bin/boxrun"},
		{"setgid binary", user, 0o755 | fs.ModeSetgid, false, "the binary /usr/bin/boxrun is setgid"},
		{"file capabilities", user, 0o755, true, "has file capabilities (boxrun needs no privilege; remove them with sudo setcap -r /usr/bin/boxrun)"},
		{"file capabilities run by root", root, 0o755, true, "setcap -r"},
		{"effective uid differs", ids{1000, 0, 0, 1000, 1000, 1000}, 0o755, false, "user ids real 1000, effective 0, saved 0"},
		{"saved uid differs", ids{1000, 1000, 0, 1000, 1000, 1000}, 0o755, false, "user ids real 1000, effective 1000, saved 0"},
		{"effective gid differs", ids{1000, 1000, 1000, 1000, 42, 42}, 0o755, false, "group ids real 1000, effective 42, saved 42"},
		{"saved gid differs", ids{1000, 1000, 1000, 1000, 1000, 42}, 0o755, false, "must not run setgid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := privilegeError(tt.id, "/usr/bin/boxrun", tt.mode, tt.caps)
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
