package observe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/policy"
)

// Backpressure is the Observer that pauses the newest processes of a box as
// it nears its memory target and resumes them oldest first (see package
// backpressure for the rules). It pauses with the cgroup freezer, in a
// frozen child cgroup of the box, or with SIGSTOP where the box can hold no
// child (see pauser); if boxrun dies the run's guard (see guard_linux.go)
// thaws, resumes and kills what is in the box.
type Backpressure struct {
	target uint64
	high   uint64 // the policy's memory.high
	// lift is the memory.high the throttle is lifted to when the box is
	// stuck at it (memory.max), 0 when memory.high is the user's own.
	lift uint64
	warn func(string)

	mu   sync.Mutex
	ctrl *backpressure.Controller
	// pauser carries out pauses and resumes; seen is what the last look
	// saw of each process (its start time and cgroup, to pin it by).
	pauser *pauser
	seen   map[int]procSeen
	stop   chan struct{}
	done   chan struct{}
	dir    string
	err    error
	// written is the memory.high last written to the box, 0 for none.
	written    uint64
	highFailed bool
	actFailed  bool
	// restopped counts paused processes something else resumed (job
	// control's SIGCONT after Ctrl-Z and fg), stopped again.
	restopped int
	// stopped holds the paused processes seen stopped (state T) at a look.
	stopped map[int]bool
	// trace, when set, gets a line per look that acted and once a second
	// while processes are paused (see TraceTo).
	trace     io.Writer
	started   time.Time
	lastTrace time.Time
	// known are the sizes an earlier run learned (see Know).
	known map[string]uint64
}

// Know gives backpressure the typical sizes of processes, by command name,
// that an earlier run of the same suite learned (see
// backpressure.Config.Known). Call it before Started.
func (b *Backpressure) Know(sizes map[string]uint64) {
	if b != nil {
		b.known = sizes
	}
}

