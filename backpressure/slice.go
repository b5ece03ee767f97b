package backpressure

import "time"

// SliceView is what a box sees of the slice it shares with other boxes
// (boxrun.slice with a memory.max: one budget for every concurrent run).
// Each box admits growth against its own room, so boxes that each fit
// their own limit can together cross the slice's memory.max, where the
// kernel kills. With a view, admission takes the smaller room: the box's,
// or what the slice has left once the growth the other boxes admitted and
// have not used yet (their Reservation) is set aside.
type SliceView struct {
	// Max is the slice's memory.max.
	Max uint64
	// Usage is what every box in the slice holds: its memory.current,
	// less, as the caller reads it, the cache the kernel reclaims first.
	Usage uint64
	// Reserved is what the other boxes have admitted and not yet used:
	// the sum of their Reservation.Bytes as they last published them.
	// Growth counted both here and in Usage (a reservation not yet
	// refreshed) only makes the box more careful.
	Reserved uint64
	// Running counts the other boxes' running leaves (their
	// Reservation.Running): processes that may finish and free memory
	// although they reserve nothing.
	Running int
	// Claim is when the oldest overdue pause of another box began (its
	// Reservation.Since), zero when no other box has one; ClaimNeed is
	// the room that paused process needs (its Reservation.Need). While
	// a claim older than the box's own stands, the box keeps that room
	// free: it admits no grower and resumes nothing that would take it.
	Claim     time.Time
	ClaimNeed uint64
	// Sizes are the typical peaks the other boxes learned, by command
	// name (the largest of their Reservation.Sizes): a name the box
	// knows nothing of yet is expected to grow as it did there.
	Sizes map[string]uint64
	// Busy counts the other boxes that reserve room or have leaves
	// running: those that may grow.
	Busy int
}

// Reservation is what a box tells the other boxes of its slice after each
// look (see Controller.Reservation).
type Reservation struct {
	// Bytes is the growth the box admitted and has not seen used: what
	// its running processes are expected to add still, and what the
	// processes it resumed were expected to add when resumed, less what
	// they grew since.
	Bytes uint64
	// Running counts its leaves left running (the command's own
	// excepted): while any runs, the box progresses.
	Running int
	// Since is when the first in line of its paused processes was paused,
	// when that was Overdue or longer ago; zero otherwise. Need is the
	// room it needs to resume.
	Since time.Time
	Need  uint64
	// Sizes are the typical peaks of the leaves that finished in the
	// box, by command name (Controller.Sizes, learned ones only).
	Sizes map[string]uint64
}

// View is what a box sees of its slice whose memory.max is limit and
// memory.current usage, given the reservations the other boxes of the
// slice last published: theirs and their running leaves summed, their
// oldest overdue claim, and the largest size each command name has in any
// of them.
func View(limit, usage uint64, others []Reservation) *SliceView {
	v := &SliceView{Max: limit, Usage: usage}
	for _, r := range others {
		if r.Bytes > 0 || r.Running > 0 {
			v.Busy++
		}
		v.Reserved += r.Bytes
		v.Running += r.Running
		if !r.Since.IsZero() && (v.Claim.IsZero() || r.Since.Before(v.Claim)) {
			v.Claim, v.ClaimNeed = r.Since, r.Need
		}
		for comm, size := range r.Sizes {
			if v.Sizes == nil {
				v.Sizes = map[string]uint64{}
			}
			v.Sizes[comm] = max(v.Sizes[comm], size)
		}
	}
	return v
}

// WhySlice is the reason of a pause made because the slice, not the box,
// has no room for the growth.
const WhySlice = "the slice boxrun.slice is at its memory budget"

// WhyOldestClaim is the reason of a resume made, with nothing left running
// in the box while other boxes of the slice progress, for the process
// that has waited the longest of the whole slice, once its growth fits
// below the slice's memory.max.
const WhyOldestClaim = "it waited the longest of the slice and its growth fits"

// promise is what a process was expected to add when it was resumed: it
// stays reserved for the other boxes until it grew that much or exited.
type promise struct {
	cost, from uint64
}

// sliceRoom sets the look's limits from the slice view: admit, the line
// admission and resumes steer by, is the box's line or, lower, what the
// box may reach while the slice stays under its own line (memory.max
// less a margin) with the other boxes' reservations set aside; ceiling,
// the most the box may reach before a kill, is Target or what the slice
// has left below its memory.max less half a margin (room for what starts
// before the next look). Without a view they are the box's own.
func (l *look) sliceRoom() {
	l.admit, l.ceiling = l.limit, l.c.cfg.Target
	s := l.o.Slice
	if s == nil || s.Max == 0 {
		return
	}
	l.inSlice = true
	l.othersBusy = s.Reserved > 0 || s.Running > 0
	within := func(bound uint64) uint64 {
		used := s.Usage + s.Reserved
		if used <= bound {
			return l.o.Usage + (bound - used)
		}
		return l.o.Usage - min(l.o.Usage, used-bound)
	}
	l.sliceAdmit = within(HighFor(s.Max))
	l.admit = min(l.admit, l.sliceAdmit)
	l.ceiling = min(l.ceiling, within(s.Max-min(s.Max, DefaultMargin(s.Max)/2)))
	l.tight = l.admit < l.limit || l.ceiling < l.c.cfg.Target
	l.sliceFull = l.o.Usage >= l.admit && l.admit < l.limit
	l.shareThrottle()
}

