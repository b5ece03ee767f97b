package box

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A signal boxrun receives may have reached the command already: the
// terminal sends Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) to its whole
// foreground process group, and a hang-up ends in SIGHUP to that group
// (from the kernel when the session leader exits, and from a shell such as
// bash to each of its jobs first). The command stays in boxrun's process
// group, so it gets those signals as boxrun does; passing them on would
// deliver each twice (two KeyboardInterrupts in pytest, a REPL's line lost)
// and, for the hang-up's two SIGHUPs, count as insisting.
//
// Whether a signal came from the terminal shows in the process groups, not
// in whether stdin is a terminal (boxrun -- pytest </dev/null still has
// one): see deliveryOf.
//
// Go does not tell a handler who sent a signal (golang/go#9764), so a
// SIGINT or SIGQUIT sent to a boxrun that is in the terminal's foreground
// group, by kill(1) naming its pid, cannot be told from Ctrl-C: it is taken
// for the terminal's. Sent again within insistWindow it reaches every
// process in the box; SIGTERM is always passed on.

// groups is where boxrun, its command and its terminal stand when a signal
// arrives: the facts deliveryOf decides from.
type groups struct {
	// Terminal is the foreground process group of boxrun's controlling
	// terminal; 0 when boxrun has none (or has lost it).
	Terminal int
	// HungUp is true when boxrun had a controlling terminal when the
	// command started and has lost it since: the terminal hung up (its
	// window was closed), or its session leader exited.
	HungUp bool
	// Self is boxrun's process group; Command the command's, 0 once the
	// command has exited.
	Self, Command int
	// Leader is true when boxrun leads its session, so that a hang-up's
	// SIGHUP reached boxrun alone.
	Leader bool
}

// delivery is what becomes of a signal boxrun receives.
type delivery int

const (
	// forward: the signal reached boxrun alone; it is passed on to the
	// command, and counts towards insisting.
	forward delivery = iota
	// delivered: the terminal sent it to the whole foreground group, the
	// command included; it counts, but is not sent again.
	delivered
	// repeated: a further SIGHUP of a hang-up already counted (the
	// shell's to its jobs, then the kernel's to the foreground group);
	// neither counted nor sent.
	repeated
)

// String names the delivery, for tests and traces.
func (d delivery) String() string {
	switch d {
	case forward:
		return "forward"
	case delivered:
		return "delivered"
	case repeated:
		return "repeated"
	}
	return "delivery(?)"
}

// deliveryOf decides whether sig, received by boxrun when things stood as
// g says, already reached the command. hangupSeen is true once a SIGHUP of
// the terminal's hang-up was counted.
//
// SIGINT and SIGQUIT came from the terminal when its foreground group is
// boxrun's and the command's: the terminal sent them to that whole group.
// A boxrun in the background (boxrun ... &), or whose command left its
// process group, or that has no terminal, got them from someone who named
// it: they are passed on.
//
// SIGHUP after the terminal was lost went to the foreground group, unless
// boxrun leads the session (then the kernel sent it to boxrun alone). A
// SIGHUP while the terminal is still there was sent to boxrun, and passed
// on. SIGTERM never comes from a terminal.
func deliveryOf(sig syscall.Signal, g groups, hangupSeen bool) delivery {
	sameGroup := g.Self != 0 && g.Command == g.Self
	switch sig {
	case syscall.SIGINT, syscall.SIGQUIT:
		if sameGroup && g.Terminal == g.Self {
			return delivered
		}
	case syscall.SIGHUP:
		if sameGroup && g.HungUp && !g.Leader {
			if hangupSeen {
				return repeated
			}
			return delivered
		}
	}
	return forward
}

// terminal is boxrun's controlling terminal, held open from the start of
// the command so that its hang-up shows (the kernel then fails every
// request on it); nil when boxrun has none.
type terminal struct {
	f *os.File
}

// openTerminal opens boxrun's controlling terminal, /dev/tty; without one
// (no terminal, or a session of its own), it returns nil.
func openTerminal() *terminal {
	f, err := os.OpenFile("/dev/tty", os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	if _, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP); err != nil {
		f.Close()
		return nil
	}
	return &terminal{f: f}
}

// Close lets go of the terminal.
func (t *terminal) Close() {
	if t != nil {
		t.f.Close()
	}
}

// groups finds where boxrun, the command and the terminal stand now.
func (t *terminal) groups(cmd *os.Process) groups {
	g := groups{Self: unix.Getpgrp()}
	if sid, err := unix.Getsid(0); err == nil && sid == os.Getpid() {
		g.Leader = true
	}
	// Only while the command is not yet reaped does its pid name it
	// (Signal(0) goes through the pidfd); after, it has no group.
	if cmd.Signal(syscall.Signal(0)) == nil {
		if pg, err := unix.Getpgid(cmd.Pid); err == nil {
			g.Command = pg
		}
	}
	if t == nil {
		return g
	}
	pg, err := unix.IoctlGetInt(int(t.f.Fd()), unix.TIOCGPGRP)
	switch {
	case err == nil:
		g.Terminal = pg
	case errors.Is(err, unix.EIO), errors.Is(err, unix.ENOTTY):
		// EIO: hung up. ENOTTY: no longer our controlling terminal
		// (its session leader exited and the session lost it).
		g.HungUp = true
	}
	return g
}
