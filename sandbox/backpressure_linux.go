package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

// Backpressure is the Observer that pauses growing processes of a box whose
// growth does not fit and resumes them as soon as it does (see package
// backpressure for the rules). It pauses with the cgroup freezer (see
// pauser), and every way out — the command's exit, an error reading the
// box, boxrun's death (the run's guard, see guard_linux.go) — resumes or
// kills what it paused.
type Backpressure struct {
	target uint64
	high   uint64 // the policy's memory.high: the controller's ceiling
	known  map[string]uint64
	warn   func(string)

	mu     sync.Mutex
	ctrl   *backpressure.Controller
	pauser *pauser
	stop   chan struct{}
	done   chan struct{}
	dir    string
	err    error
	// written is the memory.high last written to the box, 0 for none.
	written    uint64
	highFailed bool
	// restopped counts processes job control resumed behind boxrun's back
	// (SIGSTOP only).
	restopped int
	// trace, when set, gets a line for every look that paused or resumed
	// something or moved memory.high (see TraceTo); start is when the
	// observer started.
	trace io.Writer
	start time.Time
	// traced is when the trace last got a line.
	traced time.Time
}

// TraceTo makes the observer write what it decides to w, a line a look:
// the time since the start, memory.current, the memory.high it leaves,
// the processes by state, and each pause and resume with its pid, resident
// size, what it waited for and why. For finding out why a run was slow;
// the report says what happened in sum. Call before the run starts.
func (b *Backpressure) TraceTo(w io.Writer) { b.trace = w }

// traceLook writes one look to the trace, when there is one and the look
// did something.
func (b *Backpressure) traceLook(o backpressure.Observation, acts []backpressure.Action, highBefore uint64) {
	if b.trace == nil {
		return
	}
	paused := b.ctrl.Paused()
	// While processes wait, a look that did nothing is written once a
	// second too, with what runs and when the box last made progress:
	// that is where a long pause shows its reason.
	idle := len(acts) == 0 && b.written == highBefore
	if idle && (len(paused) == 0 || o.Now.Sub(b.traced) < time.Second) {
		return
	}
	b.traced = o.Now
	var w strings.Builder
	fmt.Fprintf(&w, "+%.3fs usage %s high %s procs %d paused %d", o.Now.Sub(b.start).Seconds(), policy.FormatBytes(o.Usage), policy.FormatBytes(b.written), len(o.Procs), len(paused))
	if idle {
		fmt.Fprintf(&w, " progress %.2fs ago; running:", o.Now.Sub(b.ctrl.Progress()).Seconds())
		isPaused := map[int]bool{}
		for _, pid := range paused {
			isPaused[pid] = true
		}
		for _, p := range o.Procs {
			if !isPaused[p.PID] {
				fmt.Fprintf(&w, " %d %s %s %s;", p.PID, p.Comm, policy.FormatBytes(p.RSS), p.Wait)
			}
		}
	}
	if o.Slice != nil {
		fmt.Fprintf(&w, " slice %s of %s (%d boxes)", policy.FormatBytes(o.Slice.Usage), policy.FormatBytes(o.Slice.Limit), o.Slice.Boxes)
	}
	for _, a := range acts {
		for _, p := range o.Procs {
			if p.PID == a.PID {
				fmt.Fprintf(&w, "; %s %d %s %s (%s): %s", a.Kind, a.PID, p.Comm, policy.FormatBytes(p.RSS), p.Wait, a.Reason)
			}
		}
	}
	w.WriteByte('\n')
	_, _ = io.WriteString(b.trace, w.String()) // a trace that cannot be written only loses the trace
}

// backpressureTarget is the memory backpressure steers by: memory.max, or
// a little above memory.high when the policy throttles lower than
// backpressure would (so that paused processes keep the box out of the
// throttle), 0 when the policy limits neither.
func backpressureTarget(p *policy.Resolved) uint64 {
	limit := func(v *uint64) uint64 {
		if v == nil || *v == policy.Unlimited {
			return 0
		}
		return *v
	}
	max, high := limit(p.MemoryMax), limit(p.MemoryHigh)
	switch {
	case max == 0 && high == 0:
		return 0
	case max == 0:
		return high + backpressure.DefaultMargin(high)/2
	case high != 0 && high < backpressure.HighFor(max):
		return high + backpressure.DefaultMargin(high)/2
	default:
		return max
	}
}

// PrepareBackpressure adjusts a policy with memory.backpressure on before
// its box is made: when it sets no memory.high, memory.high goes half a
// margin above the pause threshold, so the kernel throttles only allocation
// bursts that overshoot it while boxrun pauses processes. It returns a note
// saying so, or "".
func PrepareBackpressure(p *policy.Resolved) string {
	if !p.MemoryBackpressure || (p.MemoryHigh != nil && *p.MemoryHigh != policy.Unlimited) {
		return ""
	}
	target := backpressureTarget(p)
	if target == 0 {
		return ""
	}
	high := backpressure.HighFor(target)
	p.MemoryHigh = &high
	if p.Origins != nil {
		p.Origins["memory.high"] = policy.Origin{File: "memory.backpressure"}
	}
	return fmt.Sprintf("memory.high set to %s, a tenth under memory.max, for memory.backpressure", policy.FormatBytes(high))
}

