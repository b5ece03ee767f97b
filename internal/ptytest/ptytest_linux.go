// Package ptytest opens pseudo-terminal pairs for tests of how boxrun
// behaves on a terminal (job control, hang-ups, Ctrl-Z): the unit tests of
// box/ and the real-kernel scenarios of integration/guest share it.
package ptytest

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Open opens a new pseudo-terminal pair: the master side, and the
// terminal (slave) side a command is given as its controlling terminal.
// Neither becomes the caller's controlling terminal (O_NOCTTY). An error
// says which step failed; a machine without /dev/ptmx fails at the first.
func Open() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("finding the pty's number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("opening the pty's terminal: %w", err)
	}
	return m, s, nil
}
