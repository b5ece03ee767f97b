package sandbox

import (
	"github.com/boxrun/boxrun/policy"
)

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
