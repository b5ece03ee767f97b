package box

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

// cgroupDir is a cgroup v2 directory: the part of a box that both the
// systemd and the cgroupfs backend read and signal the same way.
type cgroupDir struct {
	mount string // cgroup2 mount point, e.g. /sys/fs/cgroup
	rel   string // path below the mount, starting with "/"
}

func (c cgroupDir) dir() string { return filepath.Join(c.mount, c.rel) }

func (c cgroupDir) file(name string) string { return filepath.Join(c.mount, c.rel, name) }

// procs lists the processes of the cgroup and of all its descendants.
func (c cgroupDir) procs() ([]int, error) { return cgroupfs.Procs(c.dir()) }

// eachProc calls fn for every process of the cgroup and of its
// descendants (see cgroupfs.EachProc).
func (c cgroupDir) eachProc(fn func(dir string, pid int)) error {
	return cgroupfs.EachProc(c.dir(), fn)
}

// populated reports whether the cgroup holds a process (see
// cgroupfs.Populated).
func (c cgroupDir) populated() (bool, error) { return cgroupfs.Populated(c.dir()) }

// event reads one field of cgroup.events (see cgroupfs.Event).
func (c cgroupDir) event(key string) (string, error) { return cgroupfs.Event(c.dir(), key) }

// waitEmpty waits until the cgroup holds no process, up to timeout. It
// reports whether the cgroup is empty. The kernel signals each change of
// cgroup.events ("populated"), so it wakes when the last process goes; a
// slow timer stands in where inotify is unavailable.
func (c cgroupDir) waitEmpty(ctx context.Context, timeout time.Duration) bool {
	changed, stop := cgroupfs.Watch(c.file("cgroup.events"))
	defer stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		pop, err := c.populated()
		if err == nil && !pop {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			pop, err := c.populated()
			return err == nil && !pop
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signal sends sig to every process in the cgroup tree, each through a
// pidfd, never to a pid that left the tree (see signalPids).
func (c cgroupDir) signal(sig syscall.Signal) error {
	pids, err := c.procs()
	if err != nil {
		return err
	}
	return c.signalPids(pids, sig)
}

// kill kills every process of the cgroup tree through cgroup.kill (Linux
// 5.14+), or by freezing it and signalling each process where that file is
// missing (killEach), then waits for the tree to empty.
func (c cgroupDir) kill(ctx context.Context) error {
	err := os.WriteFile(c.file("cgroup.kill"), []byte("1"), 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(c.dir()); serr != nil {
				return nil // the cgroup is gone: nothing to kill
			}
		}
		if err := c.killEach(ctx); err != nil {
			return err
		}
	}
	if !c.waitEmpty(ctx, 5*time.Second) {
		pids, _ := c.procs()
		return fmt.Errorf("cgroup %s still holds processes %v after SIGKILL", c.dir(), pids)
	}
	return nil
}

// remove removes the cgroup (it must hold no process: kill first) with
// the child cgroups below it, deepest first (backpressure's frozen child,
// any a command made), then its slice directory when it is boxrun.slice and
// no other box is left in it. Only cgroupfs boxes are boxrun's to remove:
// systemd removes a scope's cgroup itself. A cgroup already gone is no
// error.
func (c cgroupDir) remove() error {
	var dirs []string
	err := filepath.WalkDir(c.dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing cgroup %s: %w", c.dir(), err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// rmdir can race with the last exiting task; retry briefly on EBUSY.
		for try := 0; ; try++ {
			err = os.Remove(dirs[i])
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || try == 50 {
				return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if parent := filepath.Dir(c.dir()); filepath.Base(parent) == SliceName {
		_ = os.Remove(parent) // EBUSY: another box is in it
	}
	return nil
}

// check reads back the limits of settings (a box's or the slice's).
func (c cgroupDir) check(settings []policy.Setting, hint func(string) string) []LimitCheck {
	enabled, err := cgroupfs.ReadControllers(c.file("cgroup.controllers"))
	if err != nil {
		enabled = nil
	}
	return checkLimits(os.DirFS("/"), strings.TrimPrefix(c.dir(), "/"), settings, enabled, hint)
}