// NewBackpressure returns the observer for a policy with
// memory.backpressure on, or nil when the policy sets no memory target
// (warning why). known holds sizes an earlier run of the same suite
// learned (see LoadSizes), nil for none.
func NewBackpressure(p *policy.Resolved, known map[string]uint64, warn func(string)) *Backpressure {
	target := backpressureTarget(p)
	if target == 0 {
		warn(fmt.Sprintf("policy %q: memory.backpressure needs memory.max or memory.high to steer by; it is off for this run", p.Name))
		return nil
	}
	b := &Backpressure{target: target, known: known, warn: warn}
	if p.MemoryHigh != nil && *p.MemoryHigh != policy.Unlimited {
		b.high = *p.MemoryHigh
	}
	return b
}

// Started begins watching the box.
func (b *Backpressure) Started(dir string, pid int) {
	if dir == "" {
		b.warn("memory.backpressure is not available without a cgroup (backend none)")
		return
	}
	b.dir = dir
	b.ctrl = backpressure.New(backpressure.Config{Target: b.target, Main: pid, High: b.high, Known: b.known})
	b.pauser = newPauser(dir)
	b.written = b.high
	b.setHigh()
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	b.start = time.Now()
	go b.loop()
}

// setHigh writes the controller's memory.high to the box when it changed.
// A box whose memory.high cannot be written (not ours to write) keeps the
// policy's: backpressure still works, only without the kernel's brake
// below it.
func (b *Backpressure) setHigh() {
	h := b.ctrl.High()
	if h == 0 || h == b.written {
		return
	}
	b.written = h
	if err := os.WriteFile(filepath.Join(b.dir, "memory.high"), []byte(strconv.FormatUint(h, 10)), 0); err != nil && !b.highFailed {
		b.highFailed = true
		b.warn(fmt.Sprintf("backpressure cannot adjust memory.high of the box: %v", err))
	}
}

// Exited stops watching and resumes every paused process.
func (b *Backpressure) Exited() {
	if b.stop == nil {
		return
	}
	close(b.stop)
	<-b.done
	b.mu.Lock()
	b.finish()
	b.mu.Unlock()
	if b.err != nil {
		b.warn(fmt.Sprintf("backpressure stopped early: %v", b.err))
	}
}

// finish resumes everything paused and removes the frozen cgroup; b.mu is
// held.
func (b *Backpressure) finish() {
	if b.pauser == nil {
		return
	}
	for _, a := range b.ctrl.Finish(time.Now()) {
		if err := b.pauser.resume(a.PID); err != nil {
			b.warn(fmt.Sprintf("backpressure: %v", err))
		}
	}
	if err := b.pauser.close(); err != nil {
		b.warn(fmt.Sprintf("backpressure: %v", err))
	}
	b.pauser = nil
}

// BackpressureStats is what backpressure did in a run, for the report.
type BackpressureStats struct {
	backpressure.Stats
	// Method is how processes were paused: "freezer" or "SIGSTOP".
	Method string
	// Restopped counts processes that job control resumed behind boxrun's
	// back and were stopped again (SIGSTOP only).
	Restopped int
	// Sizes is what the run learned, for LoadSizes' next caller.
	Sizes map[string]uint64
}

