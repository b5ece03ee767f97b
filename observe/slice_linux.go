package observe

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/ledger"
	"github.com/boxrun/boxrun/policy"
)

// ledgerWait is how long a look waits for the slice ledger's lock before
// it goes on without it (see ledger.Ledger.Lock): other boxes hold it only
// for one of their looks, well under a millisecond.
const ledgerWait = 50 * time.Millisecond

// sliceShare is a box's part in the memory budget of its slice: the
// slice's cgroup, read at each look, and the ledger where the slice's boxes
// publish their reservations (see package ledger and
// backpressure.SliceView).
type sliceShare struct {
	// dir is the slice's cgroup directory, box the box's name in it.
	dir, box string
	current  *cgroupfs.Counter
	ledger   *ledger.Ledger
	warn     func(string)
	// warned records the warnings given, each once a run.
	warned map[string]bool
}

// openSliceShare returns the share in its slice's budget of the box whose
// cgroup directory is dir, with the slice's ledger in boxrun's runtime
// directory run; nil when the box is in no boxrun.slice, the slice has no
// memory.max (no budget to share), or the ledger cannot be opened (warned
// about: backpressure then steers by the box alone).
func openSliceShare(dir, run string, warn func(string)) *sliceShare {
	slice := filepath.Dir(dir)
	if run == "" || filepath.Base(slice) != box.SliceName {
		return nil
	}
	if _, ok := readSliceMax(slice); !ok {
		return nil
	}
	l, err := ledger.Open(ledger.Dir(run, slice))
	if err != nil {
		warn(fmt.Sprintf("backpressure steers by the box alone, not by the budget of %s: %v", box.SliceName, err))
		return nil
	}
	return &sliceShare{dir: slice, box: filepath.Base(dir), current: cgroupfs.OpenCounter(filepath.Join(slice, "memory.current")),
		ledger: l, warn: warn, warned: map[string]bool{}}
}

// readSliceMax reads the slice's memory.max; ok is false when it has none.
func readSliceMax(slice string) (uint64, bool) {
	data, err := os.ReadFile(filepath.Join(slice, "memory.max"))
	if err != nil {
		return 0, false
	}
	v, ok := cgroupfs.ParseLimit(string(data))
	return v, ok && v != 0 && v != policy.Unlimited
}

// used is what the slice's boxes hold: its memory.current less the page
// cache the kernel reclaims first (inactive_file of memory.stat). A
// slice's memory.current also holds the cache of boxes gone, charged to
// it when they were removed: after a few builds it can fill the slice
// while taking nothing a box may need.
func (s *sliceShare) used() (uint64, bool) {
	current, ok := s.current.Read()
	if !ok {
		return 0, false
	}
	if st, err := cgroupfs.ReadFlatKeyed(filepath.Join(s.dir, "memory.stat")); err == nil {
		current -= min(current, st["inactive_file"])
	}
	return current, true
}

// busy reports whether the slice is a third full or more: then every box
// of it looks every 10 ms, so that its reservation stays fresh while the
// others admit growth.
func (s *sliceShare) busy() bool {
	if s == nil {
		return false
	}
	limit, ok := readSliceMax(s.dir)
	used, read := s.used()
	return ok && read && used*3 >= limit
}

// look begins one look of the box in its slice: it takes the ledger's lock
// and reads the slice's memory.max, what it holds (see used) and the other
// boxes' entries. It returns the slice as the box's controller is to see it (nil
// when the slice has no budget now) and publish, which writes the box's
// reservation as the controller left it and lets the lock go; the caller
// calls publish once, after the controller's Step.
func (s *sliceShare) look(now time.Time) (view *backpressure.SliceView, publish func(backpressure.Reservation)) {
	locked := s.ledger.Lock(ledgerWait)
	if !locked {
		s.warnOnce("lock", fmt.Sprintf("backpressure: the ledger of %s stayed locked for %v; a look went on without it", box.SliceName, ledgerWait))
	}
	done := func() {
		if locked {
			s.ledger.Unlock()
		}
	}
	limit, ok := readSliceMax(s.dir)
	used, read := s.used()
	if !ok || !read {
		_ = s.ledger.Remove(s.box) // a view with no budget reserves nothing
		done()
		return nil, func(backpressure.Reservation) {}
	}
	entries, problems := s.ledger.Others(s.box, now, func(name string) bool {
		_, err := os.Stat(filepath.Join(s.dir, name))
		return err == nil
	})
	for _, p := range problems {
		s.warnOnce("entry", "backpressure: "+p)
	}
	others := make([]backpressure.Reservation, len(entries))
	for i, e := range entries {
		others[i] = backpressure.Reservation{Bytes: e.Reserved, Running: e.Running, Since: e.Since, Need: e.Need, Sizes: e.Sizes}
	}
	return backpressure.View(limit, used, others), func(r backpressure.Reservation) {
		err := s.ledger.Write(ledger.Entry{Box: s.box, Reserved: r.Bytes, Running: r.Running, Since: r.Since, Need: r.Need,
			Sizes: r.Sizes, Written: now})
		if err != nil {
			s.warnOnce("write", fmt.Sprintf("backpressure: %v; the other boxes of %s do not see what this one admits", err, box.SliceName))
		}
		done()
	}
}

// warnOnce gives a warning of one kind once a run.
func (s *sliceShare) warnOnce(kind, msg string) {
	if !s.warned[kind] {
		s.warned[kind] = true
		s.warn(msg)
	}
}

// close takes the box's entry out of the ledger: its run ended.
func (s *sliceShare) close() {
	if s == nil {
		return
	}
	if s.ledger.Lock(ledgerWait) {
		defer s.ledger.Unlock()
	}
	if err := s.ledger.Remove(s.box); err != nil {
		s.warnOnce("remove", fmt.Sprintf("backpressure: %v", err))
	}
	s.ledger.Close()
	s.current.Close()
}
