// Package box runs a command inside a cgroup v2 box whose limits come from a
// resolved policy: the Backend and Box contract (this file) and Run.
//
// A box is made by a Backend: "systemd" starts a transient scope through the
// systemd manager's D-Bus API (systemd_linux.go), "cgroupfs" creates a child
// cgroup on a delegated cgroup v2 subtree (cgroupfs_linux.go, and
// nested_linux.go for boxes inside a box), and "none" makes no cgroup at all
// and says so (none.go); Select picks one (select_linux.go). Run
// (run_linux.go) puts the command into the box without letting any of its
// processes run outside it, even for a moment: it starts a small helper
// (helper_linux.go: boxrun itself, re-executed) that blocks until the box
// holds it, and only then executes the command. Around that: a guard that
// removes the box if boxrun dies (guard_linux.go), the limits read back
// (readback.go), the shared boxrun.slice and its budget (slice_linux.go),
// signals forwarded to the command and the terminal's own
// (terminal_linux.go, procsignal_linux.go), leftovers, the post-mortem of
// how the command ended (postmortem_linux.go), the owner record that
// `boxrun status` and `gc` read (owner_linux.go, names.go, collect_linux.go)
// and the phases a caller may time (trace.go).
//
// What watches a running box (the sampler, backpressure) is package
// observe, through the Observer interface; the boxes of the machine as a
// whole (status, gc, slots, memory) are package boxes; container crossing
// is package container. The readers, the systemd connection and the kernel
// and systemd feature probes they share are under internal/. The policy
// package is pure and cmd/boxrun only wires flags and output.
package box

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/boxrun/boxrun/policy"
)

// Backend names accepted by Select and CheckKind.
const (
	KindAuto     = "auto"
	KindSystemd  = "systemd"
	KindCgroupfs = "cgroupfs"
	KindNone     = "none"
)

// CheckKind returns an error naming kind when it is not a backend name, so
// that a typo fails before anything is opened.
func CheckKind(kind string) error {
	switch kind {
	case KindAuto, "", KindSystemd, KindCgroupfs, KindNone:
		return nil
	}
	return fmt.Errorf("unknown backend %q (use auto, systemd, cgroupfs or none)", kind)
}

// ErrUnavailable is returned (wrapped) when a backend cannot be used on this
// machine; the wrapping error says why and what to change.
var ErrUnavailable = errors.New("backend not available")

// Request is what a backend needs to make one box.
type Request struct {
	// Policy holds the limits to apply.
	Policy *policy.Resolved
	// ID is a short unique id for this run, used in unit and cgroup names.
	ID string
	// Description is a human-readable summary, e.g. the command line.
	Description string
	// Slice holds the limits of the slice every box lives in (one budget
	// for all boxes running at once); nil or empty sets none.
	Slice *policy.ResolvedSlice
	// Warn tells the user of something the box met that does not stop the
	// run (a lost manager connection); nil drops it.
	Warn func(string)
}

// Backend makes boxes. One Backend serves one boxrun invocation; Close releases
// its connections.
type Backend interface {
	// Name is "systemd", "cgroupfs" or "none".
	Name() string
	// Create prepares a box for req. The box holds no process yet; nothing is
	// left behind if Create fails.
	Create(ctx context.Context, req Request) (Box, error)
	// Close releases the backend's resources (D-Bus connections).
	Close() error
}

// Box is one sandbox: a cgroup (or nothing, for the none backend) holding the
// command's process tree.
type Box interface {
	// Place puts the blocked helper process pid into the box and finishes
	// the box's creation (the systemd backend starts its scope here, since a
	// scope needs its first process at creation).
	Place(ctx context.Context, pid int) error
	// Unit is the systemd unit name, or "" when there is none.
	Unit() string
	// Cgroup is the box's cgroup path relative to the cgroup2 mount (e.g.
	// "/user.slice/.../boxrun-tests-ab12.scope"), or "" when there is none.
	Cgroup() string
	// Dir is the box's cgroup directory (e.g. "/sys/fs/cgroup/user.slice/
	// .../boxrun-tests-ab12.scope"), or "" when there is none.
	Dir() string
	// Check reads back from the kernel what each limit of the policy became.
	Check(ctx context.Context) []LimitCheck
	// Procs lists the processes currently in the box.
	Procs() ([]int, error)
	// Signal sends sig to every process in the box.
	Signal(ctx context.Context, sig syscall.Signal) error
	// Kill kills every process in the box at once (cgroup.kill or the
	// manager's KillUnit) and waits up to a few seconds for the box to empty.
	Kill(ctx context.Context) error
	// Destroy removes the box. Processes still inside are killed first.
	Destroy(ctx context.Context) error
}

// Observer watches a box while its command runs: the run report samples it,
// backpressure steers it. Run calls Started once the command runs in the
// box and Exited when the command has exited, before leftovers are handled
// and the box is removed, so the cgroup files are still readable then.
type Observer interface {
	// Started is called with the box's cgroup directory ("" without a
	// cgroup) and the command's pid.
	Started(dir string, pid int)
	// Exited is called once the command has been reaped.
	Exited()
}

// LimitCheck is what the kernel reports for one limit of the policy.
type LimitCheck struct {
	// Key is the policy key, e.g. "memory.max".
	Key string
	// File is the cgroup file that carries it, e.g. "memory.max".
	File string
	// Want is the value the policy asked for, as the kernel would print it.
	Want string
	// Got is what the file holds now ("" when it could not be read).
	Got string
	// Problem is empty when the limit is in force, else why it is not.
	Problem string
	// Hint says what the user can change to get it, when known.
	Hint string
}

// OK reports whether the limit is in force.
func (c LimitCheck) OK() bool { return c.Problem == "" }

// String renders a failed check for a warning line.
func (c LimitCheck) String() string {
	if c.OK() {
		return fmt.Sprintf("%s = %s", c.Key, c.Got)
	}
	return fmt.Sprintf("%s = %s not enforced: %s", c.Key, c.Want, c.Problem)
}
