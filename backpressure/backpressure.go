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
//   - Pause growth, not processes. Only a leaf process (one with no child in
//     the box, not the command itself) whose memory rose since the last look
//     is ever paused, and only when the box cannot take what the running
//     leaves are still expected to add. A process whose memory is flat has
//     done its growing: pausing it would only keep its memory held longer.
//   - Evidence, not fractions. A process is expected to grow to the size of
//     its kind (its command name): the upper quartile of the peaks of
//     finished leaves of that name, or the size an earlier run learned
//     (Config.Known). Until then the largest live process of the name is the
//     evidence: the others are expected to reach it, and the largest one is
//     expected to add nothing. Nothing is projected from a growth rate: at
//     native speed a process allocates 150M between two looks and stops, and
//     pausing it for a growth it has finished is exactly the freeze this
//     package exists to avoid. Growth faster than the controller can look is
//     the kernel's to brake: memory.high sits just above the point where the
//     controller pauses (HighFor), and throttles without killing.
//   - Keep room for one more. While a kind has no learned size, admission
//     keeps free the size of its largest process, so that the one process
//     the others wait for (the holder of a lock, else the oldest growing
//     leaf) can still grow; it alone may use that reserve.
//   - Brake what a look cannot see, never what was admitted. memory.high
//     (High) is held below the box's by the size of the largest kind,
//     which a new process can allocate between two looks, but never below
//     what is in use plus what the running leaves were admitted to add
//     (and half a margin); it is lifted while the one process allowed the
//     reserve is the only one growing. A first burst that overfills the
//     box before anything is known is braked only at memory.high; sizes
//     learned by an earlier run (Config.Known) brake it from the start.
//   - Resume at once what costs nothing: a paused process that already holds
//     its expected size. Resume the others oldest first, as soon as what
//     they are expected to add fits.
//   - Liveness. When processes are paused and nothing unpaused makes
//     progress — every running leaf waits on a file lock or a pipe, no leaf
//     runs at all, or the box used no CPU for Config.Stall — one paused
//     process is resumed at once: the holder of a lock others wait for, else
//     the one closest to its expected size. It is then exempt from pausing
//     for Config.HoldOff, and no other is forced while it is. No pause
//     lasts longer than Config.MaxPause, a last resort that the report
//     names.
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
	growth    uint64    // its growth in the look before the pause
	holdUntil time.Time // exempt from pausing until then
	grew      time.Time // when its memory last rose
}

func (p *proc) paused() bool { return !p.pausedAt.IsZero() }

// Controller is the pause/resume state machine.
type Controller struct {
	cfg   Config
	procs map[int]*proc
	// finished holds the peaks of leaves that exited, by command name.
	finished map[string][]uint64
	stats    Stats
	// lastNow, lastCPU and progress track the box's CPU: progress is the
	// last time it used any, or a process exited.
	lastNow, progress time.Time
	lastCPU           time.Duration
	haveCPU           bool
	// brake is how far below Config.High memory.high may be held now, and
	// admitted what is in use plus what the running leaves were admitted
	// to add: memory.high never throttles below it.
	brake, admitted uint64
	// released is set while the box is above memory.high and stalled: the
	// kernel's throttle is all that holds the run, so it is let go.
	released bool
	// firstWave is set until a size is known or the box first reaches half
	// the pause threshold: see High.
	firstWave bool
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
// 0): growth faster than the controller can look is braked by the kernel.
// While the box is above it and stalled, it is memory.max: the throttle
// is released rather than freeze the run.
// memory.high sits the size of the largest kind below Config.High, but
// never below what is in use plus what the running leaves were admitted to
// add and half a margin, so the kernel throttles only growth nobody
// admitted (a burst of new processes between two looks); it rises to
// Config.High while the one process allowed the reserve is the only one
// growing. Before anything is known of the box (no leaf seen and no size
// from an earlier run) there is no brake: the box runs freely up to
// Config.High. The caller writes it to the box when it changes.
func (c *Controller) High() uint64 {
	h := c.cfg.High
	if h != 0 && c.released {
		return max(h, c.cfg.Target)
	}
	if h != 0 && c.firstWave {
		// Nothing is known yet: a first wave of processes that all grow
		// at once is throttled by the kernel at half the box (a margin
		// above), so that those the controller then holds back have
		// taken little; lifted at the first look that finds the box there
		// or any size known. Processes already allocated are not braked.
		return min(h, c.limit()/2+c.cfg.Margin)
	}
	if h == 0 || c.brake == 0 {
		return h
	}
	floor := max(h-min(c.brake, h/2), c.admitted+c.cfg.Margin/2)
	return min(h, floor)
}

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
	return Action{Kind: Resume, PID: pid, Reason: why}
}

