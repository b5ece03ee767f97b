// Package backpressure decides which processes of a box to pause and when to
// resume them, so that a test suite whose processes together want more memory
// than the box allows finishes with every test passing instead of being
// OOM-killed, and a suite that fits is never held back at all.
//
// It is pure: the caller (sandbox's backpressure observer) feeds it
// observations of the box (memory in use, CPU used, the processes with their
// start times, parents, resident sizes and what they wait for) and carries
// out the actions it returns (pause and resume). Its rules:
//
//   - Pause growth, not processes. Only a growing leaf process (one with no
//     child in the box, not the command itself) is ever paused: its memory
//     rose since the last look, or the kernel throttles it at memory.high.
//     A process whose memory is flat has done its growing: pausing it would
//     only keep its memory held longer. At native speed a process allocates
//     150M between two looks and stops; it is never paused for that.
//   - Evidence, not fractions. A process is expected to grow to the size of
//     its kind (its command name): the upper quartile of the peaks of
//     finished leaves of that name, the size an earlier run learned
//     (Config.Known), or the size of one that grew and then stayed flat.
//     A process of a kind nothing has taught is expected to grow as much
//     again as it holds (or to the largest of its name), and as much as it
//     last grew on top.
//   - One queue for the room (what is left under the pause line, less what
//     flat processes short of their known size may still add): the holders
//     of a lock others wait for, then growers already admitted, then the
//     paused (those paused 3 s or more first come, first served; the others
//     closest to their size first), then new growers. What fits goes on or
//     is resumed; a grower that does not fit is paused. The head of the
//     queue may use the half margin up to memory.high; the last running
//     leaf always goes on.
//   - Resume at once what costs nothing: a paused process that already
//     holds its kind's size.
//   - Liveness. When processes are paused and nothing unpaused makes
//     progress — every running leaf waits on a file lock or a pipe, no leaf
//     runs at all, or the box used less than a tenth of a CPU for
//     Config.Stall under its pause line — one paused process is resumed at
//     once: the holder of a lock others wait for, else the one closest to
//     its size. It is then exempt from pausing for Config.HoldOff, and no
//     other is forced while it is. No pause lasts longer than
//     Config.MaxPause, a last resort that the report names.
//   - Let the kernel brake what a look cannot see (High): memory.high sits
//     the size of the largest kind under its ceiling, never below what was
//     admitted; a first wave of unknown size is braked at half the box.
//     Above memory.high with no progress, the throttle is let go.
//   - One budget across boxes: in a limited slice shared with other boxes,
//     a box admits against its share of the slice's room.
//   - Processes stopped by job control (Ctrl-Z) mean the user suspended the
//     run: nothing is forced while any is stopped.
package backpressure

import (
	"sort"
	"time"
)

// Wait is what a process was found waiting for.
type Wait int

// What a process waits for. Lock and pipe waits can depend on another
// process of the box; a process asleep on anything else (a timer, I/O, a
// futex) is expected to wake by itself.
const (
	// Running: on a CPU or runnable, or not known to wait.
	Running Wait = iota
	// Asleep on something other than a lock or a pipe.
	Asleep
	// OnLock: blocked taking a file lock (flock, fcntl).
	OnLock
	// OnPipe: blocked reading or writing a pipe or FIFO.
	OnPipe
	// Stopped by job control or a debugger (state T or t).
	Stopped
	// Throttled: the kernel holds it at the box's memory.high (a thread
	// sleeps in mem_cgroup_handle_over_high): it is growing, a page at a
	// time.
	Throttled
)

func (w Wait) String() string {
	switch w {
	case Asleep:
		return "asleep"
	case OnLock:
		return "on a lock"
	case OnPipe:
		return "on a pipe"
	case Stopped:
		return "stopped"
	case Throttled:
		return "throttled at memory.high"
	}
	return "running"
}

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
	// Wait is what the process waits for, when the caller looked.
	Wait Wait
}

// Budget is the memory of the slice a box shares with other boxes.
type Budget struct {
	// Limit is the slice's memory limit and Usage its memory.current.
	Limit, Usage uint64
	// Boxes is how many boxes share the slice now (this one included):
	// each is admitted against its share of the room the slice has left.
	Boxes int
}

