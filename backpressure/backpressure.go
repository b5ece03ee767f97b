// Package backpressure decides which processes of a box to pause and when to
// resume them, so that a test suite whose processes together want more memory
// than the box allows finishes with every test passing instead of being
// OOM-killed — without slowing a suite that fits.
//
// It is pure: the caller (observe.Backpressure) feeds it
// observations of the box (memory use, CPU time, the processes with their
// start times, parents and resident sizes) and carries out the actions it
// returns. Its rules:
//
//   - Pause growth, not processes. Only a leaf process (one with no child in
//     the box) whose resident size rose by GrowthNoise or more since the
//     previous look may be paused. A process that already holds what it
//     allocated and only sleeps, computes or waits is never paused: pausing
//     it would save nothing and keep its memory held longer. A process seen
//     for the first time has shown no growth yet.
//   - Evidence, not fractions. Each leaf is expected to grow to the typical
//     peak of the finished leaves of its command name in this run (the
//     upper quartile: one small early finisher does not open the gates).
//     Before any of its kind has finished in this run, the size an earlier
//     run learned (Config.Known) stands in; without one, its growth over
//     the last look, continued for two more looks, is all that is expected
//     of it. Only a leaf that never had a child teaches its kind's size (a
//     harness that re-executes itself shares its children's name), and a
//     process that outgrew its kind's size is of unknown size again. Sizes
//     returns what the run knows at its end. When the
//     memory in use plus what the running leaves are expected to add would
//     cross the target (memory.max less a margin), the growing leaves
//     holding the least are paused until it fits (they keep the least
//     while they wait). At the target, every growing leaf but the one
//     holding the most is paused. While two or more leaves of unknown size
//     grow or wait, the target keeps room below it for the largest of
//     them, not only the margin: the one kept going must be able to grow
//     that large while the paused ones hold what they have.
//   - Resume as soon as it fits; at once for a process that already holds
//     its kind's peak: resuming it costs nothing. The line is the one
//     nearest its peak first, but a pause that lasted Overdue goes ahead,
//     the longest first, and the room it waits for is kept from growers
//     newer than it: otherwise newer processes, and those nearer their
//     peak, keep taking the room and one waits for ever.
//   - Liveness. Paused processes keep their memory, so waiting for memory
//     to fall can wait forever. When no unpaused leaf is left, the paused
//     process holding the most is resumed at once. When the box has used
//     next to no CPU for Stall while something is paused (the running
//     processes sleep, or wait on a pipe or a child that is paused), the
//     paused process holding the most of those whose expected growth still
//     fits below the target is resumed; one that does not fit waits, since
//     resumed it would meet memory.max while the sleepers hold theirs,
//     unless every running leaf waits for a paused one (Proc.WaitsFor):
//     nothing running can then free anything, and the one they wait for
//     holding the most is resumed whatever the memory. A
//     process resumed to keep the run going is exempt from pausing for
//     HoldOff. No pause outlasts MaxPause, a last resort.
//   - Never pause the command's main process, a process with children in
//     the box (a parent waiting for its children holds no growth of its
//     own) or one that holds a file lock others wait for (Proc.Awaited):
//     the waiters wait for it, and a paused one is resumed at once.
//
// What a run learned of sizes outlives it in a sizes file, one per project
// directory and policy (SizeFile): the package encodes and decodes it, and
// the caller reads and writes it.
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
	// Throttled is true when a thread of the process sleeps in the
	// kernel's memory.high throttle (/proc/PID/task/*/wchan is
	// mem_cgroup_handle_over_high): it is allocating, however little its
	// resident size moved. The caller need only say so at the pause line.
	Throttled bool
	// Awaited is true when another process waits for a file lock it holds
	// (/proc/locks): the others wait for it (cargo's build lock, a test
	// fixture's flock), so it is never paused, and a paused one is
	// resumed at once.
	Awaited bool
	// Blocked is true when it waits for a file lock another process holds
	// (/proc/locks), or sleeps on a pipe whose other end only paused
	// processes hold: it will not finish by itself.
	Blocked bool
	// WaitsFor are the processes holding the lock it waits for, or the
	// paused ones holding the pipe it sleeps on, as far as the caller can
	// name them: one of them paused blocks it (see Stats.Blocked).
	WaitsFor []int
}