// Stats returns what backpressure did; ok is false when it never ran.
func (b *Backpressure) Stats() (BackpressureStats, bool) {
	if b == nil || b.ctrl == nil {
		return BackpressureStats{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BackpressureStats{Stats: b.ctrl.Stats(), Method: "freezer", Restopped: b.restopped, Sizes: b.ctrl.Sizes()}
	if st.Paused > 0 && b.pauser != nil {
		st.Method = b.pauser.method()
	}
	return st, true
}

// loop observes the box until stopped. It reads memory.current every 500 ms
// while the box is less than a sixth full, every 250 ms below a third, and
// from a third up, or while anything is paused, every 10 ms with the
// processes too; and at once when memory.events changes (the kernel counts
// a "high" event when memory.high is crossed, and throttles the burst that
// crossed it). A burst of new processes can fill a box between two looks:
// memory.high, not the timer, brakes it.
func (b *Backpressure) loop() {
	defer close(b.done)
	wake, closeWake := cgroupfs.Watch(filepath.Join(b.dir, "memory.events"))
	defer closeWake()
	timer := time.NewTimer(0)
	defer timer.Stop()
	current := cgroupfs.OpenCounter(filepath.Join(b.dir, "memory.current"))
	defer current.Close()
	cpu := cgroupfs.OpenStatFile(filepath.Join(b.dir, "cpu.stat"))
	defer cpu.Close()
	slice := openSliceBudget(b.dir)
	defer slice.close()
	first := true
	for {
		select {
		case <-b.stop:
			return
		case <-wake:
		case <-timer.C:
		}
		usage, ok := current.Read()
		if !ok {
			if _, err := os.Stat(b.dir); errors.Is(err, os.ErrNotExist) {
				return // the box is gone
			}
			b.fail(fmt.Errorf("reading %s: cannot read memory.current", b.dir))
			return
		}
		interval := 250 * time.Millisecond
		if usage*6 < b.target {
			interval = 500 * time.Millisecond
		}
		b.mu.Lock()
		paused := len(b.ctrl.Paused())
		b.mu.Unlock()
		sliceNear := slice.near()
		// The first look is at once: a process that allocates before it
		// is looked at must meet a controller that knows it is there.
		if usage*3 >= b.target || paused > 0 || sliceNear || first {
			first = false
			interval = 10 * time.Millisecond
			if err := b.look(usage, cpu, slice, paused > 0); err != nil {
				b.fail(err)
				return
			}
		}
		timer.Reset(interval)
	}
}

// look observes the processes once, and carries out what the controller
// decides.
func (b *Backpressure) look(usage uint64, cpu *cgroupfs.StatFile, slice *sliceBudget, anyPaused bool) error {
	// What sleeping processes wait for, and who holds the locks, matter
	// only to resume the right one while something is paused, and to let
	// a lock holder grow: read them while the box is near its target.
	deep := anyPaused || usage >= b.target/2
	// The kernel throttles only above memory.high: ask each thread only
	// when the box is within half a margin of it.
	throttle := b.written != 0 && usage+backpressure.DefaultMargin(b.target)/2 >= b.written
	sc, err := scanBox(b.dir, deep, throttle)
	if err != nil {
		return err
	}
	o := backpressure.Observation{Now: time.Now(), Usage: usage, Procs: sc.procs, Slice: slice.budget()}
	if v, ok := cpu.Value("usage_usec"); ok {
		o.CPU, o.HaveCPU = time.Duration(v)*time.Microsecond, true
	}
	if deep {
		o.Holders = lockHolders()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, pid := range b.ctrl.Paused() {
		if st, ok := sc.state[pid]; ok && st != 'T' && b.pauser.signal {
			b.restopped++
			b.pauser.restop(pid, st)
		}
	}
	acts := b.ctrl.Step(o)
	highBefore := b.written
	defer func() { b.traceLook(o, acts, highBefore) }()
	for _, a := range acts {
		var err error
		if a.Kind == backpressure.Pause {
			var start uint64
			for _, p := range sc.procs {
				if p.PID == a.PID {
					start = p.Start
				}
			}
			err = b.pauser.pause(a.PID, start, sc.origin[a.PID], b.warn)
		} else {
			err = b.pauser.resume(a.PID)
		}
		if err != nil && !errors.Is(err, errGone) {
			return err
		}
		// A process gone before its pause: the next look forgets it.
	}
	b.setHigh()
	return nil
}

// fail records why the loop stopped and resumes at once what is paused: a
// command waiting for a paused child would otherwise wait for ever.
func (b *Backpressure) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
	b.finish()
}

// sliceBudget reads the memory of the slice a box shares with other boxes
// (its parent, when that is boxrun.slice and has a memory limit).
type sliceBudget struct {
	dir     string
	limit   uint64
	current *cgroupfs.Counter
	last    *backpressure.Budget
}

func openSliceBudget(boxDir string) *sliceBudget {
	parent := filepath.Dir(boxDir)
	if filepath.Base(parent) != SliceName {
		return nil
	}
	var limit uint64
	for _, f := range []string{"memory.max", "memory.high"} {
		if data, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
			if v, ok := cgroupfs.ParseLimit(string(data)); ok && (limit == 0 || v < limit) {
				limit = v
			}
		}
	}
	if limit == 0 {
		return nil
	}
	return &sliceBudget{dir: parent, limit: limit, current: cgroupfs.OpenCounter(filepath.Join(parent, "memory.current"))}
}

// near reads the slice's memory.current and reports whether the slice is
// a sixth full, so that the observer looks closely even while its own box
// is small: four boxes that each wait for a third of their own limit can
// overfill a slice smaller than their sum between two slow looks. Once it
// is, the boxes in the slice are counted too, for the box's share.
func (s *sliceBudget) near() bool {
	if s == nil {
		return false
	}
	s.last = nil
	u, ok := s.current.Read()
	if !ok || u*6 < s.limit {
		return false
	}
	s.last = &backpressure.Budget{Limit: s.limit, Usage: u, Boxes: s.boxes()}
	return true
}

// boxes counts the boxes in the slice (at least this one).
func (s *sliceBudget) boxes() int {
	n := 0
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if e.IsDir() && boxNameRe.MatchString(e.Name()) {
			n++
		}
	}
	return max(n, 1)
}

// budget is the slice's budget as near last read it, nil for none.
func (s *sliceBudget) budget() *backpressure.Budget {
	if s == nil {
		return nil
	}
	return s.last
}

func (s *sliceBudget) close() {
	if s != nil {
		s.current.Close()
	}
}
