package sandbox

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/boxrun/boxrun/internal/cgroupfs"
)

// Enclosing returns the box this process runs in, when it was started inside
// one by boxrun: its own cgroup (/proc/self/cgroup) is a box's or below one,
// a cgroup named like a box (boxrun-POLICY-ID, with a scope's ".scope").
// A boxrun started there must not make a box of its own beside the
// parent's (the systemd backend would escape the parent's limits), nor wait
// for a slot its parent holds. The environment is not asked: BOXRUN_CGROUP
// inherited by a process that has left its box (an editor started from a
// boxed shell, tmux) would name a box it is not in.
func Enclosing() (cgroup, unit string, ok bool) {
	own, err := cgroupfs.OwnCgroup()
	if err != nil {
		return "", "", false
	}
	return boxOf(own)
}

// boxOf finds the box a cgroup path is in: the outermost component named
// like a box, and its unit when it is a scope.
func boxOf(cg string) (box, unit string, ok bool) {
	parts := strings.Split(cg, "/")
	for i, p := range parts {
		if boxNameRe.MatchString(p) {
			box = strings.Join(parts[:i+1], "/")
			if strings.HasSuffix(p, ".scope") {
				unit = p
			}
			return box, unit, true
		}
	}
	return "", "", false
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
