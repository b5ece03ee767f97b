package backpressure

import (
	"sort"
	"time"
)

// look is one Step in progress: the observation, what the controller makes
// of it and the actions decided so far. Its phases run in Step's order;
// each reads what the ones before it left.
type look struct {
	c *Controller
	o Observation
	// alive are the observed processes by pid.
	alive map[int]Proc
	// limit is the pause line at this look, atLine whether the box is at
	// or over it, noise the growth that counts as growing at this look.
	limit  uint64
	atLine bool
	noise  uint64
	// peaks memoizes Controller.expect by command name.
	peaks map[string]peakOf
	// largest is, by command name, the most a live process of that name
	// holds: before any has finished, the best evidence of how far its
	// siblings will grow.
	largest map[string]uint64
	// running are the unpaused leaves, the command's own excepted, oldest
	// first; waiting the paused ones still waiting after resumeWhatFits.
	running, waiting []Proc
	// projected is the memory in use plus what the running leaves are
	// expected to add.
	projected uint64
	// pausedNow holds the processes paused at this look.
	pausedNow map[int]bool
	acts      []Action
}

// peakOf is a command name's expected peak, and whether it has one.
type peakOf struct {
	v  uint64
	ok bool
}

// Step takes one observation and returns what to do now.
func (c *Controller) Step(o Observation) []Action {
	l := c.observe(o)
	l.runningLeaves()
	l.endLongPauses()
	l.pauseGrowth()
	l.resumeWhatFits()
	l.liftIfStuck()
	l.keepGoing()
	if len(l.running) > c.stats.MaxRunning {
		c.stats.MaxRunning = len(l.running)
	}
	return l.acts
}

// observe takes in what the observation shows: which processes exited
// (learning from them), how every live one grew and whether it is a leaf,
// the room kept below the target, when memory was last freed and whether
// the box makes progress.
func (c *Controller) observe(o Observation) *look {
	alive := make(map[int]Proc, len(o.Procs))
	hasChild := map[int]bool{}
	for _, p := range o.Procs {
		alive[p.PID] = p
		hasChild[p.PPID] = true
	}
	exited := c.forgetExited(o.Now, alive)
	c.countBlocked(o)
	for _, p := range o.Procs {
		s := c.procs[p.PID]
		if s == nil {
			// First sight: no growth shown yet.
			s = &seen{rss: p.RSS, fresh: true}
			c.procs[p.PID] = s
		} else {
			s.fresh = false
		}
		s.grew = 0
		if p.RSS > s.rss {
			s.grew = p.RSS - s.rss
		}
		s.rss = p.RSS
		if p.RSS > s.peak {
			s.peak = p.RSS
		}
		s.leaf = !hasChild[p.PID]
		s.parent = s.parent || !s.leaf
		s.comm = p.Comm
		s.throttled = p.Throttled
		s.awaited, s.blocked = p.Awaited, p.Blocked
	}
	c.room = c.roomFor()
	if exited || o.Usage < c.line() || c.freedAt.IsZero() {
		c.freedAt = o.Now
	}
	c.stats.Typical = c.typical()
	c.watchProgress(o, o.Usage >= c.line())

	l := &look{c: c, o: o, alive: alive, limit: c.line(), peaks: map[string]peakOf{}, largest: map[string]uint64{}, pausedNow: map[int]bool{}}
	// At the line, any rise of SlowGrowth counts, and so does a process
	// the kernel throttles at memory.high however little it moved: the
	// throttle slows an allocator to a crawl (a sleep of up to 2 s per
	// return to user space), and crawling processes that nothing pauses
	// creep on to memory.max together.
	l.atLine = o.Usage >= l.limit
	l.noise = GrowthNoise
	if l.atLine {
		l.noise = SlowGrowth
	}
	for _, p := range o.Procs {
		l.largest[p.Comm] = max(l.largest[p.Comm], c.procs[p.PID].peak)
	}
	if c.lifted && !l.atLine && (exited || len(c.paused) == 0) {
		// Something was killed or finished, or nothing waits any more:
		// the throttle goes back. Memory falling below the line alone
		// does not bring it back: the kernel reclaims page cache under
		// the lifted throttle too, and the processes still crawling to
		// their end would be throttled again, lifted again LiftAfter
		// later, and so on (a box stuck for seconds, seen in the real-
		// kernel overfill scenario).
		c.lifted = false
	}
	return l
}

// runningLeaves finds the unpaused leaves, the command's own excepted,
// oldest first.
func (l *look) runningLeaves() {
	for _, p := range l.o.Procs {
		if _, ok := l.c.paused[p.PID]; ok || !l.c.procs[p.PID].leaf || p.PID == l.c.cfg.Main {
			continue
		}
		l.running = append(l.running, p)
	}
	sort.Slice(l.running, func(i, j int) bool { return older(l.running[i], l.running[j]) })
}

