package backpressure

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// sliceRun is the outcome of boxes simulated in one slice.
type sliceRun struct {
	steps int
	// killed counts the processes the OOM killer took at the slice's
	// memory.max, boxKilled those it took at a box's own.
	killed, boxKilled int
	// unfinished counts the workers that did not finish (killed).
	unfinished int
	boxes      []*simBox
}

// simulateSlice runs boxes (see simBox) in one slice whose memory.max is
// sliceMax MiB. At each step every box's workers advance; while the slice is
// over its memory.max the kernel kills the largest process in it, of any
// box; then the boxes look in turn, as each does under the ledger's lock:
// with ledger, each reads the slice's usage and the other boxes'
// reservations as they last published them (a box that looked earlier in
// the step published this step's, the others the last step's), steps,
// and publishes its own; without, each steps with no slice view, as boxes
// did before the ledger. The order the boxes look in turns every step:
// none is always first to the room.
func simulateSlice(t *testing.T, boxes []*simBox, sliceMax int, ledger bool) sliceRun {
	t.Helper()
	r := sliceRun{boxes: boxes}
	published := make([]*Reservation, len(boxes))
	for step := 0; step < 100000; step++ {
		usage := 0
		for _, b := range boxes {
			b.advance(step)
			usage += b.usage
		}
		for usage > sliceMax {
			var victim *worker
			var in *simBox
			for _, b := range boxes {
				if w := b.largest(); w != nil && (victim == nil || w.rss > victim.rss) {
					victim, in = w, b
				}
			}
			if victim == nil {
				break
			}
			usage -= victim.rss
			in.kill(victim)
			in.r.killed-- // counted at the slice, not the box
			r.killed++
		}
		finished := true
		for i, b := range boxes {
			if b.done(step) {
				published[i] = nil // its cgroup is gone: its entry with it
				continue
			}
			finished = false
		}
		if finished {
			r.steps = step
			for _, b := range boxes {
				r.boxKilled += b.r.killed
				for _, w := range b.byPID {
					if w.killed {
						r.unfinished++
					}
				}
			}
			return r
		}
		for k := range boxes {
			i := (k + step) % len(boxes)
			b := boxes[i]
			if step < b.from || b.done(step) {
				continue
			}
			var view *SliceView
			if ledger {
				var others []Reservation
				for j, e := range published {
					if j != i && e != nil {
						others = append(others, *e)
					}
				}
				view = View(uint64(sliceMax)*mib, uint64(usage)*mib, others)
			}
			b.look(step, view)
			res := b.c.Reservation()
			published[i] = &res
		}
	}
	t.Fatal("simulation did not finish: deadlock")
	return r
}

// renumber gives the workers of a box pids of their own: from 1000·n on.
func renumber(threads [][]*worker, n int) [][]*worker {
	for _, th := range threads {
		for _, w := range th {
			w.pid += 1000 * n
		}
	}
	return threads
}

// boxSpec is one box of a slice workload: its threads of jobs of size
// MiB grown grow MiB a step and held hold steps, in a box of limit MiB,
// started at step from.
type boxSpec struct {
	threads, jobs, size, hold, grow, limit, from int
}

