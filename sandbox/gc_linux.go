package sandbox

import (
	"context"
	"fmt"
	"io/fs"
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
	if mount == "" {
		return out, errs
	}
	guards, err := leftoverGuards(mount, os.Geteuid())
	if err != nil {
		errs = append(errs, err)
	}
	for _, rel := range guards {
		c := Collected{Box: LiveBox{Backend: KindCgroupfs, Cgroup: rel, Policy: policyFromName(strings.TrimSuffix(filepath.Base(rel), guardSuffix)),
			Command: "the cgroup of a guard that is gone", Owner: OwnerOrphaned}}
		if !dryRun {
			c.Err = cgroupDir{mount: mount, rel: rel}.remove()
		}
		out = append(out, c)
	}
	return out, errs
}

// leftoverGuards finds the empty cgroups of guards gone, below mount and
// owned by uid: a cgroupfs guard cannot remove its own cgroup where the
// cgroup above it takes no process (see leaveCgroup). A guard's scope is
// systemd's to collect.
func leftoverGuards(mount string, uid int) ([]string, error) {
	var found []string
	err := filepath.WalkDir(mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == mount {
				return err
			}
			return nil // removed or unreadable while walking
		}
		if !d.IsDir() || !guardNameRe.MatchString(d.Name()) || strings.HasSuffix(d.Name(), ".scope") {
			return nil
		}
		if fi, err := d.Info(); err != nil || !ownedBy(fi, uid) {
			return fs.SkipDir
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, mount), "/")
		if pop, err := (cgroupDir{mount: mount, rel: rel}).populated(); err == nil && !pop {
			found = append(found, rel)
		}
		return fs.SkipDir
	})
	if err != nil {
		return found, fmt.Errorf("looking for guards' cgroups in %s: %w", mount, err)
	}
	return found, nil
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
