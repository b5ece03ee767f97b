package sandbox

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	godbus "github.com/godbus/dbus/v5"

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
	checks := checkLimits(fsys, "cg", p, []string{"memory", "pids", "cpu"}, func(c string) string { return "delegate " + c })
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

func TestUnitName(t *testing.T) {
	tests := []struct{ policy, want string }{
		{"tests", "boxrun-tests-ab12cd34.scope"},
		{"my policy/x", "boxrun-my_policy_x-ab12cd34.scope"},
		{"dash-ok", "boxrun-dash_ok-ab12cd34.scope"},
	}
	for _, tt := range tests {
		if got := unitName(tt.policy, "ab12cd34"); got != tt.want {
			t.Errorf("unitName(%q) = %q, want %q", tt.policy, got, tt.want)
		}
	}
}

func TestScopeProperties(t *testing.T) {
	p := &policy.Resolved{
		Name:               "tests",
		MemoryHigh:         u64(1 << 30),
		MemoryMax:          u64(policy.Unlimited),
		PidsMax:            u64(100),
		CPUWeight:          u64(50),
		CPUQuotaPerSecUSec: u64(2000000),
		IOWeight:           u64(10),
	}
	props := func(oomPolicy bool) map[string]godbus.Variant {
		m := map[string]godbus.Variant{}
		for _, pr := range scopeProperties(p, oomPolicy, "d", 42) {
			m[pr.Name] = pr.Value
		}
		return m
	}
	m := props(false)
	// D-Bus types matter: systemd rejects int32 where it wants uint64.
	for _, name := range []string{"MemoryHigh", "MemoryMax", "TasksMax", "CPUWeight", "CPUQuotaPerSecUSec", "IOWeight"} {
		v, ok := m[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if _, ok := v.Value().(uint64); !ok {
			t.Errorf("%s has type %T, want uint64", name, v.Value())
		}
	}
	if v := m["MemoryMax"].Value().(uint64); v != policy.Unlimited {
		t.Errorf("MemoryMax = %d, want infinity", v)
	}
	if pids, _ := m["PIDs"].Value().([]uint32); !reflect.DeepEqual(pids, []uint32{42}) {
		t.Errorf("PIDs = %v", m["PIDs"])
	}
	if m["Slice"].Value() != SliceName || m["CollectMode"].Value() != "inactive-or-failed" {
		t.Errorf("Slice/CollectMode = %v/%v", m["Slice"], m["CollectMode"])
	}
	if d, ok := m["Delegate"].Value().(bool); !ok || !d {
		t.Errorf("Delegate = %v, want true: backpressure freezes paused processes in a child cgroup of the scope", m["Delegate"])
	}
	if _, ok := m["OOMPolicy"]; ok {
		t.Error("OOMPolicy sent although the manager refused it")
	}
	if _, ok := m["MemorySwapMax"]; ok {
		t.Error("MemorySwapMax sent though unset")
	}
	if got := props(true)["OOMPolicy"].Value(); got != "continue" {
		t.Errorf("OOMPolicy = %v, want continue", got)
	}
	// memory.oom_group is written by boxrun, not asked of the manager with
	// OOMPolicy=kill, which also stops the scope (SIGTERM to every process)
	// while the kernel kills the group.
	p.MemoryOOMGroup = true
	if got := props(true)["OOMPolicy"].Value(); got != "continue" {
		t.Errorf("OOMPolicy with oom_group = %v, want continue", got)
	}
}

func TestCgroupResources(t *testing.T) {
	p := &policy.Resolved{
		MemoryHigh:         u64(1 << 30),
		MemoryMax:          u64(policy.Unlimited),
		PidsMax:            u64(policy.Unlimited),
		CPUWeight:          u64(50),
		CPUQuotaPerSecUSec: u64(2500000),
	}
	r := cgroupResources(p, []string{"memory", "pids", "cpu"})
	if r.Memory == nil || r.Memory.High == nil || *r.Memory.High != 1<<30 || r.Memory.Max != nil {
		t.Errorf("memory = %+v; want high 1G and max left at the kernel's max", r.Memory)
	}
	if r.Pids == nil || r.Pids.Max != 0 {
		t.Errorf("pids = %+v; want the controller on, max untouched", r.Pids)
	}
	if r.CPU == nil || string(r.CPU.Max) != "250000 100000" || *r.CPU.Weight != 50 {
		t.Errorf("cpu = %+v", r.CPU)
	}
	r = cgroupResources(p, []string{"memory"})
	if r.Pids != nil || r.CPU != nil {
		t.Errorf("controllers not available must be left out: %+v", r)
	}
}

func TestHelperArgsRoundTrip(t *testing.T) {
	adj := 500
	in := helperConfig{oomScoreAdj: &adj, nproc: 64, path: "/bin/sh", argv: []string{"sh", "-c", "exit 7", "--"}}
	got, err := parseHelperArgs(helperArgs(in))
	if err != nil {
		t.Fatal(err)
	}
	if *got.oomScoreAdj != 500 || got.nproc != 64 || got.path != "/bin/sh" || !reflect.DeepEqual(got.argv, in.argv) {
		t.Fatalf("round trip: got %+v", got)
	}
	for _, bad := range [][]string{
		{HelperArg},
		{HelperArg, "--oom-score-adj"},
		{HelperArg, "--oom-score-adj", "x", "--", "/a", "a"},
		{HelperArg, "--bogus", "1", "--", "/a", "a"},
		{"other"},
	} {
		if _, err := parseHelperArgs(bad); err == nil {
			t.Errorf("parseHelperArgs(%q): want error", bad)
		}
	}
}

func TestParseHelperStatus(t *testing.T) {
	s := parseHelperStatus([]byte("W setting oom_score_adj to 500: denied\nE 127 nope: no such file\n"))
	if len(s.warnings) != 1 || s.execCode != 127 || s.execErr != "nope: no such file" {
		t.Fatalf("got %+v", s)
	}
	if s := parseHelperStatus(nil); s.execCode != 0 || len(s.warnings) != 0 {
		t.Fatalf("empty status: got %+v", s)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		ws   syscall.WaitStatus
		code int
		sig  syscall.Signal
	}{
		{"exit 0", 0, 0, 0},
		{"exit 7", 7 << 8, 7, 0},
		{"SIGTERM", syscall.WaitStatus(syscall.SIGTERM), 143, syscall.SIGTERM},
		{"SIGKILL", syscall.WaitStatus(syscall.SIGKILL), 137, syscall.SIGKILL},
		{"SIGSEGV with core", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 139, syscall.SIGSEGV},
	}
	for _, tt := range tests {
		code, sig := ExitCode(tt.ws)
		if code != tt.code || sig != tt.sig {
			t.Errorf("%s: got %d/%v, want %d/%v", tt.name, code, sig, tt.code, tt.sig)
		}
	}
}
