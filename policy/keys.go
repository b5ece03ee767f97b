package policy

import (
	"fmt"
	"slices"
	"strings"
)

// protectKeys are the keys of a [protect.NAME] table. Read-only.
var protectKeys = []string{"match", "memory.low", "oom_score_adj"}

// sliceKeys are the keys of the [slice] table, those of sliceTable.
// Read-only.
var sliceKeys = func() []string {
	keys := make([]string, len(sliceTable))
	for i, row := range sliceTable {
		keys[i] = row.key
	}
	return keys
}()

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
	l, ok := lookupKey(key)
	if !ok {
		return fmt.Errorf("unknown key %q", key)
	}
	return l.set(p, v)
}

// copyPolicyKey copies the value of key, and its origin, from src to dst.
func copyPolicyKey(dst, src *Policy, key string) {
	if l, ok := lookupKey(key); ok {
		l.copy(dst, src)
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