// Observation is one look at the box.
type Observation struct {
	// Now is when the observation was made.
	Now time.Time
	// Usage is the box's memory.current in bytes.
	Usage uint64
	// Procs are the processes in the box.
	Procs []Proc
	// CPU is the CPU time the box has used so far (cpu.stat usage_usec);
	// HaveCPU is false when it could not be read.
	CPU     time.Duration
	HaveCPU bool
	// Slice is the budget of the slice the box shares, nil for none: a
	// process is admitted only when both the box and the slice have room.
	Slice *Budget
	// Holders are the processes of the box holding a file lock that another
	// process waits for (/proc/locks), nil when not read.
	Holders map[int]bool
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
	// Reason says why, for the report.
	Reason string
}

// Reasons the controller gives; the report counts pauses and forced
// resumes by them.
const (
	WhyNoRoom    = "its expected growth does not fit the box"
	WhyUnknown   = "the size of its kind is unknown and the growth does not fit"
	WhyFull      = "the box is at its memory target"
	WhySliceFull = "the slice shared with other boxes is at its limit"
	WhyHolds     = "it holds its expected size"
	WhyRoom      = "room in the box"
	WhyOwed      = "an exit freed room owed to it"
	WhyLock      = "others wait for a lock it holds"
	WhyBlocked   = "every running process waits on a lock or a pipe"
	WhyNoneLeft  = "nothing else was running"
	WhyNoCPU     = "the box used no CPU"
	WhyMaxPause  = "paused for the longest allowed time"
	WhyEnd       = "run ended"
)

// Config tunes a Controller.
type Config struct {
	// Target is the memory the box should stay under: memory.high when set,
	// else memory.max.
	Target uint64
	// Margin is the headroom kept free below Target; 0 picks
	// DefaultMargin(Target).
	Margin uint64
	// MaxPause bounds any single pause; 0 picks 30 s.
	MaxPause time.Duration
	// HoldOff is how long a process resumed to keep the run going is
	// exempt from pausing; 0 picks 2 s.
	HoldOff time.Duration
	// Stall is how long the box may use no CPU while processes are paused
	// before one is resumed; 0 picks 250 ms.
	Stall time.Duration
	// Main is the command's own process, never paused.
	Main int
	// High is the box's memory.high (the kernel's brake just above the
	// pause threshold, see HighFor); 0 when the controller does not manage
	// memory.high. See Controller.High.
	High uint64
	// Known holds sizes learned by earlier runs: the typical peak of a
	// leaf process by command name.
	Known map[string]uint64
}

// Count is how often something happened and for how long.
type Count struct {
	N       int
	Total   time.Duration
	Longest time.Duration
}

// Stats is what the controller did, for the run report.
type Stats struct {
	// Paused counts pauses; Resumed counts resumes (forced ones included).
	Paused, Resumed int
	// ForcedResumes counts resumes made to keep the run going.
	ForcedResumes int
	// PausedTotal is the sum of all pause durations; LongestPause the
	// longest, and LongestWhy why that process was paused.
	PausedTotal, LongestPause time.Duration
	LongestWhy                string
	// MaxRunning is the most leaf processes (the workers: processes with no
	// child in the box, the command's own excepted) left running at once.
	MaxRunning int
	// Blocked is how long unpaused processes were seen waiting on a lock a
	// paused process held, or on a pipe while processes were paused, summed
	// over processes: time a pause may have cost someone else. Zero is the
	// goal.
	Blocked time.Duration
	// Why counts pauses by reason (with their durations), Forced the forced
	// resumes by reason.
	Why    map[string]Count
	Forced map[string]int
	// PausedAtEnd is how many processes were still paused when the run
	// ended (Finish).
	PausedAtEnd int
	// Known is how many command names had a size from an earlier run;
	// Learned how many learned one in this run.
	Known, Learned int
}

// proc is what the controller remembers of one process.
type proc struct {
	comm      string
	start     uint64
	rss       uint64 // now
	prev      uint64 // at the look before
	peak      uint64
	seen      bool // seen at an earlier look: prev is meaningful
	leaf      bool
	pausedAt  time.Time // zero when running
	why       string    // why it was paused
	holdUntil time.Time // exempt from pausing until then
	grew      time.Time // when its memory last rose
	// lastGrowth is what it grew at the last look it grew at.
	lastGrowth uint64
	// admitted is set while it grows with room the controller gave it.
	admitted bool
	// pausedGrowing is set when it was growing as it was paused.
	pausedGrowing bool
}

func (p *proc) paused() bool { return !p.pausedAt.IsZero() }