// Observation is one look at the box.
type Observation struct {
	// Now is when the observation was made.
	Now time.Time
	// Usage is the box's memory.current in bytes.
	Usage uint64
	// CPU is the CPU time the box has used so far (cpu.stat usage_usec);
	// zero when it cannot be read, which leaves only the "nothing left
	// running" liveness rule.
	CPU time.Duration
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

// Overdue is how long a pause may last before the paused process goes
// first in line to resume, ahead of those nearer their peak, and the room
// it waits for is kept from newer growers: past it, it has waited through
// generations of its siblings. Before it, the line favours throughput
// (whoever needs the least room goes first); a first in line that needs
// much room holds up everyone behind it, so it is not made first sooner.
const Overdue = 5 * time.Second

// Reasons for pausing and resuming, as the report states them.
const (
	WhyAtTarget    = "the box is at its memory target"
	WhyNoFit       = "its expected growth does not fit the box"
	WhyFastGrowth  = "its growth would reach the memory target within two looks"
	WhyHoldsPeak   = "it holds its expected size"
	WhyRoom        = "room in the box"
	WhyAwaited     = "others wait for a lock it holds"
	WhyNothingElse = "nothing else was running"
	WhyStalled     = "the box used no CPU while processes were paused"
	WhyMaxPause    = "paused for the longest allowed time"
	WhyRunEnded    = "run ended"
)

// Action is a decision for one process.
type Action struct {
	Kind Kind
	PID  int
	// Reason says why (one of the Why constants).
	Reason string
}

// Config tunes a Controller.
type Config struct {
	// Target is the memory the box should stay under: memory.high when set,
	// else memory.max.
	Target uint64
	// Margin is the headroom kept free below Target; 0 picks DefaultMargin.
	Margin uint64
	// MaxPause bounds any single pause; 0 picks 30 s.
	MaxPause time.Duration
	// Stall is how long the box may use next to no CPU (under a fiftieth
	// of one CPU) while processes are paused before one is resumed; 0
	// picks 250 ms.
	Stall time.Duration
	// HoldOff is how long a process resumed to keep the run going is
	// exempt from pausing; 0 picks 2 s.
	HoldOff time.Duration
	// LiftAfter is how long the box may stay at the pause line with no
	// process exiting before the throttle is lifted (see Lift); 0 picks
	// 1 s. In the VM a test throttled 4 % over memory.high gained 0.6 MiB
	// in 20 s, using 3 % of a CPU in reclaim: at the line, stuck is the
	// throttle's normal state, and no CPU figure tells it apart.
	LiftAfter time.Duration
	// Main is the command's own process, never paused.
	Main int
	// High is the memory.high the box keeps (see Controller.High); 0 means
	// memory.high is not managed.
	High uint64
	// Lift is the memory.high to lift the throttle to (the box's
	// memory.max) when the box is stuck at High: what runs is throttled
	// or asleep, and paused processes hold the memory the running ones
	// need. Lifted, the running ones may use the room up to memory.max;
	// if they need more, the kernel OOM-kills there, which the report
	// explains. Without the lift they would crawl at the throttle for
	// minutes. 0 never lifts (a memory.high the user set is theirs).
	Lift uint64
	// Known is the typical peak of the leaves of each command name as
	// known before the run (an earlier run of the same suite, see
	// Sizes): a process of a name in it is expected to grow to that size
	// until a leaf of its name finishes in this run, whose evidence then
	// replaces it. Nil or empty knows nothing. The controller does not
	// modify it.
	Known map[string]uint64
}

// GrowthNoise is how much a process's resident size must rise between two
// looks to count as growing: less is the noise of a process that holds
// what it has (stack, a few pages of heap).
const GrowthNoise = 1 << 20

// SlowGrowth is how much a process must grow between two looks to count as
// growing once the box is at its pause line: throttled at memory.high, an
// allocator gains only a few pages a look.
const SlowGrowth = 64 << 10

// Reason is how often, and how long in all, processes were paused for one
// reason.
type Reason struct {
	Reason string
	Count  int
	// Total is the sum of the pauses' lengths, Longest the longest.
	Total, Longest time.Duration
}

// Stats is what the controller did, for the run report.
type Stats struct {
	// Paused counts pauses; Resumed counts resumes (forced ones included).
	Paused, Resumed int
	// ForcedResumes counts resumes made to keep the run going (nothing
	// else running, no CPU used) or because a pause lasted MaxPause;
	// Forced counts them by reason.
	ForcedResumes int
	Forced        map[string]int
	// PausedTotal is the sum of all pause durations; LongestPause the
	// longest, paused for LongestReason.
	PausedTotal, LongestPause time.Duration
	LongestReason             string
	// Reasons are the pauses by the reason they were made for, most
	// paused time first.
	Reasons []Reason
	// MaxRunning is the most leaf processes (the workers: processes with no
	// child in the box, the command's own excepted) left running at once.
	MaxRunning int
	// Typical is the largest expected peak of any command name, learned
	// in this run or known before it (Config.Known), 0 if none.
	Typical uint64
	// Learned counts the command names of which a leaf finished in this
	// run: their sizes are this run's evidence, no longer Config.Known's.
	Learned int
	// PausedAtEnd counts the processes still paused when Finish resumed
	// them (the command exited, or boxrun was stopped).
	PausedAtEnd int
	// Lifted counts the times memory.high was lifted to Config.Lift
	// because the box was stuck at the throttle (see Config.Lift).
	Lifted int
	// Blocked is how long unpaused processes were held up by paused ones,
	// summed over the processes: the time each spent waiting for a lock or
	// a pipe a paused process holds (Proc.WaitsFor), and, when the box stalled
	// with processes paused until one was resumed to keep it going, that
	// stall for each leaf left running. Zero is the goal.
	Blocked time.Duration
}

// seen is what the controller remembers of a live process.
type seen struct {
	rss, peak uint64
	// grew is how much its resident size rose at the last look.
	grew uint64
	leaf bool
	// parent is true once it was seen with a child in the box: its size
	// (a shell, a harness, a waiter) says nothing of what its kind's
	// leaves grow to, so its exit teaches none.
	parent bool
	comm   string
	// fresh is true at the look that first saw it.
	fresh bool
	// throttled is Proc.Throttled at the last look.
	throttled bool
	// awaited and blocked are Proc.Awaited and Proc.Blocked at the last
	// look.
	awaited, blocked bool
}

// pause is one process held paused.
type pause struct {
	at  time.Time
	why string
	// grew is how fast it grew when it was paused (bytes per look).
	grew uint64
}

// Controller is the pause/resume state machine.
type Controller struct {
	cfg    Config
	procs  map[int]*seen
	paused map[int]pause
	// holdOff holds processes resumed to keep the run going, exempt from
	// pausing until the time given.
	holdOff map[int]time.Time
	// finished holds the peaks of leaves that exited, by command name.
	finished map[string][]uint64
	// markAt and markCPU are the last time the box was seen making
	// progress (using CPU) while processes were paused.
	markAt  time.Time
	markCPU time.Duration
	reasons map[string]*Reason
	stats   Stats
	// freedAt is the last time memory was freed, or could be: a process
	// exited, or the box was below the line.
	freedAt time.Time
	// lifted is true while memory.high is lifted, to liftTo.
	lifted bool
	liftTo uint64
	// lookAt is when the last observation was made.
	lookAt time.Time
	// room is the headroom kept free below Target at this look: the
	// margin, or more while several processes of unknown size grow (see
	// roomFor).
	room uint64
}

// DefaultMargin is the headroom kept free below a target: a tenth, at
// least 8 MiB. It is as much the room the kernel's throttle needs as room
// for growth: above memory.high the kernel holds an allocator back in
// proportion to the square of how far over it the box is, and skips the
// sleep below about 1.25 % over (mm/memcontrol.c), so memory.high only a
// few percent under memory.max lets an allocation burst reach memory.max
// at megabytes a second before the controller can act. A tenth under it,
// the throttle slows each allocator to some hundreds of KiB a second
// there.
func DefaultMargin(target uint64) uint64 {
	m := target / 10
	if m < 8<<20 {
		m = 8 << 20
	}
	return m
}

// HighFor is the memory.high that goes with backpressure steering to
// target: the pause line (target less DefaultMargin). Nothing below the
// line is throttled; above it the kernel throttles what the controller has
// not paused yet, and a throttled process counts as growing.
func HighFor(target uint64) uint64 {
	m := DefaultMargin(target)
	if target < m {
		return target
	}
	return target - m
}

// New returns a controller for cfg.
func New(cfg Config) *Controller {
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin(cfg.Target)
	}
	if cfg.MaxPause == 0 {
		cfg.MaxPause = 30 * time.Second
	}
	if cfg.Stall == 0 {
		cfg.Stall = 250 * time.Millisecond
	}
	if cfg.HoldOff == 0 {
		cfg.HoldOff = 2 * time.Second
	}
	if cfg.LiftAfter == 0 {
		cfg.LiftAfter = time.Second
	}
	return &Controller{cfg: cfg, procs: map[int]*seen{}, paused: map[int]pause{}, holdOff: map[int]time.Time{},
		finished: map[string][]uint64{}, reasons: map[string]*Reason{}}
}

