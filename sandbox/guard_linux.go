package sandbox

import (
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// GuardArg makes the boxrun binary act as a run's guard: a small process
// outside the box, in a session of its own (so terminal signals do not reach
// it), holding the read end of a pipe from boxrun. boxrun writes guardDone
// when it has finished with the box. If the pipe closes without it — boxrun
// died, even by SIGKILL — the guard resumes every process of the box (none
// stays stopped by backpressure) and kills them all, so a box never outlives
// its boxrun unbounded; systemd then collects the empty scope, and a
// cgroupfs box is removed by the guard.
const GuardArg = "__boxrun-guard"

// guardDone is what boxrun writes to tell its guard all is well.
const guardDone = 'D'

// guard is boxrun's end of a running guard.
type guard struct {
	w *os.File
}

// startGuard starts the guard for the box at dir (an absolute cgroup
// directory). executable "" means /proc/self/exe. record is the box's owner
// record to remove, "" for none; ours says whether the cgroup directories
// are boxrun's to remove (cgroupfs) rather than systemd's (a scope and its
// slice, which systemd removes itself and must find where it left them).
func startGuard(executable, dir, record string, ours bool) (*guard, error) {
	mode := "systemd"
	if ours {
		mode = KindCgroupfs
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if executable == "" {
		executable = "/proc/self/exe"
	}
	cmd := &exec.Cmd{
		Path:        executable,
		Args:        []string{"boxrun", GuardArg, dir, record, mode},
		ExtraFiles:  []*os.File{r},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, err
	}
	// Reap it when it exits, without blocking boxrun.
	go func() { _ = cmd.Wait() }()
	return &guard{w: w}, nil
}

// release tells the guard boxrun is done with the box and lets it go.
func (g *guard) release() {
	if g == nil {
		return
	}
	_, _ = g.w.Write([]byte{guardDone})
	g.w.Close()
}

// runGuard is the guard's whole life (see GuardArg).
func runGuard(args []string) int {
	if len(args) != 5 {
		return 125
	}
	pipe := os.NewFile(3, "boxrun-guard")
	if pipe == nil {
		return 125
	}
	data, _ := io.ReadAll(pipe) // until boxrun closes it, or dies
	if len(data) > 0 && data[len(data)-1] == guardDone {
		return 0
	}
	cg := cgroupDir{mount: args[2], rel: "/"}
	// Nothing may stay stopped: resume first, then kill everything (a
	// process frozen by backpressure dies of SIGKILL as it is).
	_ = cg.signal(syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cg.kill(ctx); err != nil {
		return 1
	}
	// The box is empty: no record of it may stay ("" when none was made).
	if args[3] != "" {
		_ = os.Remove(args[3])
	}
	// systemd removes an empty scope's cgroup itself, and its slice's is
	// never ours; a cgroupfs box is, and so is its slice directory once no
	// other box is in it.
	if args[4] != KindCgroupfs {
		return 0
	}
	if err := cg.remove(); err != nil {
		return 1
	}
	return 0
}
