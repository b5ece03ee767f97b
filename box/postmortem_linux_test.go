package box

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

// TestDeathSignal kills a child with SIGKILL and reads, while it is a
// zombie, what it died of; a reaped one, a live one and a reused pid (a
// start time that is not its own) read 0.
func TestDeathSignal(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := deathSignal(pid, st.StartTime); got != 0 {
		t.Errorf("a live process: %v, want 0", got)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if s, err := procfs.ReadStat(pid); err == nil && s.State == 'Z' {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the killed child never became a zombie")
		}
	}
	if got := deathSignal(pid, st.StartTime); got != syscall.SIGKILL {
		t.Errorf("a zombie killed by SIGKILL: %v, want SIGKILL", got)
	}
	if got := deathSignal(pid, st.StartTime+1); got != 0 {
		t.Errorf("another process's start time: %v, want 0", got)
	}
	_ = cmd.Wait()
	if got := deathSignal(pid, st.StartTime); got != 0 {
		t.Errorf("a reaped process: %v, want 0", got)
	}
}

// TestLookAtBox reads a box's figures and processes from its files: this
// test process stands in for what the box holds.
func TestLookAtBox(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"memory.peak":   "5368709120\n",
		"pids.peak":     "30\n",
		"memory.events": "low 0\nhigh 3\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
		"pids.events":   "max 2\n",
		"cpu.stat":      "usage_usec 7000\nuser_usec 5000\nsystem_usec 2000\n",
		"cgroup.procs":  strconv.Itoa(os.Getpid()) + "\n",
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pm := lookAtBox(dir)
	if pm.MemoryPeak != 5<<30 || pm.PidsPeak != 30 || pm.MemoryEvents["oom_kill"] != 1 || pm.PidsEvents["max"] != 2 || pm.CPU["usage_usec"] != 7000 {
		t.Errorf("figures %+v", pm)
	}
	if len(pm.Procs) != 1 || pm.Procs[0].PID != os.Getpid() || pm.Procs[0].Comm == "" || pm.Procs[0].RSS == 0 {
		t.Errorf("processes %+v, want this one", pm.Procs)
	}
	// An old kernel: no memory.peak, no pids.peak, no processes left.
	for _, name := range []string{"memory.peak", "pids.peak"} {
		os.Remove(filepath.Join(dir, name))
	}
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o600)
	if pm := lookAtBox(dir); pm.MemoryPeak != 0 || pm.PidsPeak != 0 || len(pm.Procs) != 0 {
		t.Errorf("without the peaks or processes: %+v", pm)
	}
	// Gone (systemd removed the empty scope first): nothing was read, and
	// the figures say so rather than read 0.
	gone := filepath.Join(dir, "gone")
	if pm := lookAtBox(gone); pm.CPU != nil || pm.MemoryEvents != nil || pm.PidsEvents != nil || len(pm.Procs) != 0 {
		t.Errorf("a box that is gone: %+v, want nil figures", pm)
	}
}
