package main

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ids are the real, effective and saved user and group ids of a process.
type ids struct {
	ruid, euid, suid int
	rgid, egid, sgid int
}

// processIDs returns the ids of this process.
func processIDs() ids {
	var id ids
	id.ruid, id.euid, id.suid = unix.Getresuid()
	id.rgid, id.egid, id.sgid = unix.Getresgid()
	return id
}

// checkUnprivileged refuses to run when boxrun was given privileges by a
// setuid or setgid bit: it needs none, and as its helper runs any command
// with an oom_score_adj of the caller's choosing, a setuid boxrun would
// hand every local user a root shell.
func checkUnprivileged() error {
	exe, _ := os.Executable()
	var mode fs.FileMode
	caps := false
	if exe != "" {
		if fi, err := os.Stat(exe); err == nil {
			mode = fi.Mode()
		}
		// File capabilities (setcap) raise a process the way setuid does:
		// cap_sys_resource alone would let any user lower the
		// oom_score_adj of what boxrun runs.
		n, err := unix.Getxattr(exe, "security.capability", nil)
		caps = err == nil && n > 0
	}
	return privilegeError(processIDs(), exe, mode, caps)
}

// privilegeError says why a process with these ids, running the binary
// exe with this mode (and file capabilities, caps), must not go on; nil
// when nothing is wrong. exe may be "" (and mode 0) when the binary cannot
// be found.
func privilegeError(id ids, exe string, mode fs.FileMode, caps bool) error {
	switch {
	case caps:
		return fmt.Errorf("refusing to run: the binary %s has file capabilities (boxrun needs no privilege; remove them with sudo setcap -r %s)", exe, exe)
	case mode&fs.ModeSetuid != 0:
		return fmt.Errorf("refusing to run: the binary %s is setuid (boxrun needs no privilege; remove the bit with chmod u-s %s)", exe, exe)
	case mode&fs.ModeSetgid != 0:
		return fmt.Errorf("refusing to run: the binary %s is setgid (boxrun needs no privilege; remove the bit with chmod g-s %s)", exe, exe)
	case id.euid != id.ruid || id.suid != id.ruid:
		return fmt.Errorf("refusing to run with user ids real %d, effective %d, saved %d: boxrun must not run setuid (it needs no privilege)", id.ruid, id.euid, id.suid)
	case id.egid != id.rgid || id.sgid != id.rgid:
		return fmt.Errorf("refusing to run with group ids real %d, effective %d, saved %d: boxrun must not run setgid (it needs no privilege)", id.rgid, id.egid, id.sgid)
	}
	return nil
}
