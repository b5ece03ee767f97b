package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/boxrun/boxrun/policy"
)

// stackForMachine is loadStack and machineEnv, for the subcommands that
// resolve policies against this machine; ok is false when either failed,
// which out was told.
func stackForMachine(o options, out *printer) (*policy.Stack, policy.Env, bool) {
	st, err := loadStack(o, out)
	if err == nil {
		var env policy.Env
		if env, err = machineEnv(o); err == nil {
			return st, env, true
		}
	}
	out.errorf("%v", err)
	return nil, policy.Env{}, false
}

// loadStack reads every policy file of the lookup, nearest first, ending with
// the built-in policies. A project's .boxrun.toml is read as a Project file
// (see policy.Trust); out gets a warning for each of its tables that is
// ignored, and for every file reached through another user's symlink.
func loadStack(o options, out *printer) (*policy.Stack, error) {
	cwd, _ := os.Getwd()
	var files []policy.SearchPath
	if o.policyFile != "" {
		files = append(files, policy.SearchPath{Path: o.policyFile, Trust: policy.Trusted})
	}
	files = append(files, policy.SearchFiles(cwd, os.Getenv)...)
	// Files named explicitly must exist; the others are optional.
	required := map[string]bool{o.policyFile: o.policyFile != ""}
	if env := os.Getenv("BOXRUN_POLICY_FILE"); env != "" {
		required[env] = true
	}
	st := &policy.Stack{}
	for _, sp := range files {
		f, err := readPolicyFile(sp.Path, out)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && !required[sp.Path] {
				continue
			}
			return nil, err
		}
		f.Trust = sp.Trust
		st.Files = append(st.Files, f)
	}
	st.Files = append(st.Files, policy.Builtin())
	for _, ig := range st.Ignored() {
		out.warnf("%s", ig)
	}
	return st, nil
}

// readPolicyFile opens and parses one policy file. It reads only regular
// files (and /dev/null, an empty file): a FIFO would block boxrun until
// someone writes to it, a device could be read forever. A file larger than
// policy.MaxFileSize fails before it is read.
//
// When the file belongs to another user (neither root nor the caller) and
// is reached through a symlink, out gets a warning naming both paths: a
// policy decides what runs with the caller's processes.
func readPolicyFile(path string, out *printer) (*policy.File, error) {
	// O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer.
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("policy file %s: %w", path, err)
		}
		return nil, fmt.Errorf("reading policy file %s: %w", path, errors.Unwrap(err))
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading policy file %s: %w", path, errors.Unwrap(err))
	}
	switch {
	case fi.IsDir():
		return nil, fmt.Errorf("policy file %s is a directory", path)
	case isDevNull(fi):
		return policy.Parse(path, strings.NewReader(""))
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("policy file %s is a %s, not a regular file", path, fileKind(fi.Mode()))
	case fi.Size() > policy.MaxFileSize:
		return nil, fmt.Errorf("policy file %s is %s; the limit is 1 MiB", path, policy.FormatBytes(uint64(fi.Size())))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		target, _ := filepath.EvalSymlinks(path)
		if w := foreignSymlink(path, target, int(st.Uid), os.Getuid()); w != "" {
			out.warnf("%s", w)
		}
	}
	return policy.Parse(path, fh)
}

// foreignSymlink returns a warning when path leads through a symlink to
// target, a file owned by owner, who is neither root nor uid; "" otherwise
// (also when target is "", not known).
func foreignSymlink(path, target string, owner, uid int) string {
	if owner == 0 || owner == uid || target == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil && abs == target {
		return ""
	}
	return fmt.Sprintf("policy file %s is a symlink to %s, which belongs to another user (uid %d); boxrun reads it anyway", path, target, owner)
}

// isDevNull reports whether fi is /dev/null.
func isDevNull(fi os.FileInfo) bool {
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// fileKind names the type of a file that is not regular.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
