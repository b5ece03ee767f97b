package box

import (
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// PostMortem is what a run's guard saw of a box whose boxrun died before it
// finished with it (killed by SIGKILL, most often: a harness's timeout
// that kills boxrun's whole process group). The guard looks at the box
// before it kills what is left there, so that the run still gets a report.
type PostMortem struct {
	// File is Options.PostMortem: where the caller keeps what it needs to
	// write the report.
	File string
	// BoxDir is the box's cgroup directory; Backend its kind (KindSystemd
	// or KindCgroupfs).
	BoxDir, Backend string
	// Kernel is the kernel's release (uname -r), as Result.Kernel. The
	// manager's version (Result.Systemd) is not the guard's to ask: boxrun
	// asks it once the command has exited, and died first.
	Kernel string
	// At is when the guard found boxrun gone.
	At time.Time
	// BoxrunPID is the boxrun process that died, BoxrunSignal the signal
	// it died of, 0 when it was reaped before the guard could read its exit
	// status.
	BoxrunPID    int
	BoxrunSignal syscall.Signal
	// MemoryPeak and PidsPeak are the box's memory.peak and pids.peak (0
	// where the kernel lacks them); MemoryEvents, PidsEvents and CPU its
	// memory.events, pids.events and cpu.stat, nil when they could not be
	// read (the box was gone: systemd removes an empty scope at once).
	MemoryPeak, PidsPeak          uint64
	MemoryEvents, PidsEvents, CPU map[string]uint64
	// Procs are the processes the box still held, which the guard killed.
	Procs []PostMortemProc
	// CleanupErr is why the box could not be emptied or removed, nil when
	// it was.
	CleanupErr error
}

// PostMortemProc is one process a guard found in a box whose boxrun died.
type PostMortemProc struct {
	PID  int
	Comm string
	RSS  uint64
}

// lookAtBox reads what a post-mortem report needs from the box at dir
// before the guard empties it. Files a kernel lacks (memory.peak before
// 5.19) leave their figures zero.
func lookAtBox(dir string) PostMortem {
	pm := PostMortem{BoxDir: dir, At: time.Now()}
	if v, ok, _ := cgroupfs.ReadCounter(filepath.Join(dir, "memory.peak")); ok {
		pm.MemoryPeak = v
	}
	if v, ok, _ := cgroupfs.ReadCounter(filepath.Join(dir, "pids.peak")); ok {
		pm.PidsPeak = v
	}
	pm.CPU, _ = cgroupfs.ReadFlatKeyed(filepath.Join(dir, "cpu.stat"))
	pm.MemoryEvents, _ = cgroupfs.ReadFlatKeyed(filepath.Join(dir, "memory.events"))
	pm.PidsEvents, _ = cgroupfs.ReadFlatKeyed(filepath.Join(dir, "pids.events"))
	_ = cgroupDir{mount: dir, rel: "/"}.eachProc(func(_ string, pid int) {
		if st, err := procfs.ReadStat(pid); err == nil {
			pm.Procs = append(pm.Procs, PostMortemProc{PID: pid, Comm: st.Comm, RSS: st.RSS()})
		}
	})
	sort.Slice(pm.Procs, func(i, j int) bool { return pm.Procs[i].PID < pm.Procs[j].PID })
	return pm
}

// deathSignal is the signal the process pid died of, read from its exit
// status (/proc/PID/stat's exit_code) while it is exiting or a zombie: the
// kernel sets it before it closes the process's files, so it is there when
// the guard sees boxrun's end of the pipe close, until boxrun's parent
// reaps it. 0 when it is gone, exited without a signal, or is stopped (a
// stopped process's exit_code is its stop signal). start, when not 0, is
// its start time, so that a reused pid is never read as it.
func deathSignal(pid int, start uint64) syscall.Signal {
	st, err := procfs.ReadStat(pid)
	if err != nil || st.State == 'T' || st.State == 't' || (start != 0 && st.StartTime != start) {
		return 0
	}
	ws := syscall.WaitStatus(st.ExitCode)
	if !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// IsGuard reports whether args (os.Args) make this process a run's guard
// (see GuardArg); RunGuard is then its whole life.
func IsGuard(args []string) bool { return len(args) > 1 && args[1] == GuardArg }

// RunGuard is the guard's whole life (see GuardArg). When boxrun died
// before it finished with the box, and the run asked for a post-mortem
// (Options.PostMortem), report is called with what the guard saw once the
// box is emptied; report may be nil. It returns the guard's exit status.
func RunGuard(args []string, report func(PostMortem)) int {
	return runGuard(args, report)
}