// Controller is the pause/resume state machine.
type Controller struct {
	cfg   Config
	procs map[int]*proc
	// finished holds the peaks of leaves that exited, by command name.
	finished map[string][]uint64
	stats    Stats
	// lastNow is the time of the last look; progress the last time the
	// box made progress (used a tenth of a CPU since the progress before,
	// or a process exited), and progressCPU its CPU time then.
	lastNow, progress time.Time
	progressCPU       time.Duration
	haveCPU           bool
	// brake is how far below Config.High memory.high may be held now, and
	// admitted what is in use plus what the running leaves were admitted
	// to add: memory.high never throttles below it.
	brake, admitted uint64
	// released is set while the box is above memory.high and stalled: the
	// kernel's throttle is all that holds the run, so it is let go.
	released bool
	// releaseTo is where memory.high goes while released: room for what
	// the lone grower is still expected to add, within the target.
	releaseTo uint64
	// firstWave is set until a size is known or the box first reaches half
	// the pause threshold: see High.
	firstWave bool
	// sliceCap is the most the box's memory.high may be in a shared
	// slice: its usage plus its share of the slice's room; 0 for none.
	sliceCap uint64
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
// target (memory.max): two margins below it. The controller pauses half a
// margin below that (see limit), so nothing it admitted is throttled; a
// burst that overshoots between two looks is. The gap up to memory.max is
// what makes that throttle a brake: the kernel's delay grows with the
// square of the overage above memory.high and is skipped while it is
// small, so with memory.high just under memory.max (half a margin, as
// boxrun had it) a burst of allocations in the emulated VM ran through it
// into OOM kills.
func HighFor(target uint64) uint64 {
	m := DefaultMargin(target)
	if target < 4*m {
		return target - min(target, m)/2
	}
	return target - 2*m
}

// New returns a controller for cfg.
func New(cfg Config) *Controller {
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin(cfg.Target)
	}
	if cfg.MaxPause == 0 {
		cfg.MaxPause = 30 * time.Second
	}
	if cfg.HoldOff == 0 {
		cfg.HoldOff = 2 * time.Second
	}
	if cfg.Stall == 0 {
		cfg.Stall = 250 * time.Millisecond
	}
	c := &Controller{cfg: cfg, procs: map[int]*proc{}, finished: map[string][]uint64{}, firstWave: len(cfg.Known) == 0}
	c.stats.Why, c.stats.Forced = map[string]Count{}, map[string]int{}
	c.stats.Known = len(cfg.Known)
	for _, v := range cfg.Known {
		c.brake = max(c.brake, v)
	}
	c.brake = min(c.brake, sub(cfg.Target, cfg.Margin)/2)
	return c
}

// High is the memory.high the box should have now (0 when Config.High is
// 0): growth faster than the controller can look is braked by the kernel,
// growth it admitted is not. The caller writes it to the box when it
// changes.
//
//   - Before anything is known of the box (no size learned, none shown),
//     a first wave of processes that all grow at once is throttled at half
//     the box (a margin above it, and never under what was admitted), so
//     that those the controller then holds back have taken little; it is
//     lifted at the first look that finds the box there.
//   - Then it sits the size of the largest kind below Config.High (what
//     one new process can allocate between two looks), but never below
//     what is in use plus what was admitted, and half a margin; never
//     above Config.High: the kernel's throttle brakes only well below
//     memory.max (see HighFor), and what was admitted beyond it is
//     throttled, not killed.
//   - In a slice shared with other boxes, it is at most the box's use
//     plus its share of the slice's room.
//   - While the box is above it and stalled, it is the target: the
//     throttle is released rather than freeze the run.
func (c *Controller) High() uint64 {
	h := c.cfg.High
	if h == 0 {
		return 0
	}
	if c.released {
		return max(h, c.releaseTo)
	}
	m := c.cfg.Margin
	var v uint64
	if c.firstWave {
		v = min(h, max(c.limit()/2+m, c.admitted+m/2))
	} else {
		v = min(h, max(sub(h, c.brake), c.admitted+m/2))
	}
	if c.sliceCap != 0 {
		v = min(v, c.sliceCap)
	}
	return v
}

// Progress is when the box last made progress (see Config.Stall).
func (c *Controller) Progress() time.Time { return c.progress }

// Stats returns what the controller did so far.
func (c *Controller) Stats() Stats {
	s := c.stats
	s.Why = make(map[string]Count, len(c.stats.Why))
	for k, v := range c.stats.Why {
		s.Why[k] = v
	}
	s.Forced = make(map[string]int, len(c.stats.Forced))
	for k, v := range c.stats.Forced {
		s.Forced[k] = v
	}
	s.Learned = len(c.finished)
	return s
}

