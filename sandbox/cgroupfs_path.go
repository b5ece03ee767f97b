package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo. It returns "" when there is none.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

// parseCgroup2Mount returns the mount point of the first cgroup2 entry of a
// mountinfo file, preferring /sys/fs/cgroup.
func parseCgroup2Mount(r io.Reader) (string, error) {
	var found string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		mp := unescapeMountPath(pf[4])
		if mp == "/sys/fs/cgroup" {
			return mp, nil
		}
		if found == "" {
			found = mp
		}
	}
	return found, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space).
func unescapeMountPath(s string) string {
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

// ownCgroup returns this process's cgroup v2 path ("/user.slice/...").
func ownCgroup() (string, error) {
	return pidCgroup(os.Getpid())
}

// pidCgroup returns a process's cgroup v2 path from /proc/PID/cgroup.
func pidCgroup(pid int) (string, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	return parseProcCgroup(f)
}

// parseProcCgroup extracts the unified ("0::") entry of a /proc/PID/cgroup file.
func parseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no cgroup v2 entry (0::) in /proc/self/cgroup: this is a cgroup v1 or hybrid system")
}
