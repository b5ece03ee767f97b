package signals

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestTracerSeesKill loads the program into this kernel and checks that a
// SIGKILL to a child comes back with its sender. It needs root and a
// mounted tracefs; the real-kernel suite (integration/) runs the tracer
// in every guest mode and never skips.
func TestTracerSeesKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading a BPF program needs root; the real-kernel suite (go test ./integration/) covers it")
	}
	if _, err := ReadOffsets(); err != nil {
		t.Skipf("no tracefs here (%v); the real-kernel suite covers it", err)
	}
	tr, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tr.rd.Close()
		}
	}()
	for {
		e, err := tr.Next()
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				t.Fatal("no event for the SIGKILL within 10s")
			}
			t.Fatal(err)
		}
		t.Logf("event %+v", e)
		if e.Target.PID != cmd.Process.Pid {
			continue
		}
		if e.Sig != 9 || e.Code != SIUser || e.Sender.PID != os.Getpid() || e.Sender.UID != 0 || e.Target.Comm != "sleep" || e.Sender.CgroupID == 0 {
			t.Errorf("event %+v: want SIGKILL, SI_USER, from pid %d uid 0, to sleep, with a cgroup id", e, os.Getpid())
		}
		return
	}
}