// Paused lists the pids paused now, oldest pause first.
func (c *Controller) Paused() []int {
	var pids []int
	for pid, p := range c.procs {
		if p.paused() {
			pids = append(pids, pid)
		}
	}
	sort.Slice(pids, func(i, j int) bool {
		a, b := c.procs[pids[i]], c.procs[pids[j]]
		if !a.pausedAt.Equal(b.pausedAt) {
			return a.pausedAt.Before(b.pausedAt)
		}
		return pids[i] < pids[j]
	})
	return pids
}

// Sizes is what this run learned, merged over what it was given: the
// typical peak of a leaf process by command name, for the next run.
func (c *Controller) Sizes() map[string]uint64 {
	out := make(map[string]uint64, len(c.cfg.Known)+len(c.finished))
	for k, v := range c.cfg.Known {
		out[k] = v
	}
	for k, peaks := range c.finished {
		out[k], _ = upperQuartile(peaks)
	}
	return out
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
	paused := c.Paused()
	c.stats.PausedAtEnd = len(paused)
	for _, pid := range paused {
		acts = append(acts, c.resume(pid, now, WhyEnd, false))
	}
	return acts
}

// endPause closes the books on p's pause at now.
func (c *Controller) endPause(p *proc, now time.Time) {
	d := now.Sub(p.pausedAt)
	c.stats.PausedTotal += d
	if d > c.stats.LongestPause {
		c.stats.LongestPause, c.stats.LongestWhy = d, p.why
	}
	w := c.stats.Why[p.why]
	w.Total += d
	if d > w.Longest {
		w.Longest = d
	}
	c.stats.Why[p.why] = w
	p.pausedAt, p.why = time.Time{}, ""
}

func (c *Controller) resume(pid int, now time.Time, why string, forced bool) Action {
	p := c.procs[pid]
	c.endPause(p, now)
	c.stats.Resumed++
	if forced {
		c.stats.ForcedResumes++
		c.stats.Forced[why]++
		p.holdUntil = now.Add(c.cfg.HoldOff)
	}
	// It grows on with room it was given.
	p.admitted = true
	return Action{Kind: Resume, PID: pid, Reason: why}
}

func (c *Controller) pause(l *look, pid int, now time.Time, why string) Action {
	p := c.procs[pid]
	p.pausedGrowing = p.growingAt(l, l.byPID[pid])
	p.pausedAt, p.why, p.admitted = now, why, false
	c.stats.Paused++
	w := c.stats.Why[why]
	w.N++
	c.stats.Why[why] = w
	return Action{Kind: Pause, PID: pid, Reason: why}
}

// look is one observation digested: the processes by role, and what each
// is expected to add.
type look struct {
	c      *Controller
	o      Observation
	byPID  map[int]Proc
	live   map[string]uint64 // the largest live process of each name
	flat   map[string]uint64 // the largest that grew, then stayed flat
	expect map[string]uint64 // the learned size of each name, when known
	// running are the unpaused leaves (the command's own excepted), paused
	// the paused ones, both oldest first.
	running, paused []Proc
	// freed is what the leaves that exited since the last look held at
	// their peak: room that is owed first to those starving for it.
	freed uint64
}

// size is the size processes named comm are expected to reach, and
// whether it is evidence (learned, or shown by one that grew and stopped)
// rather than just the largest live one.
func (l *look) size(comm string) (uint64, bool) {
	if e, ok := l.expect[comm]; ok {
		return e, true
	}
	if f, ok := l.flat[comm]; ok {
		// One grew and stopped: its size is the evidence. One growing
		// past it is not (it may never stop): need says what it is
		// expected to add.
		return f, true
	}
	return l.live[comm], false
}

// need is what p is still expected to add. Of a kind whose size is known:
// up to that size, plus a twentieth for what resident size does not show
// (page tables, kernel memory charged to the box). Of a kind nothing has
// taught yet: up to the largest live one of its name, and at least as much
// again as it holds (a process that has grown so far may well grow as far
// again), plus what it grew at its last growing look.
func (l *look) need(p Proc) uint64 {
	e, known := l.size(p.Comm)
	st := l.c.procs[p.PID]
	if known {
		switch {
		case p.RSS < e:
			return e + e/20 - p.RSS
		case p.RSS > e+e/20 && st.growingAt(l, p):
			// It grows past its kind's size (and what a size does not
			// show): the size is wrong for it, and it is expected to go
			// on as it grew.
			return max(st.lastGrowth, e/20)
		}
		return 0
	}
	return max(sub(e, p.RSS), p.RSS) + st.lastGrowth
}

