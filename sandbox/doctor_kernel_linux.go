package sandbox

// Doctor's checks of kernel features: memory protection, swap, PSI, the
// cgroup files and clone flags boxrun relies on, each named with the
// version it needs.

import (
	"bufio"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

func (d *doctor) checkRecursiveProt() Check {
	c := Check{ID: "recursiveprot"}
	switch {
	case !d.unified():
		c.Status, c.Summary = CheckWarn, "memory_recursiveprot: without the unified cgroup v2 hierarchy memory.low protects nothing"
		c.Fix = "switch to the unified cgroup v2 hierarchy (see the cgroup2 line)"
	case d.mount.Has("memory_recursiveprot"):
		c.Status, c.Summary = CheckOK, "memory_recursiveprot is on: a slice's memory.low flows down to the units in it"
	default:
		c.Status = CheckWarn
		c.Summary = "memory_recursiveprot is off: memory.low protects the editor only if every cgroup above it sets memory.low too"
		c.Fix = "sudo mount -o remount,memory_recursiveprot " + d.mount.Path + " (systemd 247+ mounts cgroup2 with it)"
	}
	return c
}

func (d *doctor) checkSwap() Check {
	c := Check{ID: "swap"}
	f, err := d.m.FS.Open("proc/swaps")
	if err != nil {
		c.Status, c.Summary = CheckWarn, "swap: cannot read /proc/swaps: "+err.Error()
		return c
	}
	defer f.Close()
	var total uint64
	var names []string
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		fl := strings.Fields(sc.Text())
		if first || len(fl) < 3 {
			continue
		}
		kb, _ := strconv.ParseUint(fl[2], 10, 64)
		total += kb * 1024
		names = append(names, path.Base(fl[0]))
	}
	if len(names) == 0 {
		c.Status = CheckWarn
		c.Summary = "no swap: above memory.high the kernel cannot push anonymous memory out, so a box is throttled hard instead of slowing down gradually"
		c.Fix = "add swap, e.g. zram (sudo apt install systemd-zram-generator, or zram-tools) or a swap file"
		return c
	}
	c.Status = CheckOK
	c.Summary = fmt.Sprintf("swap: %s (%s)", policy.FormatBytes(total), strings.Join(names, ", "))
	return c
}

func (d *doctor) checkPSI() Check {
	c := Check{ID: "psi"}
	if _, err := fs.ReadFile(d.m.FS, "proc/pressure/memory"); err == nil {
		c.Status, c.Summary = CheckOK, "pressure stall information (PSI) is available"
		return c
	}
	c.Status = CheckWarn
	c.Summary = "pressure stall information (PSI) is off: memory pressure of boxes cannot be measured, and systemd-oomd cannot work"
	c.Fix = "boot with psi=1 (the kernel has CONFIG_PSI_DEFAULT_DISABLED)"
	return c
}

// kernelAtLeast compares a release ("6.1.0-13-amd64") with "major.minor";
// known is false when the release cannot be read.
func kernelAtLeast(release, want string) (ok, known bool) {
	parse := func(s string) (int, int, bool) {
		major, rest, _ := strings.Cut(s, ".")
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		x, err1 := strconv.Atoi(major)
		y, err2 := strconv.Atoi(rest[:end])
		return x, y, err1 == nil && err2 == nil
	}
	x, y, ok1 := parse(release)
	wx, wy, ok2 := parse(want)
	if !ok1 || !ok2 {
		return false, false
	}
	return x > wx || (x == wx && y >= wy), true
}

// probeCgroup finds a non-root cgroup with the memory controller to look
// for kernel files in ("" when there is none).
func (d *doctor) probeCgroup() string {
	if d.mount.Path == "" {
		return ""
	}
	has := func(cg string) bool {
		_, err := fs.Stat(d.m.FS, cgroupfs.FSPath(d.mount.Path, cg, "memory.current"))
		return err == nil
	}
	if own := d.ownCgroup(); own != "" && own != "/" && has(own) {
		return own
	}
	if cg := d.userManagerCgroup(); has(cg) {
		return cg
	}
	entries, _ := fs.ReadDir(d.m.FS, cgroupfs.FSPath(d.mount.Path))
	for _, e := range entries {
		if e.IsDir() && has("/"+e.Name()) {
			return "/" + e.Name()
		}
	}
	return ""
}

func (d *doctor) checkCgroupFile(file, version, without string) Check {
	c := Check{ID: file}
	if cg := d.probeCgroup(); cg != "" {
		if _, err := fs.Stat(d.m.FS, cgroupfs.FSPath(d.mount.Path, cg, file)); err == nil {
			c.Status, c.Summary = CheckOK, fmt.Sprintf("%s is present (seen on %s)", file, cg)
			return c
		}
		c.Status = CheckWarn
		c.Summary = fmt.Sprintf("%s is missing (Linux %s+; this is %s): %s", file, version, orNoneText(d.m.Kernel), without)
		c.Fix = "upgrade the kernel to " + version + " or later"
		return c
	}
	ok, known := kernelAtLeast(d.m.Kernel, version)
	switch {
	case !known:
		c.Status, c.Summary = CheckWarn, fmt.Sprintf("%s: no cgroup to look in and kernel %q unknown", file, d.m.Kernel)
	case ok:
		c.Status, c.Summary = CheckOK, fmt.Sprintf("%s: Linux %s has it (%s+; no cgroup to look in)", file, d.m.Kernel, version)
	default:
		c.Status = CheckWarn
		c.Summary = fmt.Sprintf("%s: Linux %s lacks it (%s+): %s", file, d.m.Kernel, version, without)
		c.Fix = "upgrade the kernel to " + version + " or later"
	}
	return c
}

func (d *doctor) checkCloneIntoCgroup() Check {
	c := Check{ID: "clone_into_cgroup", Status: CheckOK}
	ok, known := kernelAtLeast(d.m.Kernel, "5.7")
	switch {
	case ok:
		c.Summary = fmt.Sprintf("CLONE_INTO_CGROUP: Linux %s has it (5.7+); the cgroupfs backend starts the command's helper in its box with it", d.m.Kernel)
	case known:
		c.Summary = fmt.Sprintf("CLONE_INTO_CGROUP: Linux %s lacks it (5.7+); boxrun moves a blocked helper into the box instead (a little slower)", d.m.Kernel)
	default:
		c.Summary = "CLONE_INTO_CGROUP: kernel version unknown; without it boxrun moves a blocked helper into the box instead"
	}
	return c
}
