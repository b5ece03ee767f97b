package backpressure

import (
	"fmt"
	"testing"
	"time"
)

// worker is one simulated test process: it grows to its size, holds it,
// and exits; a paused worker makes no progress. Workers of one thread run one
// after another, as a test harness's threads run tests.
type worker struct {
	pid        int
	start      int // step it started, -1 before
	grow       int // MiB per step while growing
	size, hold int // MiB; steps to hold once grown
	// base is the MiB it holds when first seen (a runtime's own, say);
	// 0 means 2.
	base         int
	comm         string
	rss, held    int
	done, paused bool
	// grewLast is whether it grew in the last step; throttled whether it
	// wanted to and the kernel's throttle held it back.
	grewLast, throttled bool
	// killed is set when the simulated OOM killer took it.
	killed bool
	// credit is the fraction of a MiB the throttle has let it allocate.
	credit float64
}

// simRun is the outcome of a simulated run.
type simRun struct {
	steps int
	// oom is whether the box ever went over memory.max; killed counts the
	// processes the OOM killer took (only with backpressure on).
	oom    bool
	killed int
	c      *Controller
	// flatPaused lists the pauses of processes that had not grown at the
	// look that paused them and were not throttled: a flat process must
	// never be paused.
	flatPaused []string
	// stuck is the longest run of steps in which something was throttled
	// and nothing unpaused made progress (grew unthrottled, or held on
	// towards its exit).
	stuck int
}

// simBox is one simulated box: threads of workers in a box of limit MiB
// whose backpressure target is target MiB, from step from on. Actions take
// effect at the next step, as they do for real. Above memory.high (the
// controller's High(): HighFor(target), or limit while it lifts the
// throttle) the kernel throttles allocations as mm/memcontrol.c does,
// slower the further over the box is, and the throttled allocator is seen
// Throttled. At memory.max it OOM-kills the process holding the most,
// paused or not.
type simBox struct {
	t             *testing.T
	threads       [][]*worker
	byPID         map[int]*worker
	target, limit int
	from          int
	useBP         bool
	c             *Controller
	pending       []Action
	// usage is the box's memory in MiB at the last step; alive counts the
	// threads with a job running, stuck the steps stuck at the throttle
	// so far.
	usage, alive, stuck int
	// cpu is the box's CPU time: a growing process works, a holding one
	// sleeps (as a test waiting on a child or a timer does), a throttled
	// one sleeps in the kernel.
	cpu time.Duration
	r   simRun
}

func newSimBox(t *testing.T, threads [][]*worker, target, limit, from int, useBP bool) *simBox {
	b := &simBox{t: t, threads: threads, byPID: map[int]*worker{}, target: target, limit: limit, from: from, useBP: useBP, cpu: time.Millisecond,
		c: New(Config{Target: uint64(target) * mib, Main: 1, High: HighFor(uint64(target) * mib), Lift: uint64(limit) * mib})}
	for _, th := range threads {
		for _, w := range th {
			b.byPID[w.pid] = w
		}
	}
	return b
}

// advance runs the box's workers for one step: they grow (throttled past
// memory.high), hold and exit, and the OOM killer takes the largest over
// memory.max.
func (b *simBox) advance(step int) {
	for _, a := range b.pending {
		b.byPID[a.PID].paused = a.Kind == Pause
	}
	high := 1 << 30 // no backpressure: no throttle; going over max is only recorded
	if b.useBP {
		high = int((b.c.High() + mib - 1) / mib) // the kernel throttles only past it
	}
	projected := b.usage
	b.usage, b.alive = 0, 0
	throttled, progress := false, false
	for ti, th := range b.threads {
		// The thread's current job: the first not done.
		var w *worker
		for _, j := range th {
			if !j.done {
				w = j
				break
			}
		}
		if w == nil || step < b.from+ti {
			continue // finished, or this thread starts a little later
		}
		b.alive++
		w.grewLast, w.throttled = false, false
		if w.start < 0 {
			// A process is first seen right after exec, small.
			w.start, w.rss = step, max(w.base, 2)
		} else if !w.paused {
			if w.rss < w.size {
				g := min(w.grow, w.size-w.rss)
				if high < b.limit && projected+g > high {
					// What fits under memory.high is allocated freely;
					// past it the kernel charges each 256 KiB a sleep of
					// 64 f² s, f how far over memory.high the box is (a
					// fraction of it), none below 10 ms, at most 2 s
					// (mm/memcontrol.c).
					free := max(high-projected, 0)
					f := float64(projected+g-high) / float64(high)
					if sleep := min(64*f*f, 2.0); sleep > 0.010 {
						w.credit += 0.25 * 0.010 / sleep
						extra := int(w.credit)
						w.credit -= float64(extra)
						g = min(free+extra, g)
						w.throttled = true
					}
				}
				w.rss += g
				w.grewLast = g > 0
				projected += g
				throttled = throttled || w.throttled
				progress = progress || (g > 0 && !w.throttled)
				if g > 0 && !w.throttled {
					b.cpu += 5 * time.Millisecond
				}
			} else if w.held++; w.held >= w.hold {
				w.done = true
				continue
			} else {
				progress = true
			}
		}
		b.usage += w.rss
	}
	if b.alive > 0 {
		b.usage += 10 // the main process
	}
	if throttled && !progress {
		b.stuck++
		b.r.stuck = max(b.r.stuck, b.stuck)
	} else {
		b.stuck = 0
	}
	if b.usage > b.limit {
		if !b.r.oom && b.useBP && testing.Verbose() {
			b.t.Logf("over memory.max at step %d: %d MiB, paused %v, lifted %d", step, b.usage, b.c.Paused(), b.c.Stats().Lifted)
		}
		b.r.oom = true
		if b.useBP {
			b.kill(b.largest())
		}
	}
}

