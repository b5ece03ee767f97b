package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	mine := func(string, int) bool { return true }
	notMine := func(string, int) bool { return false }
	tests := []struct {
		name string
		xdg  string
		euid int
		ok   func(string, int) bool
		want string
	}{
		{"a session's runtime directory", "/run/user/4242", 4242, mine, "/run/user/4242/boxrun"},
		{"a trailing slash", "/run/user/4242/", 4242, mine, "/run/user/4242/boxrun"},
		{"unset", "", 4242, mine, "/run/user/4242/boxrun"},
		{"relative, so not trusted", "run/user/4242", 4242, mine, "/run/user/4242/boxrun"},
		{"not the user's own, so not trusted", "/tmp/evil", 4242, notMine, "/run/user/4242/boxrun"},
		{"root ignores a user's XDG_RUNTIME_DIR", "/run/user/1000", 0, mine, "/run/boxrun"},
		{"root without one", "", 0, mine, "/run/boxrun"},
	}
	for _, tt := range tests {
		getenv := func(k string) string {
			if k == "XDG_RUNTIME_DIR" {
				return tt.xdg
			}
			return ""
		}
		if got := dir(getenv, tt.euid, tt.ok); got != tt.want {
			t.Errorf("%s: dir = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMake(t *testing.T) {
	base := t.TempDir()
	d := filepath.Join(base, "boxrun")
	if err := Make(d); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(d, link); err != nil {
		t.Fatal(err)
	}
	if err := Make(link); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Errorf("a symbolic link: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	if err := Make(open); err == nil {
		t.Error("a directory others may write: no error")
	}
}
