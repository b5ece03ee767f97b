package box

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/policy"
)

func u64(v uint64) *uint64 { return &v }

func TestCheckLimits(t *testing.T) {
	oneG := uint64(1 << 30)
	p := &policy.Resolved{
		Name:               "tests",
		MemoryHigh:         u64(oneG + 100), // not page aligned: kernel rounds down
		MemoryMax:          u64(policy.Unlimited),
		PidsMax:            u64(64),
		CPUWeight:          u64(20),
		CPUQuotaPerSecUSec: u64(1500000),
		IOWeight:           u64(50),
		MemoryOOMGroup:     true,
	}
	fsys := fstest.MapFS{
		"cg/memory.high":      {Data: []byte("1073741824\n")},
		"cg/memory.max":       {Data: []byte("max\n")},
		"cg/memory.oom.group": {Data: []byte("0\n")},
		"cg/pids.max":         {Data: []byte("64\n")},
		"cg/cpu.weight":       {Data: []byte("100\n")},
		"cg/cpu.max":          {Data: []byte("150000 100000\n")},
	}
	checks := checkLimits(fsys, "cg", p.Settings(), []string{"memory", "pids", "cpu"}, func(c string) string { return "delegate " + c })
	got := map[string]LimitCheck{}
	for _, c := range checks {
		got[c.Key] = c
	}
	wantOK := []string{"memory.high", "memory.max", "pids.max", "cpu.max"}
	for _, k := range wantOK {
		if !got[k].OK() {
			t.Errorf("%s: want ok, got problem %q", k, got[k].Problem)
		}
	}
	if c := got["cpu.weight"]; c.OK() || !strings.Contains(c.Problem, `reads "100", not "20"`) {
		t.Errorf("cpu.weight: got %+v", c)
	}
	if c := got["memory.oom_group"]; c.OK() {
		t.Errorf("memory.oom_group: want a problem, got ok")
	}
	if c := got["io.weight"]; !strings.Contains(c.Problem, "io controller is not enabled") || c.Hint != "delegate io" {
		t.Errorf("io.weight: got %+v", c)
	}
	if len(checks) != 7 {
		t.Errorf("got %d checks, want 7 (one per limit set)", len(checks))
	}
}

func TestSameValueCPUMax(t *testing.T) {
	tests := []struct {
		want, got string
		same      bool
	}{
		{"150000 100000", "150000 100000", true},
		{"150000 100000", "15000 10000", true}, // same ratio, other period
		{"333333 100000", "330000 100000", true},
		{"150000 100000", "200000 100000", false},
		{"max 100000", "max 100000", true},
		{"150000 100000", "max 100000", false},
		{"150000 100000", "garbage", false},
	}
	for _, tt := range tests {
		if got := sameValue("cpu.max", tt.want, tt.got); got != tt.same {
			t.Errorf("sameValue(cpu.max, %q, %q) = %v, want %v", tt.want, tt.got, got, tt.same)
		}
	}
	if sameValue("cpu.weight", "20", "21") {
		t.Error("cpu.weight must match exactly")
	}
}
