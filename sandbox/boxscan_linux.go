package sandbox

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/internal/procfs"
)

// scan is one look at the processes of a box, as backpressure needs it.
type scan struct {
	procs []backpressure.Proc
	// state is each process's /proc/PID/stat state letter, origin the
	// cgroup directory it was found in.
	state  map[int]byte
	origin map[int]string
}

// scanBox lists the processes of the cgroup tree at dir with their parent,
// start time, resident size and state. With waits, a process asleep is
// also asked what it waits for (/proc/PID/wchan): that costs a read per
// sleeping process, so the observer asks only while something is paused
// or the box is half full. With throttle, every thread of every process is
// asked whether the kernel throttles it at memory.high (the observer asks
// only while the box is near it). Processes that exit while being read are
// left out.
func scanBox(dir string, waits, throttle bool) (scan, error) {
	s := scan{state: map[int]byte{}, origin: map[int]string{}}
	err := cgroupDir{mount: dir, rel: "/"}.eachProc(func(cg string, pid int) {
		proc, state, ok := readProcState(pid)
		if !ok {
			return
		}
		proc.Wait = waitOfState(state)
		if waits && proc.Wait == backpressure.Asleep {
			if w, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan"); err == nil {
				proc.Wait = waitOf(string(w))
			}
		}
		if throttle && throttled(pid) {
			proc.Wait = backpressure.Throttled
		}
		s.procs = append(s.procs, proc)
		s.state[pid], s.origin[pid] = state, cg
	})
	if err != nil {
		return scan{}, err
	}
	return s, nil
}

// readProc reads /proc/PID/stat: parent, start time and resident pages.
// One read per process: backpressure does this for every process of the
// box every 10 ms while the box is a third full, beside the tests.
func readProc(pid int) (backpressure.Proc, bool) {
	p, _, ok := readProcState(pid)
	return p, ok
}

// readProcState is readProc with the process's state letter.
func readProcState(pid int) (backpressure.Proc, byte, bool) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return backpressure.Proc{}, 0, false
	}
	return backpressure.Proc{PID: st.PID, PPID: st.PPID, Start: st.StartTime, RSS: st.RSS(), Comm: st.Comm}, st.State, true
}

// waitOfState is what a state letter says a process waits for: Asleep
// for S and D, until its wchan says more.
func waitOfState(state byte) backpressure.Wait {
	switch state {
	case 'S', 'D', 'I':
		return backpressure.Asleep
	case 'T', 't':
		return backpressure.Stopped
	}
	return backpressure.Running
}

// waitOf classifies a sleeping process by the kernel function it sleeps
// in (/proc/PID/wchan; "0" when the kernel does not say).
func waitOf(wchan string) backpressure.Wait {
	w := strings.TrimSpace(wchan)
	switch {
	case strings.Contains(w, "lock_inode_wait"), strings.Contains(w, "flock"),
		strings.HasPrefix(w, "locks_"), strings.HasPrefix(w, "fcntl_setlk"), w == "do_lock_file_wait":
		return backpressure.OnLock
	case strings.HasPrefix(w, "pipe_"), w == "wait_for_partner":
		return backpressure.OnPipe
	}
	return backpressure.Asleep
}

// overHigh is the kernel function a task sleeps in while it is throttled
// for its cgroup's memory.high (mm/memcontrol.c).
const overHigh = "mem_cgroup_handle_over_high"

// throttled reports whether a thread of pid sleeps in the kernel's
// memory.high throttle. The allocating thread of a test binary is seldom
// its main one, so every thread is asked.
func throttled(pid int) bool {
	base := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return false
	}
	for _, t := range tasks {
		if w, err := os.ReadFile(base + "/" + t.Name() + "/wchan"); err == nil && strings.TrimSpace(string(w)) == overHigh {
			return true
		}
	}
	return false
}

// lockHolders reads /proc/locks: the pids holding a file lock that another
// process waits for.
func lockHolders() map[int]bool {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseLocks(f)
}

// parseLocks parses /proc/locks. A lock is a line "ID: CLASS MODE TYPE PID
// DEV:INODE START END"; the processes blocked on it follow as lines
// "ID: -> CLASS ..." with the same ID.
func parseLocks(r io.Reader) map[int]bool {
	holder := map[string]int{}
	waited := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		id := f[0]
		if f[1] == "->" {
			waited[id] = true
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			holder[id] = pid
		}
	}
	out := map[int]bool{}
	for id := range waited {
		if pid, ok := holder[id]; ok {
			out[pid] = true
		}
	}
	return out
}
