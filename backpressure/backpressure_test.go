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

// kib builds a leaf of rssKiB KiB.
func kib(pid int, start uint64, rssKiB uint64) Proc {
	return Proc{PID: pid, PPID: 1, Start: start, RSS: rssKiB << 10}
}

// named builds a leaf with a command name.
func named(pid int, start uint64, rssMiB uint64, comm string) Proc {
	p := leaf(pid, start, rssMiB)
	p.Comm = comm
	return p
}

// awaited marks p as holding a lock another process waits for.
func awaited(p Proc) Proc {
	p.Awaited = true
	return p
}

// waitsOn marks p as blocked on a lock or a pipe the processes on hold.
func waitsOn(p Proc, on ...int) Proc {
	p.Blocked, p.WaitsFor = true, on
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
		cpu     time.Duration
		procs   []Proc
		paused  []int
		resumed []int
	}
	parent := Proc{PID: 2, PPID: 1, Start: 2, RSS: 5 * mib}
	tests := []struct {
		name  string
		steps []step
	}{
		{"below the target nothing happens", []step{
			{0, 90, 0, []Proc{mainProc, leaf(2, 2, 12), leaf(3, 3, 12)}, nil, nil},
			{10, 120, 0, []Proc{mainProc, leaf(2, 2, 19), leaf(3, 3, 19)}, nil, nil},
		}},
		{"two growers of unknown size, larger than the margin: room for the largest", []step{
			{0, 90, 0, []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 40)}, nil, nil},
			// Each grew 15M: 120 + 2x30 = 180 is at the old line, but
			// the one kept going needs room to grow as large as the
			// largest (55M, 56.25M in steps of 200/32): the line is
			// 143.75M, and the younger is held back.
			{10, 120, 0, []Proc{mainProc, leaf(2, 2, 55), leaf(3, 3, 55)}, []int{3}, nil},
		}},
		{"flat processes are never paused, even at the target", []step{
			{0, 150, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 60)}, nil, nil},
			// 4 is seen for the first time, already grown: no growth shown.
			{10, 195, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 60), leaf(4, 4, 60)}, nil, nil},
			{20, 199, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 60), leaf(4, 4, 60)}, nil, nil},
		}},
		{"at the target every growing leaf but the oldest is paused, never main or parents", []step{
			{0, 100, 0, []Proc{mainProc, parent, {PID: 3, PPID: 2, Start: 3, RSS: 30 * mib}, leaf(4, 4, 30), leaf(5, 5, 30), leaf(6, 6, 5)}, nil, nil},
			// 2 is the parent of 3, so 3 is the oldest leaf; 6 holds flat.
			{10, 185, 0, []Proc{mainProc, parent, {PID: 3, PPID: 2, Start: 3, RSS: 50 * mib}, leaf(4, 4, 50), leaf(5, 5, 50), leaf(6, 6, 5)}, []int{4, 5}, nil},
		}},
		{"at the target, processes crawling at memory.high's throttle count as growing", []step{
			{0, 150, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 60), kib(4, 4, 60<<10)}, nil, nil},
			{10, 185, 0, []Proc{mainProc, kib(2, 2, 60<<10+100), kib(3, 3, 60<<10+100), kib(4, 4, 60<<10+8)}, []int{3}, nil},
		}},
		{"below the target, a crawl is noise", []step{
			{0, 150, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 60)}, nil, nil},
			{10, 170, 0, []Proc{mainProc, kib(2, 2, 60<<10+500), kib(3, 3, 60<<10+500)}, nil, nil},
		}},
		{"fast growth of unknown size is braked before the target, newest first", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 30)}, nil, nil},
			// Each grew 20M: two more looks take the box to 280M.
			{10, 160, 0, []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 50), leaf(4, 4, 50)}, []int{3, 4}, nil},
		}},
		{"a single running leaf is never paused", []step{
			{0, 150, 0, []Proc{mainProc, leaf(2, 2, 100)}, nil, nil},
			{10, 199, 0, []Proc{mainProc, leaf(2, 2, 150)}, nil, nil},
		}},
		{"no leaf left running: the paused one holding the most resumes whatever the memory", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 40), leaf(3, 3, 20), leaf(4, 4, 10)}, nil, nil},
			{10, 190, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 30)}, []int{3, 4}, nil},
			// 2 exited, but memory is still high (page cache, say).
			{20, 190, 0, []Proc{mainProc, leaf(3, 3, 40), leaf(4, 4, 30)}, nil, []int{3}},
		}},
		{"a paused process that holds its kind's peak resumes at once, whatever the memory", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, nil, nil},
			{10, 195, 0, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30)}, []int{3}, nil},
			// 2 finished at 30M: 3 has done its growing.
			{20, 195, 0, []Proc{mainProc, leaf(3, 3, 30), leaf(4, 4, 2)}, nil, []int{3}},
		}},
		{"a learned size admits what fits and holds back new processes at the door", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, nil, nil},
			{10, 150, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 30)}, []int{3}, nil},
			// 2 finished at 60M: 3 needs 33M more, which fits.
			{20, 70, 0, []Proc{mainProc, leaf(3, 3, 30)}, nil, []int{3}},
			// Three new ones, seen just started: 75 + 33 + 3*62 is over
			// 180; the oldest new one runs, the two newest wait.
			{30, 75, 0, []Proc{mainProc, leaf(3, 3, 30), leaf(7, 7, 1), leaf(8, 8, 1), leaf(9, 9, 1)}, []int{8, 9}, nil},
		}},
		{"a finished helper of another name teaches nothing of the workers' size", []step{
			{0, 60, 0, []Proc{mainProc, named(2, 2, 1, "seq"), named(3, 3, 10, "job"), named(4, 4, 10, "job")}, nil, nil},
			// seq finished small; the jobs grow 30M a look, of unknown size.
			{10, 110, 0, []Proc{mainProc, named(3, 3, 40, "job"), named(4, 4, 40, "job"), named(5, 5, 20, "job"), named(6, 6, 1, "seq")}, []int{4}, nil},
		}},
		{"paused processes resume as memory frees, while they fit", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 5), leaf(4, 4, 5), leaf(5, 5, 5)}, nil, nil},
			{10, 195, 0, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 10), leaf(4, 4, 10), leaf(5, 5, 10)}, []int{3, 4, 5}, nil},
			// 2 finished at 60M: each needs 53M; two fit.
			{20, 40, 0, []Proc{mainProc, leaf(3, 3, 10), leaf(4, 4, 10), leaf(5, 5, 10)}, nil, []int{3, 4}},
		}},
		{"a paused process of unknown size waits for room for its largest live sibling", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 10), leaf(3, 3, 10)}, nil, nil},
			{10, 185, 0, []Proc{mainProc, leaf(2, 2, 80), leaf(3, 3, 20)}, []int{3}, nil},
			// 2 holds 80M flat: 3 may grow as far, and 150 + 60 is over 180.
			{20, 150, 0, []Proc{mainProc, leaf(2, 2, 80), leaf(3, 3, 20)}, nil, nil},
		}},
		{"a pause never outlasts MaxPause", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 20)}, nil, nil},
			{10, 195, 0, []Proc{mainProc, leaf(2, 2, 100), leaf(3, 3, 50)}, []int{3}, nil},
			{10010, 195, 0, []Proc{mainProc, leaf(2, 2, 100), leaf(3, 3, 50)}, nil, []int{3}},
		}},
		{"no CPU used while paused: the one holding the most resumes if it fits, then a hold-off", []step{
			{0, 100, time.Second, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 10)}, nil, nil},
			{10, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}, []int{3, 4}, nil},
			// 2 holds flat and sleeps: the box uses no CPU. 3 may grow
			// as large as 2 (20M more): not below the line, but it fits
			// below the target.
			{100, 175, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}, nil, nil},
			{300, 175, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}, nil, []int{3}},
			// 3 grows at the target, exempt while its hold-off lasts.
			{400, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 55), leaf(4, 4, 20)}, nil, nil},
			// Stalled again, but 3 still has its hold-off: 4 waits.
			{700, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 55), leaf(4, 4, 20)}, nil, nil},
			// Still stalled, the hold-off over: 4 may grow 40M, to the
			// largest, and 190 + 40 is over the target: resumed, it
			// would meet memory.max. It waits for the sleepers.
			{2400, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 55), leaf(4, 4, 20)}, nil, nil},
			{5000, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 55), leaf(4, 4, 20)}, nil, nil},
			// 2 finished: 4 fits below the line.
			{5100, 130, 1100 * time.Millisecond, []Proc{mainProc, leaf(3, 3, 55), leaf(4, 4, 20)}, nil, []int{4}},
		}},
		{"a stall where every running leaf waits for a paused one: it resumes whatever the memory", []step{
			{0, 100, time.Second, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 10)}, nil, nil},
			{10, 190, 1100 * time.Millisecond, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}, []int{3, 4}, nil},
			// 2 sleeps on a full pipe 4 reads: neither 3 nor 4 fits below
			// the target, but nothing running can free anything. 4, the
			// one 2 waits for, resumes, though 3 holds more.
			{100, 190, 1100 * time.Millisecond, []Proc{mainProc, waitsOn(leaf(2, 2, 60), 4), leaf(3, 3, 40), leaf(4, 4, 20)}, nil, nil},
			{300, 190, 1100 * time.Millisecond, []Proc{mainProc, waitsOn(leaf(2, 2, 60), 4), leaf(3, 3, 40), leaf(4, 4, 20)}, nil, []int{4}},
		}},
		{"at the target the grower holding the most keeps going, whatever its age", []step{
			{0, 100, 0, []Proc{mainProc, leaf(3, 3, 10), leaf(4, 4, 30), leaf(5, 5, 20)}, nil, nil},
			// 4 holds the most: 3, older but holding least, waits.
			{10, 185, 0, []Proc{mainProc, leaf(3, 3, 20), leaf(4, 4, 50), leaf(5, 5, 40)}, []int{3, 5}, nil},
		}},
		{"admission holds back the growers holding the least first", []step{
			{0, 120, 0, []Proc{mainProc, leaf(3, 3, 5), leaf(4, 4, 18), leaf(5, 5, 13)}, nil, nil},
			// Each grew: two more looks of it are 20M, 4M and 12M, and
			// 150 + 36 = 186 is over 180 (the largest, 20M, is no more
			// than the margin: no extra room); 3, the oldest but
			// smallest, is the first held back, and the rest fits.
			{10, 150, 0, []Proc{mainProc, leaf(3, 3, 15), leaf(4, 4, 20), leaf(5, 5, 19)}, []int{3}, nil},
		}},
		{"the holder of a lock others wait for is never paused; at the target the next one grows", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 30)}, nil, nil},
			// 4, the newest, holds the lock 2 waits for: 2 is flat, 4
			// keeps going and 3, the oldest other grower, is paused.
			{10, 185, 0, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 50), awaited(leaf(4, 4, 50))}, []int{3}, nil},
		}},
		{"a paused process that others come to wait for resumes at once", []step{
			{0, 100, 0, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 30)}, nil, nil},
			{10, 185, 0, []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 50), leaf(4, 4, 50)}, []int{3, 4}, nil},
			// 4 took a lock before it was paused; 2 now waits for it.
			{20, 185, 0, []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 50), awaited(leaf(4, 4, 50))}, nil, []int{4}},
			// Still awaited, growing at the target: not paused again.
			{30, 190, 0, []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 50), awaited(leaf(4, 4, 55))}, nil, nil},
		}},
		{"a box that uses CPU is not stalled", []step{
			{0, 100, time.Second, []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 10)}, nil, nil},
			{10, 190, 2 * time.Second, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40)}, []int{3}, nil},
			{300, 190, 3 * time.Second, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40)}, nil, nil},
			{600, 190, 4 * time.Second, []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40)}, nil, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(cfg)
			for i, s := range tt.steps {
				acts := c.Step(Observation{Now: at(s.ms), Usage: s.usage * mib, CPU: s.cpu, Procs: s.procs})
				if got := pids(acts, Pause); !reflect.DeepEqual(got, s.paused) {
					t.Errorf("step %d: paused %v, want %v (actions %v)", i, got, s.paused, acts)
				}
				if got := pids(acts, Resume); !reflect.DeepEqual(got, s.resumed) {
					t.Errorf("step %d: resumed %v, want %v (actions %v)", i, got, s.resumed, acts)
				}
				for _, a := range acts {
					if a.PID == cfg.Main || a.PID == parent.PID {
						t.Errorf("step %d: acted on the main process or a parent: %v", i, a)
					}
				}
			}
		})
	}
}

