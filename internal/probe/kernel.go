package probe

import (
	"io/fs"

	"github.com/boxrun/boxrun/internal/cgroupfs"
)

// Kernel is what the probes know of a machine's kernel. A cgroup file
// feature is looked for in Cgroup's directory; a feature without a file,
// or any feature when there is no cgroup to look in, is judged by Release.
type Kernel struct {
	// FS is the machine's file system, rooted at "/".
	FS fs.FS
	// Release is the kernel release (uname -r), "" when unknown.
	Release string
	// Mount is the cgroup2 mount point ("/sys/fs/cgroup"), "" when there
	// is none.
	Mount string
	// Cgroup is a cgroup below Mount with the memory controller, whose
	// directory shows the kernel's cgroup files ("" when there is none;
	// see MemoryCgroup).
	Cgroup string
}

// Result is a probe's answer.
type Result struct {
	// Supported is true when the machine has the feature.
	Supported bool
	// Known is false when nothing could tell (Supported is false then).
	Known bool
	// Seen is the cgroup whose directory was looked in, "" when the
	// answer comes from the kernel release.
	Seen string
}

// Has says whether the kernel has f. A systemd feature is not the
// kernel's to answer: its Result is not Known.
func (k Kernel) Has(f Feature) Result {
	s := f.spec()
	if s.linux == "" {
		return Result{}
	}
	if s.file && k.Cgroup != "" && k.Mount != "" {
		_, err := fs.Stat(k.FS, cgroupfs.FSPath(k.Mount, k.Cgroup, s.name))
		return Result{Supported: err == nil, Known: true, Seen: k.Cgroup}
	}
	ok, known := KernelAtLeast(k.Release, s.linux)
	return Result{Supported: ok, Known: known}
}

// MemoryCgroup finds a non-root cgroup below mount with the memory
// controller, whose directory shows which cgroup files the kernel has:
// the first of candidates that has memory.current, else the first
// top-level cgroup that has it; "" when there is none.
func MemoryCgroup(fsys fs.FS, mount string, candidates ...string) string {
	if mount == "" {
		return ""
	}
	has := func(cg string) bool {
		_, err := fs.Stat(fsys, cgroupfs.FSPath(mount, cg, "memory.current"))
		return err == nil
	}
	for _, cg := range candidates {
		if cg != "" && cg != "/" && has(cg) {
			return cg
		}
	}
	entries, _ := fs.ReadDir(fsys, cgroupfs.FSPath(mount))
	for _, e := range entries {
		if e.IsDir() && has("/"+e.Name()) {
			return "/" + e.Name()
		}
	}
	return ""
}
