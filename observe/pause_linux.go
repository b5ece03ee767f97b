package observe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// pausedCgroup is the child cgroup of a box where backpressure keeps the
// processes it paused, frozen (cgroup.freeze). Its name cannot be a box's
// (those are boxrun-POLICY-ID).
const pausedCgroup = "boxrun.paused"

// Pause methods, as the report names them.
const (
	MethodFreezer = "freezer"
	MethodSIGSTOP = "SIGSTOP"
)

// pauser pauses and resumes processes of one box. A pause must be one
// nothing else can see or undo: the cgroup v2 freezer, where the box can
// hold a child cgroup (a cgroupfs box, a scope started with Delegate=yes;
// Linux 5.2) — a frozen task ignores SIGCONT, and a parent's
// waitpid(WUNTRACED) does not see it stop. Else SIGSTOP, which the
// observer sends again when job control resumed a process behind its back.
// Either way a process is pinned when it is paused (a pidfd, and the start
// time it was observed with), so a pid that now names another process is
// never touched.
type pauser struct {
	dir    string // the box's cgroup directory
	frozen string // its frozen child, "" until made (or with SIGSTOP)
	signal bool   // pausing with SIGSTOP: no frozen child could be made
	warn   func(string)
	// paused are the processes paused now.
	paused map[int]pinned
}

// pinned is a paused process: a handle on it, and the cgroup directory it
// goes back to.
type pinned struct {
	fd     int // a pidfd, -1 without pidfd_open (before Linux 5.3)
	pid    int
	start  uint64 // /proc/PID/stat starttime
	origin string
}

func newPauser(dir string, warn func(string)) *pauser {
	return &pauser{dir: dir, warn: warn, paused: map[int]pinned{}}
}

// method says how processes are paused.
func (p *pauser) method() string {
	if p.signal {
		return MethodSIGSTOP
	}
	return MethodFreezer
}

// errGone is a process that exited, or whose pid names another process now.
var errGone = errors.New("the process is gone")

// pin opens a handle on pid if it is still the process that started at
// start.
func pin(pid int, start uint64, origin string) (pinned, error) {
	h := pinned{fd: -1, pid: pid, start: start, origin: origin}
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		h.fd = fd
	case errors.Is(err, unix.ESRCH):
		return h, errGone
	case !errors.Is(err, unix.ENOSYS):
		return h, fmt.Errorf("opening a pidfd for pid %d: %w", pid, err)
	}
	// Opened after the pid was read: it must still be the process seen.
	if !h.alive() {
		h.close()
		return h, errGone
	}
	return h, nil
}

// alive reports whether the pinned process has not exited (a zombie has:
// it will never run again).
func (h pinned) alive() bool {
	if h.fd >= 0 && unix.PidfdSendSignal(h.fd, 0, nil, 0) != nil {
		return false
	}
	st, err := procfs.ReadStat(h.pid)
	return err == nil && st.StartTime == h.start && st.State != 'Z' && st.State != 'X'
}

// signal sends sig to the pinned process.
func (h pinned) signal(sig syscall.Signal) error {
	if h.fd >= 0 {
		return unix.PidfdSendSignal(h.fd, sig, nil, 0)
	}
	return syscall.Kill(h.pid, sig)
}

func (h pinned) close() {
	if h.fd >= 0 {
		unix.Close(h.fd) // a pidfd: closing it loses nothing
	}
}

// pause pauses pid, started at start and found in the cgroup directory
// origin. The first pause makes the frozen child; when that fails, this
// and every later pause of the box use SIGSTOP, and warn says so once.
func (p *pauser) pause(pid int, start uint64, origin string) error {
	h, err := pin(pid, start, origin)
	if err != nil {
		return err
	}
	if !p.signal && p.frozen == "" {
		if err := p.makeFrozen(); err != nil {
			p.signal = true
			p.warn(fmt.Sprintf("backpressure pauses with SIGSTOP, which job control can undo and a waiting parent can see: %v", err))
		}
	}
	if p.signal {
		err = h.signal(unix.SIGSTOP)
	} else {
		err = writeCgroupFile(filepath.Join(p.frozen, "cgroup.procs"), strconv.Itoa(pid))
	}
	if err != nil {
		gone := !h.alive() || errors.Is(err, unix.ESRCH)
		h.close()
		if gone {
			return errGone
		}
		return fmt.Errorf("pausing pid %d: %w", pid, err)
	}
	p.paused[pid] = h
	return nil
}

// makeFrozen creates the box's frozen child cgroup. Nothing is left behind
// when it fails.
func (p *pauser) makeFrozen() error {
	dir := filepath.Join(p.dir, pausedCgroup)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := writeCgroupFile(filepath.Join(dir, "cgroup.freeze"), "1"); err != nil {
		os.Remove(dir) // the freeze's error is the one to report
		return fmt.Errorf("freezing %s: %w (the cgroup freezer needs Linux 5.2)", dir, err)
	}
	p.frozen = dir
	return nil
}