// TestKnownSizes steps a box whose controller starts with sizes an earlier
// run learned (Config.Known): they hold back and admit processes of their
// name as sizes learned in this run do, until this run's own evidence
// replaces them.
func TestKnownSizes(t *testing.T) {
	type step struct {
		ms      int
		usage   uint64 // MiB
		procs   []Proc
		paused  []int
		resumed []int
	}
	job := func(pid int, rssMiB uint64) Proc { return named(pid, uint64(pid), rssMiB, "job") }
	tests := []struct {
		name  string
		known map[string]uint64
		steps []step
	}{
		{"a known size holds back just-started processes at the door", map[string]uint64{"job": 60 * mib}, []step{
			// Each is expected to add 62M: 20 + 4*62 is over 180; the
			// oldest runs, the two newest wait.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1), job(5, 1)}, []int{4, 5}, nil},
		}},
		{"without a known size the same start holds nothing back", nil, []step{
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1), job(5, 1)}, nil, nil},
		}},
		{"a known size admits what fits", map[string]uint64{"job": 30 * mib}, []step{
			// 20 + 4*30.5 fits under 180.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1), job(5, 1)}, nil, nil},
		}},
		{"a known size of another name says nothing of this one", map[string]uint64{"link": 600 * mib}, []step{
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1), job(5, 1)}, nil, nil},
		}},
		{"this run's evidence overrides a stale known size", map[string]uint64{"job": 150 * mib}, []step{
			// Expected to add 156M each: 3 waits at the door.
			{0, 20, []Proc{mainProc, job(2, 1), job(3, 1)}, []int{3}, nil},
			{10, 40, []Proc{mainProc, job(2, 20), job(3, 1)}, nil, nil},
			// 2 finished at 20M: a job needs 20M more, not 156M.
			{20, 15, []Proc{mainProc, job(3, 1)}, nil, []int{3}},
			// Four more start: 20 + 5*20 fits, nothing waits.
			{30, 20, []Proc{mainProc, job(3, 1), job(4, 1), job(5, 1), job(6, 1), job(7, 1)}, nil, nil},
		}},
		{"a newcomer does not take the room the first in line waits for; an overdue pause goes first",
			map[string]uint64{"job": 60 * mib, "small": 20 * mib}, []step{
				// Each job is expected to add 62M: 4 waits at the door.
				{0, 20, []Proc{mainProc, job(2, 1), job(3, 1), job(4, 1)}, []int{4}, nil},
				// Two small ones start: 100 + 23 + 23 + 20 + 20 is over
				// 180 by 6M: 7, holding the least, is held back.
				{10, 100, []Proc{mainProc, job(2, 40), job(3, 40), job(4, 1), named(6, 6, 1, "small"), named(7, 7, 1, "small")}, []int{7}, nil},
				// 4 is overdue: 6 grows into the room 4 waits for (100 +
				// 18 + 23 + 13 fits, with 4's 62M it does not), and is
				// held back though it would fit.
				{5000, 100, []Proc{mainProc, job(2, 45), job(3, 40), job(4, 1), named(6, 6, 8, "small"), named(7, 7, 1, "small")}, []int{6}, nil},
				// 3 finished at 40M; 2 holds flat. 4 (41M more) and 7
				// (20M), paused 5 s, go first, the longest paused first,
				// ahead of 6, which needs the least (13M) but would not
				// fit after them.
				{5010, 110, []Proc{mainProc, job(2, 45), job(4, 1), named(6, 6, 8, "small"), named(7, 7, 1, "small")}, nil, []int{4, 7}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Target: 200 * mib, Margin: 20 * mib, Main: 1, Known: tt.known})
			for i, s := range tt.steps {
				acts := c.Step(Observation{Now: at(s.ms), Usage: s.usage * mib, Procs: s.procs})
				if got := pids(acts, Pause); !reflect.DeepEqual(got, s.paused) {
					t.Errorf("step %d: paused %v, want %v (actions %v)", i, got, s.paused, acts)
				}
				if got := pids(acts, Resume); !reflect.DeepEqual(got, s.resumed) {
					t.Errorf("step %d: resumed %v, want %v (actions %v)", i, got, s.resumed, acts)
				}
			}
		})
	}
}

