package boxes

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
)

// LiveBox is a box that is running now, as `boxrun status` shows it.
type LiveBox struct {
	// Backend is "systemd" for a scope, "cgroupfs" for a plain cgroup.
	Backend string
	// Manager is "system" or "user" for a scope found through its systemd
	// manager, "" otherwise.
	Manager string
	// Unit is the scope's name, "" for a cgroupfs box.
	Unit string
	// Cgroup is the box's path below the cgroup2 mount.
	Cgroup string
	// Policy is the policy's name.
	Policy string
	// Command is the command line (the scope's description, or the box's
	// first process).
	Command string
	// Started is when the box started; zero when unknown.
	Started time.Time
	// MemoryCurrent is memory.current in bytes.
	MemoryCurrent uint64
	// MemoryPeak is memory.peak in bytes, nil before Linux 5.19.
	MemoryPeak *uint64
	// MemoryHigh and MemoryMax are the limits in bytes, nil for none.
	MemoryHigh, MemoryMax *uint64
	// PidsCurrent is pids.current; PidsMax is pids.max, nil for none.
	PidsCurrent uint64
	PidsMax     *uint64
	// CPUUsageUSec is the CPU time the box used so far (cpu.stat).
	CPUUsageUSec uint64
	// Owner says whether the boxrun that made the box still runs;
	// OwnerPID is that boxrun's pid, 0 when unknown.
	Owner    box.Ownership
	OwnerPID int
}

// List finds the boxrun boxes running now: the boxrun-*.scope units of
// the user's systemd manager (and, as root, of the system manager), and the
// boxrun-* cgroups of this user found by walking the cgroup2 hierarchy
// (boxes of the cgroupfs backend, and scopes of a manager that could not be
// asked). A manager that does not run is not an error; one that runs but
// does not answer is, and the walk still finds its boxes.
func List(ctx context.Context) ([]LiveBox, []error) {
	if cgroups.Mode() != cgroups.Unified {
		return nil, nil // no cgroup v2 box can exist here
	}
	mount, err := cgroupfs.MountPoint()
	if err != nil || mount == "" {
		return nil, nil
	}
	var boxes []LiveBox
	var errs []error
	seen := map[string]bool{}
	managers := []bool{true} // the user manager
	if os.Geteuid() == 0 {
		managers = []bool{false, true}
	}
	for _, user := range managers {
		found, err := listScopes(ctx, user, mount)
		if err != nil {
			errs = append(errs, err)
		}
		for _, b := range found {
			seen[b.Cgroup] = true
			boxes = append(boxes, b)
		}
	}
	found, err := listCgroups(mount, os.Geteuid(), seen)
	if err != nil {
		errs = append(errs, err)
	}
	boxes = append(boxes, found...)
	own := box.DefaultOwnerDir(os.Getenv)
	for i := range boxes {
		boxes[i].Owner, boxes[i].OwnerPID = box.OwnerOf(own, boxes[i].Cgroup)
	}
	sort.SliceStable(boxes, func(i, j int) bool {
		if !boxes[i].Started.Equal(boxes[j].Started) {
			return boxes[i].Started.Before(boxes[j].Started)
		}
		return boxes[i].Cgroup < boxes[j].Cgroup
	})
	return boxes, errs
}

// listScopes asks one systemd manager for its running boxrun scopes.
func listScopes(ctx context.Context, user bool, mount string) ([]LiveBox, error) {
	which := "system"
	if user {
		which = "user"
	}
	if fi, err := os.Stat(systemd.Socket(user)); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, nil // no such manager here
	}
	conn, err := systemd.Dial(ctx, which, systemd.Socket(user))
	if err != nil {
		return nil, fmt.Errorf("asking the systemd %s manager for its boxes: %w: %s", which, box.ErrUnavailable, systemd.Trim(err))
	}
	defer conn.Close() // read-only: nothing is lost when closing fails
	units, err := conn.ListUnitsByPatternsContext(ctx, []string{"active", "activating"}, []string{"boxrun-*.scope"})
	if err != nil {
		return nil, fmt.Errorf("listing the boxrun scopes of the systemd %s manager: %w", which, systemd.ExplainError(err))
	}
	var out []LiveBox
	for _, u := range units {
		if box.PolicyOfName(u.Name) == "" {
			continue // a guard's scope (see box.GuardArg)
		}
		b := LiveBox{Backend: box.KindSystemd, Manager: which, Unit: u.Name}
		b.Policy, b.Command = box.ParseDescription(u.Description)
		if b.Policy == "" {
			b.Policy = box.PolicyOfName(u.Name)
		}
		if p, err := conn.GetUnitTypePropertyContext(ctx, u.Name, "Scope", "ControlGroup"); err == nil {
			b.Cgroup, _ = p.Value.Value().(string)
		}
		if b.Cgroup == "" {
			continue // gone meanwhile, or not started yet
		}
		if p, err := conn.GetUnitPropertyContext(ctx, u.Name, "ActiveEnterTimestamp"); err == nil {
			if usec, ok := p.Value.Value().(uint64); ok && usec > 0 {
				b.Started = time.UnixMicro(int64(usec))
			}
		}
		readLive(&b, filepath.Join(mount, b.Cgroup))
		out = append(out, b)
	}
	return out, nil
}

