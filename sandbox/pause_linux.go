package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// PausedCgroup is the child cgroup of a box where backpressure keeps the
// processes it paused, frozen (cgroup.freeze). Its name cannot be a box's
// (those are boxrun-POLICY-ID).
const PausedCgroup = "boxrun.paused"

// pauser pauses and resumes processes of one box. A pause must be one
// nothing else can see or undo: the cgroup v2 freezer (a frozen task
// ignores SIGCONT, and a parent's waitpid(WUNTRACED) does not see it stop)
// where the box can hold a child cgroup, else SIGSTOP, which the
// observer re-sends when job control resumed a process behind its back.
// Either way a process is named by a pidfd opened when it is paused and
// checked against the start time it was observed with, so a pid reused by
// another process is never touched.
type pauser struct {
	dir    string // the box's cgroup directory
	frozen string // its frozen child, "" until made (or with SIGSTOP)
	signal bool   // pausing with SIGSTOP: no child cgroup could be made
	// paused are the processes paused now.
	paused map[int]pausedProc
}

// pausedProc is a paused process: its pidfd, and the cgroup directory it
// goes back to.
type pausedProc struct {
	fd     int
	origin string
}

func newPauser(dir string) *pauser { return &pauser{dir: dir, paused: map[int]pausedProc{}} }

// method says how processes are paused: "freezer" or "SIGSTOP".
func (p *pauser) method() string {
	if p.signal {
		return "SIGSTOP"
	}
	return "freezer"
}

// errGone: the process exited, or its pid now names another process.
var errGone = errors.New("the process is gone")

// open returns a pidfd for pid when pid still names the process that
// started at start (/proc/PID/stat starttime).
func open(pid int, start uint64) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, errGone
		}
		return -1, err
	}
	if p, ok := readProc(pid); !ok || p.Start != start {
		unix.Close(fd)
		return -1, errGone
	}
	return fd, nil
}

// alive reports whether the process of a pidfd has not exited.
func alive(fd int) bool { return unix.PidfdSendSignal(fd, 0, nil, 0) == nil }

// pause pauses pid (started at start, found in the cgroup directory
// origin). The first pause makes the frozen child; when that fails (no
// delegation, a kernel before 5.2), this and every later pause of the box
// use SIGSTOP, and warn says so once.
func (p *pauser) pause(pid int, start uint64, origin string, warn func(string)) error {
	fd, err := open(pid, start)
	if err != nil {
		return err
	}
	if !p.signal && p.frozen == "" {
		if err := p.makeFrozen(); err != nil {
			p.signal = true
			warn(fmt.Sprintf("backpressure pauses with SIGSTOP, which job control can undo and a parent can see: %v", err))
		}
	}
	if p.signal {
		err = unix.PidfdSendSignal(fd, unix.SIGSTOP, nil, 0)
	} else {
		err = os.WriteFile(filepath.Join(p.frozen, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
	}
	if err != nil {
		unix.Close(fd)
		if !alive(fd) || errors.Is(err, unix.ESRCH) {
			return errGone
		}
		return fmt.Errorf("pausing pid %d: %w", pid, err)
	}
	p.paused[pid] = pausedProc{fd: fd, origin: origin}
	return nil
}

// makeFrozen creates the box's frozen child cgroup. Nothing is left behind
// when it fails.
func (p *pauser) makeFrozen() error {
	dir := filepath.Join(p.dir, PausedCgroup)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("1"), 0); err != nil {
		os.Remove(dir)
		return fmt.Errorf("freezing %s: %w (the cgroup freezer needs Linux 5.2)", dir, err)
	}
	p.frozen = dir
	return nil
}

// resume resumes pid. A process that exited meanwhile needs nothing.
func (p *pauser) resume(pid int) error {
	pp, ok := p.paused[pid]
	if !ok {
		return nil
	}
	delete(p.paused, pid)
	fd := pp.fd
	defer unix.Close(fd)
	if !alive(fd) {
		return nil // its pid may name another process by now
	}
	var err error
	if p.signal {
		err = unix.PidfdSendSignal(fd, unix.SIGCONT, nil, 0)
	} else {
		// Back where it was; out of the frozen cgroup it runs again.
		// Where it was may hold no processes any more: a nested run
		// since moved the box's own into boxrun.outer.
		err = os.WriteFile(filepath.Join(pp.origin, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EOPNOTSUPP) {
			err = os.WriteFile(filepath.Join(OwnProcessesDir(p.dir), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		}
	}
	if err != nil && alive(fd) {
		return fmt.Errorf("resuming pid %d: %w", pid, err)
	}
	return nil
}

// restop stops again, with SIGSTOP, a paused process that job control (or
// anyone's SIGCONT) resumed; state is its /proc/PID/stat state letter. The
// freezer needs none of this.
func (p *pauser) restop(pid int, state byte) {
	if !p.signal || state == 'T' || state == 't' || state == 'Z' {
		return
	}
	if pp, ok := p.paused[pid]; ok {
		_ = unix.PidfdSendSignal(pp.fd, unix.SIGSTOP, nil, 0) // gone: the next look forgets it
	}
}

// close resumes whatever is still paused and removes the frozen child;
// it returns the first error.
func (p *pauser) close() error {
	var errs []error
	for pid := range p.paused {
		if err := p.resume(pid); err != nil {
			errs = append(errs, err)
		}
	}
	if p.frozen != "" {
		// Anything still inside (a process that forked as it was
		// frozen) goes back to the box's own processes before the child
		// is removed.
		own := OwnProcessesDir(p.dir)
		if data, err := os.ReadFile(filepath.Join(p.frozen, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(data)) {
				if err := os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte(f), 0); err != nil && !errors.Is(err, syscall.ESRCH) {
					errs = append(errs, fmt.Errorf("moving pid %s out of %s: %w", f, p.frozen, err))
				}
			}
		}
		if err := os.Remove(p.frozen); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p.frozen, err))
		}
	}
	return errors.Join(errs...)
}
