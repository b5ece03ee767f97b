package policy

import (
	"fmt"
	"slices"
	"strings"
)

// policyKeys are the keys of a [policies.NAME] table, as written in TOML and
// in --set, in the order they are documented. Read-only.
var policyKeys = []string{
	"description",
	"extends",
	"memory.high",
	"memory.max",
	"memory.swap.max",
	"memory.oom_group",
	"memory.backpressure",
	"pids.max",
	"cpu.weight",
	"cpu.max",
	"io.weight",
	"oom_score_adj",
	"leftovers",
	"leftovers_grace",
	"protect",
	"max_concurrent",
	"start_when_available",
}

// protectKeys are the keys of a [protect.NAME] table. Read-only.
var protectKeys = []string{"match", "memory.low", "oom_score_adj"}

// sliceKeys are the keys of the [slice] table. Read-only.
var sliceKeys = []string{"memory.high", "memory.max", "pids.max", "cpu.weight"}

// subKeys returns the known keys under prefix ("memory" gives memory.high,
// memory.max, ...); none means prefix is not a table of known keys.
func subKeys(known []string, prefix string) []string {
	var out []string
	for _, k := range known {
		if strings.HasPrefix(k, prefix+".") {
			out = append(out, k)
		}
	}
	return out
}

// setPolicyKey validates v and stores it in the field of p for key. It does
// not record the origin. key must be one of policyKeys.
func setPolicyKey(p *Policy, key string, v *tomlValue) error {
	var err error
	switch key {
	case "description":
		p.Description, err = descriptionValue(v)
	case "extends":
		p.Extends, err = extendsValue(v)
	case "memory.high":
		p.MemoryHigh, err = sizePtr(v, false)
	case "memory.max":
		p.MemoryMax, err = sizePtr(v, false)
	case "memory.swap.max":
		p.MemorySwapMax, err = sizePtr(v, true)
	case "memory.oom_group":
		p.MemoryOOMGroup, err = ptrOf(boolValue(v))
	case "memory.backpressure":
		p.MemoryBackpressure, err = ptrOf(boolValue(v))
	case "pids.max":
		p.PidsMax, err = ptrOf(countLimit(v))
	case "cpu.weight":
		p.CPUWeight, err = ptrOf(weight(v))
	case "cpu.max":
		var pct float64
		var unlimited bool
		pct, unlimited, err = cpuMax(v)
		if err == nil {
			p.CPUMaxPercent, p.CPUMaxUnlimited = nil, unlimited
			if !unlimited {
				p.CPUMaxPercent = &pct
			}
		}
	case "io.weight":
		p.IOWeight, err = ptrOf(weight(v))
	case "oom_score_adj":
		p.OOMScoreAdj, err = ptrOf(oomScoreAdj(v))
	case "leftovers":
		p.Leftovers, err = leftovers(v)
	case "leftovers_grace":
		p.LeftoversGrace, err = ptrOf(grace(v))
	case "protect":
		p.Protect, err = nameList(v, "protection group name", `["editors"]`)
	case "max_concurrent":
		p.MaxConcurrent, err = ptrOf(maxConcurrent(v))
	case "start_when_available":
		p.StartWhenAvailable, err = ptrOf(availableValue(v))
	default:
		err = fmt.Errorf("unknown key %q", key)
	}
	return err
}

// copyPolicyKey copies the value of key, and its origin, from src to dst.
func copyPolicyKey(dst, src *Policy, key string) {
	switch key {
	case "description":
		dst.Description = src.Description
	case "extends":
		dst.Extends = src.Extends
	case "memory.high":
		dst.MemoryHigh = src.MemoryHigh
	case "memory.max":
		dst.MemoryMax = src.MemoryMax
	case "memory.swap.max":
		dst.MemorySwapMax = src.MemorySwapMax
	case "memory.oom_group":
		dst.MemoryOOMGroup = src.MemoryOOMGroup
	case "memory.backpressure":
		dst.MemoryBackpressure = src.MemoryBackpressure
	case "pids.max":
		dst.PidsMax = src.PidsMax
	case "cpu.weight":
		dst.CPUWeight = src.CPUWeight
	case "cpu.max":
		dst.CPUMaxPercent, dst.CPUMaxUnlimited = src.CPUMaxPercent, src.CPUMaxUnlimited
	case "io.weight":
		dst.IOWeight = src.IOWeight
	case "oom_score_adj":
		dst.OOMScoreAdj = src.OOMScoreAdj
	case "leftovers":
		dst.Leftovers = src.Leftovers
	case "leftovers_grace":
		dst.LeftoversGrace = src.LeftoversGrace
	case "protect":
		dst.Protect = slices.Clone(src.Protect)
	case "max_concurrent":
		dst.MaxConcurrent = src.MaxConcurrent
	case "start_when_available":
		dst.StartWhenAvailable = src.StartWhenAvailable
	}
	dst.Origins[key] = src.Origins[key]
}

// setProtectKey validates v and stores it in g for key, one of protectKeys.
func setProtectKey(g *ProtectGroup, key string, v *tomlValue) error {
	var err error
	switch key {
	case "match":
		g.Match, err = nameList(v, "process name", `["code"]`)
		if err == nil && len(g.Match) == 0 {
			err = fmt.Errorf(`is empty (list at least one process name, e.g. match = ["code"])`)
		}
	case "memory.low":
		g.MemoryLow, err = sizePtr(v, true)
	case "oom_score_adj":
		g.OOMScoreAdj, err = ptrOf(oomScoreAdj(v))
	default:
		err = fmt.Errorf("unknown key %q", key)
	}
	return err
}

// setSliceKey validates v and stores it in s for key, one of sliceKeys.
func setSliceKey(s *SliceLimits, key string, v *tomlValue) error {
	var err error
	switch key {
	case "memory.high":
		s.MemoryHigh, err = sizePtr(v, false)
	case "memory.max":
		s.MemoryMax, err = sizePtr(v, false)
	case "pids.max":
		s.PidsMax, err = ptrOf(countLimit(v))
	case "cpu.weight":
		s.CPUWeight, err = ptrOf(weight(v))
	default:
		err = fmt.Errorf("unknown key %q", key)
	}
	return err
}

func sizePtr(v *tomlValue, allowZero bool) (*Size, error) {
	return ptrOf(sizeValue(v, allowZero))
}

// ptrOf returns a pointer to x, or nil and err when err is not nil.
func ptrOf[T any](x T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &x, nil
}

// Keys returns the keys of a [policies.NAME] table, as written in TOML and
// in --set, in the order they are documented (for help and completion).
func Keys() []string {
	return slices.Clone(policyKeys)
}
