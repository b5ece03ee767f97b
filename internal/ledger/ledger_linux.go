package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/rundir"
)

// Stale is how long an entry counts after it was written: a box looks
// every 10 ms while its slice is busy, so an entry older than this is of a
// box that stopped looking (its boxrun died or hangs).
const Stale = 3 * time.Second

// lockName is the lock file's name in the ledger's directory, tmpPrefix
// begins the names of entries being written; entries are named by their
// box, which never starts with a dot.
const (
	lockName  = ".lock"
	tmpPrefix = ".tmp-"
)

// Entry is one box's line in the ledger.
type Entry struct {
	// Box names the box (its cgroup's base name) and the entry's file.
	Box string `json:"box"`
	// Reserved is the growth, in bytes, the box admitted and has not
	// used yet; Running counts its leaves left running.
	Reserved uint64 `json:"reserved"`
	Running  int    `json:"running"`
	// Since is when the first in line of its paused processes was
	// paused, when that was overdue (zero otherwise); Need is the room
	// it needs to resume.
	Since time.Time `json:"since,omitzero"`
	Need  uint64    `json:"need,omitempty"`
	// Sizes are the typical peaks the box learned, by command name.
	Sizes map[string]uint64 `json:"sizes,omitempty"`
	// Written is when the entry was written.
	Written time.Time `json:"written"`
}

// Dir is the ledger's directory for the slice whose cgroup is slice (its
// path below the cgroup mount) in boxrun's runtime directory run: one
// per slice, named by a digest of the path, so any path gives one safe
// name.
func Dir(run, slice string) string {
	sum := sha256.Sum256([]byte(filepath.Clean("/" + slice)))
	return filepath.Join(run, "ledger-"+hex.EncodeToString(sum[:8]))
}

// Ledger is an open ledger.
type Ledger struct {
	dir  string
	lock *os.File
}

// Open opens the ledger in dir, making the directory (private to the
// user, as the slots' is: see rundir.Make) when it is missing.
func Open(dir string) (*Ledger, error) {
	if err := rundir.Make(dir); err != nil {
		return nil, fmt.Errorf("making the slice's ledger directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the slice's ledger: %w", err)
	}
	return &Ledger{dir: dir, lock: f}, nil
}

// Close closes the ledger, dropping its lock if held.
func (l *Ledger) Close() error { return l.lock.Close() }

// Lock takes the ledger's lock, waiting at most wait; ok is false when
// another box held it all that time (its boxrun stopped with the lock
// held, say): the caller then goes on without it, reading entries that are
// whole (each is written whole) but may change meanwhile.
func (l *Ledger) Lock(wait time.Duration) (ok bool) {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(l.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return true
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// Unlock drops the ledger's lock.
func (l *Ledger) Unlock() { _ = unix.Flock(int(l.lock.Fd()), unix.LOCK_UN) }

// Others returns the entries of the boxes other than own that count at
// now, removing those that do not: of a box alive says is gone, written
// more than Stale before now, or that cannot be read (and the half-written
// entries of a boxrun that died while writing). problems says what
// was wrong with each entry that could not be read, for a warning.
func (l *Ledger) Others(own string, now time.Time, alive func(box string) bool) (entries []Entry, problems []string) {
	names, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, []string{fmt.Sprintf("reading the slice's ledger: %v", err)}
	}
	for _, n := range names {
		name := n.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// Left by a boxrun that died while writing its entry.
			if fi, err := n.Info(); err == nil && now.Sub(fi.ModTime()) > Stale {
				_ = os.Remove(filepath.Join(l.dir, name))
			}
			continue
		}
		if name == own || strings.HasPrefix(name, ".") || !n.Type().IsRegular() {
			continue
		}
		path := filepath.Join(l.dir, name)
		e, err := read(path)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("ignoring the slice ledger's entry %s: %v", path, err))
		case e.Box != name:
			problems = append(problems, fmt.Sprintf("ignoring the slice ledger's entry %s: it names box %q", path, e.Box))
		case now.Sub(e.Written) > Stale || !alive(name):
		default:
			entries = append(entries, e)
			continue
		}
		_ = os.Remove(path) // the next look tries again
	}
	return entries, problems
}

// read reads one entry.
func read(path string) (Entry, error) {
	var e Entry
	data, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("not an entry: %w", err)
	}
	return e, nil
}

// Write writes e as its box's entry, whole: to a temporary file renamed
// over the old entry, so that a reader never sees half of one.
func (l *Ledger) Write(e Entry) error {
	if e.Box == "" || strings.ContainsAny(e.Box, "/") || strings.HasPrefix(e.Box, ".") {
		return fmt.Errorf("writing the slice's ledger: %q is no box name", e.Box)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("writing the slice's ledger: %w", err)
	}
	tmp, err := os.CreateTemp(l.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("writing the slice's ledger: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(l.dir, e.Box))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the slice's ledger: %w", err)
	}
	return nil
}

// Remove removes box's entry, when its run ends.
func (l *Ledger) Remove(box string) error {
	if err := os.Remove(filepath.Join(l.dir, box)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the box's entry from the slice's ledger: %w", err)
	}
	return nil
}
