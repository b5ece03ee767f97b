package protect

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"time"
)

// PIDSet lists the pids in /proc, cheaply (names only), for Watch.
func PIDSet(procFS fs.FS) (map[int]struct{}, error) {
	entries, err := fs.ReadDir(procFS, ".")
	if err != nil {
		return nil, err
	}
	set := make(map[int]struct{}, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			set[pid] = struct{}{}
		}
	}
	return set, nil
}

// Watch applies the groups, calls ready, and then re-applies whenever new
// processes have appeared since the last look, polling /proc every
// interval, until ctx is done. Each report goes to onReport.
func (p *Protector) Watch(ctx context.Context, interval time.Duration, ready func(), onReport func(*Report, error)) error {
	prev, err := PIDSet(p.procFS)
	if err != nil {
		return fmt.Errorf("listing processes: %w", err)
	}
	onReport(p.Apply(ctx))
	if ready != nil {
		ready()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := PIDSet(p.procFS)
		if err != nil {
			onReport(nil, fmt.Errorf("listing processes: %w", err))
			continue
		}
		grown := false
		for pid := range cur {
			if _, ok := prev[pid]; !ok {
				grown = true
				break
			}
		}
		prev = cur
		if grown {
			onReport(p.Apply(ctx))
		}
		// Forget processes that are gone.
		for k := range p.done {
			if _, ok := cur[k.PID]; !ok {
				delete(p.done, k)
			}
		}
	}
}