// TestSizes checks what a run knows of its sizes at its end: this run's
// typical peak of each name of which a leaf finished, and the known size
// of every name it never finished.
func TestSizes(t *testing.T) {
	parent := Proc{PID: 9, PPID: 1, Start: 9, RSS: 50 * mib, Comm: "sh"}
	child := Proc{PID: 10, PPID: 9, Start: 10, RSS: 7 * mib, Comm: "cc"}
	tests := []struct {
		name  string
		known map[string]uint64
		// looks are the processes of the box at each look, usage 50M.
		looks   [][]Proc
		want    map[string]Size
		learned int
	}{
		{"a run that ended before anything finished keeps the known sizes",
			map[string]uint64{"job": 60 * mib, "link": 300 * mib},
			[][]Proc{{mainProc, named(2, 2, 10, "job")}},
			map[string]Size{"job": {60 * mib, false}, "link": {300 * mib, false}}, 0},
		{"this run's upper quartile replaces a known size; the names it never finished are kept",
			map[string]uint64{"job": 60 * mib, "link": 300 * mib},
			[][]Proc{
				{mainProc, named(2, 2, 10, "job"), named(3, 3, 20, "job"), named(4, 4, 30, "job"), named(5, 5, 40, "job"), named(6, 6, 5, "cc")},
				{mainProc},
			},
			map[string]Size{"job": {40 * mib, true}, "link": {300 * mib, false}, "cc": {5 * mib, true}}, 2},
		{"without known sizes, only what the run learned",
			nil,
			[][]Proc{{mainProc, named(2, 2, 10, "job")}, {mainProc}},
			map[string]Size{"job": {10 * mib, true}}, 1},
		{"the command itself and parents teach nothing",
			map[string]uint64{"sh": 0},
			[][]Proc{{mainProc, parent, child}, {}},
			map[string]Size{"cc": {7 * mib, true}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.known)
			c := New(Config{Target: 200 * mib, Margin: 20 * mib, Main: 1, Known: tt.known})
			for i, procs := range tt.looks {
				c.Step(Observation{Now: at(10 * i), Usage: 50 * mib, Procs: procs})
			}
			c.Finish(at(10 * len(tt.looks)))
			if got := c.Sizes(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Sizes() = %v, want %v", got, tt.want)
			}
			if got := c.Stats().Learned; got != tt.learned {
				t.Errorf("Stats().Learned = %d, want %d", got, tt.learned)
			}
			if after := fmt.Sprint(tt.known); after != before {
				t.Errorf("Known changed from %s to %s", before, after)
			}
		})
	}
}

