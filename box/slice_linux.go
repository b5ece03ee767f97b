package box

import (
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

// liveSlice is what the slice's cgroup holds now, before a run sets its
// limits.
type liveSlice struct {
	// boxes counts the boxes running in it, other than the run's own; 0
	// also when the slice has no cgroup or no memory.current.
	boxes int
	// current is its memory.current: what the boxes hold, and the page
	// cache of boxes gone (charged to the slice when they were removed).
	current uint64
	// high and max are its memory.high and memory.max (policy.Unlimited
	// for "max"); nil when they cannot be read.
	high, max *uint64
}

// readLiveSlice reads the slice's cgroup at name, a directory of fsys
// (rooted at "/"); own is the name of the run's own box in it, not counted
// among the boxes running ("" when there is none yet).
func readLiveSlice(fsys fs.FS, name, own string) liveSlice {
	var l liveSlice
	data, err := fs.ReadFile(fsys, name+"/memory.current")
	if err != nil {
		return l
	}
	var ok bool
	if l.current, ok = cgroupfs.ParseCounter(string(data)); !ok {
		return l
	}
	children, _ := fs.ReadDir(fsys, name)
	for _, c := range children {
		// Only boxes count: not the guards' scopes beside them.
		if !c.IsDir() || c.Name() == own || !boxNameRe.MatchString(c.Name()) {
			continue
		}
		events, err := fs.ReadFile(fsys, name+"/"+c.Name()+"/cgroup.events")
		if err != nil {
			continue
		}
		if m, _ := cgroupfs.ParseFlatKeyed(strings.NewReader(string(events))); m["populated"] == 1 {
			l.boxes++
		}
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
// the limits of s to set on it (see keepWhatSliceHolds); own names the
// run's box in it. warn, when not nil, is told of the limits kept.
func sliceToApply(dir cgroupDir, own string, s *policy.ResolvedSlice, warn func(string)) *policy.ResolvedSlice {
	if s.Empty() {
		return s
	}
	s, warning := keepWhatSliceHolds(s, readLiveSlice(os.DirFS("/"), cgroupfs.FSPath(dir.dir()), own))
	if warn != nil && warning != "" {
		warn(warning)
	}
	return s
}

// keepWhatSliceHolds returns the limits of s to set on a slice that holds
// live. While boxes run in it, a run never lowers the slice's memory.high
// or memory.max below the memory.current it holds: that would take memory
// from those boxes (reclaim, throttling, an OOM kill) for a run that has
// not started yet. With no box running, what it holds is page cache left
// by boxes gone, which the kernel reclaims at no one's cost: the limits are
// set as resolved, or such a slice (a systemd slice outlives its boxes)
// would keep a higher limit until memory pressure evicted the cache. Such a limit is left as it is (nil in the copy returned: not set),
// and warning says in one line what and why; not memory.current rounded
// up, which would be a limit no policy asked for, with no room left under
// it. The next run that finds the slice holding less lowers it. A limit
// lower than the present one but above what the slice holds is set, and a
// raise always is. s itself is not changed.
func keepWhatSliceHolds(s *policy.ResolvedSlice, live liveSlice) (_ *policy.ResolvedSlice, warning string) {
	if s.Empty() || live.boxes == 0 {
		return s, ""
	}
	kept := *s
	var stays, wanted, keys []string
	for _, f := range []struct {
		key     string
		dst     **uint64
		present *uint64
	}{{"memory.high", &kept.MemoryHigh, live.high}, {"memory.max", &kept.MemoryMax, live.max}} {
		want := *f.dst
		if want == nil || *want >= live.current || (f.present != nil && *want >= *f.present) {
			continue
		}
		*f.dst = nil
		at := "as it is"
		if f.present != nil {
			at = "at " + policy.FormatBytes(*f.present)
		}
		stays = append(stays, at)
		wanted = append(wanted, policy.FormatBytes(*want))
		keys = append(keys, fmt.Sprintf("%s (%s)", f.key, s.Origins[f.key]))
	}
	switch len(keys) {
	case 0:
		return s, ""
	case 1:
		warning = fmt.Sprintf("its %s stays %s, not the %s of [slice] %s", strings.Fields(keys[0])[0], stays[0], wanted[0], keys[0])
	default:
		warning = fmt.Sprintf("its memory.high stays %s and its memory.max %s, not the %s and %s of [slice] %s and %s", stays[0], stays[1], wanted[0], wanted[1], keys[0], keys[1])
	}
	running := "1 box"
	if live.boxes > 1 {
		running = fmt.Sprintf("%d boxes", live.boxes)
	}
	return &kept, fmt.Sprintf("%s holds %s now (%s running): %s, which would take memory from them", SliceName, policy.FormatBytes(live.current), running, warning)
}

// sliceChecks reads back the shared budget from the slice's cgroup dir
// and names each limit "slice.KEY". setErr, when not nil, is why the
// limits could not be set; it explains every limit that is not in force.
func sliceChecks(dir cgroupDir, s *policy.ResolvedSlice, setErr error, hint func(string) string) []LimitCheck {
	checks := dir.check(s.Settings(), hint)
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
