package signals

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// Tracer is the BPF program attached to signal:signal_generate and the
// ring buffer it writes to. Close detaches it.
type Tracer struct {
	prog   *ebpf.Program
	events *ebpf.Map
	link   link.Link
	rd     *ringbuf.Reader
}

// Open loads the program, with the record layout of this kernel's format
// file, and attaches it. It needs root (CAP_BPF and CAP_PERFMON).
func Open() (*Tracer, error) {
	o, err := ReadOffsets()
	if err != nil {
		return nil, err
	}
	// Before 5.11 BPF memory counts against RLIMIT_MEMLOCK; after, against
	// the memory cgroup, and this does nothing.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK for the BPF ring buffer: %w", err)
	}
	prog, events, err := load(o)
	if err != nil {
		return nil, err
	}
	t := &Tracer{prog: prog, events: events}
	if t.link, err = link.Tracepoint("signal", "signal_generate", prog, nil); err != nil {
		t.Close()
		return nil, fmt.Errorf("attaching to the signal:signal_generate tracepoint: %w", err)
	}
	if t.rd, err = ringbuf.NewReader(events); err != nil {
		t.Close()
		return nil, fmt.Errorf("reading the ring buffer: %w", err)
	}
	return t, nil
}

// Close detaches the program and frees what Open made.
func (t *Tracer) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	if t.link != nil {
		errs = append(errs, t.link.Close())
	}
	errs = append(errs, t.prog.Close(), t.events.Close())
	return errors.Join(errs...)
}

// Next waits for the next event.
func (t *Tracer) Next() (Event, error) {
	rec, err := t.rd.Read()
	if err != nil {
		return Event{}, err
	}
	return DecodeEvent(rec.RawSample)
}

// Run reads events until ctx is done, resolves each — in a box, or a
// boxrun; whose — and appends the record to its owner's file in Root.
// logf reports what went wrong with one record; a failure of the ring
// buffer ends Run.
func (t *Tracer) Run(ctx context.Context, w *Writer, logf func(format string, args ...any)) error {
	res := newResolver()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(scanEvery)
		defer tick.Stop()
		for {
			res.scan()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			t.rd.Close() // ends Read below
		case <-stop:
		}
	}()
	for {
		e, err := t.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading the ring buffer: %w", err)
		}
		rec, owner, ok := res.resolve(e)
		if !ok {
			continue
		}
		if err := w.Append(owner, rec); err != nil {
			logf("writing the record of %s to pid %d for uid %d: %v", rec.Signal, rec.Target.PID, owner, err)
		}
	}
}

// scanEvery is how often the resolver walks the cgroup tree: a process
// killed and reaped before the tracer reads its /proc/PID/cgroup is still
// known to be in a box when it was there at the last walk.
const scanEvery = time.Second

// resolver maps what the BPF program saw to paths, units and owners.
type resolver struct {
	mount string
	mu    sync.Mutex
	// ids maps cgroup ids (the directory's inode) to paths below mount;
	// boxed maps the pids of boxes' processes to where they were and the
	// box's owner, as of the last walk, and before the walk before: a
	// process killed just before a walk is gone from it.
	ids         map[uint64]string
	boxed, prev map[int]boxed
	// runners maps each box (its path) to the boxrun that runs it, as a
	// walk found it and while the box is there: a boxrun killed and
	// reaped before the record of its signal is resolved (a harness
	// waits for what it kills) still has an owner.
	runners map[string]runner
}

// runner is a boxrun process and its real uid.
type runner struct{ pid, uid int }

// findRunner returns the process named comm ("boxrun") that is the parent
// of one of pids, the processes of a box's cgroup: the box's command's
// parent. It looks at the first few only: the command is among the first
// to join.
func findRunner(pids []int, comm string) (runner, bool) {
	for i, pid := range pids {
		if i == 4 {
			break
		}
		st, err := procfs.ReadStat(pid)
		if err != nil {
			continue
		}
		parent, err := procfs.ReadStat(st.PPID)
		if err != nil || parent.Comm != comm {
			continue
		}
		if status, err := procfs.ReadStatus(st.PPID); err == nil && status.UID >= 0 {
			return runner{pid: st.PPID, uid: status.UID}, true
		}
	}
	return runner{}, false
}

type boxed struct {
	cgroup string
	uid    int
}

