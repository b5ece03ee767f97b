package observe

import (
	"cmp"
	"slices"
	"time"
)

// CommandUse is what the processes of one command name did in a run, as the
// samples of the box's processes saw them: which of a suite's tests need
// what. A process that lived between two samples is not in it.
type CommandUse struct {
	// Comm is the command name (15 characters, as the kernel keeps it).
	Comm string
	// Processes counts the processes of that name seen.
	Processes int
	// PeakBytes is the largest resident size one of them reached;
	// TypicalBytes the median of their peaks.
	PeakBytes, TypicalBytes uint64
	// CPU is the CPU time they used, up to the last sample of each.
	CPU time.Duration
}

// commandProfile gathers CommandUse from samples of the box's processes.
type commandProfile struct {
	// procs is each process seen (pid and start time) with its peak and
	// the CPU time at its last sample.
	procs map[procKey]*procUse
}

// procKey names a process across pid reuse.
type procKey struct {
	pid   int
	start uint64
}

type procUse struct {
	comm string
	peak uint64
	cpu  time.Duration
}

// maxProfiled bounds the processes a profile remembers: a suite that
// starts more is profiled from its first ones.
const maxProfiled = 1 << 16

// add takes one sample of the box's processes.
func (p *commandProfile) add(cur []procSample) {
	if p.procs == nil {
		p.procs = map[procKey]*procUse{}
	}
	for _, s := range cur {
		k := s.key()
		u := p.procs[k]
		if u == nil {
			if len(p.procs) >= maxProfiled {
				continue
			}
			u = &procUse{}
			p.procs[k] = u
		}
		// A process that execs changes its name: the last one counts.
		u.comm = s.Comm
		u.peak = max(u.peak, s.RSSBytes)
		u.cpu = max(u.cpu, s.CPU)
	}
}

// uses returns the command names seen, the largest peak first (ties by
// name), at most n of them (all when n <= 0).
func (p *commandProfile) uses(n int) []CommandUse {
	peaks := map[string][]uint64{}
	by := map[string]*CommandUse{}
	for _, u := range p.procs {
		c := by[u.comm]
		if c == nil {
			c = &CommandUse{Comm: u.comm}
			by[u.comm] = c
		}
		c.Processes++
		c.PeakBytes = max(c.PeakBytes, u.peak)
		c.CPU += u.cpu
		peaks[u.comm] = append(peaks[u.comm], u.peak)
	}
	out := make([]CommandUse, 0, len(by))
	for comm, c := range by {
		ps := peaks[comm]
		slices.Sort(ps)
		c.TypicalBytes = ps[len(ps)/2]
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b CommandUse) int {
		if a.PeakBytes != b.PeakBytes {
			return cmp.Compare(b.PeakBytes, a.PeakBytes)
		}
		return cmp.Compare(a.Comm, b.Comm)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
