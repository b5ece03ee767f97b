package machinetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/boxrun/boxrun/internal/procfs"
)

// WriteFiles writes each of files (name to content) into dir, making the
// directories a name holds (a/b), as a test lays
// out the files of a fake cgroup or /proc directory.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// StartSleep starts a `sleep 60` for a test to signal; the test's cleanup
// kills and reaps it.
func StartSleep(t testing.TB) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = c.Wait(); close(exited) }()
	t.Cleanup(func() { _ = c.Process.Kill(); <-exited })
	return c
}

// ProcState is the state letter of /proc/PID/stat ("S", "T", "Z"), "" when
// the process is gone.
func ProcState(pid int) string {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return ""
	}
	return string(st.State)
}

// StaleBox lays out a fake cgroup directory listing one running process,
// inside, and starts another, outside, whose pid was listed a moment ago:
// what a box looks like to code holding a stale list of its pids, [inside,
// outside] (the second exited, its pid went to a stranger).
func StaleBox(t testing.TB) (dir string, inside, outside *exec.Cmd, stale []int) {
	t.Helper()
	inside, outside = StartSleep(t), StartSleep(t)
	dir = t.TempDir()
	WriteFiles(t, dir, map[string]string{"cgroup.procs": strconv.Itoa(inside.Process.Pid) + "\n"})
	return dir, inside, outside, []int{inside.Process.Pid, outside.Process.Pid}
}
