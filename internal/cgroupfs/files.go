package cgroupfs

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/policy"
)

// ParseFlatKeyed parses a "flat keyed" file (memory.events, cpu.stat,
// pids.events) or /proc/vmstat: one "key value" pair a line. Lines that do
// not parse are skipped.
func ParseFlatKeyed(r io.Reader) (map[string]uint64, error) {
	m := map[string]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m, sc.Err()
}

// ReadFlatKeyed reads a flat-keyed file.
func ReadFlatKeyed(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseFlatKeyed(f)
}

// ParseCounter parses a single-value file such as memory.current.
func ParseCounter(s string) (uint64, bool) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return v, err == nil
}

// ReadCounter reads a single-value file; ok is false when its text is not
// a number.
func ReadCounter(path string) (v uint64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	v, ok = ParseCounter(string(b))
	return v, ok, nil
}

// ParseLimit parses a limit file: "max" (policy.Unlimited) or a number.
func ParseLimit(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return policy.Unlimited, true
	}
	return ParseCounter(s)
}

// ParseControllers parses a space-separated controller list file such as
// cgroup.controllers or cgroup.subtree_control.
func ParseControllers(s string) []string { return strings.Fields(s) }

// ReadControllers reads a controller list file (see ParseControllers).
func ReadControllers(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseControllers(string(data)), nil
}

// ParseProcs parses cgroup.procs: one pid a line. Lines that are not a
// pid are skipped.
func ParseProcs(s string) []int {
	var pids []int
	for _, f := range strings.Fields(s) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