func TestExitWhilePausedAndFinish(t *testing.T) {
	c := New(Config{Target: 100 * mib, Margin: 10 * mib, Main: 1})
	c.Step(Observation{Now: at(0), Usage: 50 * mib, Procs: []Proc{mainProc, leaf(2, 2, 20), leaf(3, 3, 20), leaf(4, 4, 5)}})
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
	if st.Paused != 2 || st.Resumed != 1 || st.LongestPause != time.Second || st.PausedTotal != 1500*time.Millisecond || st.PausedAtEnd != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.LongestReason != WhyAtTarget || len(st.Reasons) != 1 || st.Reasons[0].Count != 2 {
		t.Errorf("reasons: longest %q, %+v; want both pauses counted under %q", st.LongestReason, st.Reasons, WhyAtTarget)
	}
}

// TestBlocked: the report's blocked time counts, for each unpaused
// process, the time it waited for a lock a paused one holds, and a stall
// that ended in a forced resume for each leaf left running.
func TestBlocked(t *testing.T) {
	cfg := Config{Target: 200 * mib, Margin: 20 * mib, Main: 1}
	waiter := func(pid int, on ...int) Proc {
		p := leaf(pid, uint64(pid), 5)
		p.Blocked, p.WaitsFor = true, on
		return p
	}
	t.Run("a lock waiter while its holder is paused", func(t *testing.T) {
		c := New(cfg)
		c.Step(Observation{Now: at(0), Usage: 100 * mib, Procs: []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30)}})
		c.Step(Observation{Now: at(10), Usage: 185 * mib, Procs: []Proc{mainProc, leaf(2, 2, 50), leaf(3, 3, 45)}})
		if got := c.Paused(); !reflect.DeepEqual(got, []int{3}) {
			t.Fatalf("paused %v, want [3]", got)
		}
		// 5 waits for 3's lock (and for 2's, which runs): held up from
		// the last look on; 3, awaited, resumes.
		acts := c.Step(Observation{Now: at(30), Usage: 185 * mib, Procs: []Proc{mainProc, leaf(2, 2, 50), awaited(leaf(3, 3, 45)), waiter(5, 2, 3)}})
		if got := pids(acts, Resume); !reflect.DeepEqual(got, []int{3}) {
			t.Fatalf("resumed %v, want [3]", got)
		}
		// Still waiting, for a holder that runs: not held up by backpressure.
		c.Step(Observation{Now: at(40), Usage: 185 * mib, Procs: []Proc{mainProc, leaf(2, 2, 50), awaited(leaf(3, 3, 45)), waiter(5, 3)}})
		if got := c.Stats().Blocked; got != 20*time.Millisecond {
			t.Errorf("blocked %v, want 20ms", got)
		}
	})
	t.Run("a stall ended by a forced resume", func(t *testing.T) {
		c := New(cfg)
		c.Step(Observation{Now: at(0), Usage: 100 * mib, CPU: time.Second, Procs: []Proc{mainProc, leaf(2, 2, 30), leaf(3, 3, 30), leaf(4, 4, 10)}})
		c.Step(Observation{Now: at(10), Usage: 190 * mib, CPU: 1100 * time.Millisecond, Procs: []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}})
		c.Step(Observation{Now: at(100), Usage: 175 * mib, CPU: 1100 * time.Millisecond, Procs: []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}})
		if got := c.Stats().Blocked; got != 0 {
			t.Errorf("blocked %v before the stall was long enough to act on, want 0", got)
		}
		acts := c.Step(Observation{Now: at(300), Usage: 175 * mib, CPU: 1100 * time.Millisecond, Procs: []Proc{mainProc, leaf(2, 2, 60), leaf(3, 3, 40), leaf(4, 4, 20)}})
		if got := pids(acts, Resume); !reflect.DeepEqual(got, []int{3}) {
			t.Fatalf("resumed %v, want [3]", got)
		}
		// 2 ran alone, using no CPU, from the look at 10 ms to 300 ms.
		if got := c.Stats().Blocked; got != 290*time.Millisecond {
			t.Errorf("blocked %v, want 290ms", got)
		}
	})
}

