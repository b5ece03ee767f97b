package protect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
)

// systemdSize spells a byte count for systemctl set-property.
func systemdSize(b uint64) string {
	return policy.Size{Bytes: b}.String()
}

// FormatLow spells a memory.low value: "0", "2G", "max".
func FormatLow(b uint64) string {
	if b == 0 {
		return "0"
	}
	return policy.FormatBytes(b)
}

// getMemoryLow reads a unit's MemoryLow property.
func getMemoryLow(ctx context.Context, c *sd.Conn, unit string) (uint64, error) {
	prop, err := c.GetUnitTypePropertyContext(ctx, unit, systemd.UnitType(unit), "MemoryLow")
	if err != nil {
		return 0, systemd.ExplainError(err)
	}
	v, ok := prop.Value.Value().(uint64)
	if !ok {
		return 0, fmt.Errorf("MemoryLow of %s is %v, not a number", unit, prop.Value)
	}
	return v, nil
}

// setMemoryLow sets a unit's MemoryLow for this boot only.
func setMemoryLow(ctx context.Context, c *sd.Conn, unit string, v uint64) error {
	err := c.SetUnitPropertiesContext(ctx, unit, true, sd.Property{Name: "MemoryLow", Value: godbus.MakeVariant(v)})
	if err != nil {
		return systemd.ExplainError(err)
	}
	return nil
}

// protectCgroup sets memory.low of one cgroup (through its unit's manager,
// or the file for a plain cgroup), computes the effective protection and,
// with System, lifts the ancestors that cap it.
func (p *Protector) protectCgroup(ctx context.Context, mount cgroupfs.Mount, cg, group string, want uint64, st *protectState, rep *Report) ProtectedUnit {
	unit, manager, owner := systemd.UnitOwner(cg)
	u := ProtectedUnit{Cgroup: cg, Unit: unit, Manager: manager, Group: group}
	problem := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if u.Error == "" {
			u.Error = msg
		}
		rep.Problems = append(rep.Problems, msg)
	}
	lowFile := cgroupfs.FSPath(mount.Path, cg, "memory.low")
	cur, haveFile := readCgroupValue(p.rootFS, lowFile)
	u.Before, u.Set = cur, cur
	root := os.Geteuid() == 0
	switch {
	case mount.Path == "" || strings.Trim(cg, "/") == "":
		// The root cgroup, or no cgroup v2: nothing to set.
	case p.opt.DryRun:
		u.Set = max(cur, want)
	case haveFile && cur >= want:
		// Already protected (an earlier run, or the user's own setting).
	case manager != "":
		if manager == "system" && !root {
			break // the fix names the command
		}
		if prev, err := p.setUnitLow(ctx, manager, owner, unit, want); err != nil {
			problem("%v", err)
		} else {
			u.Before, u.Changed = prev, true
			st.recordUnit(stateUnit{Manager: manager, UID: owner, Unit: unit, Cgroup: cg, Before: prev, After: want})
		}
	case haveFile:
		// A plain cgroup (no systemd): write the file when we may.
		full := filepath.Join(mount.Path, cg, "memory.low")
		if unix.Access(full, unix.W_OK) != nil {
			break // the fix names the command
		}
		if err := os.WriteFile(full, []byte(strconv.FormatUint(want, 10)), 0); err != nil {
			problem("writing %s: %v", full, err)
			break
		}
		u.Changed = true
		st.recordUnit(stateUnit{Cgroup: cg, Before: cur, After: want})
	}
	if !p.opt.DryRun {
		if v, ok := readCgroupValue(p.rootFS, lowFile); ok {
			u.Set = v
		}
	}
	var override *uint64
	if p.opt.DryRun {
		override = &want
	}
	prot, err := EffectiveProtection(p.rootFS, cg, want, override, p.opt.UID)
	if err != nil {
		problem("computing the protection of %s: %v", cg, err)
	}
	if p.opt.System && root && !p.opt.DryRun && len(prot.Fixes) > 0 {
		prot = p.liftAncestors(ctx, mount, cg, want, prot, st, problem)
	}
	u.Protection = prot
	return u
}

// setUnitLow sets MemoryLow=want on unit through its manager (owner's,
// for a user manager) and returns the MemoryLow it had.
func (p *Protector) setUnitLow(ctx context.Context, manager string, owner int, unit string, want uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opt.Timeout)
	defer cancel()
	c, err := p.conn(ctx, manager, systemd.SocketFor(manager, owner))
	if err != nil {
		return 0, fmt.Errorf("setting MemoryLow on %s: %v", unit, err)
	}
	prev, err := getMemoryLow(ctx, c, unit)
	if err != nil {
		return 0, fmt.Errorf("reading MemoryLow of %s: %v", unit, err)
	}
	if err := setMemoryLow(ctx, c, unit, want); err != nil {
		return 0, fmt.Errorf("setting MemoryLow=%s on %s: %v", systemdSize(want), unit, err)
	}
	return prev, nil
}

// liftAncestors makes, as root, the fixes of prot for the cgroups above cg
// that cap its protection, and returns the protection then in force with
// the fixes made; problem is told of each that fails.
func (p *Protector) liftAncestors(ctx context.Context, mount cgroupfs.Mount, cg string, want uint64, prot Protection, st *protectState, problem func(string, ...any)) Protection {
	for i := range prot.Fixes {
		f := &prot.Fixes[i]
		if f.Cgroup == cg {
			continue
		}
		if err := p.applyFix(ctx, mount, *f, want, st); err != nil {
			problem("%s: %v", f.Command, err)
			continue
		}
		f.Applied = true
	}
	again, err := EffectiveProtection(p.rootFS, cg, want, nil, p.opt.UID)
	if err != nil {
		return prot
	}
	for _, f := range prot.Fixes {
		if f.Applied {
			again.Fixes = append(again.Fixes, f)
		}
	}
	return again
}

// applyFix makes one fix as root: MemoryLow through the unit's manager, or
// the memory.low file of a plain cgroup.
func (p *Protector) applyFix(ctx context.Context, mount cgroupfs.Mount, f Fix, want uint64, st *protectState) error {
	switch f.Manager {
	case "system", "user":
		ctx, cancel := context.WithTimeout(ctx, p.opt.Timeout)
		defer cancel()
		_, _, owner := systemd.UnitOwner(f.Cgroup)
		c, err := p.conn(ctx, f.Manager, systemd.SocketFor(f.Manager, owner))
		if err != nil {
			return err
		}
		prev, err := getMemoryLow(ctx, c, f.Unit)
		if err != nil {
			return err
		}
		if err := setMemoryLow(ctx, c, f.Unit, want); err != nil {
			return err
		}
		st.recordUnit(stateUnit{Manager: f.Manager, UID: owner, Unit: f.Unit, Cgroup: f.Cgroup, Before: prev, After: want})
		return nil
	case "":
		full := filepath.Join(mount.Path, f.Cgroup, "memory.low")
		prev, _ := readCgroupValue(p.rootFS, cgroupfs.FSPath(mount.Path, f.Cgroup, "memory.low"))
		if err := os.WriteFile(full, []byte(strconv.FormatUint(want, 10)), 0); err != nil {
			return err
		}
		st.recordUnit(stateUnit{Cgroup: f.Cgroup, Before: prev, After: want})
		return nil
	}
	return fmt.Errorf("not a change root can make here")
}