// TestSimulatedSlice runs several boxes, each with a limit its own burst
// fits in, in one slice whose memory.max their sum overfills: with the
// ledger no process is killed at the slice, every worker finishes and the
// run takes at most twice the least the slice allows (twice unboxed);
// without it (each box admitting against its own room only, as before)
// the slice kills.
func TestSimulatedSlice(t *testing.T) {
	burst := boxSpec{threads: 8, jobs: 3, size: 30, hold: 20, grow: 6, limit: 300}
	cases := []struct {
		name  string
		boxes []boxSpec
		max   int // the slice's memory.max, MiB
	}{
		{"4 boxes of a burst, their sum 2x the slice", []boxSpec{burst, burst, burst, burst}, 500},
		{"4 boxes of a burst starting 0.2 s apart", func() []boxSpec {
			var bs []boxSpec
			for i := 0; i < 4; i++ {
				b := burst
				b.from = 20 * i
				bs = append(bs, b)
			}
			return bs
		}(), 500},
		{"one big box and three small", []boxSpec{
			{threads: 16, jobs: 3, size: 40, hold: 20, grow: 8, limit: 700},
			{threads: 4, jobs: 4, size: 40, hold: 20, grow: 8, limit: 200},
			{threads: 4, jobs: 4, size: 40, hold: 20, grow: 8, limit: 200},
			{threads: 4, jobs: 4, size: 40, hold: 20, grow: 8, limit: 200},
		}, 600},
		{"4 boxes of a burst at native speed", func() []boxSpec {
			b := burst
			b.grow = b.size
			return []boxSpec{b, b, b, b}
		}(), 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			boxes := func(useBP bool) []*simBox {
				var out []*simBox
				for i, s := range tc.boxes {
					limit := s.limit
					if !useBP {
						limit = 1 << 30
					}
					out = append(out, newSimBox(t, renumber(suiteGrowing(s.threads, s.jobs, s.size, s.hold, s.grow), i), limit, limit, s.from, useBP))
				}
				return out
			}
			base := simulateSlice(t, boxes(false), 1<<30, false).steps
			without := simulateSlice(t, boxes(true), tc.max, false)
			r := simulateSlice(t, boxes(true), tc.max, true)
			var paused int
			forced := map[string]int{}
			var longest time.Duration
			why := map[string]int{}
			for _, b := range r.boxes {
				st := b.c.Stats()
				paused += st.Paused
				for k, v := range st.Forced {
					forced[k] += v
				}
				longest = max(longest, st.LongestPause)
				for _, re := range st.Reasons {
					why[re.Reason] += re.Count
				}
				if len(b.r.flatPaused) > 0 {
					t.Errorf("paused processes that held flat: %v", b.r.flatPaused)
				}
			}
			t.Logf("without the ledger: %d killed at the slice, %d steps (%.2fx); with it: %d killed, %d steps vs %d unboxed (%.2fx); paused %d %v, forced %v, longest %v",
				without.killed, without.steps, float64(without.steps)/float64(base), r.killed, r.steps, base, float64(r.steps)/float64(base), paused, why, forced, longest)
			if without.killed == 0 {
				t.Errorf("without the ledger nothing was killed at the slice: not a test of it")
			}
			if r.killed > 0 || r.boxKilled > 0 || r.unfinished > 0 {
				t.Errorf("with the ledger %d processes were killed at the slice and %d in their box; %d workers did not finish", r.killed, r.boxKilled, r.unfinished)
			}
			if longest >= 30*time.Second {
				t.Errorf("a pause of %v: only MaxPause ended it", longest)
			}
			// Their sum is about twice the slice: 2x at best.
			if slow := float64(r.steps) / float64(base); slow > 4 {
				t.Errorf("%.2fx the unboxed time, over twice the least the slice allows", slow)
			}
		})
	}
}

// sliceStep is one look of a box in TestSliceRules: its usage and
// processes, the slice as the ledger shows it, and what it must do.
type sliceStep struct {
	ms      int
	usage   uint64 // MiB
	procs   []Proc
	slice   *SliceView
	paused  []int
	resumed []int
	// reserved is the Reservation.Bytes it must publish, in MiB; -1 is
	// not checked.
	reserved int
	why      string // the reason of the first action, "" not checked
}

func sliceOf(maxMiB, usageMiB, reservedMiB uint64) *SliceView {
	return &SliceView{Max: maxMiB * mib, Usage: usageMiB * mib, Reserved: reservedMiB * mib}
}

// withSizes gives v the size another box learned of comm.
func withSizes(v *SliceView, comm string, sizeMiB uint64) *SliceView {
	v.Sizes = map[string]uint64{comm: sizeMiB * mib}
	return v
}

// busy marks the other boxes of v as having a leaf running.
func busy(v *SliceView) *SliceView {
	v.Running = 1
	return v
}

func claiming(v *SliceView, ms int, needMiB uint64) *SliceView {
	v.Claim, v.ClaimNeed = at(ms), needMiB*mib
	return v
}

