package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/rundir"
)

// Collected is one box `boxrun gc` removed (or would remove).
type Collected struct {
	Box LiveBox
	// Err is why it could not be removed, nil when it was.
	Err error
}

// Collect removes the boxes whose boxrun is gone: orphans (their boxrun and
// its guard died, e.g. both SIGKILLed), and with kept also the boxes whose
// leftovers were kept on purpose. Their processes are resumed and killed
// (cgroup.kill), a cgroupfs box's directory is removed (systemd collects an
// empty scope itself), and their records go. Records of boxes that no longer
// exist are removed too. With dryRun nothing is touched.
func Collect(ctx context.Context, kept, dryRun bool) ([]Collected, []error) {
	boxes, errs := ListBoxes(ctx)
	mount, _ := cgroupfs.MountPoint()
	var out []Collected
	live := map[string]bool{}
	for _, b := range boxes {
		live[filepath.Base(b.Cgroup)] = true
		if b.Owner != OwnerOrphaned && !(kept && b.Owner == OwnerKept) {
			continue
		}
		c := Collected{Box: b}
		if !dryRun {
			c.Err = removeBox(ctx, mount, b)
		}
		out = append(out, c)
	}
	if !dryRun {
		pruneRecords(DefaultOwnerDir(os.Getenv), live)
	}
	return out, errs
}

// removeBox kills what runs in a box and removes it.
func removeBox(ctx context.Context, mount string, b LiveBox) error {
	cg := cgroupDir{mount: mount, rel: b.Cgroup}
	_ = cg.signal(syscall.SIGCONT) // nothing may stay stopped
	if err := cg.kill(ctx); err != nil {
		return err
	}
	if b.Backend == KindCgroupfs {
		if err := cg.remove(); err != nil {
			return err
		}
	}
	for _, dir := range ownerDirsFor(DefaultOwnerDir(os.Getenv), b.Cgroup) {
		_ = os.Remove(filepath.Join(dir, filepath.Base(b.Cgroup)+".json"))
	}
	return nil
}

// pruneRecords removes the records of boxes that no longer exist.
func pruneRecords(dir string, live map[string]bool) {
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
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