// growingAt reports whether the process grows now, or grew when it was
// paused: a paused process keeps the growth it was stopped in.
func (st *proc) growingAt(l *look, p Proc) bool {
	if st.paused() {
		return st.pausedGrowing
	}
	return l.growing(p) || p.Wait == Throttled
}

// holds reports whether p holds what its kind is known to reach and was
// not growing past it: resuming it costs nothing and lets it finish.
func (l *look) holds(p Proc) bool {
	return l.need(p) == 0
}

// growing reports whether p's memory rose since the last look. A process
// seen for the first time has shown no growth yet: at native speed it may
// well have allocated all it wants before the first look, and it is judged
// at the next one.
func (l *look) growing(p Proc) bool {
	const noise = 64 << 10
	st := l.c.procs[p.PID]
	return st.seen && p.RSS >= st.prev+noise
}

// grower reports whether p is growing, the only kind of process ever
// paused: its memory rose since the last look; or the kernel throttles it
// at memory.high (it would grow, and grows a page at a time); or it grew
// within recentGrowth and is short of its kind's known size (throttled
// between looks); or it is new, of a kind whose size is known, and holds at
// most a quarter of it (it has its growth ahead: at native speed one that
// has allocated already holds near all of it, and is left alone). A flat
// process of a kind nothing has taught is never a grower.
func (l *look) grower(p Proc) bool {
	if l.growing(p) || p.Wait == Throttled {
		return true
	}
	st := l.c.procs[p.PID]
	e, known := l.size(p.Comm)
	if !known {
		return false
	}
	if !st.seen {
		return p.RSS <= e/4
	}
	return l.grewLately(p) && p.RSS < e
}

// recentGrowth is how long a process counts as still growing after its
// memory last rose, where a slow grower matters (the kernel throttles a box
// above memory.high to a page every few looks).
const recentGrowth = 200 * time.Millisecond

// starving is how long a paused process may be overtaken by younger ones
// whose growth fits before it: from then on the room it needs is kept for
// it, first paused first.
const starving = 3 * time.Second

// flatAfter is how long a process that grew must stay flat for its size to
// count as its kind's: long enough that a process growing in steps (or
// throttled by the kernel) is not taken for done.
const flatAfter = 250 * time.Millisecond

// grewLately reports whether p's memory rose within recentGrowth.
func (l *look) grewLately(p Proc) bool {
	st := l.c.procs[p.PID]
	return !st.grew.IsZero() && l.o.Now.Sub(st.grew) < recentGrowth
}

// growers counts the running leaves that grow.
func (l *look) growers() int {
	n := 0
	for _, p := range l.running {
		if l.grower(p) {
			n++
		}
	}
	return n
}

// claims is the room kept for the running leaves that are not growing but
// have not reached their kind's known size: they may grow again (a test
// that allocates in steps, one waiting for a lock to grow under it). Those
// waiting on a lock count only the largest: a lock lets them grow one at a
// time.
func (l *look) claims() uint64 {
	var sum, lockMax uint64
	for _, p := range l.running {
		if l.grower(p) {
			continue
		}
		if _, known := l.size(p.Comm); !known {
			continue
		}
		n := l.need(p)
		if p.Wait == OnLock {
			lockMax = max(lockMax, n)
			continue
		}
		sum += n
	}
	return sum + lockMax
}

// queue is the order in which growing and paused leaves get the box's room:
// the holders of a lock others wait for; then the growers that were
// already admitted (growing at the look before, resumed, or in the
// hold-off after a forced resume), oldest first; then the paused, those
// paused starving or longer first by the age of their pause, the others
// closest to their size first; then the growers new to growing, oldest
// first.
func (l *look) queue() []Proc {
	var holders, going, fresh []Proc
	for _, p := range l.running {
		if !l.grower(p) {
			continue
		}
		st := l.c.procs[p.PID]
		switch {
		case l.o.Holders[p.PID]:
			holders = append(holders, p)
		case st.admitted || l.o.Now.Before(st.holdUntil):
			going = append(going, p)
		default:
			fresh = append(fresh, p)
		}
	}
	paused := append([]Proc(nil), l.paused...)
	sort.SliceStable(paused, func(i, j int) bool {
		a, b := l.c.procs[paused[i].PID], l.c.procs[paused[j].PID]
		sa, sb := l.o.Now.Sub(a.pausedAt) >= starving, l.o.Now.Sub(b.pausedAt) >= starving
		switch {
		case sa != sb:
			return sa
		case sa:
			return a.pausedAt.Before(b.pausedAt)
		}
		return l.need(paused[i]) < l.need(paused[j])
	})
	q := append(holders, going...)
	q = append(q, paused...)
	return append(q, fresh...)
}

