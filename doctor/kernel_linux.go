package doctor

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

	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/policy"
)

func (d *checker) checkRecursiveProt() Check {
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

func (d *checker) checkSwap() Check {
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

func (d *checker) checkPSI() Check {
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

// kernel is what the probes know of this machine's kernel, from the first
// cgroup with the memory controller: boxrun's own, its user manager's, or
// any at the top.
func (d *checker) probeKernel() probe.Kernel {
	return probe.Kernel{
		FS: d.m.FS, Release: d.m.Kernel, Mount: d.mount.Path,
		Cgroup: probe.MemoryCgroup(d.m.FS, d.mount.Path, d.ownCgroup(), d.userManagerCgroup()),
	}
}

// checkCgroupFile: a cgroup file the kernel may lack, looked for in a
// cgroup or judged by the kernel release.
func (d *checker) checkCgroupFile(f probe.Feature) Check {
	file, version, without := f.String(), f.Linux(), f.Without()
	c := Check{ID: file}
	r := d.kernel.Has(f)
	switch {
	case r.Seen != "" && r.Supported:
		c.Status, c.Summary = CheckOK, fmt.Sprintf("%s is present (seen on %s)", file, r.Seen)
	case r.Seen != "":
		c.Status = CheckWarn
		c.Summary = fmt.Sprintf("%s is missing (Linux %s+; this is %s): %s", file, version, orNoneText(d.m.Kernel), without)
		c.Fix = "upgrade the kernel to " + version + " or later"
	case !r.Known:
		c.Status, c.Summary = CheckWarn, fmt.Sprintf("%s: no cgroup to look in and kernel %q unknown", file, d.m.Kernel)
	case r.Supported:
		c.Status, c.Summary = CheckOK, fmt.Sprintf("%s: Linux %s has it (%s+; no cgroup to look in)", file, d.m.Kernel, version)
	default:
		c.Status = CheckWarn
		c.Summary = fmt.Sprintf("%s: Linux %s lacks it (%s+): %s", file, d.m.Kernel, version, without)
		c.Fix = "upgrade the kernel to " + version + " or later"
	}
	return c
}

// checkCloneIntoCgroup: judged by the kernel release; the run tries it
// and falls back whatever doctor says, so it is never worse than !.
func (d *checker) checkCloneIntoCgroup() Check {
	f := probe.CloneIntoCgroup
	c := Check{ID: "clone_into_cgroup", Status: CheckOK}
	r := d.kernel.Has(f)
	switch {
	case r.Supported:
		c.Summary = fmt.Sprintf("%s: Linux %s has it (%s+); the cgroupfs backend starts the command's helper in its box with it", f, d.m.Kernel, f.Linux())
	case r.Known:
		c.Summary = fmt.Sprintf("%s: Linux %s lacks it (%s+); %s", f, d.m.Kernel, f.Linux(), f.Without())
	default:
		c.Summary = fmt.Sprintf("%s: kernel version unknown; without it boxrun moves a blocked helper into the box instead", f)
	}
	return c
}
