package vm

import (
	"io"
	"os"
	"time"
)

// Mode selects what runs as PID 1 in the guest after switch_root.
type Mode int

const (
	// Systemd switches root into /lib/systemd/systemd --unit=boxrun-test.service.
	// The command runs as root in the generated Type=oneshot unit boxrun-test.service,
	// after basic.target, with its output on the serial console; the unit's
	// SuccessAction/FailureAction power the VM off when it ends.
	Systemd Mode = iota
	// NoSystemd runs a busybox sh as PID 1 after switch_root. It mounts proc, sysfs,
	// devtmpfs, devpts, tmpfs on /run and /dev/shm, and cgroup2 at /sys/fs/cgroup with
	// nsdelegate,memory_recursiveprot; it runs the command as root and powers the VM off.
	// No controller is enabled in the root's cgroup.subtree_control: the command does that.
	NoSystemd
)

// String returns the mode's name as passed to the guest ("systemd" or "nosystemd").
func (m Mode) String() string {
	switch m {
	case Systemd:
		return "systemd"
	case NoSystemd:
		return "nosystemd"
	}
	return "unknown"
}

// Guest selects the system a boot runs: its kernel and its root file system.
type Guest int

const (
	// Debian12 boots Debian 12's linux-image-cloud-amd64 (6.1), fetched through the
	// host's apt, over the host's own root: on the project's machines (Debian 12) the
	// guest runs Debian 12's systemd 252.
	Debian12 Guest = iota
	// Debian13 boots Debian 13 "trixie": its linux-image-cloud-amd64 (6.12) over a
	// root file system built from its packages (systemd 257) with mmdebstrap, once per
	// machine, in the cache. Only the directories of Config.Shares are the host's.
	Debian13
)

// Guests are all guests, oldest first.
var Guests = []Guest{Debian12, Debian13}

// String returns the guest's name, as BOXRUN_IT_GUEST spells it ("debian12").
func (g Guest) String() string {
	switch g {
	case Debian12:
		return "debian12"
	case Debian13:
		return "debian13"
	}
	return "unknown"
}

// File is one file written into the guest's root (the tmpfs overlay over the host's
// root, or over the guest's own root file system) before the guest's PID 1 starts.
type File struct {
	// Data is the file's content, or with Append the content added to the lower file.
	Data string
	// Mode is the file's permission bits. Zero means the mode of the lower layer's file of
	// the same path when there is one, else 0644.
	Mode os.FileMode
	// Append writes the lower layer's file of the same path (the host's, or that of
	// the guest's own root file system) followed by Data, keeping that file's owner
	// and, unless Mode is set, its mode. Use it to add users to /etc/passwd and
	// /etc/group. A missing file counts as empty.
	Append bool
}

// Config describes one boot.
type Config struct {
	// Guest selects the kernel and root file system; the zero value is Debian12.
	Guest Guest
	// Mode selects systemd or a plain shell as the guest's PID 1.
	Mode Mode
	// Shares are host directories (absolute, clean, without white space or commas)
	// that a guest with a root file system of its own (Debian13) sees at the same
	// path, each read-only under a tmpfs overlay like the root: the binaries and
	// files a test built on the host. Debian12 sees the host's whole root anyway and
	// ignores them.
	Shares []string
	// Command is a shell command line, run as root in the guest with /bin/sh -c, in
	// /root, with stdin /dev/null and stdout and stderr on the serial console (a tty).
	Command string
	// Files are written into the guest's root before boot, keyed by absolute guest
	// path. They take precedence over the harness's own files (such as the masks of
	// units that would compete for the console), except under /.boxrun, which the
	// harness owns. Parent directories that exist in the lower layer (the host's
	// root, or the guest's own) keep its mode; paths through its symlinks are
	// resolved, so /lib/x lands in /usr/lib/x on a merged-/usr system.
	Files map[string]File
	// Env is added to Command's environment. Names must be shell identifiers.
	// By default the command has PATH, HOME=/root, SYSTEMD_PAGER=cat, PAGER=cat and
	// SYSTEMD_COLORS=0 (its stdout is a tty), plus in Systemd mode the unit's
	// environment; Env can override them.
	Env map[string]string
	// MemoryMB is the guest's RAM in MiB; 0 means 1024.
	MemoryMB int
	// CPUs is the guest's number of virtual CPUs; 0 means 2.
	CPUs int
	// Timeout bounds the whole boot, run and power-off; 0 means 10 minutes.
	Timeout time.Duration
	// Log, when set, receives a live copy of the serial console as QEMU prints it
	// (raw bytes, lines end in \r\n), from one goroutine, never after Boot returned.
	Log io.Writer
}

// Result is what one boot printed and how long it took.
type Result struct {
	// Console is the whole serial console, with \r\n turned into \n: kernel messages
	// (OOM kills among them), the harness's markers, and the command's output.
	Console string
	// Output is what Command printed (stdout and stderr, in order), taken from the
	// console between the harness's start and end markers. Kernel messages printed
	// while the command ran (e.g. "Memory cgroup out of memory: Killed process ...")
	// share the console and are kept in Output too, possibly in the middle of a line
	// of the command's output.
	Output string
	// ExitCode is Command's exit status as the guest's shell reported it
	// (128+N when signal N killed it).
	ExitCode int
	// Boot is the time from QEMU's start to the command's start (its start marker
	// reaching the host).
	Boot time.Duration
	// Run is the time from the command's start to its end as seen from the host
	// (start and end markers reaching the host).
	Run time.Duration
	// Partial is true for a command that started but never ended (the
	// Config.Timeout or ctx ended it, or QEMU exited first): Boot then
	// returns this Result along with its error, Output holding what the
	// command printed until then, ExitCode -1 and Run the time until then.
	Partial bool
}
