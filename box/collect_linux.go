package box

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
)

// Removing what a boxrun that is gone left behind, for `boxrun gc`
// (package boxes).

// Remove kills what runs in the box at cgroup (below the cgroup2 mount),
// resuming what is stopped first, and removes it: a cgroupfs box's
// directory (kind is its backend; systemd collects an empty scope itself),
// and the records of its owner.
func Remove(ctx context.Context, mount, cgroup, kind string) error {
	cg := cgroupDir{mount: mount, rel: cgroup}
	_ = cg.signal(syscall.SIGCONT) // nothing may stay stopped
	if err := cg.kill(ctx); err != nil {
		return err
	}
	if kind == KindCgroupfs {
		if err := cg.remove(); err != nil {
			return err
		}
	}
	for _, dir := range ownerDirsFor(DefaultOwnerDir(os.Getenv), cgroup) {
		_ = os.Remove(filepath.Join(dir, filepath.Base(cgroup)+".json")) // most of these places hold none, or are not ours to write
	}
	return nil
}

// RemoveCgroup removes the empty cgroup at rel below the cgroup2 mount (a
// guard's that is gone) with any cgroups below it, then its slice
// directory when no other box is left in it.
func RemoveCgroup(mount, rel string) error {
	return cgroupDir{mount: mount, rel: rel}.remove()
}
