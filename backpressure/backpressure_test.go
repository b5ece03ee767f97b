package backpressure

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"
)

const mib = 1 << 20

var t0 = time.Unix(1000, 0)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// leaf builds a leaf process under the main process 1.
func leaf(pid int, start uint64, rssMiB uint64) Proc {
	return Proc{PID: pid, PPID: 1, Start: start, RSS: rssMiB * mib}
}

// named builds a leaf with a command name.
func named(pid int, start uint64, rssMiB uint64, comm string) Proc {
	p := leaf(pid, start, rssMiB)
	p.Comm = comm
	return p
}

var mainProc = Proc{PID: 1, PPID: 0, Start: 1, RSS: 10 * mib}

func pids(acts []Action, kind Kind) []int {
	var out []int
	for _, a := range acts {
		if a.Kind == kind {
			out = append(out, a.PID)
		}
	}
	sort.Ints(out)
	return out
}

func TestStep(t *testing.T) {
	cfg := Config{Target: 200 * mib, Margin: 20 * mib, MaxPause: 10 * time.Second, Main: 1}
	type step struct {
		ms      int
		usage   uint64 // MiB
		procs   []Proc
		paused  []int
		resumed []int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"below the target nothing happens", []step{
			{0, 90, []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 40)}, nil, nil},
		}},
		{"danger pauses every leaf but the oldest, never main or parents", []step{
			// 2 is the parent of 3, so 3 is the oldest leaf.
			{0, 185, []Proc{mainProc, {PID: 2, PPID: 1, Start: 2, RSS: 5 * mib}, {PID: 3, PPID: 2, Start: 3, RSS: 50 * mib}, leaf(4, 4, 50), leaf(5, 5, 50), leaf(6, 6, 20)}, []int{4, 5, 6}, nil},
		}},
		{"a single running leaf is never paused", []step{
			{0, 199, []Proc{mainProc, leaf(2, 2, 180)}, nil, nil},
		}},
		{"no leaf left running: the oldest paused resumes whatever the memory", []step{
			{0, 190, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 30), leaf(4, 4, 30)}, []int{3, 4}, nil},
			// 2 exited, but memory is still high (page cache, say).
			{10, 190, []Proc{mainProc, leaf(3, 3, 30), leaf(4, 4, 30)}, nil, []int{3}},
		}},
		{"a paused process done growing resumes at once, whatever the memory", []step{
			{0, 195, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30)}, []int{3}, nil},
			// 2 finished at 30 MiB, so 3 has done its growing; 4 runs.
			{10, 195, []Proc{mainProc, leaf(3, 3, 30), leaf(4, 4, 4)}, nil, []int{3}},
		}},
		{"learned size admits what fits and holds back the newest at once", []step{
			{0, 195, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 30)}, []int{3}, nil},
			// 2 finished at 60 MiB: typical is 60. 3 resumes (needs 30 more).
			{10, 70, []Proc{mainProc, leaf(3, 3, 30)}, nil, []int{3}},
			// Three new processes start small. Projected: 73 + 30 + 3*59 = 280
			// is over 180: the two newest are held back before they grow.
			{20, 73, []Proc{mainProc, leaf(3, 3, 30), leaf(7, 7, 1), leaf(8, 8, 1), leaf(9, 9, 1)}, []int{8, 9}, nil},
		}},
		{"a finished helper of another name teaches nothing of the workers' size", []step{
			{0, 60, []Proc{mainProc, named(2, 2, 1, "seq"), named(3, 3, 10, "job"), named(4, 4, 10, "job")}, nil, nil},
			// seq finished small; the jobs' size is still unknown, and
			// above half the box only the oldest of them runs.
			{10, 110, []Proc{mainProc, named(3, 3, 40, "job"), named(4, 4, 40, "job"), named(5, 5, 20, "job"), named(6, 6, 1, "seq")}, []int{4, 5}, nil},
			// 3 finished at 40: 4 and 5 fit again (110 + 2 + 22 < 180).
			{20, 110, []Proc{mainProc, named(4, 4, 40, "job"), named(5, 5, 20, "job")}, nil, []int{4, 5}},
		}},
		{"paused processes resume oldest first as memory frees", []step{
			{0, 195, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 5), leaf(4, 4, 5), leaf(5, 5, 5)}, []int{3, 4, 5}, nil},
			{10, 40, []Proc{mainProc, leaf(3, 3, 5), leaf(4, 4, 5), leaf(5, 5, 5)}, nil, []int{3, 4}},
		}},
		{"a pause never outlasts MaxPause", []step{
			{0, 195, []Proc{mainProc, leaf(2, 2, 100), leaf(3, 3, 50)}, []int{3}, nil},
			{10000, 195, []Proc{mainProc, leaf(2, 2, 100), leaf(3, 3, 50)}, nil, []int{3}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(cfg)
			for i, s := range tt.steps {
				acts := c.Step(Observation{Now: at(s.ms), Usage: s.usage * mib, Procs: s.procs})
				if got := pids(acts, Pause); !reflect.DeepEqual(got, s.paused) {
					t.Errorf("step %d: paused %v, want %v (actions %v)", i, got, s.paused, acts)
				}
				if got := pids(acts, Resume); !reflect.DeepEqual(got, s.resumed) {
					t.Errorf("step %d: resumed %v, want %v (actions %v)", i, got, s.resumed, acts)
				}
				for _, a := range acts {
					if a.PID == cfg.Main {
						t.Errorf("step %d: acted on the main process: %v", i, a)
					}
				}
			}
		})
	}
}