// expect is Controller.expect, sorted out once per command name a look.
func (l *look) expect(comm string) (uint64, bool) {
	e, done := l.peaks[comm]
	if !done {
		e.v, e.ok = l.c.expect(comm)
		l.peaks[comm] = e
	}
	return e.v, e.ok
}

// expectFor is the peak one process is expected to grow to: its kind's,
// unless it was ever a parent (its size says nothing of its kind's
// leaves) or already outgrew it. ok is false when it is unknown.
func (l *look) expectFor(s *seen) (uint64, bool) {
	if s.parent {
		return 0, false
	}
	e, ok := l.expect(s.comm)
	if !ok || outgrew(s.peak, e) {
		return 0, false
	}
	return e, true
}

// need is what a process of a known size is expected to add still: up to
// the peak of its kind, plus a twentieth for what resident size does not
// show (page tables, kernel memory charged to the box).
func (l *look) need(pid int) (uint64, bool) {
	s := l.c.procs[pid]
	e, ok := l.expectFor(s)
	if !ok {
		return 0, false
	}
	if e+e/20 > s.rss {
		return e + e/20 - s.rss, true
	}
	return 0, true
}

// growing reports whether a process's resident size rose since the last
// look (by the look's noise, or throttled at the line). A process just
// started that is of a kind known to grow much more counts too: holding it
// back at the door costs nothing, and it has allocated nothing it would
// keep while paused.
func (l *look) growing(pid int) bool {
	s := l.c.procs[pid]
	if s.grew >= l.noise || (l.atLine && s.throttled) {
		return true
	}
	e, known := l.expectFor(s)
	return s.fresh && known && s.rss < e/2
}

// estimate is what a running process is expected to add: its need when its
// size is known; else, while it grows, two more looks of its growth, or up
// to the largest of its live siblings if more.
func (l *look) estimate(pid int) uint64 {
	if n, ok := l.need(pid); ok {
		return n
	}
	s := l.c.procs[pid]
	if !l.growing(pid) {
		return 0
	}
	e := 2 * s.grew
	if lg := l.largest[s.comm]; lg > s.rss && lg-s.rss > e {
		e = lg - s.rss
	}
	return e
}

// exempt reports whether a process resumed to keep the run going is still
// in its hold-off.
func (l *look) exempt(pid int) bool {
	until, ok := l.c.holdOff[pid]
	return ok && l.o.Now.Before(until)
}

// endLongPauses resumes, oldest first, the pauses that lasted MaxPause.
func (l *look) endLongPauses() {
	for _, pid := range l.c.Paused() {
		if l.o.Now.Sub(l.c.paused[pid].at) >= l.c.cfg.MaxPause {
			l.acts = append(l.acts, l.c.resume(pid, l.o.Now, WhyMaxPause, true))
			l.running = append(l.running, l.alive[pid])
		}
	}
}

// pauseGrowth pauses growing leaves: at the line every one but the one
// holding the most, below it those holding the least until what the
// running are expected to add fits.
func (l *look) pauseGrowth() {
	c := l.c
	candidates := l.pauseCandidates()
	stop := func(p Proc, why string) {
		l.acts = append(l.acts, c.pause(p.PID, l.o.Now, why))
		l.pausedNow[p.PID] = true
	}
	l.projected = l.o.Usage
	for _, p := range l.running {
		l.projected += l.estimate(p.PID)
	}
	// The room an overdue first in line waits for is kept from growers
	// newer than it: taking it, they would have it wait again, and again
	// (a newcomer paused at the door costs nothing).
	var reserve uint64
	var head Proc
	if q := l.inLine(c.pausedProcs(l.alive, nil)); len(q) > 0 && l.o.Now.Sub(c.paused[q[0].PID].at) >= Overdue {
		head, reserve = q[0], l.resumeCost(q[0].PID)
	}
	if l.atLine {
		for _, p := range candidates {
			l.projected -= l.estimate(p.PID)
			stop(p, WhyAtTarget)
		}
	} else {
		// Admission: hold back those holding the least until the rest
		// fits, with the room kept for the first in line from those newer
		// than it.
		for i := len(candidates) - 1; i >= 0; i-- {
			p := candidates[i]
			need := l.projected
			if reserve > 0 && older(head, p) {
				need += reserve
			}
			if need <= l.limit {
				continue
			}
			e := l.estimate(p.PID)
			if e == 0 {
				continue
			}
			why := WhyNoFit
			if _, known := l.need(p.PID); !known {
				why = WhyFastGrowth
			}
			l.projected -= e
			stop(p, why)
		}
	}
	kept := l.running[:0:0]
	for _, p := range l.running {
		if !l.pausedNow[p.PID] {
			kept = append(kept, p)
		}
	}
	l.running = kept
}

