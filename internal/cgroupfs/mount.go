// Package cgroupfs reads the cgroup v2 file system the way every part of
// boxrun needs it, one parser per kind of file: where cgroup2 is mounted
// (/proc/mounts), which cgroup a process is in (/proc/PID/cgroup), and the
// value formats of cgroup files — single counters (memory.current), limits
// ("max" or a number), flat-keyed files (memory.events, cpu.stat) and
// controller lists (cgroup.controllers); the processes of a cgroup tree
// (Procs, EachProc) and its cgroup.events (Populated, Event). Counter and
// StatFile keep a file open for a run and read it with one pread; Watch
// reports changes of a file through inotify. It writes nothing: making,
// limiting and removing cgroups is the backends' business (package box).
package cgroupfs

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Mount is the cgroup v2 mount as /proc/mounts describes it.
type Mount struct {
	// Path is the mount point, e.g. "/sys/fs/cgroup"; "" when cgroup2 is
	// not mounted.
	Path string
	// Options are the mount options (nsdelegate, memory_recursiveprot).
	Options []string
	// V1 is true when cgroup v1 hierarchies are mounted too (a hybrid
	// system).
	V1 bool
}

// Has reports whether the mount has an option.
func (m Mount) Has(opt string) bool { return slices.Contains(m.Options, opt) }

// ReadMount finds the cgroup2 mount in proc/mounts of fsys (rooted at "/":
// os.DirFS("/"), or a fixture machine), preferring /sys/fs/cgroup.
func ReadMount(fsys fs.FS) (Mount, error) {
	f, err := fsys.Open("proc/mounts")
	if err != nil {
		return Mount{}, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	return ParseMounts(f)
}

// FSPath turns an absolute path, given in parts, into the name of the file
// in an fs.FS rooted at "/" (ReadMount's): FSPath(m.Path, cgroup,
// "memory.low").
func FSPath(parts ...string) string {
	p := strings.TrimPrefix(path.Join(append([]string{"/"}, parts...)...), "/")
	if p == "" {
		return "."
	}
	return p
}

// MountPoint is where this system mounts cgroup2, "" when it does not.
func MountPoint() (string, error) {
	m, err := ReadMount(os.DirFS("/"))
	return m.Path, err
}

// ParseMounts reads a /proc/mounts file.
func ParseMounts(r io.Reader) (Mount, error) {
	var m Mount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup":
			m.V1 = true
		case "cgroup2":
			mp := unescape(f[1])
			if m.Path == "" || mp == "/sys/fs/cgroup" {
				m.Path, m.Options = mp, strings.Split(f[3], ",")
			}
		}
	}
	return m, sc.Err()
}

// unescape undoes the octal escapes of the mount table (\040 for space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// OwnCgroup returns this process's cgroup v2 path ("/user.slice/...").
func OwnCgroup() (string, error) { return PidCgroup(os.Getpid()) }

// PidCgroup returns a process's cgroup v2 path from /proc/PID/cgroup.
func PidCgroup(pid int) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ParseProcCgroup(f)
}

// ParseProcCgroup extracts the unified ("0::") entry of a /proc/PID/cgroup
// file.
func ParseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no cgroup v2 entry (0::) in /proc/PID/cgroup: this is a cgroup v1 or hybrid system")
}

// Rel turns a cgroup directory given as a path below the mount
// ("/sys/fs/cgroup/ci") or relative to it ("/ci") into the latter.
func Rel(mount, dir string) string {
	return path.Clean("/" + strings.TrimPrefix(dir, mount))
}