// Step takes one observation and returns what to do now.
func (c *Controller) Step(o Observation) []Action {
	l := c.digest(o)
	l.split()
	c.countBlocked(l)
	var acts []Action

	// Pauses that lasted too long end, oldest first: the last resort.
	for _, pid := range c.Paused() {
		if o.Now.Sub(c.procs[pid].pausedAt) >= c.cfg.MaxPause {
			acts = append(acts, c.resume(pid, o.Now, WhyMaxPause, true))
		}
	}
	l.split()

	room, full := c.room(o)
	claimed := l.claims()
	acts, admitted := c.admit(l, acts, room-int64(claimed), full)
	l.split()

	// Liveness: nothing unpaused makes progress, so resume one (never one
	// paused in this very look: the room it was paused for is still gone).
	if len(l.paused) > 0 && !c.holding(o.Now) {
		if why, pid, ok := l.stalled(); ok {
			if o.Holders[pid] {
				why = WhyLock
			}
			acts = append(acts, c.resume(pid, o.Now, why, true))
			l.split()
		}
	}
	c.brakeFor(l, claimed+admitted)

	c.lastNow = o.Now
	if len(l.running) > c.stats.MaxRunning {
		c.stats.MaxRunning = len(l.running)
	}
	for _, p := range l.running {
		if !l.grower(p) {
			c.procs[p.PID].admitted = false
		}
	}
	for _, p := range o.Procs {
		c.procs[p.PID].prev = p.RSS
	}
	return acts
}

// room is what is left under the pause line, and the reason to give a
// pause for lack of it; in a slice shared with other boxes, no more than
// this box's share of what the slice has left (which also caps High).
func (c *Controller) room(o Observation) (int64, string) {
	room := int64(c.limit()) - int64(o.Usage)
	full := WhyFull
	c.sliceCap = 0
	if s := o.Slice; s != nil && s.Limit > 0 {
		free := int64(sub(s.Limit, DefaultMargin(s.Limit))) - int64(s.Usage)
		share := free / int64(max(s.Boxes, 1))
		if share < room {
			room, full = share, WhySliceFull
		}
		c.sliceCap = o.Usage + uint64(max(share, 0))
	}
	return room, full
}

// admit gives the room to the queue (see queue) and returns the actions
// with its pauses and resumes, and what the processes let through are
// expected to add. What fits goes on (a paused process that fits is
// resumed); the head of the queue goes on while the box is under
// memory.high, where the kernel brakes it; lock holders and a process in
// its hold-off go on whatever the room. A growing process that does not
// fit is paused, and a paused one starving for its room keeps it: those
// behind it wait. The last running leaf always goes on.
func (c *Controller) admit(l *look, acts []Action, room int64, full string) ([]Action, uint64) {
	now := l.o.Now
	slack := int64(c.cfg.Margin / 2)
	var admitted uint64
	var stop []Proc
	for i, p := range l.queue() {
		st := c.procs[p.PID]
		n := l.need(p)
		fits := int64(n) <= room
		if st.paused() {
			switch {
			case l.holds(p):
				acts = append(acts, c.resume(p.PID, now, WhyHolds, false))
			case fits:
				acts = append(acts, c.resume(p.PID, now, WhyRoom, false))
				room -= int64(n)
				admitted += n
			case now.Sub(st.pausedAt) >= starving && n <= l.freed:
				// The box is still full, but what just exited freed
				// room, and it is owed to those paused longest, before
				// a new process takes it: else a box full of paused
				// processes runs one new process at a time for ever.
				acts = append(acts, c.resume(p.PID, now, WhyOwed, false))
				l.freed -= n
				room -= int64(n)
				admitted += n
			case now.Sub(st.pausedAt) >= starving:
				room -= int64(n)
			}
			continue
		}
		if fits || i == 0 && room > -slack || l.o.Holders[p.PID] || now.Before(st.holdUntil) {
			st.admitted = true
			room -= int64(n)
			admitted += n
			continue
		}
		stop = append(stop, p)
	}
	if len(stop) > 0 && len(stop) == len(l.running) {
		c.procs[stop[0].PID].admitted = true
		admitted += l.need(stop[0])
		stop = stop[1:]
	}
	for _, p := range stop {
		why := WhyNoRoom
		_, known := l.size(p.Comm)
		switch {
		case room <= 0 && (full == WhySliceFull || l.o.Usage >= c.limit()):
			why = full
		case !known:
			why = WhyUnknown
		}
		acts = append(acts, c.pause(l, p.PID, now, why))
	}
	return acts, admitted
}