// shareThrottle sets the box's share of the slice's throttle: memory.high
// at what the box holds plus an even share, among the boxes of the slice
// that may grow, of the room left below the slice's ceiling (memory.max
// less half a margin) once the others' reservations are set aside. A look decides on growth it has seen; a process that
// allocates its whole size between two looks (a test binary at native
// speed) is seen only after, and every box's first wave is of sizes no one
// knows yet. The kernel throttles the box at its memory.high at once,
// whatever the looks: the boxes' shares sum to the slice's line, so
// together they are slowed there instead of killed at the slice's
// memory.max, the way one box's line holds its own first wave. Admission
// steers by the slice's line, below it: the throttle is the net under
// what the looks cannot see coming. Only where
// the slice binds (l.tight): a box alone in a roomy slice keeps its own
// memory.high.
func (l *look) shareThrottle() {
	l.c.sliceHigh = 0
	s := l.o.Slice
	if !l.tight {
		return
	}
	bound := s.Max - min(s.Max, DefaultMargin(s.Max)/2)
	room := bound - min(bound, s.Usage+s.Reserved)
	share := l.o.Usage + room/uint64(1+s.Busy)
	// A step of a mebibyte: the share moves with every look, and each
	// change is a write to memory.high.
	l.c.sliceHigh = max(share&^(1<<20-1), 1<<20)
}

// claimedAdmit is admit with the room kept free in the slice for another
// box's overdue claim older than this box's own (see SliceView.Claim).
func (l *look) claimedAdmit() uint64 {
	s := l.o.Slice
	if !l.inSlice || s.Claim.IsZero() {
		return l.admit
	}
	if own, ok := l.ownClaim(); ok && !own.After(s.Claim) {
		return l.admit
	}
	return min(l.admit, l.sliceAdmit-min(l.sliceAdmit, s.ClaimNeed))
}

// ownClaim is when the first in line of the box's paused processes was
// paused, if that was Overdue or longer ago.
func (l *look) ownClaim() (time.Time, bool) {
	q := l.inLine(l.c.pausedProcs(l.alive, nil))
	if len(q) == 0 {
		return time.Time{}, false
	}
	at := l.c.paused[q[0].PID].at
	return at, l.o.Now.Sub(at) >= Overdue
}

// reserve works out, at the end of a look, the reservation the box
// publishes (see Controller.Reservation).
func (l *look) reserve() {
	c := l.c
	var r Reservation
	for _, p := range l.running {
		e := l.estimate(p.PID)
		if pr, ok := c.promised[p.PID]; ok {
			grown := c.procs[p.PID].rss - min(c.procs[p.PID].rss, pr.from)
			if grown >= pr.cost {
				delete(c.promised, p.PID)
			} else {
				e = max(e, pr.cost-grown)
			}
		}
		r.Bytes += e
	}
	if q := l.inLine(c.pausedProcs(l.alive, nil)); len(q) > 0 && l.o.Now.Sub(c.paused[q[0].PID].at) >= Overdue {
		r.Since, r.Need = c.paused[q[0].PID].at, l.resumeCost(q[0].PID)
	}
	r.Running = len(l.running)
	r.Sizes = make(map[string]uint64, len(c.finished))
	for comm, peaks := range c.finished {
		r.Sizes[comm], _ = upperQuartile(peaks)
	}
	c.reservation = r
}

// Reservation is what the box tells the other boxes of its slice after the
// last look: the growth it admitted and has not used, and its oldest
// overdue claim. The caller publishes it where the other boxes' looks read
// it (their SliceView.Reserved and Claim).
func (c *Controller) Reservation() Reservation { return c.reservation }

// waitForSlice reports whether a box with nothing left running keeps its
// paused processes waiting rather than resume one because nothing else
// runs: in a slice whose other boxes progress (they hold reservations, or
// have leaves running that may finish), the room will come from them. Only the process that waited the longest
// of the slice, first in this box's line, may then go, and only once its
// growth fits below the slice's memory.max; it is returned with ok.
func (l *look) waitForSlice() (p Proc, ok bool, wait bool) {
	if !l.tight || !l.othersBusy {
		return Proc{}, false, false
	}
	own, overdue := l.ownClaim()
	s := l.o.Slice
	if !overdue || (!s.Claim.IsZero() && s.Claim.Before(own)) {
		return Proc{}, false, true
	}
	head := l.inLine(append([]Proc(nil), l.waiting...))[0]
	if l.projected+l.resumeCost(head.PID) > l.ceiling {
		return Proc{}, false, true
	}
	return head, true, true
}

// freshInSlice reports whether s, of no known size, was just started in a
// box of a slice while its live siblings of its name hold twice what it
// does and more (it is expected to grow as they did), or while the slice
// has no room left and other boxes progress. Left to grow for one look
// before it counts, newcomers would take room in the slice that no box
// reserved: at native speed a process allocates its whole size between
// two looks. Held at the door, a newcomer holds next to nothing while it
// waits, and resumes when the room for a margin is there.
func (l *look) freshInSlice(s *seen) bool {
	if !l.tight || !s.fresh || s.parent {
		return false
	}
	return l.largest[s.comm] >= 2*s.rss+GrowthNoise || (l.sliceFull && l.othersBusy)
}

// keepOne reports whether the grower holding the most, the first of
// candidates, keeps going whatever admission says. In a box it does: it
// has the least left to grow, and the box's throttle brakes it. Where the
// slice has less room than the box, only while its growth, alone, fits
// below the slice's memory.max (nothing brakes it on the way there), and,
// with no room left in the slice, only while no other box progresses:
// each box keeping one would take the slice over its budget together.
func (l *look) keepOne(candidates []Proc) bool {
	if !l.tight {
		return true
	}
	if l.sliceFull && l.othersBusy {
		return false
	}
	alone := l.projected
	for _, p := range candidates[1:] {
		alone -= l.estimate(p.PID)
	}
	return alone <= l.ceiling
}