// TestWhatTeachesASize: only a leaf that never had a child teaches its
// kind's size when it exits, and a process that outgrew its kind's size is
// of unknown size again.
func TestWhatTeachesASize(t *testing.T) {
	c := New(Config{Target: 200 * mib, Main: 1})
	// A harness (90M: its fixtures) of the same name as its child, as a
	// test binary re-executing itself is: the child finishes at 40M, then
	// the harness, a leaf for its last look.
	waiter := named(2, 2, 90, "job")
	child := Proc{PID: 3, PPID: 2, Start: 3, RSS: 40 * mib, Comm: "job"}
	c.Step(Observation{Now: at(0), Usage: 140 * mib, Procs: []Proc{mainProc, waiter, child}})
	c.Step(Observation{Now: at(10), Usage: 100 * mib, Procs: []Proc{mainProc, waiter}})
	c.Step(Observation{Now: at(20), Usage: 10 * mib, Procs: []Proc{mainProc}})
	if got := c.Sizes(); !reflect.DeepEqual(got, map[string]Size{"job": {Peak: 40 * mib, Learned: true}}) {
		t.Errorf("sizes %v; want job at 40M, from the child alone: the harness was a parent", got)
	}
	// Two of the kind grow past 42M (40M and a twentieth): their size is
	// unknown, so the room kept below the target is for the largest.
	c.Step(Observation{Now: at(30), Usage: 100 * mib, Procs: []Proc{mainProc, named(4, 4, 40, "job"), named(5, 5, 40, "job")}})
	c.Step(Observation{Now: at(40), Usage: 150 * mib, Procs: []Proc{mainProc, named(4, 4, 70, "job"), named(5, 5, 60, "job")}})
	if got, want := c.Line(), uint64(200-75)*mib; got != want {
		t.Errorf("line %dM; want %dM: room for the largest (70M, in steps of 200/32)", got/mib, want/mib)
	}
	if got := c.Paused(); !reflect.DeepEqual(got, []int{5}) {
		t.Errorf("paused %v; want [5]: over the line, the grower holding the most goes on", got)
	}
}

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

// simulate runs threads of workers in a box of max MiB whose backpressure
// target is target MiB. Actions take effect at the next step, as they do for
// real. Above memory.high (the controller's High(): HighFor(target), or
// max while it lifts the throttle) the kernel throttles allocations as
// mm/memcontrol.c does, slower the further over the box is, and the
// throttled allocator is seen Throttled. At memory.max it OOM-kills the process holding the
// most, paused or not. It returns the steps taken, whether the box ever
// went over memory.max (an OOM kill with backpressure on) and the kills.
//
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

