package rundir

import (
	"os"
	"strconv"
	"testing"
)

func TestDir(t *testing.T) {
	fallback := "/run/user/" + strconv.Itoa(os.Getuid()) + "/boxrun"
	if os.Getuid() == 0 {
		fallback = "/run/boxrun"
	}
	tests := []struct {
		name, xdg, want string
	}{
		{"a session's runtime directory", "/run/user/4242", "/run/user/4242/boxrun"},
		{"a trailing slash", "/run/user/4242/", "/run/user/4242/boxrun"},
		{"unset", "", fallback},
		{"relative, so not trusted", "run/user/4242", fallback},
	}
	for _, tt := range tests {
		getenv := func(k string) string {
			if k == "XDG_RUNTIME_DIR" {
				return tt.xdg
			}
			return ""
		}
		if got := Dir(getenv); got != tt.want {
			t.Errorf("%s: Dir = %q, want %q", tt.name, got, tt.want)
		}
	}
}
