package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
)

// Signalling the processes of a box. The box lists them by pid
// (cgroup.procs), and a pid names a process only until the process is
// reaped: between listing and signalling, a process of the box may exit and
// its pid go to a process that is not boxrun's to signal (during a long
// leftovers grace, or a box of thousands of short-lived processes). So
// each process is pinned first by a pidfd (pidfd_open, Linux 5.3), the box
// is listed again, and only those still in it are signalled, through their
// pidfd: once its process has exited, a pidfd refuses (ESRCH) instead of
// reaching the pid's next owner. If the pinned process is alive when the
// second listing names its pid, that pid is still its own.
//
// The command itself is signalled through os.Process, which holds a pidfd
// since Go 1.23 (os/exec started it) and refuses once the command was
// waited for (os.ErrProcessDone).

// pinBatch bounds how many pidfds are open at once.
const pinBatch = 512

// signalPids sends sig to those of pids that are still processes of the
// cgroup tree once pinned (see above). On kernels without pidfd_open
// (before 5.3) it falls back to kill(2) by pid.
func (c cgroupDir) signalPids(pids []int, sig syscall.Signal) error {
	var errs []error
	for len(pids) > 0 {
		batch := pids[:min(len(pids), pinBatch)]
		pids = pids[len(batch):]
		pinned := make(map[int]int, len(batch))
		unpin := func() {
			for _, fd := range pinned {
				unix.Close(fd)
			}
		}
		for _, pid := range batch {
			if pid <= 0 {
				continue // 0: a process outside boxrun's pid namespace
			}
			fd, err := unix.PidfdOpen(pid, 0)
			switch {
			case err == nil:
				pinned[pid] = fd
			case errors.Is(err, unix.ESRCH):
				// Gone already.
			case errors.Is(err, unix.ENOSYS):
				unpin()
				return errors.Join(append(errs, killPids(slices.Concat(batch, pids), sig))...)
			default:
				errs = append(errs, fmt.Errorf("opening a pidfd for pid %d: %w", pid, err))
			}
		}
		listed, err := c.procs()
		if err != nil {
			unpin()
			return errors.Join(append(errs, err)...)
		}
		for _, pid := range listed {
			fd, ok := pinned[pid]
			if !ok {
				continue
			}
			delete(pinned, pid)
			err := unix.PidfdSendSignal(fd, sig, nil, 0)
			unix.Close(fd)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("sending %v to pid %d: %w", sig, pid, err))
			}
		}
		unpin()
	}
	return errors.Join(errs...)
}

// killPids is kill(2) by pid, where there are no pidfds (before Linux 5.3):
// a pid recycled since it was listed gets the signal too.
func killPids(pids []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("sending %v to pid %d: %w", sig, pid, err))
		}
	}
	return errors.Join(errs...)
}

// killEach kills every process of the cgroup tree by signalling each, for
// kernels without cgroup.kill (before 5.14). Where the freezer exists
// (cgroup.freeze, 5.2) the tree is frozen first, so that nothing forks,
// exits or hands its pid on between listing and killing (SIGKILL still ends
// a frozen process), and thawed after. A few rounds catch what a freeze
// that did not complete in time let by (a process in uninterruptible
// sleep freezes only when it wakes).
func (c cgroupDir) killEach(ctx context.Context) error {
	for i := 0; i < 5; i++ {
		thaw := c.freeze(ctx, time.Second)
		err := c.signal(syscall.SIGKILL)
		thaw()
		if err != nil {
			return err
		}
		if c.waitEmpty(ctx, 200*time.Millisecond) {
			return nil
		}
	}
	return nil
}

// freeze freezes the cgroup tree and waits up to timeout until every
// process in it is frozen. thaw sets cgroup.freeze back to what it was.
// Without a freezer (before Linux 5.2), or one boxrun may not write, it
// does nothing.
func (c cgroupDir) freeze(ctx context.Context, timeout time.Duration) (thaw func()) {
	file := c.file("cgroup.freeze")
	was, err := os.ReadFile(file)
	if err != nil {
		return func() {}
	}
	if err := os.WriteFile(file, []byte("1"), 0); err != nil {
		return func() {}
	}
	thaw = func() { _ = os.WriteFile(file, []byte(strings.TrimSpace(string(was))), 0) } // best effort: SIGKILL ends a frozen process too
	changed, stop := cgroupfs.Watch(c.file("cgroup.events"))
	defer stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if v, err := c.event("frozen"); err != nil || v == "1" {
			return thaw
		}
		select {
		case <-ctx.Done():
			return thaw
		case <-deadline.C:
			return thaw
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}