func TestExitWhilePausedAndFinish(t *testing.T) {
	c := New(Config{Target: 100 * mib, Margin: 10 * mib, Main: 1})
	c.Step(Observation{Now: at(0), Usage: 95 * mib, Procs: []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 40), leaf(4, 4, 10)}})
	if got := c.Paused(); len(got) != 2 {
		t.Fatalf("paused %v, want 3 and 4", got)
	}
	// 3 is killed while paused: it is forgotten, its pause counted.
	acts := c.Step(Observation{Now: at(500), Usage: 95 * mib, Procs: []Proc{mainProc, leaf(2, 2, 40), leaf(4, 4, 10)}})
	for _, a := range acts {
		if a.PID == 3 {
			t.Errorf("acted on exited pid 3: %v", a)
		}
	}
	if got := c.Paused(); !reflect.DeepEqual(got, []int{4}) {
		t.Fatalf("paused %v, want [4]", got)
	}
	fin := c.Finish(at(1000))
	if got := pids(fin, Resume); !reflect.DeepEqual(got, []int{4}) {
		t.Fatalf("Finish resumed %v, want [4]", got)
	}
	st := c.Stats()
	if st.Paused != 2 || st.Resumed != 1 || st.LongestPause != time.Second || st.PausedTotal != 1500*time.Millisecond {
		t.Errorf("stats %+v", st)
	}
}

// worker is one simulated test process: it grows to its size, holds it,
// and exits; a paused worker makes no progress. Workers of one thread run one
// after another, as a test harness's threads run tests.
type worker struct {
	pid          int
	start        int // step it started, -1 before
	grow         int // MiB per step while growing
	size, hold   int // MiB; steps to hold once grown
	comm         string
	rss, held    int
	done, paused bool
}

// simulate runs threads of workers in a box of max MiB whose backpressure
// target is target MiB. Actions take effect at the next step, as they do for
// real. Above memory.high (HighFor(target)) the kernel throttles
// allocations; the simulation lets each process grow only 1 MiB a step
// there. It returns the steps taken and whether the box ever went over max
// (an OOM kill for real).
func simulate(t *testing.T, threads [][]*worker, target, max int, useBP bool) (steps int, oom bool, c *Controller) {
	t.Helper()
	c = New(Config{Target: uint64(target) * mib, Main: 1})
	byPID := map[int]*worker{}
	for _, th := range threads {
		for _, w := range th {
			byPID[w.pid] = w
		}
	}
	high := int(HighFor(uint64(target)*mib) / mib)
	if !useBP {
		high = 1 << 30 // no throttling: the run only records going over max
	}
	var pending []Action
	usage := 0
	for step := 0; step < 100000; step++ {
		for _, a := range pending {
			byPID[a.PID].paused = a.Kind == Pause
		}
		// The kernel throttles continuously: once this step's growth takes
		// the box over memory.high, allocators sleep in proportion to the
		// overage; the box as a whole then grows by about 1 MiB a step.
		projected := usage
		usage = 10 // the main process
		procs := []Proc{mainProc}
		alive := 0
		for ti, th := range threads {
			// The thread's current job: the first not done.
			var w *worker
			for _, j := range th {
				if !j.done {
					w = j
					break
				}
			}
			if w == nil || step < ti {
				continue // finished, or this thread starts a little later
			}
			alive++
			if w.start < 0 {
				// A process is first seen right after exec, small.
				w.start, w.rss = step, 2
			} else if !w.paused {
				if w.rss < w.size {
					g := w.grow
					if projected+g > high {
						g = 0
						if projected <= high+1 {
							g = 1
						}
					}
					if w.rss+g > w.size {
						g = w.size - w.rss
					}
					w.rss += g
					projected += g
					if w.rss > w.size {
						w.rss = w.size
					}
				} else if w.held++; w.held >= w.hold {
					w.done = true
					continue
				}
			}
			usage += w.rss
			procs = append(procs, Proc{PID: w.pid, PPID: 1, Start: uint64(w.start*1000 + w.pid), RSS: uint64(w.rss) * mib, Comm: w.comm})
		}
		if usage > max {
			if !oom && useBP && testing.Verbose() {
				t.Logf("over memory.max at step %d: %d MiB, %d procs, paused %v", step, usage, len(procs)-1, c.Paused())
			}
			oom = true
		}
		if alive == 0 && step > 0 {
			return step, oom, c
		}
		if useBP {
			pending = c.Step(Observation{Now: at(step * 10), Usage: uint64(usage) * mib, Procs: procs})
		}
	}
	t.Fatal("simulation did not finish: deadlock")
	return 0, oom, c
}

