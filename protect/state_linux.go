package protect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/rundir"
)

// DefaultStatePath is where protection remembers what it changed:
// $XDG_RUNTIME_DIR/boxrun/protect.json, /run/boxrun/protect.json for root,
// else /run/user/UID/boxrun/protect.json.
func DefaultStatePath(getenv func(string) string) string {
	return filepath.Join(rundir.Dir(getenv), "protect.json")
}

// protectState is what protection changed, for Undo.
type protectState struct {
	Version   int         `json:"version"`
	Processes []stateProc `json:"processes"`
	Units     []stateUnit `json:"units"`
	dirty     bool
}

// stateProc is one process whose oom_score_adj was lowered.
type stateProc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Comm      string `json:"comm"`
	Before    int    `json:"before"`
	After     int    `json:"after"`
}

// stateUnit is one unit (or plain cgroup, Manager "") whose memory.low was
// set.
type stateUnit struct {
	Manager string `json:"manager"`
	UID     int    `json:"uid"`
	Unit    string `json:"unit"`
	Cgroup  string `json:"cgroup"`
	Before  uint64 `json:"before"`
	After   uint64 `json:"after"`
}

// stateVersion is the format of protect.json.
const stateVersion = 1

// recordProc remembers a change, keeping the first value seen before
// boxrun changed anything.
func (s *protectState) recordProc(m Match, before, after int) {
	if s == nil {
		return
	}
	s.dirty = true
	for i := range s.Processes {
		e := &s.Processes[i]
		if e.PID == m.PID && e.StartTime == m.StartTime {
			e.After = after
			return
		}
	}
	s.Processes = append(s.Processes, stateProc{PID: m.PID, StartTime: m.StartTime, Comm: m.Comm, Before: before, After: after})
}

// recordUnit remembers a MemoryLow change, keeping the first previous
// value.
func (s *protectState) recordUnit(u stateUnit) {
	if s == nil {
		return
	}
	s.dirty = true
	for i := range s.Units {
		e := &s.Units[i]
		if e.Manager == u.Manager && e.Unit == u.Unit && e.Cgroup == u.Cgroup {
			e.After = u.After
			return
		}
	}
	s.Units = append(s.Units, u)
}

// prune forgets processes that have exited (there is nothing to restore
// on them), so that the state of a long --watch stays small.
func (s *protectState) prune(procFS fs.FS) {
	kept := s.Processes[:0]
	for _, e := range s.Processes {
		if cur, err := procfs.ReadStatFS(procFS, e.PID); err == nil && cur.StartTime == e.StartTime && cur.State != 'Z' {
			kept = append(kept, e)
		}
	}
	s.Processes = kept
}

// loadState reads protect.json; a missing file is an empty state.
func loadState(file string) (*protectState, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &protectState{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading what protection changed from %s: %w", file, err)
	}
	var s protectState
	if err := json.Unmarshal(b, &s); err != nil || s.Version != stateVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", s.Version, stateVersion)
		}
		return nil, fmt.Errorf("%s is not boxrun's protection state (%v): remove it, then restore oom_score_adj and MemoryLow by hand if needed", file, err)
	}
	return &s, nil
}

// saveState writes protect.json atomically, or removes it when empty.
func saveState(file string, s *protectState) error {
	if len(s.Processes) == 0 && len(s.Units) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", file, err)
		}
		return nil
	}
	if err := rundir.Make(filepath.Dir(file)); err != nil {
		return fmt.Errorf("remembering what protection changed: %w", err)
	}
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("remembering what protection changed in %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("remembering what protection changed in %s: %w", file, err)
	}
	return nil
}

// lockState takes an exclusive lock beside the state file, so that runs
// starting at once do not lose each other's records.
func lockState(file string) (func(), error) {
	if err := rundir.Make(filepath.Dir(file)); err != nil {
		return nil, fmt.Errorf("locking the protection state: %w", err)
	}
	f, err := os.OpenFile(file+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the protection state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