// resume resumes pid. A process that exited meanwhile needs nothing.
func (p *pauser) resume(pid int) error {
	h, ok := p.paused[pid]
	if !ok {
		return nil
	}
	delete(p.paused, pid)
	defer h.close()
	if !h.alive() {
		return nil // its pid may name another process by now
	}
	var err error
	if p.signal {
		err = h.signal(unix.SIGCONT)
	} else if err = p.moveBack(pid, h.origin); err != nil && h.alive() {
		// Nowhere to go back to: the freezer is given up for this box
		// rather than leave the process frozen.
		return p.abandonFreezer(pid, err)
	}
	if err != nil && h.alive() {
		return fmt.Errorf("resuming pid %d: %w", pid, err)
	}
	return nil
}

// moveBack moves pid out of the frozen child, where it runs again: into
// origin, the cgroup it was paused from, or where the box's own processes
// live now when origin takes none (a nested run divided the box since, see
// OwnProcessesDir) or is gone (a nested box that ended).
func (p *pauser) moveBack(pid int, origin string) error {
	err := writeCgroupFile(filepath.Join(origin, "cgroup.procs"), strconv.Itoa(pid))
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return err
	}
	if own := box.OwnProcessesDir(p.dir); own != origin {
		if err2 := writeCgroupFile(filepath.Join(own, "cgroup.procs"), strconv.Itoa(pid)); err2 == nil || errors.Is(err2, syscall.ESRCH) {
			return err2
		}
	}
	return fmt.Errorf("moving pid %d back to %s: %w", pid, origin, err)
}

// abandonFreezer is the last resort when a paused process cannot be moved
// out of the frozen child (why): every other paused process is stopped
// with SIGSTOP, the child is thawed, and the box pauses with SIGSTOP from
// then on. Nothing is left frozen.
func (p *pauser) abandonFreezer(pid int, why error) error {
	for other, h := range p.paused {
		if other == pid {
			continue
		}
		// One that exited needs no stop (resume finds it gone); one that
		// lives on and could not be stopped runs again once the child is
		// thawed, though counted as paused: say so.
		if err := h.signal(unix.SIGSTOP); err != nil && h.alive() {
			p.warn(fmt.Sprintf("backpressure could not keep pid %d paused: %v", other, err))
		}
	}
	p.signal = true
	err := writeCgroupFile(filepath.Join(p.frozen, "cgroup.freeze"), "0")
	p.warn(fmt.Sprintf("backpressure pauses with SIGSTOP from now on: %v", why))
	if err != nil {
		return fmt.Errorf("thawing %s: %w", p.frozen, err)
	}
	return nil
}

// release moves back to the box every process found in the frozen child
// that the pauser did not put there: a child a paused process forked as it
// was moved (a fork and a move are ordered by the kernel, and the child
// may land on either side). Nothing would ever resume it otherwise, and
// its parent, waiting for it, would wait for ever.
func (p *pauser) release(seen map[int]procSeen) {
	for pid, s := range seen {
		if _, ours := p.paused[pid]; ours || !s.frozen {
			continue
		}
		h, err := pin(pid, s.start, s.origin)
		if err != nil {
			continue
		}
		_ = p.moveBack(pid, s.origin) // gone: nothing to do
		h.close()
	}
}

// restop stops again, with SIGSTOP, a paused process that job control (or
// anyone's SIGCONT) resumed. The freezer needs none of this: it reports
// false.
func (p *pauser) restop(pid int) bool {
	h, ok := p.paused[pid]
	if !p.signal || !ok {
		return false
	}
	return h.signal(unix.SIGSTOP) == nil // gone: the next look forgets it
}

// close resumes whatever is still paused and removes the frozen child; it
// returns every error.
func (p *pauser) close() error {
	var errs []error
	for pid := range p.paused {
		if err := p.resume(pid); err != nil {
			errs = append(errs, err)
		}
	}
	if p.frozen != "" {
		// Anything still inside (a process that was moved there as it
		// forked) goes back to the box before the child is removed.
		if data, err := os.ReadFile(filepath.Join(p.frozen, "cgroup.procs")); err == nil {
			for _, pid := range cgroupfs.ParseProcs(string(data)) {
				if err := p.moveBack(pid, p.dir); err != nil && !errors.Is(err, syscall.ESRCH) {
					errs = append(errs, err)
				}
			}
		}
		if err := os.Remove(p.frozen); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p.frozen, err))
		}
		p.frozen = ""
	}
	return errors.Join(errs...)
}

// writeCgroupFile writes v to a file the kernel made in a cgroup; it never
// creates one (a directory that is not a cgroup has no such file).
func writeCgroupFile(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isPausedCgroup reports whether dir is a box's frozen child.
func isPausedCgroup(dir string) bool {
	return strings.HasSuffix(dir, "/"+pausedCgroup)
}