// listCgroups walks the cgroup2 hierarchy below mount for the boxes owned by
// uid that are not in seen, and the boxes nested inside boxes (see
// NewNested). A box's cgroup belongs to whoever made it: root for the
// system manager's scopes and root's cgroupfs boxes, the user for the user
// manager's scopes. A guard's cgroup is no box.
func listCgroups(mount string, uid int, seen map[string]bool) ([]LiveBox, error) {
	var out []LiveBox
	err := filepath.WalkDir(mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == mount {
				return err
			}
			return nil // a cgroup removed or unreadable while walking
		}
		pol := box.PolicyOfName(d.Name())
		if !d.IsDir() || pol == "" {
			return nil
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, mount), "/")
		if seen[rel] {
			return nil // listed by its manager; boxes may be nested in it
		}
		fi, err := d.Info()
		if err != nil {
			return fs.SkipDir
		}
		if !ownedBy(fi, uid) {
			return fs.SkipDir
		}
		b := LiveBox{Backend: box.KindCgroupfs, Cgroup: rel, Policy: pol, Started: fi.ModTime()}
		if strings.HasSuffix(d.Name(), ".scope") {
			b.Backend, b.Unit = box.KindSystemd, d.Name()
		}
		if pids, err := cgroupfs.Procs(p); err == nil {
			if len(pids) == 0 {
				return fs.SkipDir // an empty box is on its way out
			}
			b.Command = rootCommand(pids)
		}
		readLive(&b, p)
		out = append(out, b)
		return nil // boxes may be nested in it
	})
	if err != nil {
		return out, fmt.Errorf("looking for boxes in %s: %w", mount, err)
	}
	return out, nil
}

// rootCommand is the command line of the box's first process: the one
// whose parent is outside the box (boxrun), the oldest when there are
// several.
func rootCommand(pids []int) string {
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	root := 0
	for _, p := range pids {
		if ppid, ok := parentPID(p); ok && !in[ppid] && (root == 0 || p < root) {
			root = p
		}
	}
	if root == 0 {
		return ""
	}
	return box.DescribeProc(root).Cmdline
}

// parentPID reads a process's parent from /proc/PID/stat.
func parentPID(pid int) (int, bool) {
	st, err := procfs.ReadStat(pid)
	return st.PPID, err == nil
}

// readLive fills in the box's current figures from its cgroup directory.
func readLive(b *LiveBox, dir string) {
	b.MemoryCurrent, _, _ = cgroupfs.ReadCounter(filepath.Join(dir, "memory.current"))
	if v, ok, _ := cgroupfs.ReadCounter(filepath.Join(dir, "memory.peak")); ok {
		b.MemoryPeak = &v
	}
	b.MemoryHigh = readLimit(filepath.Join(dir, "memory.high"))
	b.MemoryMax = readLimit(filepath.Join(dir, "memory.max"))
	b.PidsCurrent, _, _ = cgroupfs.ReadCounter(filepath.Join(dir, "pids.current"))
	b.PidsMax = readLimit(filepath.Join(dir, "pids.max"))
	if m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "cpu.stat")); err == nil {
		b.CPUUsageUSec = m["usage_usec"]
	}
}

// readLimit reads a limit file: nil for "max" or when it cannot be read.
func readLimit(path string) *uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	v, ok := cgroupfs.ParseLimit(string(data))
	if !ok || v == policy.Unlimited {
		return nil
	}
	return &v
}

// ownedBy reports whether the file is uid's (true when that cannot be told).
func ownedBy(fi fs.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == uid
}
