package protect

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/boxrun/boxrun/internal/procfs"
)

// OOMAdjuster reads and writes a process's oom_score_adj.
type OOMAdjuster interface {
	// Get returns the current oom_score_adj of pid.
	Get(pid int) (int, error)
	// Set writes v; a value below the process's floor fails with EACCES
	// unless the writer has CAP_SYS_RESOURCE.
	Set(pid, v int) error
}

// procOOM is the real OOMAdjuster, writing /proc/PID/oom_score_adj.
type procOOM struct{}

func (procOOM) Get(pid int) (int, error) { return procfs.ReadOOMScoreAdj(pid) }

func (procOOM) Set(pid, v int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(v)), 0)
}

// errDenied reports whether err is the kernel refusing a value (EACCES,
// EPERM), as opposed to the process being gone.
func errDenied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// LowerOOMScoreAdj lowers pid's oom_score_adj from current toward target,
// as far as the kernel accepts: target itself when it can, else the lowest
// value above it that is accepted (the process's floor), found by binary
// search over at most 11 writes. It never raises the value. It returns the
// value the process has afterwards; limited is true when that is above
// target because the floor stopped it. When even current cannot be
// written back (another user's process, or one that is not dumpable) it
// returns current and the error.
func LowerOOMScoreAdj(w OOMAdjuster, pid, current, target int) (after int, limited bool, err error) {
	if target >= current {
		return current, false, nil
	}
	err = w.Set(pid, target)
	if err == nil {
		return target, false, nil
	}
	if !errDenied(err) {
		return current, false, err
	}
	// Is it the floor, or no right to write at all?
	if err := w.Set(pid, current); err != nil {
		return current, false, fmt.Errorf("writing oom_score_adj of pid %d: %w", pid, err)
	}
	lo, hi := target+1, current // hi is accepted, everything below lo is not
	for lo < hi {
		mid := lo + (hi-lo)/2
		switch err := w.Set(pid, mid); {
		case err == nil:
			hi = mid
		case errDenied(err):
			lo = mid + 1
		default:
			// The process went away: hi is the last value it had.
			return hi, hi > target, err
		}
	}
	return hi, hi > target, nil
}

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// HasCapSysResource reports whether this process may lower oom_score_adj
// below a process's floor (CAP_SYS_RESOURCE in its effective set). Root in
// a container often lacks it.
func HasCapSysResource() bool {
	st, err := procfs.ReadStatus(os.Getpid())
	return err == nil && st.CapEff&(1<<capSysResource) != 0
}
