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
//     child in the box) is expected to grow to the typical peak of the
//     finished leaf processes of the same command name in this run (the
//     test binary's children are alike; a shell's seq or a version probe
//     says nothing of them). When the memory in use plus what the running
//     leaves are still expected to take would cross the target (memory.max
//     less a margin), the newest running leaves are paused — a process that
//     just started is held back before it has grown.
//   - Unknown sizes. Above half the box, at most one leaf whose kind has
//     not finished yet runs: paused processes keep their memory, so the one
//     that runs has the other half to finish in, and its peak teaches the
//     size of its kind.
//   - Danger. When headroom falls below the margin, every running leaf but
//     the oldest is paused, except those already at their kind's peak.
//   - Let the kernel buy time while learning. Until the box first reaches
//     half its target, memory.high is held just above that line (High), so
//     a burst of new processes that fills the box faster than boxrun can
//     look is throttled by the kernel instead of running into memory.max;
//     from then on it is just under the target, where the controller acts.
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
	// Comm is the process's command name (/proc/PID/comm): processes of
	// one name are expected to grow alike.
	Comm string
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
	// High is the memory.high the box keeps once the controller has
	// learned (see Controller.High); 0 means memory.high is not managed.
	High uint64
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
	// LearningHigh is the memory.high the box had while the controller
	// learned, 0 when it did not manage memory.high.
	LearningHigh uint64
	// Learned is how long learning lasted (zero if it never ended).
	Learned time.Duration
}

// Controller is the pause/resume state machine.
type Controller struct {
	cfg    Config
	paused map[int]time.Time // pid -> when it was paused
	peak   map[int]uint64    // pid -> largest RSS seen while alive
	leaf   map[int]bool      // pid -> was a leaf when last seen
	comm   map[int]string    // pid -> command name when last seen
	// finished holds the peaks of leaves that exited, by command name.
	finished map[string][]uint64
	stats    Stats
	// learning is true until a leaf has finished or the box first reached
	// danger; started is the first observation's time.
	learning bool
	started  time.Time
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
	c := &Controller{cfg: cfg, paused: map[int]time.Time{}, peak: map[int]uint64{}, leaf: map[int]bool{},
		comm: map[int]string{}, finished: map[string][]uint64{}}
	if cfg.High != 0 {
		c.learning = true
		c.stats.LearningHigh = c.learningHigh()
	}
	return c
}

// learningHigh is memory.high while nothing is known of the processes'
// size: a margin above the danger line (half the target), and never above
// the steady memory.high.
func (c *Controller) learningHigh() uint64 {
	h := c.cfg.Target/2 + c.cfg.Margin
	if h > c.cfg.High {
		h = c.cfg.High
	}
	return h
}

