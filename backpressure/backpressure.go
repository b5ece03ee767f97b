// Package backpressure decides which processes of a box to pause and when to
// resume them, so that a test suite whose processes together want more memory
// than the box allows finishes with every test passing instead of being
// OOM-killed — without capping the parallelism of processes that need little.
//
// It is pure: the caller (sandbox's backpressure observer) feeds it
// observations of the box (memory use, the processes with their start times,
// parents and resident sizes) and carries out the actions it returns
// (SIGSTOP / SIGCONT). Its rules:
//
//   - Admit rather than evict. Each leaf process of the box (one with no
//     child in the box) is expected to grow to the typical peak of the leaf
//     processes that have finished in this run. When the memory in use plus
//     what the running leaves are still expected to take would cross the
//     target (memory.high when set, else memory.max, less a margin), the
//     newest running leaves are paused — a process that just started is held
//     back before it has grown.
//   - Danger. When headroom falls below the margin — or, before any leaf
//     has finished and nothing is known of their size, when the box is half
//     full — every running leaf but the oldest is paused: paused processes
//     stop allocating, the oldest can finish, and its peak teaches the
//     typical size.
//   - Resume oldest first, when its expected remaining growth fits.
//   - Never deadlock. Paused processes keep their memory, so waiting for
//     memory to fall can wait forever: when no leaf is left running, the
//     oldest paused one is resumed whatever the memory; and no pause lasts
//     longer than MaxPause.
//   - Never pause the command's main process or a process with children in
//     the box (a parent waiting for its children holds no growth of its own).
package backpressure

import (
	"sort"
	"time"
)

// Proc is one process of the box as observed.
type Proc struct {
	// PID and PPID identify the process and its parent.
	PID, PPID int
	// Start orders processes by age (e.g. /proc/PID/stat starttime); a
	// larger value is a younger process.
	Start uint64
	// RSS is the resident memory in bytes.
	RSS uint64
}

// Observation is one look at the box.
type Observation struct {
	// Now is when the observation was made.
	Now time.Time
	// Usage is the box's memory.current in bytes.
	Usage uint64
	// Procs are the processes in the box.
	Procs []Proc
}

// Kind is what an Action does.
type Kind int

// Action kinds.
const (
	Pause Kind = iota
	Resume
)

func (k Kind) String() string {
	if k == Pause {
		return "pause"
	}
	return "resume"
}

// Action is a decision for one process.
type Action struct {
	Kind Kind
	PID  int
	// Reason says why, for debugging and the report.
	Reason string
}

// Config tunes a Controller.
type Config struct {
	// Target is the memory the box should stay under: memory.high when set,
	// else memory.max.
	Target uint64
	// Margin is the headroom kept free below Target; 0 picks 5 % of Target,
	// at least 16 MiB.
	Margin uint64
	// MaxPause bounds any single pause; 0 picks 60 s.
	MaxPause time.Duration
	// Main is the command's own process, never paused.
	Main int
}

// Stats is what the controller did, for the run report.
type Stats struct {
	// Paused counts pauses; Resumed counts resumes (forced ones included).
	Paused, Resumed int
	// ForcedResumes counts resumes made to avoid a deadlock or because a
	// pause lasted MaxPause.
	ForcedResumes int
	// PausedTotal is the sum of all pause durations; MaxPause the longest.
	PausedTotal, LongestPause time.Duration
	// MaxRunning is the most leaf processes (the workers: processes with no
	// child in the box, the command's own excepted) left running at once.
	MaxRunning int
	// Typical is the learned typical peak of a finished leaf, 0 if none.
	Typical uint64
}

// Controller is the pause/resume state machine.
type Controller struct {
	cfg    Config
	paused map[int]time.Time // pid -> when it was paused
	peak   map[int]uint64    // pid -> largest RSS seen while alive
	leaf   map[int]bool      // pid -> was a leaf when last seen
	// finished holds the peaks of leaves that exited, for Typical.
	finished []uint64
	stats    Stats
}

