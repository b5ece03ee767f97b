//go:build boxrunguest

package guest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

// TestPipeWaitIsSeen: backpressure's driver names the paused process a
// running one sleeps on through a pipe (procfs.PipeWaitOf, PipeInodes).
// On this kernel, a cat reading an empty pipe and a yes writing a full one
// are seen asleep on exactly that pipe, reading and writing, and the
// process holding the other end is found by its open pipes.
func TestPipeWaitIsSeen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		argv  []string
		write bool
	}{
		{"a reader of an empty pipe", []string{"cat"}, false},
		{"a writer to a full pipe", []string{"yes"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			cmd := exec.Command(tc.argv[0], tc.argv[1:]...)
			ours := w // the end this test keeps
			if tc.write {
				cmd.Stdout, ours = w, r
			} else {
				cmd.Stdin = r
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			var st syscall.Stat_t
			if err := syscall.Fstat(int(ours.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			// Wait for it to fall asleep on the pipe (yes fills 64K first).
			want := "pipe_read"
			if tc.write {
				want = "pipe_write"
			}
			pid := cmd.Process.Pid
			deadline := time.Now().Add(20 * time.Second)
			for {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
				if strings.TrimSpace(string(b)) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never slept in %s (wchan %q)", tc.argv[0], want, b)
				}
				time.Sleep(20 * time.Millisecond)
			}
			got, ok := procfs.PipeWaitOf(pid)
			if !ok || got.Inode != st.Ino || got.Write != tc.write {
				t.Fatalf("PipeWaitOf(%s) = %+v, %v; want inode %d, write %v", tc.argv[0], got, ok, st.Ino, tc.write)
			}
			holders := procfs.PipeHolders(map[int]procfs.PipeWait{pid: got}, []int{os.Getpid()}, procfs.PipeInodes)
			if h := holders[pid]; len(h) != 1 || h[0] != os.Getpid() {
				t.Errorf("holders of the pipe %s sleeps on: %v, want this test (%d)", tc.argv[0], holders, os.Getpid())
			}
			t.Logf("figures: %s asleep on pipe:[%d] (%s), holder found", tc.argv[0], got.Inode, want)
		})
	}
}
