package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/systemd"
)

// OuterCgroup is the leaf cgroup of a box that holds nested boxes, where
// the box's own processes live: cgroup v2 lets a cgroup either hold
// processes or give controllers to children (the no-internal-processes
// rule), so the first nested run moves the outer box's processes into it
// before it enables memory and pids for its own box beside it.
const OuterCgroup = "boxrun.outer"

// OwnProcessesDir is the cgroup directory where the processes of the box
// at dir live that are in no nested box: dir/boxrun.outer once a nested
// run made it, else dir itself. A process moved back into the box (one
// resumed from a pause) must go there: dir itself takes no process once it
// holds nested boxes.
func OwnProcessesDir(dir string) string {
	outer := filepath.Join(dir, OuterCgroup)
	if fi, err := os.Stat(outer); err == nil && fi.IsDir() {
		return outer
	}
	return dir
}

// Enclosing returns the innermost box this process runs in, when it was
// started inside one by boxrun: its own cgroup (/proc/self/cgroup) is a
// box's or below one, a cgroup named like a box (boxrun-POLICY-ID, with a
// scope's ".scope"). A boxrun started there must not make a box of its own
// beside the parent's (the systemd backend would escape the parent's
// limits), nor wait for a slot its parent holds: it makes its box inside
// (NewNested), or runs in the parent's. The environment is not asked:
// BOXRUN_CGROUP inherited by a process that has left its box (an editor
// started from a boxed shell, tmux) would name a box it is not in.
func Enclosing() (cgroup, unit string, ok bool) {
	own, err := cgroupfs.OwnCgroup()
	if err != nil {
		return "", "", false
	}
	return boxOf(own)
}

// boxOf finds the innermost box a cgroup path is in: the last component
// named like a box, and its unit when it is a scope.
func boxOf(cg string) (box, unit string, ok bool) {
	parts := strings.Split(cg, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if boxNameRe.MatchString(p) {
			box = strings.Join(parts[:i+1], "/")
			if strings.HasSuffix(p, ".scope") {
				unit = p
			}
			return box, unit, true
		}
	}
	return "", "", false
}

// errNotDelegated is returned (wrapped) by NewNested when the enclosing box
// is not boxrun's to divide; the wrapping error says why.
var errNotDelegated = errors.New("the box is not delegated to boxrun")

// NewNested returns the backend that makes boxes inside the box at cgroup
// (below the cgroup2 mount; unit is its scope, "" for a cgroupfs box), so
// that a nested run gets its own policy's limits under the outer box's. It
// fails with errNotDelegated unless the box's subtree is boxrun's: a
// cgroupfs box, or a scope started with Delegate=yes, whose cgroup this
// process may write.
func NewNested(ctx context.Context, cgroup, unit string) (Backend, error) {
	mount, err := cgroupfs.MountPoint()
	if err != nil || mount == "" {
		return nil, fmt.Errorf("%w: no cgroup v2 hierarchy is mounted", errNotDelegated)
	}
	if err := delegated(ctx, mount, cgroup, unit); err != nil {
		return nil, err
	}
	return &cgroupfsBackend{mount: mount, parent: cgroup, nested: true}, nil
}

// delegated returns nil when the box at cgroup is boxrun's to divide.
func delegated(ctx context.Context, mount, cgroup, unit string) error {
	dir := filepath.Join(mount, cgroup)
	for _, f := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		if err := unix.Access(f, unix.W_OK); err != nil {
			return fmt.Errorf("%w: %s is not writable by uid %d (%v)", errNotDelegated, f, os.Geteuid(), err)
		}
	}
	if unit == "" {
		return nil // a cgroupfs box: its subtree is boxrun's
	}
	// A scope's cgroup is its manager's unless the scope was started
	// with Delegate=yes, as boxrun starts its own.
	_, manager, uid := systemd.UnitOwner(cgroup)
	conn, err := systemd.Dial(ctx, manager, systemd.SocketFor(manager, uid))
	if err != nil {
		return fmt.Errorf("%w: cannot ask the systemd %s manager whether scope %s is delegated: %v", errNotDelegated, manager, unit, systemd.Trim(err))
	}
	defer conn.Close()
	prop, err := conn.GetUnitTypePropertyContext(ctx, unit, "Scope", "Delegate")
	if err != nil {
		return fmt.Errorf("%w: asking the systemd %s manager whether scope %s is delegated: %v", errNotDelegated, manager, unit, systemd.ExplainError(err))
	}
	if d, _ := prop.Value.Value().(bool); !d {
		return fmt.Errorf("%w: scope %s was not started with Delegate=yes, so its cgroup is systemd's to manage", errNotDelegated, unit)
	}
	return nil
}