// TestSliceRules steps one box of a slice through the rules of the slice
// view: admission takes the smaller room, the box's or the slice's; the
// reservation it publishes is its running processes' expected growth; a
// box with nothing running waits while other boxes progress; the oldest
// overdue claim of the slice goes first; what other boxes learned and what
// siblings hold stand in for sizes the box does not know.
func TestSliceRules(t *testing.T) {
	job := func(pid int, rssMiB uint64) Proc { return named(pid, uint64(pid), rssMiB, "job") }
	known := map[string]uint64{"job": 40 * mib}
	tests := []struct {
		name  string
		steps []sliceStep
		// claims are, by step, when the claim the box publishes
		// began (ms), -1 for none.
		claims map[int]int
	}{
		{"no slice view: the box's own room", []sliceStep{
			// 20 + 3*41 = 143 fits the box's 180.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1)}, nil, nil, nil, 123, ""},
		}, nil},
		{"a slice with less room than the box holds back what does not fit it", []sliceStep{
			// The slice's line is 450 of 500: 380 used and 20 reserved
			// elsewhere leave 50, room for one job's 41 more (the
			// oldest, kept going), not three.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1)}, sliceOf(500, 380, 20), []int{3, 4}, nil, 41, WhySlice},
		}, nil},
		{"a slice with room changes nothing", []sliceStep{
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1)}, sliceOf(1000, 100, 100), nil, nil, 123, ""},
		}, nil},
		{"a full slice pauses every grower while other boxes progress", []sliceStep{
			{0, 60, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, sliceOf(500, 300, 0), nil, nil, 0, ""},
			// Each grew 15M; the slice is past its line with 40M
			// reserved by another box: neither is kept going.
			{10, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 440, 40), []int{2, 3}, nil, 0, WhySlice},
			// Nothing runs in the box, but the other box progresses: no
			// resume "because nothing else runs".
			{20, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 470, 30), nil, nil, 0, ""},
			// No box makes progress any more: the one holding the most
			// resumes, and what it may add (two looks of its 15M) is
			// reserved.
			{30, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 470, 0), nil, []int{2}, 30, WhyNothingElse},
		}, nil},
		{"a full slice with no other box progressing keeps one grower", []sliceStep{
			{0, 60, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, sliceOf(500, 300, 0), nil, nil, 0, ""},
			// 90 + 2*30 does not fit below the slice's line (450, 445
			// used), 90 + 30 fits below its ceiling (memory.max less
			// half a margin, 475): the one holding the most goes on.
			{10, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 445, 0), []int{3}, nil, 30, WhySlice},
		}, nil},
		{"the oldest overdue claim of the slice goes first, once it fits", []sliceStep{
			{0, 60, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, sliceOf(500, 300, 0), nil, nil, 0, ""},
			{10, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 440, 40), []int{2, 3}, nil, 0, WhySlice},
			// Overdue, but another box's claim is older: it waits.
			{5010, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, claiming(sliceOf(500, 440, 10), 0, 30), nil, nil, 0, ""},
			// The other claim went; this one is the oldest, but its 30M
			// (two looks of its 15M) do not fit below the slice's
			// ceiling (475) with 470 used and 20 reserved.
			{5020, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, sliceOf(500, 470, 20), nil, nil, 0, ""},
			// Now they do (440 used, another box's processes running
			// and reserving nothing): the longest paused resumes; 3,
			// paused as long, is first in line and claims in its turn.
			{5030, 90, []Proc{mainProc, leaf(2, 2, 25), leaf(3, 3, 25)}, busy(sliceOf(500, 440, 0)), nil, []int{2}, 30, WhyOldestClaim},
		}, map[int]int{1: -1, 2: 10, 3: 10, 4: 10}},
		{"a name another box of the slice learned holds newcomers back at the door", []sliceStep{
			// Each is expected to grow to 63M (60M and a twentieth), as
			// it did in the other box: 20 + 2*62 fits the box's 180,
			// but the slice leaves this one 100M, room for the oldest.
			{0, 20, []Proc{mainProc, named(2, 2, 1, "other"), named(3, 3, 1, "other")},
				withSizes(sliceOf(500, 350, 0), "other", 60), []int{3}, nil, 62, WhySlice},
		}, nil},
		{"without it they are of unknown size: nothing to hold back yet", []sliceStep{
			{0, 20, []Proc{mainProc, named(2, 2, 1, "other"), named(3, 3, 1, "other")},
				sliceOf(500, 350, 0), nil, nil, 0, ""},
		}, nil},
		{"in a tight slice a newcomer whose sibling holds much more counts as growing", []sliceStep{
			{0, 30, []Proc{mainProc, leaf(2, 2, 10)}, sliceOf(500, 300, 0), nil, nil, 0, ""},
			// 2 grew 30M (60M expected of it); 3, just started, may
			// grow as large as 2 (39M more): 60 + 60 + 39 is over the
			// 110M the slice leaves, 60 + 60 is not.
			{10, 60, []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 1)}, sliceOf(500, 400, 0), []int{3}, nil, 60, WhySlice},
		}, nil},
		{"another box's older claim keeps its room from new growers", []sliceStep{
			// 20 + 3*41 = 143 fits the box's 180 and the slice's line
			// (450, 200 used: 270 for the box), but not with the 150 an
			// older claim of another box waits for: the youngest waits.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1)}, claiming(sliceOf(500, 200, 0), -5000, 150), []int{4}, nil, 82, WhySlice},
			// The claim went: 22 + 2*39 + 41 fits, it is admitted.
			{10, 22, []Proc{mainProc, job(2, 3), job(3, 3), job(4, 1)}, sliceOf(500, 302, 0), nil, []int{4}, 119, WhyRoom},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Target: 200 * mib, Margin: 20 * mib, Main: 1, Known: known})
			for i, s := range tt.steps {
				acts := c.Step(Observation{Now: at(s.ms), Usage: s.usage * mib, Procs: s.procs, Slice: s.slice})
				if got := pids(acts, Pause); fmt.Sprint(got) != fmt.Sprint(s.paused) {
					t.Errorf("step %d: paused %v, want %v (actions %v)", i, got, s.paused, acts)
				}
				if got := pids(acts, Resume); fmt.Sprint(got) != fmt.Sprint(s.resumed) {
					t.Errorf("step %d: resumed %v, want %v (actions %v)", i, got, s.resumed, acts)
				}
				if s.why != "" && (len(acts) == 0 || acts[0].Reason != s.why) {
					t.Errorf("step %d: actions %v, want the first for %q", i, acts, s.why)
				}
				if got := c.Reservation().Bytes; s.reserved >= 0 && got != uint64(s.reserved)*mib {
					t.Errorf("step %d: reserved %.1f MiB, want %d MiB", i, float64(got)/mib, s.reserved)
				}
				if want, ok := tt.claims[i]; ok {
					got := c.Reservation().Since
					if (want < 0 && !got.IsZero()) || (want >= 0 && !got.Equal(at(want))) {
						t.Errorf("step %d: claims since %v, want %d ms (-1: none)", i, got, want)
					}
				}
			}
		})
	}
}