// DefaultMargin is the headroom kept free below a target: 5 %, at least
// 8 MiB.
func DefaultMargin(target uint64) uint64 {
	m := target / 20
	if m < 8<<20 {
		m = 8 << 20
	}
	return m
}

// HighFor is the memory.high that goes with backpressure steering to
// target: half a margin above the pause threshold (target - margin), so the
// kernel throttles an allocation burst that overshoots the threshold while
// the controller pauses processes, and nothing is throttled below it.
func HighFor(target uint64) uint64 {
	m := DefaultMargin(target)
	if target < m {
		return target
	}
	return target - m/2
}

// New returns a controller for cfg.
func New(cfg Config) *Controller {
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin(cfg.Target)
	}
	if cfg.MaxPause == 0 {
		cfg.MaxPause = 60 * time.Second
	}
	return &Controller{cfg: cfg, paused: map[int]time.Time{}, peak: map[int]uint64{}, leaf: map[int]bool{}}
}

// Stats returns what the controller did so far.
func (c *Controller) Stats() Stats { return c.stats }

// Paused lists the pids paused now, oldest pause first.
func (c *Controller) Paused() []int {
	pids := make([]int, 0, len(c.paused))
	for pid := range c.paused {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return c.paused[pids[i]].Before(c.paused[pids[j]]) })
	return pids
}

// typical is the learned typical peak of a leaf: the upper quartile of
// finished leaves' peaks, so one small early finisher does not let the box
// overfill.
func (c *Controller) typical() uint64 {
	n := len(c.finished)
	if n == 0 {
		return 0
	}
	s := append([]uint64(nil), c.finished...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(n*3)/4]
}

// Finish resumes every paused process (the command has exited, or boxrun is
// stopping) and returns those actions.
func (c *Controller) Finish(now time.Time) []Action {
	var acts []Action
	for _, pid := range c.Paused() {
		acts = append(acts, c.resume(pid, now, "run ended", false))
	}
	return acts
}

func (c *Controller) resume(pid int, now time.Time, why string, forced bool) Action {
	d := now.Sub(c.paused[pid])
	delete(c.paused, pid)
	c.stats.Resumed++
	if forced {
		c.stats.ForcedResumes++
	}
	c.stats.PausedTotal += d
	if d > c.stats.LongestPause {
		c.stats.LongestPause = d
	}
	return Action{Kind: Resume, PID: pid, Reason: why}
}

func (c *Controller) pause(pid int, now time.Time, why string) Action {
	c.paused[pid] = now
	c.stats.Paused++
	return Action{Kind: Pause, PID: pid, Reason: why}
}