// pauseCandidates returns the running leaves that grow and are not
// exempt, holding the most first. The one that grows holding the most
// keeps going and is left out (unless an exempt one grows: it is the one
// kept). One the others wait for is never a candidate: pausing it would
// hold them all.
func (l *look) pauseCandidates() []Proc {
	c := l.c
	var candidates []Proc
	keptOne := false
	for _, p := range l.running {
		if !l.growing(p.PID) {
			continue
		}
		if l.exempt(p.PID) || c.procs[p.PID].awaited {
			keptOne = true
			continue
		}
		candidates = append(candidates, p)
	}
	// The one holding the most goes first, the oldest of equals: it has
	// the least left to grow and frees the most when it finishes. Those
	// holding the least are paused first: they keep the least memory
	// while they wait, so that what they hold never leaves the one kept
	// going without room to finish.
	sort.SliceStable(candidates, func(i, j int) bool {
		return c.procs[candidates[i].PID].rss > c.procs[candidates[j].PID].rss
	})
	if !keptOne && len(candidates) > 0 {
		candidates = candidates[1:]
	}
	return candidates
}

// resumeWhatFits resumes, oldest first, those the others wait for and those
// that hold their kind's peak at once, and the others while what they are
// expected to add fits below the line.
func (l *look) resumeWhatFits() {
	c := l.c
	waiting := c.pausedProcs(l.alive, l.pausedNow)
	var still []Proc
	for _, p := range waiting {
		if c.procs[p.PID].awaited {
			l.acts = append(l.acts, c.resume(p.PID, l.o.Now, WhyAwaited, false))
			l.running = append(l.running, p)
			continue
		}
		if e, known := l.expectFor(c.procs[p.PID]); known && c.procs[p.PID].rss >= e {
			l.acts = append(l.acts, c.resume(p.PID, l.o.Now, WhyHoldsPeak, false))
			l.running = append(l.running, p)
			continue
		}
		still = append(still, p)
	}
	waiting = l.inLine(still)
	if l.o.Usage < l.limit {
		for len(waiting) > 0 {
			p := waiting[0]
			e := l.resumeCost(p.PID)
			if l.projected+e > l.limit {
				break
			}
			l.acts = append(l.acts, c.resume(p.PID, l.o.Now, WhyRoom, false))
			l.projected += e
			l.running = append(l.running, p)
			waiting = waiting[1:]
		}
	}
	l.waiting = waiting
}

// inLine orders paused processes as they are to resume: those paused for
// Overdue or longer first, the longest paused first, so that none waits
// for ever while processes nearer their peak, or newer ones, keep taking
// the room; then, of those of a known size, the one closest to its peak
// (it needs the least room and frees its memory soonest); then the others,
// oldest first (ps comes oldest first).
func (l *look) inLine(ps []Proc) []Proc {
	c := l.c
	overdue := func(p Proc) (time.Time, bool) {
		at := c.paused[p.PID].at
		return at, l.o.Now.Sub(at) >= Overdue
	}
	sort.SliceStable(ps, func(i, j int) bool {
		ai, oi := overdue(ps[i])
		aj, oj := overdue(ps[j])
		if oi != oj {
			return oi
		}
		if oi {
			return ai.Before(aj)
		}
		ni, ki := l.need(ps[i].PID)
		nj, kj := l.need(ps[j].PID)
		if ki != kj {
			return ki
		}
		return ki && ni < nj
	})
	return ps
}

// resumeCost is what a paused process is expected to add once resumed: its
// need when its size is known; else two looks of the growth it showed, up
// to its largest live sibling, and room for a margin at least.
func (l *look) resumeCost(pid int) uint64 {
	if e, known := l.need(pid); known {
		return e
	}
	c := l.c
	e := max(2*c.paused[pid].grew, c.cfg.Margin)
	if lg, r := l.largest[c.procs[pid].comm], c.procs[pid].rss; lg > r {
		e = max(e, lg-r)
	}
	return e
}

// liftIfStuck lifts the throttle when the box has been stuck at the line:
// at it for LiftAfter with nothing exiting (ten times as long while a
// running leaf may finish by itself). What runs crawls at memory.high (the
// throttle sleeps it, and its reclaim burns a little CPU) or waits, and
// what is paused keeps its memory; resuming one more only throttles it
// too. Lifted, what runs may use the room up to memory.max, and if that is
// not enough the kernel kills there. It is raised half a margin at a
// time, each LiftAfter that nothing exits: the room it gives is what the
// running need to finish, and the kernel kills only when the last step
// reaches memory.max.
func (l *look) liftIfStuck() {
	c := l.c
	// A running leaf that neither grows nor waits for a lock may finish by
	// itself (a test that sleeps or computes): the box is not stuck while
	// one does, unless nothing has exited for ten times LiftAfter.
	mayFinish := false
	for _, p := range l.running {
		if s := c.procs[p.PID]; !l.growing(p.PID) && !s.blocked {
			mayFinish = true
		}
	}
	stuckFor := c.cfg.LiftAfter
	if mayFinish {
		stuckFor *= 10
	}
	if l.atLine && c.cfg.Lift > c.High() && l.o.Now.Sub(c.freedAt) >= stuckFor {
		c.liftTo = min(c.cfg.Lift, max(c.High(), l.o.Usage)+c.cfg.Margin/2)
		c.lifted = true
		c.freedAt = l.o.Now
		c.stats.Lifted++
	}
}