// High is the memory.high the box should have now: just above the danger
// line while the controller is learning, Config.High after; 0 when
// Config.High is 0 (memory.high is not managed). The caller writes it to
// the box whenever it changes. Learning ends for good at the first
// observation where a leaf has finished or the box reached danger: from
// then on the controller pauses processes itself, and a lone process still
// growing must not be throttled.
func (c *Controller) High() uint64 {
	if c.cfg.High == 0 {
		return 0
	}
	if c.learning {
		return c.learningHigh()
	}
	return c.cfg.High
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

// expect is the learned peak of processes named like p: the upper
// quartile of the peaks of finished leaves with its command name, so one
// small early finisher does not let the box overfill. ok is false while no
// such process has finished: its size is unknown.
func (c *Controller) expect(p Proc) (peak uint64, ok bool) {
	return upperQuartile(c.finished[p.Comm])
}

// typical is the largest learned peak of any command name, 0 if none.
func (c *Controller) typical() uint64 {
	var max uint64
	for _, peaks := range c.finished {
		if q, _ := upperQuartile(peaks); q > max {
			max = q
		}
	}
	return max
}

func upperQuartile(v []uint64) (uint64, bool) {
	n := len(v)
	if n == 0 {
		return 0, false
	}
	s := append([]uint64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(n*3)/4], true
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
	c.forgetExited(o.Now, alive)
	var running []Proc // unpaused leaves that may be paused
	for _, p := range o.Procs {
		if p.RSS > c.peak[p.PID] {
			c.peak[p.PID] = p.RSS
		}
		c.comm[p.PID] = p.Comm
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
	if c.started.IsZero() {
		c.started = o.Now
	}
	sort.Slice(running, func(i, j int) bool { return older(running[i], running[j]) })

	limit := c.cfg.Target
	if limit > c.cfg.Margin {
		limit -= c.cfg.Margin
	} else {
		limit = 0
	}
	// Above half the box, at most one process of unknown size runs: memory
	// held by paused processes is stuck, so the one that runs has the other
	// half to finish in, and its peak teaches the size of its kind.
	half := c.cfg.Target / 2
	if c.learning && o.Usage >= half {
		c.learning = false
		c.stats.Learned = o.Now.Sub(c.started)
	}
	// Each name's peak is sorted out once per observation, not once per
	// question about a process.
	type peakOf struct {
		v  uint64
		ok bool
	}
	peaks := map[string]peakOf{}
	expect := func(p Proc) (uint64, bool) {
		e, seen := peaks[p.Comm]
		if !seen {
			e.v, e.ok = c.expect(p)
			peaks[p.Comm] = e
		}
		return e.v, e.ok
	}
	known := func(p Proc) bool { _, ok := expect(p); return ok }
	// need is what a running leaf is expected to take still: up to the peak
	// of its kind, plus a twentieth for what resident size does not show
	// (page tables, kernel memory charged to the box, a last burst); 0 when
	// its kind is unknown (the rule above covers those).
	need := func(p Proc) uint64 {
		e, _ := expect(p)
		if e > p.RSS {
			return e + e/20 - p.RSS
		}
		return 0
	}
	// grown: a process already at the peak of its kind will not grow;
	// pausing it would only keep its memory longer.
	grown := func(p Proc) bool { return known(p) && need(p) == 0 }

	var acts []Action
	// Pauses that lasted too long end, oldest first.
	for _, pid := range c.Paused() {
		if o.Now.Sub(c.paused[pid]) >= c.cfg.MaxPause {
			acts = append(acts, c.resume(pid, o.Now, "paused for the longest allowed time", true))
		}
	}

	keep := func(why string, pause func(i int, p Proc) bool) {
		kept := running[:0:0]
		for i, p := range running {
			if pause(i, p) {
				acts = append(acts, c.pause(p.PID, o.Now, why))
				continue
			}
			kept = append(kept, p)
		}
		running = kept
	}
	switch {
	case o.Usage >= limit && len(running) > 1:
		// Danger: keep only the oldest running leaf going, and those that
		// have done their growing.
		keep("box near its memory target", func(i int, p Proc) bool { return i > 0 && !grown(p) })
	case o.Usage >= half:
		// Unknown sizes: keep the oldest of them.
		seen := false
		keep("box half full and the size of such a process unknown", func(i int, p Proc) bool {
			if known(p) || len(running) == 1 {
				return false
			}
			if !seen {
				seen = true
				return false
			}
			return true
		})
	}
	// Admission: hold back the newest until the expected growth of the rest
	// fits.
	projected := o.Usage
	for _, p := range running {
		projected += need(p)
	}
	for i := len(running) - 1; i >= 1 && projected > limit; i-- {
		p := running[i]
		if grown(p) || !known(p) {
			continue
		}
		projected -= need(p)
		acts = append(acts, c.pause(p.PID, o.Now, "expected growth does not fit the box"))
		running = append(running[:i], running[i+1:]...)
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
	unknownRunning := 0
	for _, p := range running {
		if !known(p) {
			unknownRunning++
		}
	}
	if o.Usage < limit {
		for _, p := range paused {
			extra := need(p)
			if !known(p) {
				// Unknown size: with room for a margin, and above half the
				// box only when no other of unknown size runs.
				extra = c.cfg.Margin
				if o.Usage >= half && unknownRunning > 0 {
					break
				}
			}
			if projected+extra > limit {
				break
			}
			acts = append(acts, c.resume(p.PID, o.Now, "room in the box", false))
			projected += extra
			running = append(running, p)
			if !known(p) {
				unknownRunning++
			}
		}
	}
	if len(running) > c.stats.MaxRunning {
		c.stats.MaxRunning = len(running)
	}
	return acts
}

// forgetExited forgets processes that exited and learns from the leaves
// among them.
func (c *Controller) forgetExited(now time.Time, alive map[int]Proc) {
	for pid, pk := range c.peak {
		if _, ok := alive[pid]; ok {
			continue
		}
		if c.leaf[pid] && pid != c.cfg.Main && pk > 0 {
			c.finished[c.comm[pid]] = append(c.finished[c.comm[pid]], pk)
		}
		delete(c.peak, pid)
		delete(c.leaf, pid)
		delete(c.comm, pid)
		if t, ok := c.paused[pid]; ok {
			// Died while paused (killed from outside): count the pause.
			d := now.Sub(t)
			c.stats.PausedTotal += d
			if d > c.stats.LongestPause {
				c.stats.LongestPause = d
			}
			delete(c.paused, pid)
		}
	}
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
