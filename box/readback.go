package box

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/policy"
)

// pageSize is the granularity the kernel stores memory limits in; a limit
// written in bytes reads back rounded down to it.
const pageSize = 4096

// expectedLimits lists, for every limit of settings that is set (a box's
// policy's or the slice's), the cgroup file that carries it and the value
// the kernel should report once it is applied.
func expectedLimits(settings []policy.Setting) []LimitCheck {
	var out []LimitCheck
	for _, l := range settings {
		want, ok := l.CgroupValue()
		if !ok {
			continue
		}
		if l.Type == policy.SizeValue && want != "max" {
			// The kernel keeps memory limits in whole pages.
			v, _ := strconv.ParseUint(want, 10, 64)
			want = memoryValue(v)
		}
		out = append(out, LimitCheck{Key: l.Key, File: l.CgroupFile, Want: want})
	}
	return out
}

// memoryValue is how the kernel prints a memory limit of v bytes.
func memoryValue(v uint64) string {
	if v == policy.Unlimited {
		return "max"
	}
	return strconv.FormatUint(v/pageSize*pageSize, 10)
}

// sameValue compares a wanted and an actual cgroup file value, allowing the
// roundings that the kernel and systemd apply (cpu.max quotas are rounded by
// systemd to 10 ms per second; weights and counts must match exactly).
func sameValue(file, want, got string) bool {
	if want == got {
		return true
	}
	if file != "cpu.max" {
		return false
	}
	wq, wp, ok1 := parseCPUMax(want)
	gq, gp, ok2 := parseCPUMax(got)
	if !ok1 || !ok2 || wq < 0 || gq < 0 {
		return false
	}
	// Compare per-second quotas within 1% (or 10 ms, systemd's rounding).
	w := float64(wq) / float64(wp)
	g := float64(gq) / float64(gp)
	d := w - g
	if d < 0 {
		d = -d
	}
	return d <= 0.01*w || d*1e6 <= 10000
}

// parseCPUMax parses "QUOTA PERIOD"; quota -1 means max.
func parseCPUMax(s string) (quota, period int64, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	p, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || p <= 0 {
		return 0, 0, false
	}
	if f[0] == "max" {
		return -1, p, true
	}
	q, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return q, p, true
}

// controllerOf names the controller a cgroup file belongs to.
func controllerOf(file string) string {
	c, _, _ := strings.Cut(file, ".")
	return c
}

// checkLimits reads every limit settings expects from the cgroup directory
// dir (a path in fsys) and reports what is in force. enabled lists the
// controllers enabled for the cgroup (its parent's cgroup.subtree_control),
// so that a missing file can be explained.
func checkLimits(fsys fs.FS, dir string, settings []policy.Setting, enabled []string, hint func(controller string) string) []LimitCheck {
	checks := expectedLimits(settings)
	for i := range checks {
		c := &checks[i]
		data, err := fs.ReadFile(fsys, filepath.Join(dir, c.File))
		if err != nil {
			ctrl := controllerOf(c.File)
			switch {
			case !contains(enabled, ctrl):
				c.Problem = fmt.Sprintf("the %s controller is not enabled for this cgroup", ctrl)
				if hint != nil {
					c.Hint = hint(ctrl)
				}
			case errors.Is(err, fs.ErrNotExist):
				c.Problem = fmt.Sprintf("this kernel has no %s file", c.File)
			default:
				c.Problem = fmt.Sprintf("reading %s: %v", c.File, err)
			}
			continue
		}
		c.Got = strings.TrimSpace(string(data))
		if !sameValue(c.File, c.Want, c.Got) {
			c.Problem = fmt.Sprintf("%s reads %q, not %q", c.File, c.Got, c.Want)
		}
	}
	return checks
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
