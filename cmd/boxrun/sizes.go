package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/backpressure"
)

// sizesEnv overrides where learned sizes are kept (tests, and users who
// want them elsewhere); "off" keeps none.
const sizesEnv = "BOXRUN_SIZES"

// sizesStore is the file where backpressure keeps what runs learned of the
// size of each suite's processes (see backpressure.Sizes), so that the
// second run of a suite starts with known sizes. It is state, not
// configuration: a file that is missing, corrupt, of another version or not
// safely ours is ignored with a warning, never fatal.
type sizesStore struct {
	path string // "" keeps nothing
	dir  string // the suite: where boxrun runs
	pol  string
	// sizes is the file as read, or a fresh one.
	sizes *backpressure.Sizes
	from  string // what the report says of where the sizes came from
}

// sizesPath is where learned sizes live: $BOXRUN_SIZES, else
// sizes.json in the state directory (see stateDir).
func sizesPath(getenv func(string) string) string {
	if p := getenv(sizesEnv); p != "" {
		if p == "off" {
			return ""
		}
		return p
	}
	if d := stateDir(getenv); d != "" {
		return filepath.Join(d, "sizes.json")
	}
	return ""
}

// loadSizes reads the sizes learned by earlier runs of the suite (policy
// pol run in the current directory), warning about a file it cannot use.
func loadSizes(path, pol string, warn func(string)) *sizesStore {
	s := &sizesStore{path: path, pol: pol, sizes: &backpressure.Sizes{}, from: "learned in this run"}
	s.dir, _ = os.Getwd()
	if path == "" || s.dir == "" {
		return s
	}
	f, err := openOwned(path)
	if errors.Is(err, os.ErrNotExist) {
		return s
	}
	if err == nil {
		var sz *backpressure.Sizes
		sz, err = backpressure.ReadSizes(f)
		f.Close()
		if err == nil {
			s.sizes = sz
		}
	}
	if err != nil {
		warn(fmt.Sprintf("ignoring the sizes learned by earlier runs in %s: %v (it is rewritten after this run)", path, err))
	}
	if known := s.known(); len(known) > 0 {
		s.from = fmt.Sprintf("from an earlier run of this suite (%d command names, %s)", len(known), path)
	}
	return s
}

// known is what earlier runs of the suite learned, nil for nothing.
func (s *sizesStore) known() map[string]uint64 {
	return s.sizes.Lookup(s.dir, s.pol, time.Now())
}

// save records what this run learned. The file is written beside its final
// place and renamed over it, so a reader never sees half of it; two runs
// that finish together keep the last one's.
func (s *sizesStore) save(peaks map[string]uint64, warn func(string)) {
	if s.path == "" || s.dir == "" || len(peaks) == 0 {
		return
	}
	s.sizes.Record(s.dir, s.pol, peaks, time.Now())
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		warn(fmt.Sprintf("cannot keep learned sizes in %s: %v", dir, err))
		return
	}
	if err := checkOwnedDir(dir); err != nil {
		warn(fmt.Sprintf("cannot keep learned sizes in %s: %v", dir, err))
		return
	}
	tmp, err := os.CreateTemp(dir, ".sizes-*.json")
	if err == nil {
		err = s.sizes.Write(tmp)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), s.path)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		warn(fmt.Sprintf("cannot keep learned sizes in %s: %v", s.path, err))
	}
}

// openOwned opens path for reading when it is a regular file (not a
// symbolic link) owned by this user, in a directory owned by this user
// that others cannot write.
func openOwned(path string) (*os.File, error) {
	if err := checkOwnedDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("it is a symbolic link")
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid())) {
		err = fmt.Errorf("it is not a regular file of yours")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
