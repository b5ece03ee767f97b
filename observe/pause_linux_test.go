package observe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/internal/machinetest"
	"github.com/boxrun/boxrun/internal/procfs"
)

// waitState waits up to 5 s for pid's state letter to be one of want.
func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	var st procfs.Stat
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		var err error
		if st, err = procfs.ReadStat(pid); err == nil && strings.IndexByte(want, st.State) >= 0 {
			return
		}
	}
	t.Fatalf("pid %d is in state %q, want one of %q", pid, st.State, want)
}

// TestPauserWithoutAFreezer drives the pauser in a directory that is not a
// cgroup (the unit tests may not touch the host's cgroups): it cannot make
// a frozen child, says so once, leaves nothing behind, and pauses with
// SIGSTOP, pinned to the process it was asked about.
func TestPauserWithoutAFreezer(t *testing.T) {
	dir := t.TempDir()
	var warnings []string
	p := newPauser(dir, func(s string) { warnings = append(warnings, s) })
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}

	// A pid whose start time is not the one observed names another
	// process: it is never touched.
	if err := p.pause(pid, st.StartTime+1, dir); !errors.Is(err, errGone) {
		t.Fatalf("pause with another start time: %v, want errGone", err)
	}
	if err := p.pause(pid, st.StartTime, dir); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitState(t, pid, "Tt")
	if p.method() != MethodSIGSTOP || len(warnings) != 1 || !strings.Contains(warnings[0], "SIGSTOP") {
		t.Errorf("method %q, warnings %q; want SIGSTOP and one warning saying so", p.method(), warnings)
	}
	if _, err := os.Stat(filepath.Join(dir, pausedCgroup)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the frozen child that could not be made was left behind: %v", err)
	}

	// Job control resumes it behind the pauser's back; restop stops it.
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "SR")
	if !p.restop(pid) {
		t.Error("restop of a paused process reported false")
	}
	waitState(t, pid, "Tt")

	if err := p.resume(pid); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitState(t, pid, "SR")
	if p.restop(pid) {
		t.Error("restop of a resumed process reported true")
	}

	// close resumes what is still paused.
	if err := p.pause(pid, st.StartTime, dir); err != nil {
		t.Fatalf("pause again: %v", err)
	}
	waitState(t, pid, "Tt")
	if err := p.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitState(t, pid, "SR")
	if len(warnings) != 1 {
		t.Errorf("warnings %q, want the one", warnings)
	}

	// A process that exited while paused needs nothing to resume.
	if err := p.pause(pid, st.StartTime, dir); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := p.resume(pid); err != nil {
		t.Errorf("resuming an exited process: %v", err)
	}
}

// TestPausesReachOnlyTheBox: backpressure pauses and resumes a process by
// the pid its last look saw; by then that pid may name a stranger (the
// process exited, its pid went to another), which must not be stopped.
func TestPausesReachOnlyTheBox(t *testing.T) {
	dir, inside, outside, stale := machinetest.StaleBox(t)
	// The look saw inside as it is; the process outside has the pid
	// of one that started at another time: a stranger now.
	start := func(pid int) uint64 {
		st, err := procfs.ReadStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		return st.StartTime
	}
	b := &Backpressure{dir: dir, pauser: newPauser(dir, func(string) {}), seen: map[int]procSeen{
		stale[0]: {start: start(stale[0]), origin: dir},
		stale[1]: {start: start(stale[1]) + 1, origin: dir},
	}}
	b.act([]backpressure.Action{{Kind: backpressure.Pause, PID: stale[0]}, {Kind: backpressure.Pause, PID: stale[1]}})
	// A signal is delivered when its target next runs: on a loaded host
	// that is later than any fixed sleep. Once the box's process shows
	// stopped, a SIGSTOP sent to the stranger in the same act would have
	// landed too.
	waitState(t, inside.Process.Pid, "T")
	if got := machinetest.ProcState(outside.Process.Pid); got == "T" {
		t.Errorf("backpressure stopped a process outside the box")
	}
	b.act([]backpressure.Action{{Kind: backpressure.Resume, PID: stale[0]}})
	waitState(t, inside.Process.Pid, "RSD")
}
