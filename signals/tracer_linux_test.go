package signals

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
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

// TestFindRunner: the runner of a box is the parent of its command, found
// from the box's processes; a box whose processes have no parent of that
// name has none. (The tracer asks for "boxrun"; here the parent is this
// test binary.)
func TestFindRunner(t *testing.T) {
	self, err := procfs.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, tc := range []struct {
		name string
		pids []int
		comm string
		want runner
		ok   bool
	}{
		{"the command's parent", []int{cmd.Process.Pid}, self.Comm, runner{pid: os.Getpid(), uid: os.Getuid()}, true},
		{"a gone process first", []int{1 << 22, cmd.Process.Pid}, self.Comm, runner{pid: os.Getpid(), uid: os.Getuid()}, true},
		{"a parent of another name", []int{cmd.Process.Pid}, "boxrun", runner{}, false},
		{"no processes", nil, self.Comm, runner{}, false},
	} {
		got, ok := findRunner(tc.pids, tc.comm)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: findRunner = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestResolveReapedBoxrun: a SIGKILL to a boxrun that its parent reaped
// before the tracer resolved the event still goes to the boxrun's owner,
// as the last walk found it running a box; to an unknown reaped boxrun it
// goes nowhere.
func TestResolveReapedBoxrun(t *testing.T) {
	gone := 1 << 22 // above any pid_max: no such process
	r := &resolver{mount: t.TempDir(), ids: map[uint64]string{7: "/user.slice/app.scope"}, boxed: map[int]boxed{}, prev: map[int]boxed{},
		runners: map[string]runner{"/user.slice/boxrun-tests-0000abcd": {pid: gone, uid: 1000}}}
	var e Event
	e.Sig, e.Code = 9, SIUser
	e.Target.PID, e.Target.Comm = gone, "boxrun"
	e.Sender.PID, e.Sender.Comm, e.Sender.CgroupID = 77, "timeout", 7
	rec, owner, ok := r.resolve(e)
	if !ok || owner != 1000 || rec.Target.UID != 1000 || rec.Sender.Unit != "app.scope" {
		t.Errorf("resolve = %+v, owner %d, %v; want the record for uid 1000, sent from app.scope", rec, owner, ok)
	}
	e.Target.PID = gone + 1
	if _, _, ok := r.resolve(e); ok {
		t.Errorf("a reaped boxrun no walk saw was resolved")
	}
}
