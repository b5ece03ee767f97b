package box

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/policy"
)

func TestSliceHolds(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	want := &policy.ResolvedSlice{MemoryHigh: u(800 << 20), MemoryMax: u(850 << 20), PidsMax: u(8192), CPUWeight: u(100)}
	tests := []struct {
		name  string
		files map[string]string
		holds bool
	}{
		{"set by an earlier run", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "pids.max": "8192", "cpu.weight": "100"}, true},
		{"a fresh slice", map[string]string{"memory.high": "max", "memory.max": "max", "pids.max": "max", "cpu.weight": "100"}, false},
		{"the policy changed one limit", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "pids.max": "4096", "cpu.weight": "100"}, false},
		{"a controller missing", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "cpu.weight": "100"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"cgroup.controllers": "cpu memory pids"}
			for k, v := range tt.files {
				files[k] = v
			}
			for name, v := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := sliceHolds(cgroupDir{mount: dir, rel: "/"}, want); got != tt.holds {
				t.Errorf("sliceHolds = %v, want %v", got, tt.holds)
			}
		})
	}
}

func TestReadLiveSlice(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	const dir = "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/boxrun.slice"
	tests := []struct {
		name  string
		files map[string]string
		want  liveSlice
	}{
		{"a slice holding 10G under limits of 12G and 13G, two boxes running", map[string]string{"memory.current": "10737418240", "memory.high": "12884901888", "memory.max": "13958643712",
			"boxrun-tests-a1a1a1a1.scope/cgroup.events": "populated 1\nfrozen 0", "boxrun-build-b2b2b2b2.scope/cgroup.events": "populated 1\nfrozen 0"},
			liveSlice{boxes: 2, current: 10 << 30, high: u(12 << 30), max: u(13 << 30)}},
		{"the run's own box and a box gone do not count", map[string]string{"memory.current": "10737418240", "memory.high": "max", "memory.max": "max",
			"boxrun-tests-0000000a.scope/cgroup.events": "populated 1\nfrozen 0", "boxrun-tests-99999999.scope/cgroup.events": "populated 0\nfrozen 0"},
			liveSlice{current: 10 << 30, high: u(policy.Unlimited), max: u(policy.Unlimited)}},
		{"guards and other scopes are no boxes", map[string]string{"memory.current": "10737418240", "memory.high": "max", "memory.max": "max",
			"boxrun-tests-a1a1a1a1.scope/cgroup.events": "populated 1\nfrozen 0", "boxrun-tests-a1a1a1a1-guard.scope/cgroup.events": "populated 1\nfrozen 0",
			"boxrun-tests-0000000a-guard.scope/cgroup.events": "populated 1\nfrozen 0", "run-r1234.scope/cgroup.events": "populated 1\nfrozen 0"},
			liveSlice{boxes: 1, current: 10 << 30, high: u(policy.Unlimited), max: u(policy.Unlimited)}},
		{"no memory controller", map[string]string{"pids.current": "3"}, liveSlice{}},
		{"no slice yet", nil, liveSlice{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, v := range tt.files {
				fsys[dir+"/"+name] = &fstest.MapFile{Data: []byte(v + "\n")}
			}
			if got := readLiveSlice(fsys, dir, "boxrun-tests-0000000a.scope"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readLiveSlice = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestKeepWhatSliceHolds: a run never lowers a live slice's memory.high or
// memory.max below what the slice holds while boxes run in it (issue #17,
// item 8): the limit is left as it is, and one line says why.
func TestKeepWhatSliceHolds(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	const G = 1 << 30
	origins := map[string]policy.Origin{"memory.high": {File: policy.OriginBuiltin}, "memory.max": {File: "/home/u/.config/boxrun/policies.toml", Line: 3}}
	resolved := func(high, max *uint64) *policy.ResolvedSlice {
		return &policy.ResolvedSlice{MemoryHigh: high, MemoryMax: max, PidsMax: u(16384), Origins: origins}
	}
	holding := func(current uint64, high, max *uint64) liveSlice {
		return liveSlice{boxes: 1, current: current, high: high, max: max}
	}
	tests := []struct {
		name            string
		s               *policy.ResolvedSlice
		live            liveSlice
		wantHigh, wantM *uint64 // nil: left as it is
		warning         string
	}{
		{"a slice holding 10G is not lowered to 3.2G/3.4G", resolved(u(3435970560), u(3650719744)), holding(10*G, u(54*G), u(58*G)), nil, nil,
			"boxrun.slice holds 10G now (1 box running): its memory.high stays at 54G and its memory.max at 58G, not the 3.2G and 3.4G of [slice] memory.high (built-in) and memory.max (/home/u/.config/boxrun/policies.toml:3), which would take memory from them"},
		{"without limits it stays without", resolved(u(3*G), u(4*G)), holding(10*G, u(policy.Unlimited), u(policy.Unlimited)), nil, nil,
			"boxrun.slice holds 10G now (1 box running): its memory.high stays at max and its memory.max at max, not the 3G and 4G of [slice] memory.high (built-in) and memory.max (/home/u/.config/boxrun/policies.toml:3), which would take memory from them"},
		{"lowered, but not below what it holds", resolved(u(11*G), u(12*G)), holding(10*G, u(54*G), u(58*G)), u(11 * G), u(12 * G), ""},
		{"raised", resolved(u(51*G), u(54*G)), holding(10*G, u(3*G), u(4*G)), u(51 * G), u(54 * G), ""},
		{"a throttled memory.high is raised, though still below what it holds", resolved(u(5*G), u(20*G)), holding(10*G, u(3*G), u(20*G)), u(5 * G), u(20 * G), ""},
		{"only the one below what it holds is kept", resolved(u(8*G), u(12*G)), holding(10*G, u(54*G), u(58*G)), nil, u(12 * G),
			"boxrun.slice holds 10G now (1 box running): its memory.high stays at 54G, not the 8G of [slice] memory.high (built-in), which would take memory from them"},
		{"limits that cannot be read are left as they are", resolved(u(3*G), nil), holding(10*G, nil, nil), nil, nil,
			"boxrun.slice holds 10G now (1 box running): its memory.high stays as it is, not the 3G of [slice] memory.high (built-in), which would take memory from them"},
		{"a new slice gets the limits as resolved", resolved(u(3*G), u(4*G)), liveSlice{}, u(3 * G), u(4 * G), ""},
		{"three boxes running", resolved(u(policy.Unlimited), u(4*G)), liveSlice{boxes: 3, current: 10 * G, high: u(policy.Unlimited), max: u(58 * G)}, u(policy.Unlimited), nil,
			"boxrun.slice holds 10G now (3 boxes running): its memory.max stays at 58G, not the 4G of [slice] memory.max (/home/u/.config/boxrun/policies.toml:3), which would take memory from them"},
		{"no box running: the page cache of boxes gone holds nothing up", resolved(u(3*G), u(4*G)), liveSlice{current: 10 * G, high: u(54 * G), max: u(58 * G)}, u(3 * G), u(4 * G), ""},
		{"max is never a lowering", resolved(u(policy.Unlimited), u(policy.Unlimited)), holding(10*G, u(54*G), u(58*G)), u(policy.Unlimited), u(policy.Unlimited), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warning := keepWhatSliceHolds(tt.s, tt.live)
			if !reflect.DeepEqual(got.MemoryHigh, tt.wantHigh) || !reflect.DeepEqual(got.MemoryMax, tt.wantM) {
				t.Errorf("memory.high %s, memory.max %s; want %s and %s", fmtPtr(got.MemoryHigh), fmtPtr(got.MemoryMax), fmtPtr(tt.wantHigh), fmtPtr(tt.wantM))
			}
			if !reflect.DeepEqual(got.PidsMax, tt.s.PidsMax) || !reflect.DeepEqual(got.Origins, tt.s.Origins) {
				t.Errorf("pids.max or origins changed: %+v", got)
			}
			if warning != tt.warning {
				t.Errorf("warning:\n%q\nwant\n%q", warning, tt.warning)
			}
		})
	}
	// The resolved slice is not changed in place: another box of the run
	// may still need it.
	s := resolved(u(3*G), u(4*G))
	keepWhatSliceHolds(s, holding(10*G, u(54*G), u(58*G)))
	if *s.MemoryHigh != 3*G || *s.MemoryMax != 4*G {
		t.Errorf("keepWhatSliceHolds changed its argument: %+v", s)
	}
}

func fmtPtr(p *uint64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatUint(*p, 10)
}