// TestSimulatedSliceSweep runs 108 slice workloads: 2, 4 or 8 boxes of 8
// threads of 3 jobs of 30M or 60M each, growing in 5 looks, 2 or 1 (native
// speed), all starting at once or 0.2 s apart, in a slice whose memory.max
// their bursts' sum overfills 1.5, 2 or 3 times; each box's own limit fits
// its burst. With the ledger none may end in a kill, at the slice or in a
// box, no pause may reach MaxPause and none may take over twice as long as
// its overcommit makes the least it can take. It logs how many workloads the
// slice killed in without the ledger, and the slowdown against unboxed.
func TestSimulatedSliceSweep(t *testing.T) {
	var n, killedWithout, killedWith int
	var slowdowns []float64
	for _, nboxes := range []int{2, 4, 8} {
		for _, looks := range []int{5, 2, 1} {
			for _, size := range []int{30, 60} {
				for _, apart := range []int{0, 20} {
					for _, over := range []float64{1.5, 2, 3} {
						n++
						name := fmt.Sprintf("%d boxes of 8x%dM grown in %d looks, %d steps apart, %.1fx the slice", nboxes, size, looks, apart, over)
						burst := 8 * size
						limit := (burst+10)*10/9 + 10
						sliceMax := int(float64(nboxes*burst) / over)
						boxes := func(useBP bool) []*simBox {
							var out []*simBox
							for i := 0; i < nboxes; i++ {
								l := limit
								if !useBP {
									l = 1 << 30
								}
								out = append(out, newSimBox(t, renumber(suiteGrowing(8, 3, size, 20, size/looks), i), l, l, i*apart, useBP))
							}
							return out
						}
						base := simulateSlice(t, boxes(false), 1<<30, false).steps
						if simulateSlice(t, boxes(true), sliceMax, false).killed > 0 {
							killedWithout++
						}
						r := simulateSlice(t, boxes(true), sliceMax, true)
						var longest time.Duration
						for _, b := range r.boxes {
							longest = max(longest, b.c.Stats().LongestPause)
						}
						if r.killed > 0 || r.boxKilled > 0 || r.unfinished > 0 {
							killedWith++
							t.Errorf("%s: %d killed at the slice, %d in their box", name, r.killed, r.boxKilled)
						}
						if longest >= 30*time.Second {
							t.Errorf("%s: a pause of %v, ended by MaxPause", name, longest)
						}
						slow := float64(r.steps) / float64(base)
						slowdowns = append(slowdowns, slow)
						// Running a third at a time takes 3x at best.
						if slow > 2*over {
							t.Errorf("%s: %.2fx its unboxed time, over twice the %.1fx overcommit", name, slow, over)
						}
					}
				}
			}
		}
	}
	sort.Float64s(slowdowns)
	t.Logf("%d workloads: without the ledger %d ended in kills at the slice, with it %d; slowdown against unboxed: median %.2fx, worst %.2fx",
		n, killedWithout, killedWith, slowdowns[len(slowdowns)/2], slowdowns[len(slowdowns)-1])
}