// keepGoing guarantees liveness: while processes wait paused, when no leaf
// is left running the paused process holding the most resumes at once.
// When the box has stalled (used next to no CPU for Stall) with none of
// the running in a hold-off or throttled at the line, the paused process
// holding the most of those whose resumeCost still fits below Target
// resumes: the stall may be a running process waiting for a paused one (on
// a pipe, say), and the margin is there to be used. One that does not fit
// stays paused while a running leaf may finish by itself: it sleeps or
// waits for something else, and resuming a process into memory.max has
// the kernel kill one; a sleeper frees its memory when it finishes. When
// every running leaf waits for a paused process (a lock or a pipe it
// holds, Proc.WaitsFor), nothing running can free anything: the one they
// wait for holding the most resumes whatever the memory. What the caller
// cannot name (a Go program waiting on a pipe through epoll) is freed by
// MaxPause, the last resort.
func (l *look) keepGoing() {
	c := l.c
	if len(l.waiting) == 0 {
		return
	}
	why := ""
	switch {
	case len(l.running) == 0:
		why = WhyNothingElse
	case c.stalled(l.o):
		why = WhyStalled
		for _, p := range l.running {
			if l.exempt(p.PID) || (l.atLine && c.procs[p.PID].throttled) {
				// One resumed to keep the run going still has its
				// hold-off: let it work before resuming another. One
				// the kernel throttles at the line is not stalled but
				// held back by memory.high: another resumed would only
				// be throttled too (lifting the throttle is the way
				// out, see liftIfStuck).
				why = ""
				break
			}
		}
	}
	if why == "" {
		return
	}
	p := holdsMost(l.waiting, c.procs)
	if why == WhyStalled {
		fits, ok := l.holdsMostThatFits()
		if !ok {
			awaited := l.awaitedByAllRunning()
			if len(awaited) == 0 {
				return
			}
			fits = holdsMost(awaited, c.procs)
		}
		p = fits
		// Each leaf left running was held up for the stall.
		c.stats.Blocked += l.o.Now.Sub(c.markAt) * time.Duration(len(l.running))
	}
	l.acts = append(l.acts, c.resume(p.PID, l.o.Now, why, true))
	l.running = append(l.running, p)
	c.markAt, c.markCPU = l.o.Now, l.o.CPU
}

// countBlocked adds to Stats.Blocked the time since the last look for each
// unpaused process waiting for a lock a paused process holds.
func (c *Controller) countBlocked(o Observation) {
	since := o.Now.Sub(c.lookAt)
	if c.lookAt.IsZero() || since <= 0 {
		c.lookAt = o.Now
		return
	}
	c.lookAt = o.Now
	for _, p := range o.Procs {
		if _, paused := c.paused[p.PID]; paused {
			continue
		}
		for _, h := range p.WaitsFor {
			if _, paused := c.paused[h]; paused {
				c.stats.Blocked += since
				break
			}
		}
	}
}

// holdsMostThatFits is, of the waiting processes whose resumeCost fits
// below Target on top of what the box is projected to use, the one holding
// the most (the oldest of equals); ok is false when none fits.
func (l *look) holdsMostThatFits() (Proc, bool) {
	var fit []Proc
	for _, p := range l.waiting {
		if l.projected+l.resumeCost(p.PID) <= l.c.cfg.Target {
			fit = append(fit, p)
		}
	}
	if len(fit) == 0 {
		return Proc{}, false
	}
	return holdsMost(fit, l.c.procs), true
}

// awaitedByAllRunning returns the waiting processes the running leaves wait
// for, when every running leaf waits for one of them; nil when one may
// finish by itself.
func (l *look) awaitedByAllRunning() []Proc {
	waiting := make(map[int]Proc, len(l.waiting))
	for _, p := range l.waiting {
		waiting[p.PID] = p
	}
	var out []Proc
	seen := map[int]bool{}
	for _, r := range l.running {
		blockedHere := false
		for _, h := range l.alive[r.PID].WaitsFor {
			if p, ok := waiting[h]; ok {
				blockedHere = true
				if !seen[h] {
					seen[h] = true
					out = append(out, p)
				}
			}
		}
		if !blockedHere {
			return nil
		}
	}
	return out
}