// createNested makes the box for req inside the outer box b.parent: the
// outer box's own processes go to OuterCgroup, the controllers the policy
// needs are enabled for the outer box's children, and the box gets the
// policy's limits. The [slice] budget is not the nested box's: the outer
// box is its budget.
func (b *cgroupfsBackend) createNested(ctx context.Context, req Request) (Box, error) {
	outer := cgroupDir{mount: b.mount, rel: b.parent}
	available, err := cgroupfs.ReadControllers(outer.file("cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("reading the controllers of %s: %w", outer.dir(), err)
	}
	usable := usableOf(NeededControllers(req.Policy), available)
	if err := outer.divide(usable); err != nil {
		return nil, err
	}
	req.Slice = nil
	box := &cgroupfsBox{req: req, cg: cgroupDir{mount: b.mount, rel: filepath.Join(b.parent, boxName(req))}, home: outer}
	if err := os.Mkdir(box.cg.dir(), 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", box.cg.dir(), err)
	}
	if err := box.cg.writeLimits(req.Policy.Settings(), usable, true); err != nil {
		_ = os.Remove(box.cg.dir()) // the limits' error is the one to report; an empty cgroup left is gc's
		return nil, fmt.Errorf("setting the limits of %s: %w", box.cg.dir(), err)
	}
	return box, nil
}

// divide readies the box at c for boxes inside it: its processes move to
// its OuterCgroup, and controllers are enabled for its children. A process
// the box forks meanwhile makes enabling fail (EBUSY); the move is then
// done again, a few times.
func (c cgroupDir) divide(controllers []string) error {
	enabled, err := cgroupfs.ReadControllers(c.file("cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.file("cgroup.subtree_control"), err)
	}
	var want []string
	for _, ctrl := range controllers {
		if !contains(enabled, ctrl) {
			want = append(want, "+"+ctrl)
		}
	}
	if len(want) == 0 {
		return nil
	}
	outer := cgroupDir{mount: c.mount, rel: filepath.Join(c.rel, OuterCgroup)}
	if err := os.Mkdir(outer.dir(), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating cgroup %s: %w", outer.dir(), err)
	}
	for try := 0; ; try++ {
		if err := c.moveProcsTo(outer); err != nil {
			return err
		}
		err := os.WriteFile(c.file("cgroup.subtree_control"), []byte(strings.Join(want, " ")), 0)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || try == 10 {
			return fmt.Errorf("enabling %s for the boxes inside %s: %w", strings.Join(want, " "), c.dir(), err)
		}
	}
}

// moveProcsTo moves every process of the cgroup itself (not of its
// children) into to. Processes that exit meanwhile are passed over.
func (c cgroupDir) moveProcsTo(to cgroupDir) error {
	data, err := os.ReadFile(c.file("cgroup.procs"))
	if err != nil {
		return fmt.Errorf("listing the processes of %s: %w", c.dir(), err)
	}
	for _, pid := range cgroupfs.ParseProcs(string(data)) {
		err := os.WriteFile(to.file("cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("moving process %d into %s: %w", pid, to.dir(), err)
		}
	}
	return nil
}

// ExecDirect replaces boxrun with the command at path (argv[0] as
// ResolveCommand found it), for a run inside an enclosing box: its exit
// status and signals are then the command's own.
func ExecDirect(path string, argv []string) error {
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return startErr(126, "running %s: %v", argv[0], err)
	}
	return fmt.Errorf("exec returned")
}
