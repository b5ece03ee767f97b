package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// stateDir is where boxrun keeps what it learns between runs:
// $XDG_STATE_HOME/boxrun (~/.local/state/boxrun) for a user, and
// /var/lib/boxrun for root, whose environment may be a user's (sudo -E)
// and is not trusted for where root writes. "" when there is none.
func stateDir(getenv func(string) string) string {
	if os.Geteuid() == 0 {
		return "/var/lib/boxrun"
	}
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "boxrun")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "boxrun")
	}
	return ""
}

// checkOwnedDir refuses a directory that is not this user's or that others
// may write.
func checkOwnedDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case st.Uid != uint32(os.Geteuid()):
		return fmt.Errorf("%s belongs to uid %d, not to you", dir, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s can be written by others (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}
