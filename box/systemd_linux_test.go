package box

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/boxrun/boxrun/policy"
)

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

// TestSliceProperties: the [slice] budget reaches the slice as the limits
// table's properties of its keys, as uint64, "max" as infinity, and
// nothing for a key it leaves unset.
func TestSliceProperties(t *testing.T) {
	s := &policy.ResolvedSlice{MemoryHigh: u64(800 << 20), MemoryMax: u64(policy.Unlimited), CPUWeight: u64(100)}
	var got []string
	for _, pr := range sliceProperties(s) {
		got = append(got, fmt.Sprintf("%s=%v", pr.Name, pr.Value.Value()))
		if _, ok := pr.Value.Value().(uint64); !ok && !strings.HasSuffix(pr.Name, "Accounting") {
			t.Errorf("%s has type %T, want uint64", pr.Name, pr.Value.Value())
		}
	}
	want := []string{"MemoryAccounting=true", "TasksAccounting=true", "MemoryHigh=838860800",
		fmt.Sprintf("MemoryMax=%d", uint64(policy.Unlimited)), "CPUWeight=100"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sliceProperties = %v, want %v", got, want)
	}
}

// TestOOMPolicyWarning: the fallback's warning names the release that
// brought OOMPolicy on scopes (252.5, by the stable backport) and what to
// do instead.
func TestOOMPolicyWarning(t *testing.T) {
	got := oomPolicyWarning("252")
	for _, want := range []string{"systemd 252 cannot set OOMPolicy on a scope", "upgrade to systemd 252.5 or later", "memory.oom_group = true"} {
		if !strings.Contains(got, want) {
			t.Errorf("warning %q does not say %q", got, want)
		}
	}
}