func simulate(t *testing.T, threads [][]*worker, target, limit int, useBP bool) simRun {
	t.Helper()
	var r simRun
	c := New(Config{Target: uint64(target) * mib, Main: 1, High: HighFor(uint64(target) * mib), Lift: uint64(limit) * mib})
	byPID := map[int]*worker{}
	for _, th := range threads {
		for _, w := range th {
			byPID[w.pid] = w
		}
	}
	var pending []Action
	usage, stuck := 0, 0
	// cpu is the box's CPU time: a growing process works, a holding one
	// sleeps (as a test waiting on a child or a timer does), a throttled
	// one sleeps in the kernel.
	cpu := time.Millisecond
	for step := 0; step < 100000; step++ {
		for _, a := range pending {
			byPID[a.PID].paused = a.Kind == Pause
		}
		high := 1 << 30 // no backpressure: no throttle; going over max is only recorded
		if useBP {
			high = int((c.High() + mib - 1) / mib) // the kernel throttles only past it
		}
		projected := usage
		usage = 10 // the main process
		procs := []Proc{mainProc}
		alive := 0
		throttled, progress := false, false
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
			w.grewLast, w.throttled = false, false
			if w.start < 0 {
				// A process is first seen right after exec, small.
				w.start, w.rss = step, max(w.base, 2)
			} else if !w.paused {
				if w.rss < w.size {
					g := min(w.grow, w.size-w.rss)
					if high < limit && projected+g > high {
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
						cpu += 5 * time.Millisecond
					}
				} else if w.held++; w.held >= w.hold {
					w.done = true
					continue
				} else {
					progress = true
				}
			}
			usage += w.rss
		}
		if throttled && !progress {
			stuck++
			r.stuck = max(r.stuck, stuck)
		} else {
			stuck = 0
		}
		if usage > limit {
			if !r.oom && useBP && testing.Verbose() {
				t.Logf("over memory.max at step %d: %d MiB, paused %v, lifted %d", step, usage, c.Paused(), c.Stats().Lifted)
			}
			r.oom = true
			if useBP {
				// The OOM killer takes the largest process.
				var victim *worker
				for _, w := range byPID {
					// Ties go to the lowest pid, so that a run is the
					// same every time (map order is not).
					if w.start >= 0 && !w.done && (victim == nil || w.rss > victim.rss || (w.rss == victim.rss && w.pid < victim.pid)) {
						victim = w
					}
				}
				victim.done, victim.killed = true, true
				usage -= victim.rss
				r.killed++
			}
		}
		for _, th := range threads {
			for _, w := range th {
				if w.start >= 0 && !w.done {
					procs = append(procs, Proc{PID: w.pid, PPID: 1, Start: uint64(w.start*1000 + w.pid), RSS: uint64(w.rss) * mib,
						Comm: w.comm, Throttled: w.throttled})
					break
				}
			}
		}
		if alive == 0 && step > 0 {
			r.steps, r.c = step, c
			return r
		}
		if useBP {
			pending = c.Step(Observation{Now: at(step * 10), Usage: uint64(usage) * mib, CPU: cpu, Procs: procs})
			for _, a := range pending {
				// A pause of a process that did not grow in the step it
				// was seen in, was not throttled and is not just started
				// pauses a flat one.
				if w := byPID[a.PID]; a.Kind == Pause && !w.grewLast && !w.throttled && w.start != step {
					r.flatPaused = append(r.flatPaused, fmt.Sprintf("%d at step %d (%d MiB of %d)", w.pid, step, w.rss, w.size))
				}
			}
		}
	}
	t.Fatal("simulation did not finish: deadlock")
	return r
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
			oomWithout := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), tc.target, tc.max, false).oom
			if !oomWithout {
				t.Fatalf("workload fits without backpressure: not a test of it")
			}
			base := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), 1<<30, 1<<30, false).steps
			r := simulate(t, suite(tc.threads, tc.jobs, tc.size, tc.hold), tc.target, tc.max, true)
			steps, oom, c, flat := r.steps, r.oom, r.c, r.flatPaused
			st := c.Stats()
			t.Logf("steps %d vs %d unboxed (%.2fx); paused %d, forced %d, longest %v, max running %d, typical %dM",
				steps, base, float64(steps)/float64(base), st.Paused, st.ForcedResumes, st.LongestPause, st.MaxRunning, st.Typical/mib)
			if oom {
				t.Errorf("the box went over memory.max: an OOM kill")
			}
			if len(flat) > 0 {
				t.Errorf("paused processes that held flat: %v", flat)
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

func TestHighIsThePolicys(t *testing.T) {
	for _, high := range []uint64{0, 195 * mib} {
		c := New(Config{Target: 200 * mib, Main: 1, High: high})
		got := []uint64{c.High()}
		c.Step(Observation{Now: at(0), Usage: 150 * mib, Procs: []Proc{mainProc, leaf(2, 2, 70), leaf(3, 3, 70)}})
		c.Step(Observation{Now: at(10), Usage: 199 * mib, Procs: []Proc{mainProc, leaf(2, 2, 90), leaf(3, 3, 90)}})
		got = append(got, c.High())
		if got[0] != high || got[1] != high {
			t.Errorf("High() = %v MiB, want %d MiB throughout: nothing is throttled below the policy's line", inMiB(got), high/mib)
		}
	}
}

func inMiB(v []uint64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x / mib
	}
	return out
}

