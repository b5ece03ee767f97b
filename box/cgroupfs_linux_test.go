package box

import (
	"testing"

	"github.com/boxrun/boxrun/policy"
)

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