func newResolver() *resolver {
	m, err := cgroupfs.MountPoint()
	if err != nil || m == "" {
		m = "/sys/fs/cgroup"
	}
	return &resolver{mount: m, ids: map[uint64]string{}, boxed: map[int]boxed{}, prev: map[int]boxed{}, runners: map[string]runner{}}
}

// scan walks the cgroup tree once.
func (r *resolver) scan() {
	ids := map[uint64]string{}
	pids := map[int]boxed{}
	owners := map[string]int{}
	runners := map[string]runner{}
	r.mu.Lock()
	known := r.runners
	r.mu.Unlock()
	_ = filepath.WalkDir(r.mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, r.mount), "/")
		ids[st.Ino] = rel
		box := BoxOf(rel)
		if box == "" {
			return nil
		}
		if box == rel {
			owners[box] = int(st.Uid)
		}
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		var procs []int
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids[pid] = boxed{cgroup: rel, uid: owners[box]}
				procs = append(procs, pid)
			}
		}
		if _, ok := runners[box]; !ok {
			if run, ok := known[box]; ok {
				runners[box] = run
			} else if run, ok := findRunner(procs, "boxrun"); ok {
				runners[box] = run
			}
		}
		return nil
	})
	r.mu.Lock()
	r.ids, r.boxed, r.prev, r.runners = ids, pids, r.boxed, runners
	r.mu.Unlock()
}

// runnerUID is the uid of the boxrun pid as a walk found it running a box.
func (r *resolver) runnerUID(pid int) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runners {
		if run.pid == pid {
			return run.uid, true
		}
	}
	return 0, false
}

// cgroupPath is the path of a cgroup id, walking the tree again when the
// last walk did not see it.
func (r *resolver) cgroupPath(id uint64) string {
	r.mu.Lock()
	p, ok := r.ids[id]
	r.mu.Unlock()
	if !ok {
		r.scan()
		r.mu.Lock()
		p = r.ids[id]
		r.mu.Unlock()
	}
	return p
}

// resolve turns an event into a record and says whose it is: the owner of
// the box the target is in, or of the boxrun it is. ok is false for a
// signal to anything else.
func (r *resolver) resolve(e Event) (rec Record, owner int, ok bool) {
	// The wall time of the event: the clocks are read together now, and
	// the event is a few microseconds old.
	var mono unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	now := time.Now()
	at := now.Add(-(time.Duration(mono.Nano()) - e.Monotonic))
	rec = NewRecord(e, at)

	// The target first: it may be reaped any moment.
	cg, err := cgroupfs.PidCgroup(e.Target.PID)
	cg = LiveCgroup(cg)
	st, stErr := procfs.ReadStatus(e.Target.PID)
	if err != nil {
		if b, known := r.walked(e.Target.PID); known {
			cg = b.cgroup
		}
	}
	if box := BoxOf(cg); box != "" {
		owner = r.boxOwner(box, e.Target.PID)
		if owner < 0 && stErr == nil {
			// A box gone before a walk saw it: its process's own uid.
			owner = st.UID
		}
	} else if e.Target.Comm == "boxrun" && stErr == nil && st.UID >= 0 {
		owner = st.UID
	} else if uid, ok := r.runnerUID(e.Target.PID); ok && e.Target.Comm == "boxrun" {
		// Reaped already: the boxrun a walk saw running a box.
		owner = uid
	} else {
		return rec, 0, false
	}
	if owner < 0 {
		return rec, 0, false
	}
	rec.Target.Cgroup, rec.Target.Unit = cg, UnitOf(cg)
	if stErr == nil {
		rec.Target.UID = st.UID
	} else {
		rec.Target.UID = owner
	}

	if scg := r.cgroupPath(e.Sender.CgroupID); scg != "" {
		rec.Sender.Cgroup, rec.Sender.Unit = scg, UnitOf(scg)
	}
	return rec, owner, true
}

// boxOwner is the uid owning the box's directory (its user, for a box of
// a user manager or a delegated cgroup), from the last walk when it is
// gone; -1 when unknown.
func (r *resolver) boxOwner(box string, pid int) int {
	var st unix.Stat_t
	if unix.Lstat(filepath.Join(r.mount, box), &st) == nil {
		return int(st.Uid)
	}
	if b, ok := r.walked(pid); ok {
		return b.uid
	}
	return -1
}

// walked is where the last two walks saw pid in a box.
func (r *resolver) walked(pid int) (boxed, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.boxed[pid]; ok {
		return b, true
	}
	b, ok := r.prev[pid]
	return b, ok
}
