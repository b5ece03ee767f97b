package ptytest

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpen: what is written to the terminal side reads back from the
// master, and the terminal side is a terminal.
func TestOpen(t *testing.T) {
	m, s, err := Open()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer s.Close()
	if _, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err != nil {
		t.Errorf("the terminal side is no terminal: %v", err)
	}
	if _, err := s.Write([]byte("ok\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := m.Read(buf)
	if err != nil || string(buf[:n]) != "ok\r\n" {
		t.Errorf("read %q, %v from the master; want \"ok\\r\\n\"", buf[:n], err)
	}
}