// largest is the live worker holding the most, the lowest pid of equals
// (so that a run is the same every time: map order is not); nil when none
// runs.
func (b *simBox) largest() *worker {
	var victim *worker
	for _, w := range b.byPID {
		if w.start >= 0 && !w.done && (victim == nil || w.rss > victim.rss || (w.rss == victim.rss && w.pid < victim.pid)) {
			victim = w
		}
	}
	return victim
}

// kill is the OOM killer taking w.
func (b *simBox) kill(w *worker) {
	w.done, w.killed = true, true
	b.usage -= w.rss
	b.r.killed++
}

// done reports whether every thread of the box finished by step.
func (b *simBox) done(step int) bool { return b.alive == 0 && step > b.from }

// look shows the controller the box (and the slice, through view) and
// keeps its actions for the next step.
func (b *simBox) look(step int, view *SliceView) {
	if !b.useBP {
		return
	}
	procs := []Proc{mainProc}
	for _, th := range b.threads {
		for _, w := range th {
			if w.start >= 0 && !w.done {
				procs = append(procs, Proc{PID: w.pid, PPID: 1, Start: uint64(w.start*1000 + w.pid), RSS: uint64(w.rss) * mib,
					Comm: w.comm, Throttled: w.throttled})
				break
			}
		}
	}
	b.pending = b.c.Step(Observation{Now: at(step * 10), Usage: uint64(b.usage) * mib, CPU: b.cpu, Procs: procs, Slice: view})
	for _, a := range b.pending {
		// A pause of a process that did not grow in the step it was
		// seen in, was not throttled and is not just started pauses a
		// flat one.
		if w := b.byPID[a.PID]; a.Kind == Pause && !w.grewLast && !w.throttled && w.start != step {
			b.r.flatPaused = append(b.r.flatPaused, fmt.Sprintf("%d at step %d (%d MiB of %d)", w.pid, step, w.rss, w.size))
		}
	}
}

// simulate runs threads of workers in one box (see simBox). It returns the
// steps taken, whether the box ever went over memory.max (an OOM kill with
// backpressure on) and the kills.
func simulate(t *testing.T, threads [][]*worker, target, limit int, useBP bool) simRun {
	t.Helper()
	b := newSimBox(t, threads, target, limit, 0, useBP)
	for step := 0; step < 100000; step++ {
		b.advance(step)
		if b.done(step) {
			b.r.steps, b.r.c = step, b.c
			return b.r
		}
		b.look(step, nil)
	}
	t.Fatal("simulation did not finish: deadlock")
	return b.r
}

// suite makes a test-suite-like workload: threads run jobs one after
// another; every job is a process of sizeMiB, grown in 5 steps, held for
// hold steps. Each thread first runs a tiny helper (a shell's seq, a
// harness's version probe): they finish first, and must not teach the
// controller that the jobs are small.
func suite(threads, jobs, sizeMiB, hold int) [][]*worker {
	return suiteGrowing(threads, jobs, sizeMiB, hold, sizeMiB/5)
}

// suiteGrowing is suite with jobs growing grow MiB a step: at native
// speed a process allocates its whole size between two looks.
func suiteGrowing(threads, jobs, sizeMiB, hold, grow int) [][]*worker {
	var out [][]*worker
	pid := 100
	for th := 0; th < threads; th++ {
		ws := []*worker{{pid: pid, start: -1, grow: 1, size: 1, hold: 1, comm: "seq"}}
		pid++
		for j := 0; j < jobs; j++ {
			ws = append(ws, &worker{pid: pid, start: -1, grow: grow, size: sizeMiB, hold: hold, comm: "job"})
			pid++
		}
		out = append(out, ws)
	}
	return out
}
