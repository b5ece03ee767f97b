// Package probe names the kernel and systemd features boxrun relies on,
// each with the version that brought it, and answers whether a machine has
// them. The run path (package box) and doctor ask the same questions
// here, so what doctor predicts and what a run does cannot disagree:
//
//   - doctor asks a Kernel, which looks for a feature's file in a cgroup of
//     an fs.FS rooted at "/" (the live machine or a fixture) and judges by
//     the kernel release when there is no cgroup to look in;
//   - the run path tries a feature and hands what the kernel or the
//     manager answered to Missing or Refused, which say whether that
//     answer means "not supported" (a *NotSupportedError naming the
//     version) and so which fallback applies;
//   - both read the systemd manager's version with SystemdVersion, and
//     doctor judges a systemd feature by it with SystemdHas.
//
// A probe reads; it never writes, starts a process or dials a manager.
package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Feature is one kernel or systemd feature boxrun uses when it is there
// and falls back from when it is not.
type Feature int

// The features, in the order doctor reports them.
const (
	// MemoryPeak is the cgroup file memory.peak (Linux 5.19): the
	// kernel's high-water mark of a box's memory.
	MemoryPeak Feature = iota
	// CgroupKill is the cgroup file cgroup.kill (Linux 5.14): one write
	// kills a whole cgroup tree.
	CgroupKill
	// CloneIntoCgroup is clone3's CLONE_INTO_CGROUP (Linux 5.7): a
	// process born in its box (Go's SysProcAttr.UseCgroupFD).
	CloneIntoCgroup
	// ScopeOOMPolicy is the OOMPolicy= property on a transient scope
	// (systemd 252.5). Upstream brought it in 253 (NEWS: "Scope units now
	// support OOMPolicy="; systemd PR #25385 and #25725), and the v252
	// stable branch backported both in 252.5 (systemd-stable PR #246:
	// v252.4's dbus-scope.c has no OOMPolicy, v252.5's sets it on
	// transient scopes), so Debian 12's 252.39 has it. A manager that
	// refuses it says so (Refused), whatever its version.
	ScopeOOMPolicy
)

// spec is what is known of a feature.
type spec struct {
	name    string
	linux   string // the Linux release that brought it, "" for systemd's
	systemd string // the systemd release that brought it ("252.5"), "" for the kernel's
	file    bool   // a cgroup file: seen in a cgroup directory
	without string // what boxrun does without it
}

func (f Feature) spec() spec {
	switch f {
	case MemoryPeak:
		return spec{name: "memory.peak", linux: "5.19", file: true,
			without: "the run report falls back to sampling the peak"}
	case CgroupKill:
		return spec{name: "cgroup.kill", linux: "5.14", file: true,
			without: "leftovers are killed by freezing the box (cgroup.freeze, 5.2) and signalling each process instead"}
	case CloneIntoCgroup:
		return spec{name: "CLONE_INTO_CGROUP", linux: "5.7",
			without: "boxrun moves a blocked helper into the box instead (a little slower)"}
	case ScopeOOMPolicy:
		return spec{name: "OOMPolicy", systemd: "252.5",
			without: "one OOM kill in the box makes systemd stop the whole run"}
	}
	return spec{name: "feature(" + strconv.Itoa(int(f)) + ")"}
}

// String is the feature's name as the kernel or systemd spells it:
// "memory.peak", "CLONE_INTO_CGROUP", "OOMPolicy".
func (f Feature) String() string { return f.spec().name }

// Linux is the kernel release that brought the feature ("5.19"), "" for
// a systemd feature.
func (f Feature) Linux() string { return f.spec().linux }

// Systemd is the systemd release that brought the feature ("252.5"), ""
// for a kernel feature.
func (f Feature) Systemd() string { return f.spec().systemd }

// Requires names the version the feature needs: "Linux 5.19",
// "systemd 252.5".
func (f Feature) Requires() string {
	if s := f.spec(); s.systemd != "" {
		return "systemd " + s.systemd
	}
	return "Linux " + f.Linux()
}