// brakeFor sets what High needs after a look: the brake (the largest
// kind), what was admitted (in use, up to the pause line, plus what the
// processes let through may add), whether the first wave is over, and
// whether the throttle is released: above memory.high with no progress for
// the stall time, the running processes are throttled by the kernel and
// the paused ones hold what they took, so nothing would ever finish. Once
// every grower but one is paused, the throttle is let go by what that one
// is still expected to add (up to a margin under memory.max, so that the
// throttle still brakes what grows next) and taken back once the box is under the pause line. Let go for
// many at once, or all the way to memory.max, it would run whatever grows
// next into memory.max.
func (c *Controller) brakeFor(l *look, admitted uint64) {
	limit, usage := c.limit(), l.o.Usage
	c.brake = l.brake(limit)
	c.admitted = min(usage, limit) + admitted
	if usage >= limit/2 || len(l.expect) > 0 || len(l.flat) > 0 {
		c.firstWave = false
	}
	switch {
	case usage >= HighFor(c.cfg.Target) && l.o.Now.Sub(c.progress) >= c.cfg.Stall && l.growers() <= 1:
		// Room for what the lone grower is still expected to add, and
		// no more: a process that starts to grow meanwhile meets the
		// throttle again, and is paused at the next look.
		c.released = true
		var need uint64
		for _, p := range l.running {
			if l.grower(p) {
				need = l.need(p)
			}
		}
		c.releaseTo = min(sub(c.cfg.Target, DefaultMargin(c.cfg.Target)), usage+need+c.cfg.Margin/2)
	case usage < limit:
		c.released = false
	}
}

// countBlocked adds the time since the last look to Stats.Blocked for each
// running leaf that may have waited on a paused process: on a lock a paused
// process holds, or on a pipe (whose other end is not known).
func (c *Controller) countBlocked(l *look) {
	dt := l.o.Now.Sub(c.lastNow)
	if len(l.paused) == 0 || c.lastNow.IsZero() || dt <= 0 {
		return
	}
	heldByPaused := false
	for _, p := range l.paused {
		heldByPaused = heldByPaused || l.o.Holders[p.PID]
	}
	for _, p := range l.running {
		if p.Wait == OnLock && heldByPaused || p.Wait == OnPipe {
			c.stats.Blocked += dt
		}
	}
}

// holding reports whether a process resumed to keep the run going is still
// in its hold-off: one forced resume at a time.
func (c *Controller) holding(now time.Time) bool {
	for _, p := range c.procs {
		if now.Before(p.holdUntil) {
			return true
		}
	}
	return false
}

// digest records the observation: new processes, peaks, exits (whose peaks
// teach the size of their kind) and the box's CPU progress.
func (c *Controller) digest(o Observation) *look {
	l := &look{c: c, o: o, byPID: make(map[int]Proc, len(o.Procs)), live: map[string]uint64{}, flat: map[string]uint64{}, expect: map[string]uint64{}}
	hasChild := map[int]bool{}
	for _, p := range o.Procs {
		l.byPID[p.PID] = p
		hasChild[p.PPID] = true
	}
	exited := false
	for pid, st := range c.procs {
		if p, ok := l.byPID[pid]; ok && p.Start == st.start {
			continue
		}
		// Gone, or its pid reused by a new process.
		exited = true
		// A leaf's peak teaches the size of its kind, unless it died
		// paused (killed from outside: its peak says nothing).
		if st.leaf && !st.paused() && st.peak > 0 {
			c.finished[st.comm] = append(c.finished[st.comm], st.peak)
			l.freed += st.peak
		}
		if st.paused() {
			// Died while paused (killed from outside): count the pause.
			c.endPause(st, o.Now)
		}
		delete(c.procs, pid)
	}
	for _, p := range o.Procs {
		st := c.procs[p.PID]
		if st == nil {
			st = &proc{comm: p.Comm, start: p.Start}
			c.procs[p.PID] = st
		} else {
			st.seen = true
		}
		if st.seen && p.RSS > st.prev {
			st.grew, st.lastGrowth = o.Now, p.RSS-st.prev
		}
		st.rss, st.comm = p.RSS, p.Comm
		st.peak = max(st.peak, p.RSS)
		st.leaf = !hasChild[p.PID] && p.PID != c.cfg.Main
		if st.leaf {
			l.live[p.Comm] = max(l.live[p.Comm], p.RSS)
			if !st.grew.IsZero() && !st.paused() && o.Now.Sub(st.grew) >= flatAfter {
				l.flat[p.Comm] = max(l.flat[p.Comm], p.RSS)
			}
		}
	}
	for comm, peaks := range c.finished {
		l.expect[comm], _ = upperQuartile(peaks)
	}
	for comm, v := range c.cfg.Known {
		if _, ok := l.expect[comm]; !ok {
			l.expect[comm] = v
		}
	}
	// Progress: a process ended, or the box used a tenth of a CPU since
	// the last progress. A trickle (a process throttled at memory.high, a
	// shell's wait) is not progress: the run would never end at its pace.
	if c.progress.IsZero() || exited {
		c.progress = o.Now
		c.progressCPU = o.CPU
	}
	if o.HaveCPU {
		if !c.haveCPU {
			c.progressCPU = o.CPU
		}
		if used := o.CPU - c.progressCPU; used > 0 && used >= o.Now.Sub(c.progress)/10 {
			c.progress, c.progressCPU = o.Now, o.CPU
		}
		c.haveCPU = true
	}
	return l
}