// suite makes a test-suite-like workload: threads run jobs one after
// another; every job is a process of sizeMiB, grown in 5 steps, held for
// hold steps. Each thread first runs a tiny helper (a shell's seq, a
// harness's version probe): they finish first, and must not teach the
// controller that the jobs are small.
func suite(threads, jobs, sizeMiB, hold int) [][]*worker {
	var out [][]*worker
	pid := 100
	for th := 0; th < threads; th++ {
		ws := []*worker{{pid: pid, start: -1, grow: 1, size: 1, hold: 1, comm: "seq"}}
		pid++
		for j := 0; j < jobs; j++ {
			ws = append(ws, &worker{pid: pid, start: -1, grow: sizeMiB / 5, size: sizeMiB, hold: hold, comm: "job"})
			pid++
		}
		out = append(out, ws)
	}
	return out
}

func TestSimulatedSuiteFinishesWithoutOOM(t *testing.T) {
	// target is where the controller steers (memory.max), max is where the
	// kernel would OOM-kill.
	cases := []struct {
		threads, jobs, size, hold int
		target, max               int
	}{
		{8, 3, 48, 20, 192, 192},   // concurrent demand 2x the box
		{24, 4, 64, 30, 768, 768},  // 24 test threads
		{4, 10, 100, 10, 256, 256}, // few big processes
		{16, 6, 30, 5, 240, 240},   // many short ones
		// Steering under a memory.high below memory.max gives up capacity:
		// demand is 2.4x the target here.
		{12, 5, 40, 15, 200, 256},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%dx%d of %dM in %dM", tc.threads, tc.jobs, tc.size, tc.max), func(t *testing.T) {
			_, oomWithout, _ := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), tc.target, tc.max, false)
			if !oomWithout {
				t.Fatalf("workload fits without backpressure: not a test of it")
			}
			base, _, _ := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), 1<<30, 1<<30, false)
			steps, oom, c := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), tc.target, tc.max, true)
			st := c.Stats()
			t.Logf("steps %d vs %d unboxed (%.2fx); paused %d, forced %d, longest %v, max running %d, typical %dM",
				steps, base, float64(steps)/float64(base), st.Paused, st.ForcedResumes, st.LongestPause, st.MaxRunning, st.Typical/mib)
			if oom {
				t.Errorf("the box went over memory.max: an OOM kill")
			}
			bound := 3.0
			if tc.target < tc.max {
				bound = 4.0
			}
			if float64(steps) > bound*float64(base) {
				t.Errorf("took %d steps, more than %.0fx the unboxed %d", steps, bound, base)
			}
			if st.Paused == 0 {
				t.Errorf("nothing was paused")
			}
		})
	}
}

func TestHighWhileLearning(t *testing.T) {
	cfg := Config{Target: 200 * mib, Margin: 10 * mib, Main: 1, High: 195 * mib}
	tests := []struct {
		name  string
		cfg   Config
		steps []Observation
		want  []uint64 // High() before the first step, then after each
	}{
		{"unmanaged memory.high stays unmanaged", Config{Target: 200 * mib, Main: 1}, []Observation{
			{Now: at(0), Usage: 150 * mib, Procs: []Proc{mainProc, leaf(2, 2, 70), leaf(3, 3, 70)}},
		}, []uint64{0, 0}},
		{"held above the danger line until the box reaches it", cfg, []Observation{
			{Now: at(0), Usage: 80 * mib, Procs: []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30)}},
			{Now: at(10), Usage: 101 * mib, Procs: []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 40)}},
			// Raised for good, even when the box empties again.
			{Now: at(20), Usage: 20 * mib, Procs: []Proc{mainProc, leaf(4, 4, 5)}},
		}, []uint64{110 * mib, 110 * mib, 195 * mib, 195 * mib}},
		{"kept low when a first leaf finishes: a small helper says nothing of the rest", cfg, []Observation{
			{Now: at(0), Usage: 60 * mib, Procs: []Proc{mainProc, leaf(2, 2, 2), leaf(3, 3, 20)}},
			{Now: at(10), Usage: 40 * mib, Procs: []Proc{mainProc, leaf(3, 3, 20)}},
		}, []uint64{110 * mib, 110 * mib, 110 * mib}},
		{"a lone process that outgrows the danger line is not throttled", cfg, []Observation{
			{Now: at(0), Usage: 120 * mib, Procs: []Proc{mainProc, leaf(2, 2, 110)}},
		}, []uint64{110 * mib, 195 * mib}},
		{"never above the steady memory.high", Config{Target: 20 * mib, Margin: 8 * mib, Main: 1, High: 16 * mib}, nil, []uint64{16 * mib}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.cfg)
			got := []uint64{c.High()}
			for _, o := range tt.steps {
				c.Step(o)
				got = append(got, c.High())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("High() = %v MiB, want %v MiB", inMiB(got), inMiB(tt.want))
			}
		})
	}
}

func inMiB(v []uint64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x / mib
	}
	return out
}
