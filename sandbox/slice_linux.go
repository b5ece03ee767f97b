package sandbox

import (
	"io/fs"
	"os"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

// liveSlice is what the slice's cgroup holds now, before a run sets its
// limits.
type liveSlice struct {
	// exists is false when the slice has no cgroup (no box since boot, or
	// it was removed) or no memory.current: nothing is held.
	exists bool
	// current is its memory.current.
	current uint64
	// high and max are its memory.high and memory.max (policy.Unlimited
	// for "max"); nil when they cannot be read.
	high, max *uint64
}

// readLiveSlice reads the slice's cgroup at name, a directory of fsys
// (rooted at "/").
func readLiveSlice(fsys fs.FS, name string) liveSlice {
	var l liveSlice
	data, err := fs.ReadFile(fsys, name+"/memory.current")
	if err != nil {
		return l
	}
	if l.current, l.exists = cgroupfs.ParseCounter(string(data)); !l.exists {
		return l
	}
	for _, f := range []struct {
		file string
		dst  **uint64
	}{{"memory.high", &l.high}, {"memory.max", &l.max}} {
		if data, err := fs.ReadFile(fsys, name+"/"+f.file); err == nil {
			if v, ok := cgroupfs.ParseLimit(string(data)); ok {
				*f.dst = &v
			}
		}
	}
	return l
}

// sliceToApply reads what the slice's cgroup at dir holds now and returns
// the limits of s to set on it (see keepWhatSliceHolds); warn, when not
// nil, is told of each limit kept.
func sliceToApply(dir cgroupDir, s *policy.ResolvedSlice, warn func(string)) *policy.ResolvedSlice {
	if s.Empty() {
		return s
	}
	s, warnings := keepWhatSliceHolds(s, readLiveSlice(os.DirFS("/"), cgroupfs.FSPath(dir.dir())))
	if warn != nil {
		for _, w := range warnings {
			warn(w)
		}
	}
	return s
}

// keepWhatSliceHolds returns the limits of s to set on a slice that holds
// live: s as resolved.
func keepWhatSliceHolds(s *policy.ResolvedSlice, live liveSlice) (*policy.ResolvedSlice, []string) {
	return s, nil
}

// sliceChecks reads back the shared budget from the slice's cgroup dir
// and names each limit "slice.KEY". setErr, when not nil, is why the
// limits could not be set; it explains every limit that is not in force.
func sliceChecks(dir cgroupDir, s *policy.ResolvedSlice, setErr error, hint func(string) string) []LimitCheck {
	asPolicy := &policy.Resolved{Name: "slice", MemoryHigh: s.MemoryHigh, MemoryMax: s.MemoryMax, PidsMax: s.PidsMax, CPUWeight: s.CPUWeight}
	checks := dir.check(asPolicy, hint)
	for i := range checks {
		c := &checks[i]
		c.Key = "slice." + c.Key
		c.File = SliceName + "/" + c.File
		if !c.OK() && setErr != nil {
			c.Problem = setErr.Error()
		}
	}
	return checks
}

// sliceHolds reports whether the slice's cgroup at dir already enforces
// every limit of s (an earlier run set them): the run then asks the manager
// nothing, a round trip saved on every launch.
func sliceHolds(dir cgroupDir, s *policy.ResolvedSlice) bool {
	for _, c := range sliceChecks(dir, s, nil, func(string) string { return "" }) {
		if !c.OK() {
			return false
		}
	}
	return true
}