// Step takes one observation and returns what to do now.
func (c *Controller) Step(o Observation) []Action {
	alive := make(map[int]Proc, len(o.Procs))
	hasChild := map[int]bool{}
	for _, p := range o.Procs {
		alive[p.PID] = p
		hasChild[p.PPID] = true
	}
	// Forget processes that exited; learn from leaves that finished.
	for pid, pk := range c.peak {
		if _, ok := alive[pid]; ok {
			continue
		}
		if c.leaf[pid] && pid != c.cfg.Main && pk > 0 {
			c.finished = append(c.finished, pk)
		}
		delete(c.peak, pid)
		delete(c.leaf, pid)
		if t, ok := c.paused[pid]; ok {
			// Died while paused (killed from outside): count the pause.
			d := o.Now.Sub(t)
			c.stats.PausedTotal += d
			if d > c.stats.LongestPause {
				c.stats.LongestPause = d
			}
			delete(c.paused, pid)
		}
	}
	var running []Proc // unpaused leaves that may be paused
	for _, p := range o.Procs {
		if p.RSS > c.peak[p.PID] {
			c.peak[p.PID] = p.RSS
		}
		isLeaf := !hasChild[p.PID]
		c.leaf[p.PID] = isLeaf
		if _, ok := c.paused[p.PID]; ok {
			continue
		}
		if isLeaf && p.PID != c.cfg.Main {
			running = append(running, p)
		}
	}
	c.stats.Typical = c.typical()
	sort.Slice(running, func(i, j int) bool { return older(running[i], running[j]) })

	var acts []Action
	limit := c.cfg.Target
	if limit > c.cfg.Margin {
		limit -= c.cfg.Margin
	} else {
		limit = 0
	}
	typ := c.typical()
	// danger is where every running leaf but the oldest is paused. Until a
	// leaf has finished nobody knows how big one gets, and memory held by
	// paused processes is stuck: be careful at half the box, so that the
	// oldest has the other half to finish in.
	danger := limit
	if typ == 0 {
		danger = c.cfg.Target / 2
	}
	// need is what a running leaf is expected to take still: up to the
	// typical peak, plus a twentieth for what resident size does not show
	// (page tables, kernel memory charged to the box, a last burst).
	need := func(p Proc) uint64 {
		if typ > p.RSS {
			return typ + typ/20 - p.RSS
		}
		return 0
	}
	// Memory in use plus what the running leaves are expected to take.
	projected := o.Usage
	for _, p := range running {
		projected += need(p)
	}

	// Pauses that lasted too long end, oldest first.
	for _, pid := range c.Paused() {
		if o.Now.Sub(c.paused[pid]) >= c.cfg.MaxPause {
			acts = append(acts, c.resume(pid, o.Now, "paused for the longest allowed time", true))
		}
	}

	// grown: a process already at the typical peak will not grow; pausing
	// it would only keep its memory longer.
	grown := func(p Proc) bool { return typ > 0 && need(p) == 0 }

	switch {
	case o.Usage >= danger && len(running) > 1:
		// Danger: keep only the oldest running leaf going, and those that
		// have done their growing.
		kept := running[:1]
		for _, p := range running[1:] {
			if grown(p) {
				kept = append(kept, p)
				continue
			}
			acts = append(acts, c.pause(p.PID, o.Now, "box near its memory target"))
		}
		running = kept
	case typ > 0 && projected > limit && len(running) > 1:
		// Admission: hold back the newest until the rest fit.
		for i := len(running) - 1; i >= 1 && projected > limit; i-- {
			p := running[i]
			if grown(p) {
				continue
			}
			projected -= need(p)
			acts = append(acts, c.pause(p.PID, o.Now, "expected growth does not fit the box"))
			running = append(running[:i], running[i+1:]...)
		}
	}

	// Resume oldest first: those done growing at once (they only free
	// memory from here), the others when their expected growth fits.
	paused := c.pausedProcs(alive)
	var still []Proc
	for _, p := range paused {
		if grown(p) {
			acts = append(acts, c.resume(p.PID, o.Now, "done growing", false))
			running = append(running, p)
			continue
		}
		still = append(still, p)
	}
	paused = still
	if len(running) == 0 && len(paused) > 0 {
		// Nothing left to make progress: resume the oldest whatever the memory.
		p := paused[0]
		acts = append(acts, c.resume(p.PID, o.Now, "nothing else running", true))
		paused = paused[1:]
		projected += need(p)
		running = append(running, p)
	}
	if o.Usage < limit {
		for _, p := range paused {
			extra := need(p)
			if typ == 0 {
				// Unknown size: resume one at a time, with room for a margin.
				extra = c.cfg.Margin
				if len(running) > 0 {
					break
				}
			}
			if projected+extra > limit {
				break
			}
			acts = append(acts, c.resume(p.PID, o.Now, "room in the box", false))
			projected += extra
			running = append(running, p)
		}
	}
	if len(running) > c.stats.MaxRunning {
		c.stats.MaxRunning = len(running)
	}
	return acts
}

// pausedProcs returns the paused processes still alive, oldest first.
func (c *Controller) pausedProcs(alive map[int]Proc) []Proc {
	var ps []Proc
	for pid := range c.paused {
		if p, ok := alive[pid]; ok {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return older(ps[i], ps[j]) })
	return ps
}

// older orders processes oldest first (by start time, then pid).
func older(a, b Proc) bool {
	if a.Start != b.Start {
		return a.Start < b.Start
	}
	return a.PID < b.PID
}