func (c *Controller) pause(pid int, now time.Time, why string) Action {
	p := c.procs[pid]
	p.pausedAt, p.why = now, why
	if p.rss > p.prev {
		p.growth = p.rss - p.prev
	}
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
}

// size is the size processes named comm are expected to reach, and
// whether it was learned (rather than the largest live one).
func (l *look) size(comm string) (uint64, bool) {
	if e, ok := l.expect[comm]; ok {
		return e, true
	}
	if f, ok := l.flat[comm]; ok {
		// One grew and stopped: its size is the evidence, unless a live
		// one has grown past it since.
		return max(f, l.live[comm]), true
	}
	return l.live[comm], false
}

// need is what p is still expected to add: up to the size of its kind, plus
// a twentieth of a learned size for what resident size does not show (page
// tables, kernel memory charged to the box). A paused process that is the
// largest of a kind nothing has taught a size yet is expected to go on as
// it grew in the look before its pause.
func (l *look) need(p Proc) uint64 {
	e, known := l.size(p.Comm)
	if known && p.RSS < e {
		// A twentieth more for what is charged but not resident; a
		// process at its kind's size has that charged already.
		e += e / 20
	}
	var n uint64
	if e > p.RSS {
		n = e - p.RSS
	}
	if st := l.c.procs[p.PID]; !known && st.paused() && st.growth > n {
		n = st.growth
	}
	return n
}

