package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/observe"
)

// sizesEnv set to "off" keeps backpressure from carrying the sizes it
// learns from one run to the next: each run learns afresh.
const sizesEnv = "BOXRUN_SIZES"

// sizeStore carries the sizes backpressure learns (the typical peak of
// each command name) from one run of a project under a policy to the next,
// in the project's sizes file: stateDir/sizes/HASH.json (see
// backpressure.SizeFileName). Nothing in it is ever fatal: a file that is
// bad or stale, or a state directory that is not the user's, is one
// warning, and the run learns afresh.
type sizeStore struct {
	// path is the sizes file, "" when sizes are not kept; off then says
	// why, for the report.
	path string
	off  string
	// file is what the file held (its stale entries left out), or an
	// empty file of the project and policy.
	file backpressure.SizeFile
}

// openProjectSizes is openSizes for this run: the project is the working
// directory, in the state directory of the user boxrun runs as.
func openProjectSizes(policy string, warn func(string)) *sizeStore {
	cwd, err := os.Getwd()
	if err != nil {
		return &sizeStore{off: fmt.Sprintf("the working directory is unknown (%v)", err)}
	}
	return openSizes(stateDir(os.Getenv), cwd, policy, os.Getenv, time.Now(), warn)
}

// openSizes reads the sizes file of the project directory cwd (absolute)
// and policy in state, boxrun's state directory ("" when there is none).
// warn gets one line when the file or its directory is refused.
func openSizes(state, cwd, policy string, getenv func(string) string, now time.Time, warn func(string)) *sizeStore {
	s := &sizeStore{file: backpressure.SizeFile{Dir: filepath.Clean(cwd), Policy: policy}}
	switch v := getenv(sizesEnv); {
	case v == "off":
		s.off = sizesEnv + "=off"
		return s
	case v != "":
		warn(fmt.Sprintf("%s=%q is not a value it takes; only off is (keeps no sizes between runs)", sizesEnv, v))
	}
	if state == "" {
		s.off = "no state directory, as neither XDG_STATE_HOME nor HOME is an absolute path"
		return s
	}
	dir := filepath.Join(state, "sizes")
	for _, d := range []string{state, dir} {
		if err := checkOwnedDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			warn(fmt.Sprintf("learned sizes are not kept between runs: %v; a directory of your own with mode 0700 keeps them", err))
			s.off = err.Error()
			return s
		}
	}
	s.path = filepath.Join(dir, backpressure.SizeFileName(s.file.Dir, policy))
	f, err := readSizeFile(s.path, s.file.Dir, policy, now)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		warn(fmt.Sprintf("learned sizes in %s ignored: %v; this run learns them afresh", s.path, err))
	default:
		s.file = f
	}
	return s
}

// readSizeFile reads and decodes one sizes file: a regular file, never
// through a symbolic link.
func readSizeFile(path, dir, policy string, now time.Time) (backpressure.SizeFile, error) {
	// O_NONBLOCK: a FIFO put in its place must not block the run.
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return backpressure.SizeFile{}, errors.New("it is a symbolic link")
		}
		if errors.Is(err, os.ErrNotExist) {
			return backpressure.SizeFile{}, err
		}
		return backpressure.SizeFile{}, errors.Unwrap(err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return backpressure.SizeFile{}, errors.Unwrap(err)
	}
	if !fi.Mode().IsRegular() {
		return backpressure.SizeFile{}, fmt.Errorf("it is a %s, not a regular file", fileKind(fi.Mode()))
	}
	return backpressure.DecodeSizeFile(fh, dir, policy, now)
}

// known is what the run starts from (backpressure.Config.Known).
func (s *sizeStore) known() map[string]uint64 {
	return s.file.Known()
}

// source says where the sizes of the run came from, for the report.
func (s *sizeStore) source() string {
	switch {
	case s == nil:
	case len(s.file.Entries) > 0:
		return fmt.Sprintf("from the last run of this project (%s), then learned in this run", s.path)
	case s.off != "":
		return "learned in this run (not kept between runs: " + s.off + ")"
	}
	return "learned in this run"
}

// save writes the sizes the run knows at its end (see
// backpressure.Controller.Sizes) to the sizes file, when it learned
// some: written whole under a temporary name, then renamed over the old
// file, so that a run reading it at the same time gets one or the other.
func (s *sizeStore) save(sizes map[string]backpressure.Size, now time.Time) error {
	if s.path == "" || !anyLearned(sizes) {
		return nil
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := checkOwnedDir(d); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(dir, ".*.tmp")
	if err != nil {
		return err
	}
	err = writeSizeFile(tmp, s.file.Update(sizes, now))
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// writeSizeFile writes f to fh, private to the user and synced to disk,
// and closes fh.
func writeSizeFile(fh *os.File, f backpressure.SizeFile) error {
	err := fh.Chmod(0o600)
	if err == nil {
		err = backpressure.EncodeSizeFile(fh, f)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// anyLearned reports whether the run learned any of sizes itself.
func anyLearned(sizes map[string]backpressure.Size) bool {
	for _, s := range sizes {
		if s.Learned {
			return true
		}
	}
	return false
}

// keepSizes saves what bp knows at the end of the run to s; warn gets why
// when it cannot. With s or bp nil (backpressure was off) nothing is kept.
func keepSizes(s *sizeStore, bp *observe.Backpressure, now time.Time, warn func(string)) {
	sizes, ok := bp.Sizes()
	if s == nil || !ok {
		return
	}
	if err := s.save(sizes, now); err != nil {
		warn(fmt.Sprintf("learned sizes not kept for the next run: %v", err))
	}
}