// split sorts the box's leaves into running and paused, oldest first.
func (l *look) split() {
	l.running, l.paused = l.running[:0], l.paused[:0]
	for _, p := range l.o.Procs {
		st := l.c.procs[p.PID]
		if st == nil || !st.leaf {
			continue
		}
		if st.paused() {
			l.paused = append(l.paused, p)
		} else {
			l.running = append(l.running, p)
		}
	}
	sort.Slice(l.running, func(i, j int) bool { return older(l.running[i], l.running[j]) })
	sort.Slice(l.paused, func(i, j int) bool { return older(l.paused[i], l.paused[j]) })
}

// brake is how far below Config.High the kernel should throttle: by the
// size of the largest kind in the box (before any is seen, the largest
// size an earlier run learned), which a new process may allocate between
// two looks; at most half of limit.
func (l *look) brake(limit uint64) uint64 {
	var r uint64
	for comm := range l.live {
		e, _ := l.size(comm)
		r = max(r, e)
	}
	if len(l.live) == 0 {
		for _, v := range l.c.cfg.Known {
			r = max(r, v)
		}
	}
	return min(r, limit/2)
}

// stalled reports whether nothing unpaused makes progress, why, and which
// paused process to resume. A box with a process stopped by job control is
// suspended, not stalled.
func (l *look) stalled() (string, int, bool) {
	for _, p := range l.o.Procs {
		if p.Wait == Stopped && !l.c.procs[p.PID].paused() {
			return "", 0, false
		}
	}
	pid := l.unblocker()
	if pid == 0 {
		return "", 0, false
	}
	blocked, throttled := 0, 0
	for _, p := range l.running {
		switch p.Wait {
		case OnLock, OnPipe:
			blocked++
		case Throttled:
			throttled++
		}
	}
	switch {
	case len(l.running) == 0:
		return WhyNoneLeft, pid, true
	case blocked == len(l.running):
		return WhyBlocked, pid, true
	case l.o.Now.Sub(l.c.progress) >= l.c.cfg.Stall && l.o.Usage < l.c.limit() && throttled == 0:
		// Only under the pause line, with nothing throttled: in a full
		// box, processes the kernel throttles at memory.high make no
		// progress either, and resuming one more would push the box to
		// memory.max (High lets that throttle go instead).
		return WhyNoCPU, pid, true
	}
	return "", 0, false
}

// limit is where the controller pauses: half a margin under the
// memory.high that goes with Target (HighFor).
func (c *Controller) limit() uint64 { return sub(HighFor(c.cfg.Target), c.cfg.Margin/2) }

// unblocker picks the paused process to resume when the run is stalled: a
// holder of a lock others wait for, else the one with the least left to add
// (closest to finishing), the one holding the most on a tie, the oldest on
// a tie again; never one paused in this very look. 0 for none.
func (l *look) unblocker() int {
	var best *Proc
	for i, p := range l.paused {
		if l.c.procs[p.PID].pausedAt.Equal(l.o.Now) {
			continue
		}
		if l.o.Holders[p.PID] {
			return p.PID
		}
		if best == nil {
			best = &l.paused[i]
			continue
		}
		nb, np := l.need(*best), l.need(p)
		if np < nb || np == nb && p.RSS > best.RSS {
			best = &l.paused[i]
		}
	}
	if best == nil {
		return 0
	}
	return best.PID
}

// sub is a-b, or 0 when b is larger.
func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// older orders processes oldest first (by start time, then pid).
func older(a, b Proc) bool {
	if a.Start != b.Start {
		return a.Start < b.Start
	}
	return a.PID < b.PID
}
