package boxes

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
)

// MachineMemory returns the memory that the percentages of policies are
// taken of, for runs made with choice c: the memory of the machine that
// holds boxrun.slice, and with it every box. That is MemTotal or, when
// smaller, the lowest memory.max of the cgroup that holds boxrun.slice
// (see sliceHome) and of every cgroup above it: a container's limit counts
// (its cgroup is the root of its cgroup namespace), and so does one set on
// user-UID.slice. The cgroup boxrun is started from does not: no box lives
// in it, so a terminal's 4G scope says nothing about what the boxes share.
// Nor does boxrun.slice's own limit, which the [slice] percentages set.
func MachineMemory(c box.Choice) (uint64, error) {
	return machineMemory(os.DirFS("/"), c, os.Geteuid())
}

// machineMemory is MachineMemory on the machine whose root is fsys, for
// the user uid.
func machineMemory(fsys fs.FS, c box.Choice, uid int) (uint64, error) {
	f, err := fsys.Open("proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading the machine's memory size: %w", err)
	}
	total, err := procfs.ParseMeminfo(f, "MemTotal")
	f.Close()
	if err != nil {
		return 0, err
	}
	m, err := cgroupfs.ReadMount(fsys)
	if err != nil || m.Path == "" {
		return total, nil
	}
	own := ""
	if cg, err := fsys.Open("proc/self/cgroup"); err == nil {
		own, _ = cgroupfs.ParseProcCgroup(cg)
		cg.Close()
	}
	if limit, ok := smallestMemoryMax(fsys, m.Path, sliceHome(fsys, m.Path, own, c, uid)); ok && limit < total {
		total = limit
	}
	return total, nil
}

// sliceHome is the cgroup, below the mount, that holds boxrun.slice for
// runs made with choice c: for systemd the user manager's cgroup
// (user@UID.service) or, for the system manager, the root; for cgroupfs
// its parent ($BOXRUN_CGROUP_PARENT, else the root it uses when boxrun
// runs there); for none the root. For --backend auto, which backend will
// answer is not known before Select: it is systemd's when that cgroup
// exists (the user manager runs), else cgroupfs's, in Select's order.
func sliceHome(fsys fs.FS, mount, own string, c box.Choice, uid int) string {
	managed := "/"
	if c.User {
		managed = systemd.UserManagerCgroup(own, uid)
	}
	direct := "/"
	if c.CgroupParent != "" {
		direct = cgroupfs.Rel(mount, c.CgroupParent)
	}
	switch c.Kind {
	case box.KindSystemd:
		return managed
	case box.KindCgroupfs:
		return direct
	case box.KindNone:
		return "/"
	}
	if fi, err := fs.Stat(fsys, cgroupfs.FSPath(mount, managed)); err == nil && fi.IsDir() {
		return managed
	}
	return direct
}

// smallestMemoryMax is the smallest memory.max of the cgroup dir (below
// the mount) and of every cgroup above it, up to the root of the
// hierarchy; ok is false when none of them has a limit.
func smallestMemoryMax(fsys fs.FS, mount, dir string) (limit uint64, ok bool) {
	limit = policy.Unlimited
	for dir = path.Clean("/" + dir); ; dir = path.Dir(dir) {
		if data, err := fs.ReadFile(fsys, cgroupfs.FSPath(mount, dir, "memory.max")); err == nil {
			if v, parsed := cgroupfs.ParseLimit(string(data)); parsed && v != policy.Unlimited && v < limit {
				limit, ok = v, true
			}
		}
		if dir == "/" {
			return limit, ok
		}
	}
}

// freeMemory is what the kernel says can be had without swapping:
// MemAvailable of /proc/meminfo.
func freeMemory() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading available memory: %w", err)
	}
	defer f.Close()
	return procfs.ParseMeminfo(f, "MemAvailable")
}

// WaitForMemory waits until at least need bytes are available (see
// freeMemory), looking every poll. waiting, when set, is called once with
// what is available if the run has to wait; with noWait it fails at once.
func WaitForMemory(ctx context.Context, need uint64, poll time.Duration, noWait bool, waiting func(have uint64)) error {
	told := false
	for {
		have, err := freeMemory()
		if err != nil {
			return err
		}
		if have >= need {
			return nil
		}
		if noWait {
			return fmt.Errorf("%s of memory available, start_when_available asks for %s", policy.FormatBytes(have), policy.FormatBytes(need))
		}
		if !told && waiting != nil {
			told = true
			waiting(have)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s of memory: %w", policy.FormatBytes(need), ctx.Err())
		case <-time.After(poll):
		}
	}
}
