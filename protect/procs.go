package protect

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// ProcInfo is what protection knows about one process, from /proc.
type ProcInfo struct {
	// PID and PPID are the process and its parent.
	PID, PPID int
	// UID and EUID are the real and effective user ids; -1 when unknown.
	UID, EUID int
	// StartTime is field 22 of /proc/PID/stat (clock ticks since boot):
	// with the pid, it names a process across pid reuse.
	StartTime uint64
	// State is the one-letter state of /proc/PID/stat ('Z' for zombies).
	State byte
	// Comm is /proc/PID/comm, at most 15 bytes.
	Comm string
	// Exe is the target of /proc/PID/exe, "" when it cannot be read.
	Exe string
	// Args is /proc/PID/cmdline split at NULs.
	Args []string
	// Cgroup is the process's cgroup v2 path ("/user.slice/..."), "" on a
	// v1-only system.
	Cgroup string
}

// ProcKey names a process across pid reuse.
type ProcKey struct {
	PID       int
	StartTime uint64
}

// Key returns the process's ProcKey.
func (p ProcInfo) Key() ProcKey { return ProcKey{p.PID, p.StartTime} }

// ReadProcs reads every process of a proc file system. fsys is rooted at
// the proc mount (os.DirFS("/proc")); readlink reads a link below it (nil
// leaves Exe empty). Processes that vanish while being read are left out.
func ReadProcs(fsys fs.FS, readlink func(name string) (string, error)) ([]ProcInfo, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []ProcInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := readProcInfo(fsys, readlink, pid); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProcInfo reads one process; ok is false when it is gone or unreadable.
func readProcInfo(fsys fs.FS, readlink func(string) (string, error), pid int) (ProcInfo, bool) {
	dir := strconv.Itoa(pid)
	st, err := procfs.ReadStatFS(fsys, pid)
	if err != nil || st.PID != pid {
		return ProcInfo{}, false
	}
	p := ProcInfo{PID: st.PID, PPID: st.PPID, State: st.State, StartTime: st.StartTime, Comm: st.Comm}
	p.UID, p.EUID = -1, -1
	if p.PID == 2 || p.PPID == 2 {
		// A kernel thread (kthreadd's child): never protected nor walked
		// through, and a third of a desktop's processes; its other files
		// are not worth reading.
		return p, true
	}
	if status, err := procfs.ReadStatusFS(fsys, pid); err == nil {
		p.UID, p.EUID = status.UID, status.EUID
	}
	if comm, err := fs.ReadFile(fsys, dir+"/comm"); err == nil {
		p.Comm = strings.TrimSuffix(string(comm), "\n")
	}
	if cmd, err := fs.ReadFile(fsys, dir+"/cmdline"); err == nil {
		p.Args = splitCmdline(cmd)
	}
	if cg, err := fsys.Open(dir + "/cgroup"); err == nil {
		p.Cgroup, _ = cgroupfs.ParseProcCgroup(cg)
		cg.Close()
	}
	if readlink != nil {
		if exe, err := readlink(dir + "/exe"); err == nil {
			p.Exe = exe
		}
	}
	return p, true
}

// splitCmdline splits /proc/PID/cmdline. Chromium and Electron rewrite
// their command line into one space-separated string (argv[0] holding it
// all); that form is split at spaces.
func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	args := strings.Split(s, "\x00")
	if len(args) == 1 && strings.Contains(args[0], " ") && strings.HasPrefix(args[0], "/") {
		args = strings.Fields(args[0])
	}
	return args
}

// readlinkProc reads a link below /proc.
func readlinkProc(name string) (string, error) { return os.Readlink(filepath.Join("/proc", name)) }