// High is the memory.high the box should have: Config.High, or
// Config.Lift while the box is stuck at the throttle; 0 when memory.high is
// not managed. The caller writes it to the box when it changes.
func (c *Controller) High() uint64 {
	if c.lifted {
		return c.liftTo
	}
	return c.cfg.High
}

// Stats returns what the controller did so far.
func (c *Controller) Stats() Stats {
	st := c.stats
	st.Learned = len(c.finished)
	st.Forced = make(map[string]int, len(c.stats.Forced))
	for k, v := range c.stats.Forced {
		st.Forced[k] = v
	}
	st.Reasons = st.Reasons[:0:0]
	for _, r := range c.reasons {
		st.Reasons = append(st.Reasons, *r)
	}
	sort.Slice(st.Reasons, func(i, j int) bool {
		if st.Reasons[i].Total != st.Reasons[j].Total {
			return st.Reasons[i].Total > st.Reasons[j].Total
		}
		return st.Reasons[i].Reason < st.Reasons[j].Reason
	})
	return st
}

// Paused lists the pids paused now, oldest pause first.
func (c *Controller) Paused() []int {
	pids := make([]int, 0, len(c.paused))
	for pid := range c.paused {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool {
		a, b := c.paused[pids[i]].at, c.paused[pids[j]].at
		if !a.Equal(b) {
			return a.Before(b)
		}
		return pids[i] < pids[j]
	})
	return pids
}

