// Package rundir names boxrun's runtime directory: the user's own tmpfs,
// emptied at logout or boot, where boxrun keeps what must not outlive
// them — what editor protection changed (protect.json), which boxrun runs
// each box (boxes/) and the lock files of run slots (slots/).
package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Dir is boxrun's runtime directory: /run/boxrun for root, whatever its
// environment says (root with a user's environment, after sudo -E or su
// without -, must not write its state where that user can plant
// symbolic links); for a user $XDG_RUNTIME_DIR/boxrun when that directory
// is the user's own and no one else may write it, else
// /run/user/UID/boxrun. getenv is os.Getenv but in tests.
func Dir(getenv func(string) string) string {
	return dir(getenv, os.Geteuid(), ownedPrivate)
}

func dir(getenv func(string) string, euid int, ok func(string, int) bool) string {
	if euid == 0 {
		return "/run/boxrun"
	}
	if d := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) && ok(d, euid) {
		return filepath.Join(d, "boxrun")
	}
	return filepath.Join("/run/user", strconv.Itoa(euid), "boxrun")
}

// ownedPrivate reports whether d is a directory (not a symbolic link)
// owned by uid that neither group nor others may write.
func ownedPrivate(d string, uid int) bool {
	fi, err := os.Lstat(d)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid && fi.Mode().Perm()&0o022 == 0
}

// Make creates dir (mode 0700) when it is missing and checks that it is
// this user's own and private: not a symbolic link, owned by the effective
// uid, written by no one else. State written below it is then safe from
// other users' links.
func Make(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if !Private(d) {
			return fmt.Errorf("%s is not a private directory of yours (a link, another owner, or writable by others): refusing to keep state there", d)
		}
	}
	return nil
}

// Private reports whether d is a directory (not a symbolic link) of the
// effective user's that no one else may write.
func Private(d string) bool { return ownedPrivate(d, os.Geteuid()) }
