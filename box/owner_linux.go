package box

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/boxrun/boxrun/internal/procfs"

	"github.com/boxrun/boxrun/internal/rundir"
)

// ownerRecord says which boxrun runs a box. It lets `boxrun status` and
// `boxrun gc` tell a box whose boxrun died (and whose guard could not
// clean up) from one still running, or kept on purpose (leftovers =
// "keep"). The box's name is the file's name.
type ownerRecord struct {
	// PID and StartTime identify the boxrun process (StartTime from
	// /proc/PID/stat, so that a reused pid is not mistaken for it).
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	// Cgroup is the box's cgroup path; Unit its scope, "" without systemd.
	Cgroup string `json:"cgroup"`
	Unit   string `json:"unit"`
	// Kept is true once boxrun has exited leaving the box's leftovers
	// running on purpose.
	Kept bool `json:"kept"`
}

// DefaultOwnerDir is where boxrun records the boxes it runs, next to the
// other runtime state (see rundir.Dir).
func DefaultOwnerDir(getenv func(string) string) string {
	return filepath.Join(rundir.Dir(getenv), "boxes")
}

// writeOwner records (or rewrites) the owner of the box at cgroup.
func writeOwner(dir string, rec ownerRecord) error {
	if dir == "" {
		return nil
	}
	if err := rundir.Make(dir); err != nil {
		return fmt.Errorf("recording the box: %w", err)
	}
	data, _ := json.Marshal(rec)
	path := filepath.Join(dir, filepath.Base(rec.Cgroup)+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("recording the box: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) // the rename's error is the one to report
		return fmt.Errorf("recording the box: %w", err)
	}
	return nil
}

// dropOwner removes the record of the box at cgroup.
func dropOwner(dir, cgroup string) {
	if dir != "" {
		_ = os.Remove(filepath.Join(dir, filepath.Base(cgroup)+".json")) // a record left names no live box: status skips it, gc prunes it
	}
}

// selfOwner is the record for this process running the box.
func selfOwner(cgroup, unit string) ownerRecord {
	st, _ := procStartTime(os.Getpid())
	return ownerRecord{PID: os.Getpid(), StartTime: st, Cgroup: cgroup, Unit: unit}
}

// procStartTime reads the start time of a process (clock ticks since boot).
func procStartTime(pid int) (uint64, bool) {
	st, err := procfs.ReadStat(pid)
	return st.StartTime, err == nil
}

// userSliceUID finds the uid of a cgroup under user-UID.slice.
var userSliceUID = regexp.MustCompile(`/user-(\d+)\.slice/`)

// ownerDirsFor lists where the record of a box at cgroup may be: this
// user's directory, root's, and that of the user whose slice holds it.
func ownerDirsFor(own, cgroup string) []string {
	dirs := []string{own, "/run/boxrun/boxes"}
	if m := userSliceUID.FindStringSubmatch(cgroup); m != nil {
		dirs = append(dirs, filepath.Join("/run/user", m[1], "boxrun", "boxes"))
	}
	return dirs
}

// Ownership is what is known of the boxrun that runs a box.
type Ownership string

// Ownership values.
const (
	// OwnerRunning: its boxrun runs.
	OwnerRunning Ownership = "running"
	// OwnerOrphaned: its boxrun is gone, and so is the guard that should
	// have removed the box: `boxrun gc` removes it.
	OwnerOrphaned Ownership = "orphaned"
	// OwnerKept: boxrun exited leaving the box's leftovers on purpose
	// (leftovers = "keep").
	OwnerKept Ownership = "kept"
	// OwnerUnknown: no record (a box of another user, or of an older
	// boxrun).
	OwnerUnknown Ownership = "unknown"
)

// OwnerOf looks up the record of the box at cgroup, in ownDir (see
// DefaultOwnerDir) and where other users' boxrun keep theirs, and checks
// its boxrun: how it is owned, and the pid of its boxrun.
func OwnerOf(ownDir, cgroup string) (Ownership, int) {
	for _, dir := range ownerDirsFor(ownDir, cgroup) {
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(cgroup)+".json"))
		if err != nil {
			continue
		}
		var rec ownerRecord
		if json.Unmarshal(data, &rec) != nil || rec.Cgroup != cgroup {
			continue
		}
		if rec.Kept {
			return OwnerKept, rec.PID
		}
		if st, ok := procStartTime(rec.PID); ok && st == rec.StartTime {
			return OwnerRunning, rec.PID
		}
		return OwnerOrphaned, rec.PID
	}
	return OwnerUnknown, 0
}

// PruneOwners removes the records in dir of boxes not in live (by name),
// when dir is this user's own.
func PruneOwners(dir string, live map[string]bool) {
	if !rundir.Private(dir) {
		return // not this user's own: deleting there could delete anything
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !live[name] {
			_ = os.Remove(filepath.Join(dir, e.Name())) // the next gc tries again
		}
	}
}