// expect is the learned peak of processes named comm: the upper quartile
// of the peaks of the leaves of that name that finished in this run, or,
// before one has, its Config.Known size. ok is false when neither exists:
// its size is unknown.
func (c *Controller) expect(comm string) (peak uint64, ok bool) {
	if q, ok := upperQuartile(c.finished[comm]); ok {
		return q, true
	}
	k, ok := c.cfg.Known[comm]
	return k, ok && k > 0
}

// typical is the largest expected peak of any command name, 0 if none.
func (c *Controller) typical() uint64 {
	var max uint64
	for comm := range c.finished {
		if q, _ := c.expect(comm); q > max {
			max = q
		}
	}
	for comm := range c.cfg.Known {
		if q, _ := c.expect(comm); q > max {
			max = q
		}
	}
	return max
}

// Size is the typical peak of the leaves of one command name at the end of
// a run.
type Size struct {
	// Peak is the upper quartile of the peaks of the leaves of the name
	// that finished in the run, or its Config.Known size.
	Peak uint64
	// Learned is true when the run learned Peak (a leaf of the name
	// finished in it), false when Peak is Config.Known's.
	Learned bool
}

// Sizes returns what the run knows of the sizes of its leaves, by command
// name, to keep for the next run (as its Config.Known): this run's typical
// peak of every name of which a leaf finished, and the known size of every
// other name of Config.Known, so that a run that ended early (a failing
// test, an interrupt) forgets nothing it was given.
func (c *Controller) Sizes() map[string]Size {
	sizes := make(map[string]Size, len(c.finished)+len(c.cfg.Known))
	for comm, peak := range c.cfg.Known {
		if peak > 0 {
			sizes[comm] = Size{Peak: peak}
		}
	}
	for comm, peaks := range c.finished {
		if q, ok := upperQuartile(peaks); ok {
			sizes[comm] = Size{Peak: q, Learned: true}
		}
	}
	return sizes
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
		acts = append(acts, c.resume(pid, now, WhyRunEnded, false))
	}
	c.stats.PausedAtEnd += len(acts)
	return acts
}

// ended accounts for the end of pid's pause at now.
func (c *Controller) ended(pid int, now time.Time) {
	p := c.paused[pid]
	delete(c.paused, pid)
	d := now.Sub(p.at)
	c.stats.PausedTotal += d
	if d > c.stats.LongestPause {
		c.stats.LongestPause, c.stats.LongestReason = d, p.why
	}
	r := c.reasons[p.why]
	if r == nil {
		r = &Reason{Reason: p.why}
		c.reasons[p.why] = r
	}
	r.Count++
	r.Total += d
	if d > r.Longest {
		r.Longest = d
	}
}

func (c *Controller) resume(pid int, now time.Time, why string, forced bool) Action {
	c.ended(pid, now)
	c.stats.Resumed++
	if forced {
		c.stats.ForcedResumes++
		if c.stats.Forced == nil {
			c.stats.Forced = map[string]int{}
		}
		c.stats.Forced[why]++
		c.holdOff[pid] = now.Add(c.cfg.HoldOff)
	}
	return Action{Kind: Resume, PID: pid, Reason: why}
}

func (c *Controller) pause(pid int, now time.Time, why string) Action {
	var grew uint64
	if s := c.procs[pid]; s != nil {
		grew = s.grew
	}
	c.paused[pid] = pause{at: now, why: why, grew: grew}
	c.stats.Paused++
	return Action{Kind: Pause, PID: pid, Reason: why}
}