// TestSimulatedRoomySliceChangesNothing: a box alone in a slice with room
// to spare steers as a box outside any slice, look for look: the slice's
// rules apply only where the slice leaves the box less room than its own
// limits.
func TestSimulatedRoomySliceChangesNothing(t *testing.T) {
	for _, tc := range []struct{ threads, jobs, size, hold, grow, box int }{
		{8, 3, 48, 20, 10, 192},
		{24, 4, 150, 50, 150, 3000},
		{6, 1, 49, 200, 5, 150},
	} {
		jobs := func() [][]*worker { return suiteGrowing(tc.threads, tc.jobs, tc.size, tc.hold, tc.grow) }
		alone := simulate(t, jobs(), tc.box, tc.box, true)
		inSlice := simulateSlice(t, []*simBox{newSimBox(t, jobs(), tc.box, tc.box, 0, true)}, 4*tc.box, true)
		a, s := alone.c.Stats(), inSlice.boxes[0].c.Stats()
		if inSlice.steps != alone.steps || s.Paused != a.Paused || s.ForcedResumes != a.ForcedResumes || s.PausedTotal != a.PausedTotal {
			t.Errorf("%+v: in a roomy slice %d steps, %d paused for %v, %d forced; alone %d steps, %d paused for %v, %d forced",
				tc, inSlice.steps, s.Paused, s.PausedTotal, s.ForcedResumes, alone.steps, a.Paused, a.PausedTotal, a.ForcedResumes)
		}
	}
}

// TestSliceThrottle: where the slice binds, the box's memory.high is what
// it holds plus an even share, among the boxes that may grow, of the room
// below the slice's ceiling (memory.max less half a margin) that the
// others' reservations leave; the policy's memory.high where that is
// lower, or where the slice leaves the box all its own room.
func TestSliceThrottle(t *testing.T) {
	twoBusy := func(v *SliceView) *SliceView { v.Busy = 2; return v }
	tests := []struct {
		name  string
		usage uint64
		slice *SliceView
		want  uint64 // MiB
	}{
		{"no slice: the policy's", 20, nil, 180},
		{"a roomy slice: the policy's", 20, sliceOf(1000, 100, 0), 180},
		// The ceiling of a 500M slice is 475 (a margin of 50): 400 used
		// and 15 reserved leave 60 for this box alone.
		{"alone in a tight slice: all the room it leaves", 20, sliceOf(500, 400, 15), 80},
		// Two other boxes may grow: a third of 60 each.
		{"shared with two busy boxes: a third", 20, twoBusy(sliceOf(500, 400, 15)), 40},
		// No room left at all: held at what it holds.
		{"a full slice: what it holds", 20, sliceOf(500, 490, 0), 20},
		// A share above the policy's memory.high leaves the policy's.
		{"the policy's when lower", 100, sliceOf(300, 120, 0), 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Target: 200 * mib, Margin: 20 * mib, Main: 1, High: 180 * mib})
			c.Step(Observation{Now: at(0), Usage: tt.usage * mib, Procs: []Proc{mainProc, leaf(2, 2, 5)}, Slice: tt.slice})
			if got := c.High(); got != tt.want*mib {
				t.Errorf("High() = %.1f MiB, want %d MiB", float64(got)/mib, tt.want)
			}
		})
	}
}