// TestSimulatedNativeSpeed runs bursts whose processes allocate their whole
// size in one step, as they do natively between two 10 ms looks, then hold
// it flat: the native machine's burst of 24 at once, 150M each. In a box it
// fits in nothing is paused; in one it overfills every job finishes with no
// OOM kill and no deadlock; in neither is a flat process ever paused.
func TestSimulatedNativeSpeed(t *testing.T) {
	cases := []struct {
		name                      string
		threads, jobs, size, hold int
		box                       int
		fits                      bool
	}{
		{"24 at once of 150M in 6000M: fits", 24, 4, 150, 50, 6000, true},
		{"24 at once of 150M in 3000M: overfills", 24, 4, 150, 50, 3000, false},
		{"24 at once of 60M in 1000M: overfills", 24, 2, 60, 20, 1000, false},
		{"8 at once of 40M in 400M: fits", 8, 6, 40, 10, 400, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jobs := func() [][]*worker { return suiteGrowing(tc.threads, tc.jobs, tc.size, tc.hold, tc.size) }
			base := simulate(t, jobs(), 1<<30, 1<<30, false).steps
			r := simulate(t, jobs(), tc.box, tc.box, true)
			steps, oom, c, flat := r.steps, r.oom, r.c, r.flatPaused
			st := c.Stats()
			t.Logf("steps %d vs %d unboxed (%.2fx); paused %d, forced %d %v, longest %v, max running %d",
				steps, base, float64(steps)/float64(base), st.Paused, st.ForcedResumes, st.Forced, st.LongestPause, st.MaxRunning)
			if len(flat) > 0 {
				t.Errorf("paused processes that held flat: %v", flat)
			}
			if oom {
				t.Errorf("the box went over memory.max: an OOM kill")
			}
			if tc.fits && (st.Paused > 0 || steps != base) {
				t.Errorf("a burst that fits was paused %d times and took %d steps against %d unboxed", st.Paused, steps, base)
			}
			if !tc.fits && st.LongestPause >= 10*time.Second {
				t.Errorf("a pause of %v; want none of 10 s or more", st.LongestPause)
			}
		})
	}
}

// TestSimulatedOvercommitted runs processes that hold what they allocate
// for 15 s and together want more than the box, so that paused processes
// keep memory the running ones need. The box must not sit at memory.high's
// throttle for longer than LiftAfter: the controller lifts it, the kernel
// OOM-kills at memory.max if it must, and no more die than must.
func TestSimulatedOvercommitted(t *testing.T) {
	cases := []struct {
		name                     string
		threads, size, grow, box int
	}{
		{"4 of 40M in 96M, growing 8M a look", 4, 40, 8, 96},
		{"4 of 40M in 96M at native speed", 4, 40, 40, 96},
		{"12 of 100M in 600M", 12, 100, 20, 600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each holds what it allocated for 15 s, longer than
			// LiftAfter: waiting for one to finish is not the way out.
			jobs := func() [][]*worker { return suiteGrowing(tc.threads, 1, tc.size, 1500, tc.grow) }
			base := simulate(t, jobs(), 1<<30, 1<<30, false).steps
			r := simulate(t, jobs(), tc.box, tc.box, true)
			st := r.c.Stats()
			t.Logf("steps %d vs %d unboxed (%.2fx); paused %d, forced %v, lifted %d, killed %d of %d, longest stuck at the throttle %d steps",
				r.steps, base, float64(r.steps)/float64(base), st.Paused, st.Forced, st.Lifted, r.killed, tc.threads, r.stuck)
			if len(r.flatPaused) > 0 {
				t.Errorf("paused processes that held flat: %v", r.flatPaused)
			}
			if st.Lifted == 0 {
				t.Errorf("memory.high was never lifted: the box could only wait at the throttle for a holder to finish")
			}
			if fits := (tc.box - 10) / tc.size; tc.threads-r.killed < fits {
				t.Errorf("%d of %d processes finished; the box holds %d at once: more were killed than had to be", tc.threads-r.killed, tc.threads, fits)
			}
			// Stuck for LiftAfter (500 looks), then a look to lift and
			// the allocators' way up to memory.max.
			if r.stuck > 520 {
				t.Errorf("the box sat stuck at the throttle for %d looks; want the throttle lifted after 500", r.stuck)
			}
		})
	}
}

func throttledLeaf(pid int, start uint64, rssMiB uint64) Proc {
	p := leaf(pid, start, rssMiB)
	p.Throttled = true
	return p
}

