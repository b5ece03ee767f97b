package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Procs lists the processes of the cgroup at dir (a full path) and of all
// its descendants.
func Procs(dir string) ([]int, error) {
	var pids []int
	err := EachProc(dir, func(_ string, pid int) { pids = append(pids, pid) })
	return pids, err
}

// EachProc calls fn for every process of the cgroup at dir (a full path)
// and of its descendants, with the cgroup directory it is in. Cgroups
// removed while walking are passed over.
func EachProc(dir string, fn func(cgroup string, pid int)) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a child cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, pid := range ParseProcs(string(data)) {
			fn(p, pid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing processes of cgroup %s: %w", dir, err)
	}
	return nil
}

// Populated reads the "populated" field of the cgroup.events of the cgroup
// at dir. A cgroup that no longer exists counts as empty.
func Populated(dir string) (bool, error) {
	v, err := Event(dir, "populated")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return v == "1", err
}

// Event reads one field of the cgroup.events of the cgroup at dir
// ("populated", "frozen"); "" when the file does not have it.
func Event(dir, key string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+" "); ok {
			return v, nil
		}
	}
	return "", sc.Err()
}
