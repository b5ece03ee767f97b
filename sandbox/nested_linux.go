package sandbox

import (
	"fmt"
	"os"
	"syscall"

	"github.com/boxrun/boxrun/internal/cgroupfs"
)

// Enclosing returns the box this process runs in, when it was started inside
// one by boxrun: the parent set BOXRUN_CGROUP and the process is still in
// that cgroup or below it. A boxrun started there must not make a box of its
// own beside the parent's (the systemd backend would escape the parent's
// limits), nor wait for a slot its parent holds.
func Enclosing(getenv func(string) string) (cgroup, unit string, ok bool) {
	cg := getenv(EnvCgroup)
	if cg == "" {
		return "", "", false
	}
	own, err := cgroupfs.OwnCgroup()
	if err != nil || !underCgroup(own, cg) {
		return "", "", false
	}
	return cg, getenv(EnvUnit), true
}

// ExecDirect replaces boxrun with the command at path (argv[0] as
// ResolveCommand found it), for a run inside an enclosing box: its exit
// status and signals are then the command's own.
func ExecDirect(path string, argv []string) error {
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return startErr(126, "running %s: %v", argv[0], err)
	}
	return fmt.Errorf("exec returned")
}
