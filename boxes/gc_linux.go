package boxes

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/cgroupfs"
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
	boxes, errs := List(ctx)
	mount, _ := cgroupfs.MountPoint()
	var out []Collected
	live := map[string]bool{}
	for _, b := range boxes {
		live[filepath.Base(b.Cgroup)] = true
		if b.Owner != box.OwnerOrphaned && !(kept && b.Owner == box.OwnerKept) {
			continue
		}
		c := Collected{Box: b}
		if !dryRun {
			c.Err = box.Remove(ctx, mount, b.Cgroup, b.Backend)
		}
		out = append(out, c)
	}
	if !dryRun {
		box.PruneOwners(box.DefaultOwnerDir(os.Getenv), live)
	}
	if mount == "" {
		return out, errs
	}
	guards, err := leftoverGuards(mount, os.Geteuid())
	if err != nil {
		errs = append(errs, err)
	}
	for _, rel := range guards {
		pol, _ := box.GuardPolicy(filepath.Base(rel))
		c := Collected{Box: LiveBox{Backend: box.KindCgroupfs, Cgroup: rel, Policy: pol,
			Command: "the cgroup of a guard that is gone", Owner: box.OwnerOrphaned}}
		if !dryRun {
			c.Err = box.RemoveCgroup(mount, rel)
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
		if _, guard := box.GuardPolicy(d.Name()); !d.IsDir() || !guard || strings.HasSuffix(d.Name(), ".scope") {
			return nil
		}
		if fi, err := d.Info(); err != nil || !ownedBy(fi, uid) {
			return fs.SkipDir
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, mount), "/")
		if pop, err := cgroupfs.Populated(p); err == nil && !pop {
			found = append(found, rel)
		}
		return fs.SkipDir
	})
	if err != nil {
		return found, fmt.Errorf("looking for guards' cgroups in %s: %w", mount, err)
	}
	return found, nil
}
