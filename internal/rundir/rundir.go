// Package rundir names boxrun's runtime directory: the user's own tmpfs,
// emptied at logout or boot, where boxrun keeps what must not outlive
// them — what editor protection changed (protect.json), which boxrun runs
// each box (boxes/) and the lock files of run slots (slots/).
package rundir

import (
	"os"
	"path/filepath"
	"strconv"
)

// Dir is boxrun's runtime directory: $XDG_RUNTIME_DIR/boxrun, /run/boxrun
// for root, else /run/user/UID/boxrun. getenv is os.Getenv but in tests.
func Dir(getenv func(string) string) string {
	if d := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return filepath.Join(d, "boxrun")
	}
	if os.Getuid() == 0 {
		return "/run/boxrun"
	}
	return filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "boxrun")
}
