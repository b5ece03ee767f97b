package policy

import (
	"math"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CPUPeriodUSec is the cpu.max period LinuxResources uses: 100ms, the
// kernel's default.
const CPUPeriodUSec = 100_000

// LinuxResources maps the policy onto the OCI runtime-spec resources, the way
// runc and crun read them on cgroup v2. Unset settings stay nil; Unlimited
// ("max") becomes -1 where the spec field is a signed limit.
//
//   - memory.max → Memory.Limit.
//   - memory.swap.max → Memory.Swap, which in the spec is memory plus swap:
//     memory.max + memory.swap.max when memory.max is a limit; -1 for
//     "max". When memory.max is unset or "max" a byte count cannot be
//     expressed that way, so it goes to Unified["memory.swap.max"] instead.
//   - pids.max → Pids.Limit.
//   - cpu.weight → CPU.Shares: the smallest shares value that runc, crun
//     and containerd/cgroups (ConvertCPUSharesToCgroupV2Value) convert back
//     to exactly this weight. They now use a quadratic mapping (shares 2,
//     1024 and 262144 give weights 1, 100 and 10000); the older linear
//     inverse, 2 + (weight-1)*262142/9999, turns weight 50 into 120 with
//     them.
//   - cpu.max → CPU.Quota per CPU.Period of CPUPeriodUSec; Quota -1 for
//     "max".
//   - io.weight → BlockIO.Weight, the cgroup v1 blkio weight (10..1000)
//     nearest to it under the runtimes' conversion
//     io.weight = 1 + (blkio-10)*9999/990; that conversion has about ten
//     io.weight steps per blkio step, so the weight that reaches the
//     kernel is within 5 of io.weight.
//   - memory.high and memory.oom_group (when set or true), which have no
//     spec field, go to Unified as the strings written to the cgroup files
//     ("max" for Unlimited, "1"/"0").
//
// oom_score_adj, memory.backpressure, leftovers and protect are not
// cgroup resources and are not mapped.
func (r *Resolved) LinuxResources() *specs.LinuxResources {
	res := &specs.LinuxResources{}
	unified := map[string]string{}

	var mem specs.LinuxMemory
	memSet := false
	if r.MemoryMax != nil {
		mem.Limit = ptr(specLimit(*r.MemoryMax))
		memSet = true
	}
	if r.MemorySwapMax != nil {
		swap := *r.MemorySwapMax
		switch m := r.MemoryMax; {
		case swap == Unlimited:
			mem.Swap = ptr(int64(-1))
			memSet = true
		case m != nil && *m != Unlimited && *m <= math.MaxInt64-swap:
			mem.Swap = ptr(int64(*m + swap))
			memSet = true
		default:
			unified["memory.swap.max"] = cgroupValue(swap)
		}
	}
	if memSet {
		res.Memory = &mem
	}
	if r.MemoryHigh != nil {
		unified["memory.high"] = cgroupValue(*r.MemoryHigh)
	}
	if _, set := r.Origins["memory.oom_group"]; set || r.MemoryOOMGroup {
		unified["memory.oom.group"] = "0"
		if r.MemoryOOMGroup {
			unified["memory.oom.group"] = "1"
		}
	}

	if r.PidsMax != nil {
		res.Pids = &specs.LinuxPids{Limit: ptr(specLimit(*r.PidsMax))}
	}

	if r.CPUWeight != nil || r.CPUQuotaPerSecUSec != nil {
		res.CPU = &specs.LinuxCPU{}
		if r.CPUWeight != nil {
			res.CPU.Shares = ptr(cpuWeightToShares(*r.CPUWeight))
		}
		if q := r.CPUQuotaPerSecUSec; q != nil {
			quota := int64(-1)
			if *q != Unlimited {
				quota = int64(*q / (1_000_000 / CPUPeriodUSec))
			}
			res.CPU.Quota = &quota
			res.CPU.Period = ptr(uint64(CPUPeriodUSec))
		}
	}

	if r.IOWeight != nil {
		res.BlockIO = &specs.LinuxBlockIO{Weight: ptr(ioWeightToBlkio(*r.IOWeight))}
	}

	if len(unified) > 0 {
		res.Unified = unified
	}
	return res
}

// specLimit converts a limit to the spec's signed form, -1 for Unlimited.
func specLimit(v uint64) int64 {
	switch {
	case v == Unlimited:
		return -1
	case v > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(v)
}

// cgroupValue formats a limit as written to a cgroup file.
func cgroupValue(v uint64) string {
	if v == Unlimited {
		return "max"
	}
	return strconv.FormatUint(v, 10)
}

// cpuSharesToWeight is the shares to weight conversion of runc and crun
// (opencontainers/cgroups ConvertCPUSharesToCgroupV2Value, also in
// containerd/cgroups v3): a quadratic in log2(shares) through (2, 1),
// (1024, 100) and (262144, 10000).
func cpuSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// cpuWeightToShares inverts cpuSharesToWeight: the smallest shares that
// convert to at least weight. Every weight 1..10000 is reached exactly.
func cpuWeightToShares(weight uint64) uint64 {
	lo, hi := uint64(2), uint64(262144)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if cpuSharesToWeight(mid) >= weight {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// blkioToIOWeight is the runtimes' blkio weight to io.weight conversion
// (runc, crun, containerd/cgroups).
func blkioToIOWeight(b uint16) uint64 {
	return 1 + (uint64(b)-10)*9999/990
}

// ioWeightToBlkio returns the blkio weight (10..1000) whose conversion by
// blkioToIOWeight is nearest to w.
func ioWeightToBlkio(w uint64) uint16 {
	w = min(max(w, minWeight), maxWeight)
	lo := uint16(10 + (w-1)*990/9999) // converts to at most w
	if lo < 1000 && blkioToIOWeight(lo+1)-w < w-blkioToIOWeight(lo) {
		return lo + 1
	}
	return lo
}

func ptr[T any](v T) *T { return &v }