// growthFor is how much the running leaves of kinds of unknown size grew
// since the last look, and how much they hold.
func (l *look) growthFor() (grew, hold uint64) {
	for _, p := range l.running {
		if _, known := l.size(p.Comm); !known && l.growing(p) {
			grew += p.RSS - l.c.procs[p.PID].prev
			hold += p.RSS
		}
	}
	return grew, hold
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

// mayGrow reports whether p may be paused as a grower: its memory rose
// since the last look; or it is new and short of the size of its kind (a
// learned size, or in a full box the largest live one's): a process born
// between two looks has not shown its growth yet, but its kind has. In a
// full box a process that grew within recentGrowth counts too: the kernel
// may have throttled it at memory.high since, so that it grew nothing in
// the last look, and it grows on as soon as the throttle lets go.
func (l *look) mayGrow(p Proc, full bool) bool {
	if l.growing(p) {
		return true
	}
	st := l.c.procs[p.PID]
	_, known := l.size(p.Comm)
	if !st.seen && (known || full) && l.need(p) > 0 {
		return true
	}
	return full && l.grewLately(p)
}

// recentGrowth is how long a process counts as still growing after its
// memory last rose, where a slow grower matters (the kernel throttles a box
// above memory.high to a page every few looks): the choice of the process
// allowed the reserve, and lifting the kernel's brake for it.
const recentGrowth = 200 * time.Millisecond

// starving is how long a paused process may be overtaken by younger ones
// whose growth fits before it: from then on it is resumed first.
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

// committed is what the running leaves are expected to add: all of it for
// those not waiting on a lock, and the largest for those that are (a lock
// lets them grow one at a time).
func (l *look) committed(skip int) uint64 {
	var sum, lockMax uint64
	for _, p := range l.running {
		if p.PID == skip {
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

	limit := c.limit()
	room := int64(limit) - int64(o.Usage)
	full := WhyFull
	if o.Slice != nil && o.Slice.Limit > 0 {
		sliceLimit := sub(o.Slice.Limit, DefaultMargin(o.Slice.Limit))
		if r := int64(sliceLimit) - int64(o.Slice.Usage); r < room {
			room, full = r, WhySliceFull
		}
	}
	reserve := int64(l.reserve(limit))
	prio := l.priority()

	// Admission: pause growing leaves, newest first, while what the
	// running ones are expected to add does not fit; the one allowed the
	// reserve goes on. When the box is at its target, every growing leaf
	// is paused but a holder of a lock others wait for: the kernel
	// throttles that one at memory.high, and pausing it would stall them
	// all.
	committed := int64(l.committed(0))
	left := len(l.running)
	// A process paused for starving or longer has the room it needs kept
	// for it: new processes wait behind it instead of taking that room as
	// it frees, one look ahead of the resume below.
	var owed int64
	for _, p := range l.paused {
		if o.Now.Sub(c.procs[p.PID].pausedAt) >= starving {
			owed = int64(l.need(p))
			break
		}
	}
	// learning names, for each kind of unknown size, the one process that
	// grows on to show its size while the others wait, small: when what the
	// running leaves are expected to add does not fit, when their growth
	// would fill the room left within four looks at the pace of the last
	// one, or when the growing processes of unknown size would not fit
	// growing as much again as they have (a wave of equal processes that
	// all grow halfway and then wait holds the box hostage).
	learning := map[string]int{}
	g, h := l.growthFor()
	if free := room - reserve - committed; room > 0 && (free < 0 || 4*int64(g) > free || int64(h) > free) {
		for _, p := range l.running {
			if _, known := l.size(p.Comm); !known && l.growing(p) && learning[p.Comm] == 0 {
				learning[p.Comm] = p.PID
			}
		}
	}
	for i := len(l.running) - 1; i >= 0; i-- {
		p := l.running[i]
		if !l.mayGrow(p, room <= 0) || o.Now.Before(c.procs[p.PID].holdUntil) || left == 1 {
			// The last running leaf goes on: pausing it would only stall
			// the run.
			continue
		}
		_, known := l.size(p.Comm)
		switch {
		case room <= 0 && !o.Holders[p.PID]:
			acts = append(acts, c.pause(p.PID, o.Now, full))
		case room > 0 && p.PID != prio && committed+owed > room-reserve && l.need(p) > 0:
			acts = append(acts, c.pause(p.PID, o.Now, WhyNoRoom))
		case room > 0 && !known && learning[p.Comm] != p.PID && learning[p.Comm] != 0:
			// Its kind's growth does not fit and nothing has shown its
			// size: the oldest grows on alone until it does, and the
			// others wait while they are small.
			acts = append(acts, c.pause(p.PID, o.Now, WhyUnknown))
		default:
			continue
		}
		committed -= int64(l.need(p))
		left--
	}
	l.split()

	// Resume oldest first: at once what holds its expected size, the rest
	// as soon as their expected growth fits.
	waiting := false // an older paused process has waited too long for room
	for _, p := range l.paused {
		n := int64(l.need(p))
		_, known := l.size(p.Comm)
		switch {
		case c.procs[p.PID].pausedAt.Equal(o.Now):
			// Paused in this very look.
		case !known && learning[p.Comm] != 0:
			// Its kind is showing its size: wait for it.
		case n == 0:
			acts = append(acts, c.resume(p.PID, o.Now, WhyHolds, false))
		case !waiting && room > 0 && committed+n <= room-reserve:
			acts = append(acts, c.resume(p.PID, o.Now, WhyRoom, false))
			committed += n
		default:
			// A younger one that fits may overtake it, unless it has
			// waited starving already: then first come, first resumed,
			// or a large one could wait for ever.
			waiting = waiting || o.Now.Sub(c.procs[p.PID].pausedAt) >= starving
		}
	}
	l.split()

	// Liveness: nothing unpaused makes progress, so resume one.
	if len(l.paused) > 0 && !c.holding(o.Now) {
		if why, ok := l.stalled(); ok {
			pid := l.unblocker()
			if o.Holders[pid] {
				why = WhyLock
			}
			acts = append(acts, c.resume(pid, o.Now, why, true))
			l.split()
		}
	}

	// The kernel's brake: at the admission line, above what was admitted,
	// and lifted while the one process allowed the reserve grows alone.
	c.brake = l.brake(limit)
	c.admitted = o.Usage + l.committed(0)
	if o.Usage >= limit/2 || len(l.expect) > 0 || len(l.flat) > 0 {
		c.firstWave = false
	}
	// Above memory.high with no CPU used for the stall time, the running
	// processes are throttled by the kernel and the paused ones hold what
	// they took: nothing would ever finish. Let the throttle go (memory.max
	// is the limit then, and an OOM kill there the last resort); take it
	// back once the box is under the pause threshold again.
	switch {
	case o.Usage >= HighFor(c.cfg.Target) && o.Now.Sub(c.progress) >= c.cfg.Stall:
		c.released = true
	case o.Usage < limit:
		c.released = false
	}
	if prio != 0 && !c.procs[prio].paused() {
		alone := true
		for _, p := range l.running {
			if p.PID != prio && l.grewLately(p) {
				alone = false
			}
		}
		if alone && l.grewLately(l.byPID[prio]) {
			c.brake = 0
		}
	}
	c.lastNow = o.Now
	if len(l.running) > c.stats.MaxRunning {
		c.stats.MaxRunning = len(l.running)
	}
	for _, p := range o.Procs {
		c.procs[p.PID].prev = p.RSS
	}
	return acts
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
			st.grew = o.Now
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
	// Progress: the box used CPU since the last look, or a process ended.
	if c.progress.IsZero() || exited {
		c.progress = o.Now
	}
	if o.HaveCPU {
		if c.haveCPU && o.CPU > c.lastCPU {
			c.progress = o.Now
		}
		c.lastCPU, c.haveCPU = o.CPU, true
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

// reserve is the room admission keeps free for the one process the others
// may wait for, whose growth nothing has taught yet: the largest live
// process of a kind with no learned size, at most half of limit. Learned
// sizes are in what the running leaves are expected to add already.
func (l *look) reserve(limit uint64) uint64 {
	var r uint64
	for comm, v := range l.live {
		if _, known := l.size(comm); !known {
			r = max(r, v)
		}
	}
	return min(r, limit/2)
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

// priority is the running leaf that may use the reserve: a holder of a lock
// others wait for, else the oldest growing leaf; 0 for none.
func (l *look) priority() int {
	for _, p := range l.running {
		if l.o.Holders[p.PID] {
			return p.PID
		}
	}
	for _, p := range l.running {
		if l.grewLately(p) {
			return p.PID
		}
	}
	return 0
}

// stalled reports whether nothing unpaused makes progress, and why. A box
// with a process stopped by job control is suspended, not stalled.
func (l *look) stalled() (string, bool) {
	blocked := 0
	for _, p := range l.o.Procs {
		if p.Wait == Stopped && !l.c.procs[p.PID].paused() {
			return "", false
		}
	}
	for _, p := range l.running {
		if p.Wait == OnLock || p.Wait == OnPipe {
			blocked++
		}
	}
	switch {
	case len(l.running) == 0:
		return WhyNoneLeft, true
	case blocked == len(l.running):
		return WhyBlocked, true
	case l.o.Now.Sub(l.c.progress) >= l.c.cfg.Stall && l.o.Usage+l.need(l.byPID[l.unblocker()]) <= HighFor(l.c.cfg.Target):
		// Only when the one to resume fits under memory.high: in a full
		// box, processes the kernel throttles there use no CPU either,
		// and resuming one more would push the box to memory.max.
		return WhyNoCPU, true
	}
	return "", false
}

// limit is where the controller pauses: half a margin under the
// memory.high that goes with Target (HighFor).
func (c *Controller) limit() uint64 { return sub(HighFor(c.cfg.Target), c.cfg.Margin/2) }

// unblocker picks the paused process to resume when the run is stalled: a
// holder of a lock others wait for, else the one with the least left to add
// (closest to finishing), the one holding the most on a tie, the oldest on
// a tie again.
func (l *look) unblocker() int {
	for _, p := range l.paused {
		if l.o.Holders[p.PID] {
			return p.PID
		}
	}
	best := l.paused[0]
	for _, p := range l.paused[1:] {
		nb, np := l.need(best), l.need(p)
		if np < nb || np == nb && p.RSS > best.RSS {
			best = p
		}
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
