package protect

import (
	"fmt"
	"io/fs"
	"math"
	"os/user"
	"path"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/systemd"
)

// CgroupLevel is one cgroup on the path from the root to a process's
// cgroup, as protection sees it.
type CgroupLevel struct {
	// Path is the cgroup below the mount, e.g. "/user.slice".
	Path string `json:"cgroup"`
	// Low is memory.low as set (0 when unset).
	Low uint64 `json:"memory_low"`
	// Effective is the protection this level can pass on (see
	// EffectiveProtection).
	Effective uint64 `json:"effective"`
}

// Fix is one change that would lift a cap on a unit's protection.
type Fix struct {
	// Cgroup is the cgroup to change.
	Cgroup string `json:"cgroup"`
	// Unit is its systemd unit, "" for a plain cgroup.
	Unit string `json:"unit,omitempty"`
	// Manager is "system", "user" or "" (no systemd: the cgroup file).
	Manager string `json:"manager"`
	// NeedsRoot is true when only root can make the change.
	NeedsRoot bool `json:"needs_root"`
	// Command is the exact shell command that makes it.
	Command string `json:"command"`
	// Applied is true when boxrun made it (protect --system as root).
	Applied bool `json:"applied,omitempty"`
}

// Protection is the memory.low protection a cgroup actually gets.
type Protection struct {
	// Levels are the cgroups from the top (a child of the root) down to
	// the process's own, those with the memory controller only.
	Levels []CgroupLevel `json:"chain"`
	// Recursive says whether cgroup2 is mounted with memory_recursiveprot.
	Recursive bool `json:"recursive_prot"`
	// Effective is the protection the process's cgroup gets, at most.
	Effective uint64 `json:"effective"`
	// Want is the protection asked for.
	Want uint64 `json:"want"`
	// Fixes lift every ancestor that caps Effective below Want (and the
	// cgroup itself when its own memory.low is below Want).
	Fixes []Fix `json:"fixes"`
	// Note explains an empty chain (the root cgroup, no memory controller).
	Note string `json:"note,omitempty"`
}

// levelEffective is the model of the kernel's effective protection for one
// level: a top-level cgroup gets its own memory.low; below, a cgroup gets
// at most what it sets and what its parent gets, and with
// memory_recursiveprot a cgroup that sets nothing is given its parent's.
func levelEffective(first bool, low, parent uint64, recursive bool) uint64 {
	switch {
	case first:
		return low
	case recursive && low == 0:
		return parent
	default:
		return min(low, parent)
	}
}

// computeProtection is the pure part of EffectiveProtection: given the
// levels' memory.low settings (Effective is filled in), it computes the
// protection the last level gets and the fixes, top-down, that would let
// it reach want. The model is an upper bound: the kernel also splits a
// parent's protection among siblings in proportion to their usage.
func computeProtection(levels []CgroupLevel, recursive bool, want uint64, mount string, uid int) Protection {
	p := Protection{Levels: append([]CgroupLevel{}, levels...), Recursive: recursive, Want: want, Fixes: []Fix{}}
	if len(levels) == 0 {
		p.Note = "the process is in the root cgroup, which memory.low never protects"
		return p
	}
	var e, fixed uint64 = math.MaxUint64, math.MaxUint64
	for i := range p.Levels {
		l := &p.Levels[i]
		l.Effective = levelEffective(i == 0, l.Low, e, recursive)
		e = l.Effective
		// What this level would pass on once the fixes above it are made.
		low := l.Low
		f := levelEffective(i == 0, low, fixed, recursive)
		if f < want {
			p.Fixes = append(p.Fixes, fixFor(l.Path, want, mount, uid))
			low = max(low, want)
			f = levelEffective(i == 0, low, fixed, recursive)
		}
		fixed = f
	}
	p.Effective = e
	return p
}

// fixFor is the command that sets memory.low of one cgroup to want.
func fixFor(cgroup string, want uint64, mount string, uid int) Fix {
	unit, manager, owner := systemd.UnitOwner(cgroup)
	f := Fix{Cgroup: cgroup, Unit: unit, Manager: manager}
	runtime := ""
	if strings.HasSuffix(unit, ".scope") {
		runtime = "--runtime " // a scope's name does not outlive it
	}
	switch manager {
	case "user":
		f.Command = fmt.Sprintf("systemctl --user set-property %s%s MemoryLow=%s", runtime, unit, systemdSize(want))
		if owner != uid && uid >= 0 {
			// Another user's manager: only root (or that user) may.
			name := strconv.Itoa(owner)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			f.NeedsRoot = true
			f.Command = fmt.Sprintf("sudo systemctl --user --machine=%s@ set-property %s%s MemoryLow=%s", name, runtime, unit, systemdSize(want))
		}
	case "system":
		f.NeedsRoot = true
		f.Command = fmt.Sprintf("sudo systemctl set-property %s%s MemoryLow=%s", runtime, unit, systemdSize(want))
	default:
		f.NeedsRoot = true
		f.Command = fmt.Sprintf("echo %d | sudo tee %s", want, path.Join("/", mount, cgroup, "memory.low"))
	}
	return f
}

// readCgroupValue reads a single-value cgroup file ("max" or a number).
func readCgroupValue(fsys fs.FS, name string) (uint64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	return cgroupfs.ParseLimit(string(b))
}

// EffectiveProtection computes the memory.low protection the cgroup
// (below the cgroup2 mount) gets, from the real files of fsys (rooted at
// "/"), and the fixes that would bring it to want. override, when not nil,
// replaces the cgroup's own memory.low (what a dry run would set). uid is
// the user running boxrun, for the fix commands. Levels without the memory
// controller are skipped: their memory is charged to the nearest ancestor
// that has it.
func EffectiveProtection(fsys fs.FS, cgroup string, want uint64, override *uint64, uid int) (Protection, error) {
	m, err := cgroupfs.ReadMount(fsys)
	if err != nil {
		return Protection{}, err
	}
	if m.Path == "" {
		return Protection{Levels: []CgroupLevel{}, Want: want, Fixes: []Fix{}, Note: "no cgroup v2 hierarchy is mounted"}, nil
	}
	var levels []CgroupLevel
	cur := ""
	comps := strings.Split(strings.Trim(cgroup, "/"), "/")
	for i, c := range comps {
		if c == "" {
			continue
		}
		cur += "/" + c
		low, ok := readCgroupValue(fsys, cgroupfs.FSPath(m.Path, cur, "memory.low"))
		if i == len(comps)-1 && override != nil {
			low, ok = max(low, *override), true
		}
		if !ok {
			continue
		}
		levels = append(levels, CgroupLevel{Path: cur, Low: low})
	}
	p := computeProtection(levels, m.Has("memory_recursiveprot"), want, m.Path, uid)
	if len(levels) == 0 && strings.Trim(cgroup, "/") != "" {
		p.Note = "the memory controller is not enabled for " + cgroup + " or its ancestors"
	}
	return p, nil
}