// line is the pause line: the target less the room (the margin, or more
// while several processes of unknown size grow, see roomFor).
func (c *Controller) line() uint64 {
	room := max(c.room, c.cfg.Margin)
	if c.cfg.Target > room {
		return c.cfg.Target - room
	}
	return 0
}

// Line is the pause line at the last look: memory in use at or above it
// pauses every growing process but one, and the kernel may throttle there
// (the caller asks each process whether it is throttled only at the line,
// see Proc.Throttled).
func (c *Controller) Line() uint64 { return c.line() }

// roomFor is the headroom to keep free below Target at this look. It is the
// margin, unless two or more leaves of unknown size grow or wait paused:
// the one kept going then needs room to reach the size the largest of them
// has reached (the best evidence of its kind before one finishes), or it
// meets memory.max while the paused ones hold what they have. The room is
// rounded up to a thirty-second of Target, so that the line (and the
// memory.high that follows it) moves in steps, not at every look, and is at
// most half of Target. A single grower gets only the margin: nothing is
// paused to make it room, and a lower line would only throttle it.
func (c *Controller) roomFor() uint64 {
	room := c.cfg.Margin
	n := 0
	var largest uint64
	for pid, s := range c.procs {
		if !s.leaf || s.parent || pid == c.cfg.Main {
			continue
		}
		if e, ok := c.expect(s.comm); ok && !outgrew(s.peak, e) {
			continue // of a known size: the projection accounts for it
		}
		if _, paused := c.paused[pid]; !paused && s.grew < GrowthNoise && !s.throttled {
			continue
		}
		n++
		largest = max(largest, s.peak)
	}
	if n < 2 || largest <= room {
		return room
	}
	step := max(c.cfg.Target/32, 1)
	room = (largest + step - 1) / step * step
	return max(min(room, c.cfg.Target/2), c.cfg.Margin)
}

// outgrew reports whether a process that reached peak outgrew the expected
// peak e of its kind (by more than a twentieth, what resident size does not
// show): it does more than its siblings did, how much more is unknown.
func outgrew(peak, e uint64) bool { return peak > e+e/20 }

// watchProgress keeps the last time the box was seen using CPU while
// processes were paused or the box was at the line: at least a fiftieth of
// one CPU since the mark.
func (c *Controller) watchProgress(o Observation, atLine bool) {
	if (len(c.paused) == 0 && !atLine) || c.markAt.IsZero() || o.CPU < c.markCPU {
		c.markAt, c.markCPU = o.Now, o.CPU
		return
	}
	if d := o.Now.Sub(c.markAt); d > 0 && o.CPU-c.markCPU >= d/50 {
		c.markAt, c.markCPU = o.Now, o.CPU
	}
}

// stalled reports whether the box has used next to no CPU for Stall while
// processes were paused (or, with nothing paused, at all). Without CPU
// figures it never is.
func (c *Controller) stalled(o Observation) bool {
	return c.stalledFor(o, c.cfg.Stall)
}

// stalledFor is stalled for a time d.
func (c *Controller) stalledFor(o Observation, d time.Duration) bool {
	return o.CPU != 0 && o.Now.Sub(c.markAt) >= d
}

// holdsMost is the process of ps holding the most memory (the oldest of
// equals): the one furthest along, which resuming lets finish soonest.
func holdsMost(ps []Proc, procs map[int]*seen) Proc {
	best := ps[0]
	for _, p := range ps[1:] {
		if procs[p.PID].rss > procs[best.PID].rss {
			best = p
		}
	}
	return best
}

// forgetExited forgets processes that exited and learns from the leaves
// among them. It reports whether any did exit.
func (c *Controller) forgetExited(now time.Time, alive map[int]Proc) bool {
	exited := false
	for pid, s := range c.procs {
		if _, ok := alive[pid]; ok {
			continue
		}
		exited = true
		if !s.parent && pid != c.cfg.Main && s.peak > 0 {
			c.finished[s.comm] = append(c.finished[s.comm], s.peak)
		}
		delete(c.procs, pid)
		delete(c.holdOff, pid)
		if _, ok := c.paused[pid]; ok {
			// Died while paused (killed from outside): count the pause.
			c.ended(pid, now)
		}
	}
	return exited
}

// pausedProcs returns the paused processes still alive, oldest first,
// leaving out those paused in this step.
func (c *Controller) pausedProcs(alive map[int]Proc, skip map[int]bool) []Proc {
	var ps []Proc
	for pid := range c.paused {
		if p, ok := alive[pid]; ok && !skip[pid] {
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
