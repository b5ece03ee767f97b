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
	// Usage is the slice's memory.current: what every box in it holds.
	Usage uint64
	// Reserved is what the other boxes have admitted and not yet used:
	// the sum of their Reservation.Bytes as they last published them.
	// Growth counted both here and in Usage (a reservation not yet
	// refreshed) only makes the box more careful.
	Reserved uint64
	// Claim is when the oldest overdue pause of another box began (its
	// Reservation.Since), zero when no other box has one; ClaimNeed is
	// the room that paused process needs (its Reservation.Need). While
	// a claim older than the box's own stands, the box keeps that room
	// free: it admits no grower and resumes nothing that would take it.
	Claim     time.Time
	ClaimNeed uint64
}

// Reservation is what a box tells the other boxes of its slice after each
// look (see Controller.Reservation).
type Reservation struct {
	// Bytes is the growth the box admitted and has not seen used: what
	// its running processes are expected to add still, and what the
	// processes it resumed were expected to add when resumed, less what
	// they grew since.
	Bytes uint64
	// Since is when the first in line of its paused processes was paused,
	// when that was Overdue or longer ago; zero otherwise. Need is the
	// room it needs to resume.
	Since time.Time
	Need  uint64
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
// has left below its memory.max. Without a view they are the box's own.
func (l *look) sliceRoom() {
	l.admit, l.ceiling = l.limit, l.c.cfg.Target
	s := l.o.Slice
	if s == nil || s.Max == 0 {
		return
	}
	l.inSlice = true
	l.othersBusy = s.Reserved > 0
	within := func(bound uint64) uint64 {
		used := s.Usage + s.Reserved
		if used <= bound {
			return l.o.Usage + (bound - used)
		}
		return l.o.Usage - min(l.o.Usage, used-bound)
	}
	l.sliceAdmit = within(HighFor(s.Max))
	l.admit = min(l.admit, l.sliceAdmit)
	l.ceiling = min(l.ceiling, within(s.Max))
	l.sliceFull = l.o.Usage >= l.admit && l.admit < l.limit
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
	c.reservation = r
}

// Reservation is what the box tells the other boxes of its slice after the
// last look: the growth it admitted and has not used, and its oldest
// overdue claim. The caller publishes it where the other boxes' looks read
// it (their SliceView.Reserved and Claim).
func (c *Controller) Reservation() Reservation { return c.reservation }

// waitForSlice reports whether a box with nothing left running keeps its
// paused processes waiting rather than resume one because nothing else
// runs: in a slice whose other boxes progress (they hold reservations),
// the room will come from them. Only the process that waited the longest
// of the slice, first in this box's line, may then go, and only once its
// growth fits below the slice's memory.max; it is returned with ok.
func (l *look) waitForSlice() (p Proc, ok bool, wait bool) {
	if !l.inSlice || !l.othersBusy {
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
// does and more: it is expected to grow as they did. Left to grow for one
// look before it counts, every box's newcomers would take, together, room
// in the slice that no box reserved.
func (l *look) freshInSlice(s *seen) bool {
	return l.inSlice && s.fresh && !s.parent && l.largest[s.comm] >= 2*s.rss+GrowthNoise
}