// TestThrottleLift steps a box stuck at memory.high: the older allocator
// runs throttled, using 3 % of a CPU in reclaim, the younger is paused
// holding what it has, nothing exits. With a Lift the throttle gives way
// half a margin at a time, each LiftAfter, from LiftAfter after the box
// reached the line, and comes back once memory falls below it; without
// one (a memory.high the user set) it never does.
func TestThrottleLift(t *testing.T) {
	for _, lift := range []uint64{0, 200 * mib} {
		t.Run(fmt.Sprintf("lift %d MiB", lift/mib), func(t *testing.T) {
			c := New(Config{Target: 200 * mib, Main: 1, High: 180 * mib, Lift: lift})
			cpu := time.Second
			obs := func(ms int, usage uint64, procs ...Proc) []Action {
				cpu += 300 * time.Microsecond
				return c.Step(Observation{Now: at(ms), Usage: usage * mib, CPU: cpu, Procs: append([]Proc{mainProc}, procs...)})
			}
			// Both allocators crawl at the throttle: the younger is paused
			// although its resident size did not move.
			obs(0, 150, leaf(2, 2, 90), leaf(3, 3, 50))
			acts := obs(10, 182, throttledLeaf(2, 2, 120), throttledLeaf(3, 3, 50))
			if got := pids(acts, Pause); !reflect.DeepEqual(got, []int{3}) {
				t.Fatalf("at the line paused %v, want the younger throttled allocator [3]", got)
			}
			lifted := -1
			for ms := 20; ms <= 3000; ms += 10 {
				obs(ms, 182, throttledLeaf(2, 2, 120), leaf(3, 3, 50))
				if lifted < 0 && c.High() != 180*mib {
					lifted = ms
					if c.High() != 192*mib {
						t.Errorf("first lift to %d MiB, want 192 MiB: usage and half a margin", c.High()/mib)
					}
				}
			}
			if lift == 0 {
				if lifted >= 0 || c.Stats().Lifted != 0 {
					t.Fatalf("memory.high changed to %d MiB with no Lift", c.High()/mib)
				}
				return
			}
			// Half a margin (10 MiB) over usage at 1000 ms, the rest of
			// the way to memory.max LiftAfter later.
			if lifted != 1000 || c.High() != lift || c.Stats().Lifted != 2 {
				t.Fatalf("first lifted at %d ms, now %d MiB after %d lifts; want 1000 ms, then %d MiB after 2", lifted, c.High()/mib, c.Stats().Lifted, lift/mib)
			}
			// The kernel reclaimed page cache: memory fell below the line
			// with both still there, 3 paused. The lift stays.
			obs(3005, 170, throttledLeaf(2, 2, 120), leaf(3, 3, 50))
			if c.High() != lift {
				t.Errorf("memory.high went back to %d MiB when only page cache was reclaimed; want the lift (%d MiB) kept until something exits", c.High()/mib, lift/mib)
			}
			// The kernel killed process 2 at memory.max: the throttle comes back.
			obs(3010, 80, leaf(3, 3, 50))
			if c.High() != 180*mib {
				t.Errorf("after memory fell below the line, memory.high is %d MiB, want the policy's 180 MiB back", c.High()/mib)
			}
		})
	}
}

// TestThrottleLiftWaitsForWhatMayFinish: at the line with a throttled
// allocator and paused processes, a running process that holds flat and
// waits for no lock may finish by itself and free memory: the throttle is
// not lifted while one runs (up to ten times LiftAfter). One that waits
// for a lock will not finish by itself and does not hold the lift back.
func TestThrottleLiftWaitsForWhatMayFinish(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sleeper Proc
		liftAt  int // ms
	}{
		{"a sleeper may finish: the lift waits ten times as long", leaf(4, 1, 30), 10000},
		{"a lock waiter will not: the lift comes after LiftAfter", Proc{PID: 4, PPID: 1, Start: 1, RSS: 30 * mib, Blocked: true}, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Target: 200 * mib, Main: 1, High: 180 * mib, Lift: 200 * mib})
			cpu := time.Second
			obs := func(ms int, procs ...Proc) {
				cpu += 300 * time.Microsecond
				c.Step(Observation{Now: at(ms), Usage: 182 * mib, CPU: cpu, Procs: append([]Proc{mainProc, tt.sleeper}, procs...)})
			}
			obs(0, leaf(2, 2, 90), leaf(3, 3, 50))
			obs(10, throttledLeaf(2, 2, 120), throttledLeaf(3, 3, 50))
			if got := c.Paused(); !reflect.DeepEqual(got, []int{3}) {
				t.Fatalf("paused %v, want [3]", got)
			}
			lifted := -1
			for ms := 20; ms <= 12000 && lifted < 0; ms += 10 {
				obs(ms, throttledLeaf(2, 2, 120), leaf(3, 3, 50))
				if c.High() != 180*mib {
					lifted = ms
				}
			}
			if lifted != tt.liftAt {
				t.Errorf("lifted at %d ms, want %d", lifted, tt.liftAt)
			}
		})
	}
}

// TestSimulatedStallWaitsForSleepers is the real-kernel scenario of six
// parents each waiting for a child that starts holding 9M (a Go runtime),
// grows to 49M and sleeps 2 s, in a 200M box of which the parents hold
// about 50M. The running children sleep holding what they have, so the box
// uses no CPU while the others wait paused. A stall resume then must not
// hand a paused one room the box does not have: it would grow into
// memory.max. The sleepers free their memory when they finish.
func TestSimulatedStallWaitsForSleepers(t *testing.T) {
	for _, grow := range []int{5, 10} { // MiB a look, as in the emulated VM
		t.Run(fmt.Sprintf("growing %dM a look", grow), func(t *testing.T) {
			children := func() [][]*worker {
				threads := suiteGrowing(6, 1, 49, 200, grow)
				for _, th := range threads {
					th[1].base = 9
				}
				return threads
			}
			if !simulate(t, children(), 150, 150, false).oom {
				t.Fatalf("workload fits without backpressure: not a test of it")
			}
			r := simulate(t, children(), 150, 150, true)
			st := r.c.Stats()
			t.Logf("%d steps; paused %d, forced %v, longest pause %v, lifted %d", r.steps, st.Paused, st.Forced, st.LongestPause, st.Lifted)
			if r.oom {
				t.Errorf("the box went over memory.max: %d OOM kills", r.killed)
			}
			if st.Paused == 0 {
				t.Errorf("nothing was paused")
			}
			if st.LongestPause >= 10*time.Second {
				t.Errorf("a pause lasted %v: the sleepers' exit (2 s) should have resumed it", st.LongestPause)
			}
		})
	}
}