// Without says what boxrun does on a machine without the feature.
func (f Feature) Without() string { return f.spec().without }

// ErrNotSupported is what every *NotSupportedError is (errors.Is).
var ErrNotSupported = errors.New("not supported")

// NotSupportedError says that a feature is missing and which version
// brings it.
type NotSupportedError struct {
	// Feature is the missing feature.
	Feature Feature
	// Have is the kernel release or systemd version found, "" when
	// unknown.
	Have string
}

func (e *NotSupportedError) Error() string {
	msg := fmt.Sprintf("%s not supported (requires %s or later", e.Feature, e.Feature.Requires())
	if e.Have != "" {
		msg += "; this is " + e.Have
	}
	return msg + ")"
}

// Unwrap returns ErrNotSupported.
func (e *NotSupportedError) Unwrap() error { return ErrNotSupported }

// Missing says what err, from reading or writing a cgroup file feature f
// names, means: a *NotSupportedError when the file does not exist (the
// kernel predates f), else err itself (nil stays nil). Whether the cgroup
// itself is gone is the caller's to tell.
func Missing(f Feature, err error) error {
	if err != nil && f.spec().file && errors.Is(err, fs.ErrNotExist) {
		return &NotSupportedError{Feature: f}
	}
	return err
}

// Refused says what err, from asking a systemd manager to start a unit
// with the property f names, means: a *NotSupportedError when the manager
// refused the property by name (one it does not know for that unit type
// fails the whole request), else err itself.
func Refused(f Feature, err error) error {
	if err != nil && f.spec().systemd != "" && strings.Contains(err.Error(), f.String()) {
		return &NotSupportedError{Feature: f}
	}
	return err
}

// SystemdVersion turns a manager's Version property ("\"252.38-1\"", as
// D-Bus prints it, or unquoted) into its major number, 0 when unknown.
func SystemdVersion(v string) int {
	n, _ := strconv.Atoi(leadingDigits(strings.Trim(v, "\"")))
	return n
}

// SystemdHas says whether a manager of version (its Version property,
// "252.39-1~deb12u1", quoted or not) has the systemd feature f, judged by
// the release that brought f: 252.39 has what 252.5 brought, "252-46.el9"
// is read as 252.0 (a distribution's own backports are not visible in its
// version: the run tries the feature and falls back whatever this says).
// A kernel feature, or a version that cannot be read, is not Known.
func SystemdHas(version string, f Feature) Result {
	want := f.spec().systemd
	if want == "" {
		return Result{}
	}
	x, y, ok1 := systemdRelease(version)
	wx, wy, ok2 := systemdRelease(want)
	if !ok1 || !ok2 {
		return Result{}
	}
	return Result{Supported: x > wx || (x == wx && y >= wy), Known: true}
}

// systemdRelease reads 252 and 39 from "252.39-1~deb12u1"; the minor is 0
// when there is none ("255", "252-46.el9").
func systemdRelease(v string) (major, minor int, ok bool) {
	v, _, _ = strings.Cut(strings.Trim(v, "\""), "-")
	maj, min, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(maj)
	if err != nil {
		return 0, 0, false
	}
	minor, _ = strconv.Atoi(leadingDigits(min))
	return major, minor, true
}

// leadingDigits is the run of decimal digits s starts with.
func leadingDigits(s string) string {
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	return s[:end]
}

// KernelAtLeast compares a kernel release ("6.1.0-13-amd64") with
// "major.minor"; known is false when either cannot be read.
func KernelAtLeast(release, want string) (ok, known bool) {
	x, y, ok1 := majorMinor(release)
	wx, wy, ok2 := majorMinor(want)
	if !ok1 || !ok2 {
		return false, false
	}
	return x > wx || (x == wx && y >= wy), true
}

// majorMinor reads "6.1" from "6.1.0-13-amd64".
func majorMinor(s string) (int, int, bool) {
	major, rest, _ := strings.Cut(s, ".")
	x, err1 := strconv.Atoi(major)
	y, err2 := strconv.Atoi(leadingDigits(rest))
	return x, y, err1 == nil && err2 == nil
}