// Sizes returns what backpressure knows at the end of the run of the sizes
// of its processes, to keep for the next run (see
// backpressure.Controller.Sizes); ok is false when it never ran. Call it
// after Exited.
func (b *Backpressure) Sizes() (sizes map[string]backpressure.Size, ok bool) {
	if b == nil || b.ctrl == nil {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctrl.Sizes(), true
}

// TraceTo makes the observer write its decisions to w: one line per look
// that paused or resumed something, and one a second while processes stay
// paused, with the box's memory and what runs. Call it before Started.
func (b *Backpressure) TraceTo(w io.Writer) {
	if b != nil {
		b.trace = w
	}
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

// backpressureOrigin is where a memory.high that PrepareBackpressure set
// says it comes from.
const backpressureOrigin = "memory.backpressure"

// PrepareBackpressure adjusts a policy with memory.backpressure on before
// its box is made: when it sets no memory.high, memory.high goes at the
// pause line (see backpressure.HighFor), so the kernel throttles only
// allocation bursts that overshoot it while boxrun pauses processes. It returns a note
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
	if p.Origins == nil {
		p.Origins = map[string]policy.Origin{}
	}
	p.Origins["memory.high"] = policy.Origin{File: backpressureOrigin}
	return fmt.Sprintf("memory.high set to %s, where memory.backpressure starts pausing processes", policy.FormatBytes(high))
}

// NewBackpressure returns the observer for a policy with
// memory.backpressure on, or nil when the policy sets no memory target
// (warning why).
func NewBackpressure(p *policy.Resolved, warn func(string)) *Backpressure {
	target := backpressureTarget(p)
	if target == 0 {
		warn(fmt.Sprintf("policy %q: memory.backpressure needs memory.max or memory.high to steer by; it is off for this run", p.Name))
		return nil
	}
	b := &Backpressure{target: target, warn: warn}
	if p.MemoryHigh != nil && *p.MemoryHigh != policy.Unlimited {
		b.high = *p.MemoryHigh
	}
	// Only a memory.high backpressure set for itself is lifted when the
	// box is stuck at it; one the user set is kept.
	if b.high != 0 && p.Origins["memory.high"].File == backpressureOrigin && p.MemoryMax != nil && *p.MemoryMax != policy.Unlimited {
		b.lift = *p.MemoryMax
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
	b.ctrl = backpressure.New(backpressure.Config{Target: b.target, Main: pid, High: b.high, Lift: b.lift, Known: b.known})
	b.stopped = map[int]bool{}
	b.pauser = newPauser(dir, b.warn)
	b.written = b.high
	b.setHigh()
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go b.loop()
}

// setHigh writes the controller's memory.high to the box when it changed:
// lifted to memory.max while the box is stuck at the throttle, back after.
// A box whose memory.high cannot be written (not ours to write) keeps the
// policy's: backpressure still works, but a box stuck at the throttle
// stays stuck until something exits or is killed.
func (b *Backpressure) setHigh() {
	h := b.ctrl.High()
	if h == 0 || h == b.written {
		return
	}
	b.written = h
	if b.trace != nil {
		fmt.Fprintf(b.trace, "%s memory.high %s\n", filepath.Base(b.dir), policy.FormatBytes(h))
	}
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
	b.act(b.ctrl.Finish(time.Now()))
	err := b.pauser.close()
	b.mu.Unlock()
	if err != nil {
		b.warn(fmt.Sprintf("backpressure could not undo every pause: %v", err))
	}
	if b.err != nil {
		b.warn(fmt.Sprintf("backpressure stopped early: %v", b.err))
	}
}

// act pauses and resumes processes as the controller decided, in its
// order, each pinned to the process the last look saw (its pid may name
// another process by now: that one is never touched). A pause or resume
// that fails for another reason is warned about once. Called with mu held.
func (b *Backpressure) act(acts []backpressure.Action) {
	for _, a := range acts {
		var err error
		if a.Kind == backpressure.Pause {
			s, ok := b.seen[a.PID]
			if !ok {
				continue
			}
			err = b.pauser.pause(a.PID, s.start, s.origin)
		} else {
			err = b.pauser.resume(a.PID)
		}
		if err != nil && !errors.Is(err, errGone) && !b.actFailed {
			b.actFailed = true
			b.warn(fmt.Sprintf("backpressure: %v", err))
		}
	}
}

// Method is how backpressure pauses processes: MethodFreezer or
// MethodSIGSTOP.
func (b *Backpressure) Method() string {
	if b == nil || b.pauser == nil {
		return MethodFreezer
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pauser.method()
}

// Stats returns what backpressure did; ok is false when it never ran.
// Restopped counts paused processes that something else resumed (job
// control) and the observer stopped again.
func (b *Backpressure) Stats() (st backpressure.Stats, restopped int, ok bool) {
	if b == nil || b.ctrl == nil {
		return backpressure.Stats{}, 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctrl.Stats(), b.restopped, true
}

// loop observes the box until stopped: every 250 ms while it is less than a
// sixth full, every 100 ms below a third, every 10 ms while it fills, above
// a third or while any process is paused, and at once when memory.events changes (the kernel
// counts a "high" event when memory.high is crossed, and throttles the burst
// that crossed it). A burst of new processes can fill a box in well under
// 100 ms: memory.high and inotify, not the timer, catch it. Whatever ends
// the loop, nothing it paused stays paused: Exited resumes the rest.
func (b *Backpressure) loop() {
	defer close(b.done)
	wake, closeWake := cgroupfs.Watch(filepath.Join(b.dir, "memory.events"))
	defer closeWake()
	timer := time.NewTimer(0)
	defer timer.Stop()
	current := cgroupfs.OpenCounter(filepath.Join(b.dir, "memory.current"))
	defer current.Close()
	cpuStat := cgroupfs.OpenStatFile(filepath.Join(b.dir, "cpu.stat"))
	defer cpuStat.Close()
	var last uint64 // memory.current at the previous read
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
		// Growth is seen only between two scans of the processes, so they
		// are scanned every 10 ms while the box fills (memory.current rose
		// by a sixty-fourth of the target or more since the last read),
		// from a third full up, and while any process is paused; else
		// memory.current alone every 100 ms (250 ms below a sixth).
		interval := 100 * time.Millisecond
		if usage*6 < b.target {
			interval = 250 * time.Millisecond
		}
		rising := usage >= last+b.target/64
		last = usage
		if rising || usage*3 >= b.target || len(b.ctrl.Paused()) > 0 {
			interval = 10 * time.Millisecond
			// At the line, each process is also asked whether the
			// kernel throttles it at memory.high: a throttled allocator
			// may gain nothing between two looks.
			// (The line is the controller's at the last look: only its
			// own goroutine, this one, moves it.)
			procs, seen, err := boxProcs(b.dir, usage >= b.ctrl.Line())
			if err != nil {
				b.fail(err)
				return
			}
			o := backpressure.Observation{Now: time.Now(), Usage: usage, Procs: procs}
			if usec, ok := cpuStat.Value("usage_usec"); ok {
				o.CPU = time.Duration(usec) * time.Microsecond
			}
			b.mu.Lock()
			before := b.ctrl.Paused()
			acts := b.ctrl.Step(o)
			b.seen = seen
			b.restop(before, seen)
			b.pauser.release(seen)
			b.act(acts)
			b.mu.Unlock()
			b.traceLook(o, acts)
			b.setHigh()
		}
		timer.Reset(interval)
	}
}

// fail records why the loop ends early and resumes what it paused: a
// paused process must never outlive the observer that would resume it.
func (b *Backpressure) fail(err error) {
	b.err = err
	b.mu.Lock()
	defer b.mu.Unlock()
	b.act(b.ctrl.Finish(time.Now()))
	if err := b.pauser.close(); err != nil {
		b.err = errors.Join(b.err, err)
	}
}

// restop stops again every process paused before this look and still
// paused after it that is no longer stopped: job control (fg, bg, a
// SIGCONT from the shell) resumed it behind the controller's back. Only a
// SIGSTOP pause can be undone so; the freezer's cannot. Called with b.mu
// held.
func (b *Backpressure) restop(before []int, seen map[int]procSeen) {
	if b.pauser.method() != MethodSIGSTOP {
		return
	}
	still := map[int]bool{}
	for _, pid := range b.ctrl.Paused() {
		still[pid] = true
	}
	for _, pid := range before {
		s, ok := seen[pid]
		if !ok || !still[pid] {
			delete(b.stopped, pid)
			continue
		}
		switch s.state {
		case 'T', 't':
			b.stopped[pid] = true
		case 'R', 'S':
			// Seen stopped before and running now: resumed behind our
			// back. One not yet seen stopped may still be taking the
			// SIGSTOP (in D, or not yet scheduled): not counted.
			if b.stopped[pid] && b.pauser.restop(pid) {
				b.restopped++
				delete(b.stopped, pid)
			}
		}
	}
	for pid := range b.stopped {
		if !still[pid] {
			delete(b.stopped, pid)
		}
	}
}

// traceLook writes one look to the trace: when it acted, and once a second
// while processes stay paused.
func (b *Backpressure) traceLook(o backpressure.Observation, acts []backpressure.Action) {
	if b.trace == nil {
		return
	}
	if b.started.IsZero() {
		b.started = o.Now
	}
	paused := len(b.ctrl.Paused())
	if len(acts) == 0 && (paused == 0 || o.Now.Sub(b.lastTrace) < time.Second) {
		return
	}
	b.lastTrace = o.Now
	rss := map[int]backpressure.Proc{}
	for _, p := range o.Procs {
		rss[p.PID] = p
	}
	line := fmt.Sprintf("%s +%.3fs usage %s cpu %.2fs procs %d paused %d", filepath.Base(b.dir), o.Now.Sub(b.started).Seconds(),
		policy.FormatBytes(o.Usage), o.CPU.Seconds(), len(o.Procs), paused)
	for _, a := range acts {
		p := rss[a.PID]
		line += fmt.Sprintf("; %s %d %s %s: %s", a.Kind, a.PID, p.Comm, policy.FormatBytes(p.RSS), a.Reason)
	}
	fmt.Fprintln(b.trace, line)
}

// procSeen is what a look saw of a process beyond backpressure.Proc: its
// state letter (to find paused processes that job control resumed), its
// start time and the cgroup directory it is in (to pin and put it back).
type procSeen struct {
	state  byte
	start  uint64
	origin string
	// frozen is true for a process found in the box's frozen child.
	frozen bool
}

// boxProcs lists the processes of a cgroup tree with what backpressure
// needs: parent, start time and resident size, whether another process
// waits for a file lock it holds (/proc/locks; none when unreadable), and
// with throttle whether the kernel throttles one of its threads at
// memory.high. Processes that exit while being read are left out. A
// process in the box's frozen child has the box as its origin.
func boxProcs(dir string, throttle bool) ([]backpressure.Proc, map[int]procSeen, error) {
	type found struct {
		pid    int
		origin string
	}
	var list []found
	err := cgroupfs.EachProc(dir, func(cg string, pid int) {
		list = append(list, found{pid, cg})
	})
	if err != nil {
		return nil, nil, err
	}
	procs := make([]backpressure.Proc, 0, len(list))
	seen := make(map[int]procSeen, len(list))
	var awaited map[int]bool
	var waitsFor map[int][]int
	if locks, err := procfs.ReadLocks(); err == nil {
		awaited, waitsFor = procfs.Awaited(locks), procfs.WaitsFor(locks)
	}
	for _, f := range list {
		// One read per process: backpressure does this for every process
		// of the box every 10 ms while the box is a third full.
		st, err := procfs.ReadStat(f.pid)
		if err != nil {
			continue
		}
		procs = append(procs, backpressure.Proc{PID: st.PID, PPID: st.PPID, Start: st.StartTime, RSS: st.RSS(), Comm: st.Comm,
			Throttled: throttle && st.State != 'T' && st.State != 't' && procfs.ThreadWaitsIn(f.pid, procfs.OverHigh),
			Awaited:   awaited[st.PID], WaitsFor: waitsFor[st.PID], Blocked: waitsFor[st.PID] != nil})
		s := procSeen{state: st.State, start: st.StartTime, origin: f.origin}
		if isPausedCgroup(f.origin) {
			s.origin, s.frozen = filepath.Dir(f.origin), true
		}
		seen[st.PID] = s
	}
	addPipeWaits(procs, seen)
	return procs, seen, nil
}

// addPipeWaits marks the unpaused leaves that sleep on a pipe whose other
// end a paused process holds (frozen, or stopped): Blocked, waiting for
// those. A `producer | consumer` whose consumer is paused leaves the
// producer asleep on the full pipe; it cannot finish by itself. Nothing is
// read unless something is paused, and then only for sleeping leaves.
func addPipeWaits(procs []backpressure.Proc, seen map[int]procSeen) {
	var holders []int
	hasChild := map[int]bool{}
	for _, p := range procs {
		hasChild[p.PPID] = true
		if s := seen[p.PID]; s.frozen || s.state == 'T' || s.state == 't' {
			holders = append(holders, p.PID)
		}
	}
	if len(holders) == 0 {
		return
	}
	waiting := map[int]procfs.PipeWait{}
	for _, p := range procs {
		if s := seen[p.PID]; s.state == 'S' && !s.frozen && !hasChild[p.PID] {
			if w, ok := procfs.PipeWaitOf(p.PID); ok {
				waiting[p.PID] = w
			}
		}
	}
	on := procfs.PipeHolders(waiting, holders, procfs.PipeInodes)
	for i := range procs {
		if h := on[procs[i].PID]; len(h) > 0 {
			procs[i].Blocked = true
			procs[i].WaitsFor = append(procs[i].WaitsFor, h...)
		}
	}
}
