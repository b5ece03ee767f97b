package box

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/policy"
)

// handleLeftovers deals with processes still in the box after the command
// exited: it names them, and with leftovers = "kill" sends SIGTERM, waits
// the grace period, then kills the rest.
func handleLeftovers(ctx context.Context, box Box, p *policy.Resolved, warn func(string)) ([]Proc, bool) {
	pids, err := box.Procs()
	if err != nil {
		warn(fmt.Sprintf("listing leftover processes: %v", err))
	}
	if len(pids) == 0 {
		return nil, false
	}
	procs := make([]Proc, 0, len(pids))
	for _, pid := range pids {
		procs = append(procs, DescribeProc(pid))
	}
	if p.Leftovers == "keep" {
		return procs, false
	}
	_ = box.Signal(ctx, syscall.SIGTERM) // what does not end in the grace is killed below
	if dir := box.Dir(); dir != "" {
		if (cgroupDir{mount: dir, rel: "/"}).waitEmpty(ctx, p.LeftoversGrace) {
			return procs, true
		}
	} else {
		deadline := time.Now().Add(p.LeftoversGrace)
		for time.Now().Before(deadline) {
			if left, err := box.Procs(); err == nil && len(left) == 0 {
				return procs, true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := box.Kill(ctx); err != nil {
		warn(fmt.Sprintf("killing leftover processes: %v", err))
	}
	return procs, true
}

// DescribeProc reads a process's name and command line from /proc.
func DescribeProc(pid int) Proc {
	p := Proc{PID: pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		p.Comm = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	return p
}
