package box

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/policy"
)

// ParentEnv names the environment variable that sets the delegated cgroup
// under which the cgroupfs backend creates its boxes.
const ParentEnv = "BOXRUN_CGROUP_PARENT"

// requireUnified fails unless the host runs the unified cgroup v2
// hierarchy, with a *hierarchyError.
func requireUnified(mount string) error {
	switch mode := cgroups.Mode(); mode {
	case cgroups.Unified:
		return nil
	default:
		return &hierarchyError{mode: mode, mount: mount}
	}
}

// hierarchyError is ErrUnavailable on a host without the unified cgroup
// v2 hierarchy, where no backend can make a box and no delegated cgroup
// helps.
type hierarchyError struct {
	mode  cgroups.CGMode // not Unified
	mount string         // the cgroup2 mount, "" when there is none
}

func (e *hierarchyError) Error() string {
	var why string
	switch e.mode {
	case cgroups.Hybrid:
		why = fmt.Sprintf("this host has a hybrid cgroup hierarchy (cgroup v1 controllers, an empty cgroup v2 at %s): memory, pids and cpu cannot be limited through cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1 to switch)", e.mount)
	case cgroups.Legacy:
		why = "this host uses cgroup v1 only (boot with systemd.unified_cgroup_hierarchy=1 to switch to cgroup v2)"
	default:
		why = "no cgroup filesystem is mounted at /sys/fs/cgroup"
	}
	return ErrUnavailable.Error() + ": " + why
}

// Unwrap returns ErrUnavailable.
func (e *hierarchyError) Unwrap() error { return ErrUnavailable }

// noBox is the short account of e for a run without a box.
func (e *hierarchyError) noBox() NoBox {
	switch e.mode {
	case cgroups.Hybrid:
		return NoBox{Reason: "this host has a hybrid cgroup hierarchy, where cgroup v1 holds the controllers", Fix: "boxrun doctor says how to switch to cgroup v2"}
	case cgroups.Legacy:
		return NoBox{Reason: "this host has cgroup v1 only", Fix: "boxrun doctor says how to switch to cgroup v2"}
	}
	return NoBox{Reason: "no cgroup file system is mounted here", Fix: "boxrun doctor says what to do"}
}

// cgroupfsBackend makes boxes as child cgroups of a delegated, writable
// cgroup v2 directory, without systemd.
type cgroupfsBackend struct {
	mount  string
	parent string // below mount, e.g. "/" or "/boxrun"
	// nested is set when parent is a box, which a nested run divides
	// (see NewNested).
	nested bool
}

// newCgroupfs finds a cgroup v2 directory this process may create children
// in: $BOXRUN_CGROUP_PARENT when set, else the cgroup boxrun runs in when it
// is the root of the hierarchy (a VM or a container with its own cgroup
// namespace). Other places hold processes, and cgroup v2 forbids enabling
// controllers there (the no-internal-processes rule). See ProbeCgroupfs.
func newCgroupfs(parentOverride string) (Backend, error) {
	mount, err := cgroupfs.MountPoint()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if mount == "" {
		if err := requireUnified(""); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no cgroup v2 hierarchy is mounted", ErrUnavailable)
	}
	if err := requireUnified(mount); err != nil {
		return nil, err
	}
	own := ""
	if parentOverride == "" {
		if own, err = cgroupfs.OwnCgroup(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return newCgroupfsIn(os.DirFS("/"), mount, own, parentOverride, accessWrite)
}

// accessWrite says why the FS name (a path without its leading "/") may
// not be written by this process, nil when it may.
func accessWrite(name string) error { return unix.Access("/"+name, unix.W_OK) }

// newCgroupfsIn is newCgroupfs on the machine whose root is fsys, with
// cgroup2 mounted at mount (unified), for a process in cgroup own.
func newCgroupfsIn(fsys fs.FS, mount, own, parentOverride string, writable func(name string) error) (Backend, error) {
	parent, err := ProbeCgroupfs(fsys, mount, own, parentOverride, writable)
	if err != nil {
		return nil, err
	}
	return &cgroupfsBackend{mount: mount, parent: parent}, nil
}

// ProbeCgroupfs is the one check of whether the cgroupfs backend can make
// boxes on the machine whose root is fsys: newCgroupfs decides by it, and
// doctor reports its verdict. It returns the cgroup, below mount, to make
// them under: override ($BOXRUN_CGROUP_PARENT) when set, else own, the
// cgroup boxrun runs in, when that is the root of the hierarchy as boxrun
// sees it — the real root in a VM, or in a container with its own cgroup
// namespace the container's cgroup. It must be writable (writable says
// why an FS name may not be written, nil when it may) and able to enable
// memory and pids for its children (see internalProcesses). Errors wrap
// ErrUnavailable and say what to change.
func ProbeCgroupfs(fsys fs.FS, mount, own, override string, writable func(name string) error) (string, error) {
	parent := override
	if parent == "" {
		if own != "/" {
			return "", fmt.Errorf("%w: boxrun runs in cgroup %s, which holds processes, so cgroup v2 allows no limited child cgroups there; set %s to a delegated cgroup you may write (one whose cgroup.subtree_control you can set, holding no processes)", ErrUnavailable, own, ParentEnv)
		}
		parent = "/"
	}
	parent = cgroupfs.Rel(mount, parent)
	control := cgroupfs.FSPath(mount, parent, "cgroup.subtree_control")
	if err := writable(control); err != nil {
		return "", fmt.Errorf("%w: cannot write %s: %v (is it delegated to you?)", ErrUnavailable, "/"+control, err)
	}
	if err := internalProcesses(fsys, mount, parent, override == ""); err != nil {
		return "", err
	}
	return parent, nil
}

// internalProcesses returns a *BusyCgroupError when cgroup v2's
// no-internal-processes rule keeps boxrun from enabling memory and pids
// below dir (below mount): dir holds processes, does not have both enabled
// in its cgroup.subtree_control yet, and is not the root of the hierarchy,
// the only cgroup exempt. The root of a cgroup namespace is not that root:
// it has cgroup.type (Linux 4.14+), which the real root lacks. nsRoot says
// dir was chosen because boxrun runs in it (no $BOXRUN_CGROUP_PARENT).
// Files that cannot be read count as no obstacle: the backend's own error
// then says what went wrong.
func internalProcesses(fsys fs.FS, mount, dir string, nsRoot bool) error {
	if _, err := fs.Stat(fsys, cgroupfs.FSPath(mount, dir, "cgroup.type")); err != nil {
		return nil // the real root, or a kernel too old to tell
	}
	procs, err := fs.ReadFile(fsys, cgroupfs.FSPath(mount, dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	n := len(cgroupfs.ParseProcs(string(procs)))
	if n == 0 {
		return nil
	}
	available, _ := fs.ReadFile(fsys, cgroupfs.FSPath(mount, dir, "cgroup.controllers"))
	enabled, _ := fs.ReadFile(fsys, cgroupfs.FSPath(mount, dir, "cgroup.subtree_control"))
	var missing []string
	for _, c := range []string{"memory", "pids"} {
		if contains(cgroupfs.ParseControllers(string(available)), c) && !contains(cgroupfs.ParseControllers(string(enabled)), c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &BusyCgroupError{mount: mount, dir: path.Join(mount, dir), procs: n, missing: missing, nsRoot: nsRoot && dir == "/"}
}

// BusyCgroupError is ErrUnavailable for a cgroup that holds processes and
// so cannot enable controllers for boxes (see internalProcesses).
type BusyCgroupError struct {
	mount   string   // the cgroup2 mount
	dir     string   // the cgroup's directory, e.g. /sys/fs/cgroup
	procs   int      // how many processes it holds
	missing []string // controllers not enabled in its cgroup.subtree_control
	// nsRoot is true when it is the root of boxrun's cgroup namespace (a
	// container's cgroup), used because boxrun runs there.
	nsRoot bool
}

func (e *BusyCgroupError) Error() string {
	return ErrUnavailable.Error() + ": " + e.Reason() + "; " + e.noBox().Fix
}

// Reason says what stands in the way, without what to do about it.
func (e *BusyCgroupError) Reason() string {
	held := fmt.Sprintf("holds %d processes", e.procs)
	if e.procs == 1 {
		held = "holds 1 process"
	}
	rule := fmt.Sprintf("so %s cannot be enabled in its cgroup.subtree_control (cgroup v2 lets only the real root enable controllers while it holds processes: the no-internal-processes rule)", strings.Join(e.missing, " and "))
	if e.nsRoot {
		return fmt.Sprintf("%s is the root of this container's cgroup namespace, not of the hierarchy, and %s, %s", e.dir, held, rule)
	}
	return fmt.Sprintf("%s=%s %s, %s", ParentEnv, e.dir, held, rule)
}

// Unwrap returns ErrUnavailable.
func (e *BusyCgroupError) Unwrap() error { return ErrUnavailable }

// noBox is the short account of e for a run without a box.
func (e *BusyCgroupError) noBox() NoBox {
	if e.nsRoot {
		return NoBox{Reason: "the container's root cgroup holds processes, so cgroup v2 lets no controller be enabled below it",
			Fix: fmt.Sprintf("move them into a child cgroup and set %s=%s (boxrun doctor says how)", ParentEnv, e.mount)}
	}
	return NoBox{Reason: fmt.Sprintf("%s=%s holds processes, so cgroup v2 lets no controller be enabled below it", ParentEnv, e.dir),
		Fix: "set it to a delegated cgroup that holds none"}
}

// Fix is what doctor says to do about e.
func (e *BusyCgroupError) Fix() string {
	if !e.nsRoot {
		return fmt.Sprintf("set %s to a delegated cgroup v2 directory that holds no processes (its cgroup.subtree_control writable)", ParentEnv)
	}
	return fmt.Sprintf("when the container starts, before anything else, move its processes into a child cgroup, as docker-in-docker entrypoints do: mkdir %[1]s/init && xargs -rn1 < %[1]s/cgroup.procs > %[1]s/init/cgroup.procs; then export %[2]s=%[1]s, and boxes are made below the container's root", e.mount, ParentEnv)
}

func (b *cgroupfsBackend) Name() string { return KindCgroupfs }

func (b *cgroupfsBackend) Close() error { return nil }

// NeededControllers lists the controllers a policy needs: memory and pids
// always, as the report reads their statistics, and the controller of
// each cgroup file the policy writes a limit to.
func NeededControllers(p *policy.Resolved) []string {
	return controllersOf(p.Settings())
}

// controllersOf lists memory and pids and the controller of each cgroup
// file settings write a limit to ("cpu" for cpu.max), in the order of the
// limits table.
func controllersOf(settings []policy.Setting) []string {
	c := []string{"memory", "pids"}
	for _, l := range settings {
		if _, ok := l.CgroupValue(); ok && !contains(c, controllerOf(l.CgroupFile)) {
			c = append(c, controllerOf(l.CgroupFile))
		}
	}
	return c
}

// usableOf lists the controllers of want that are in available.
func usableOf(want, available []string) []string {
	var usable []string
	for _, c := range want {
		if contains(available, c) {
			usable = append(usable, c)
		}
	}
	return usable
}

// makeCgroup makes the cgroup rel below mount with the limits of settings.
// containerd's cgroup2 makes the directory and enables controllers for it
// in every cgroup above it; boxrun then writes the limits itself, each to
// its row's cgroup file (writeLimits). cgroup2.NewManager would write
// them from a cgroup2.Resources, a second spelling of every limit, field by
// field, that a new row of the limits table would need added by hand (and
// that has no io.weight); Manager.ToggleControllers takes the controllers
// by name, which the table's files give. Like NewManager, makeCgroup
// removes the directory when a step fails.
func makeCgroup(mount, rel string, controllers []string, settings []policy.Setting) error {
	m, err := cgroup2.Load(rel, cgroup2.WithMountpoint(mount))
	if err != nil {
		return err
	}
	c := cgroupDir{mount: mount, rel: rel}
	_, statErr := os.Stat(c.dir())
	fresh := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(c.dir(), 0o755); err != nil {
		return err
	}
	err = m.ToggleControllers(controllers, cgroup2.Enable)
	if err == nil {
		err = c.writeLimits(settings, controllers, fresh)
	}
	if err != nil {
		_ = os.Remove(c.dir()) // err is what went wrong; a cgroup in use (the slice) stays, as it must
		return err
	}
	return nil
}

// writeLimits writes the value of each limit of settings to its cgroup
// file in c, in the table's order, when its controller is among
// controllers: a limit of a controller the cgroup does not have is left
// for the read-back to report. In a fresh cgroup "max" is not written: a
// new cgroup starts at max. One that was there already (the slice, which
// outlives its boxes) gets it: an earlier run may have left a lower value.
func (c cgroupDir) writeLimits(settings []policy.Setting, controllers []string, fresh bool) error {
	for _, l := range settings {
		v, ok := l.CgroupValue()
		if !ok || (fresh && l.Unlimited()) || !contains(controllers, controllerOf(l.CgroupFile)) {
			continue
		}
		if err := os.WriteFile(c.file(l.CgroupFile), []byte(v), 0); err != nil {
			return err
		}
	}
	return nil
}

// boxName is the name of a cgroupfs box: its scope's name would be, without
// ".scope".
func boxName(req Request) string {
	return strings.TrimSuffix(unitName(req.Policy.Name, req.ID), ".scope")
}

func (b *cgroupfsBackend) Create(ctx context.Context, req Request) (Box, error) {
	if b.nested {
		return b.createNested(ctx, req)
	}
	parentDir := filepath.Join(b.mount, b.parent)
	available, err := cgroupfs.ReadControllers(filepath.Join(parentDir, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("reading the controllers of %s: %w", parentDir, err)
	}
	name := boxName(req)
	// Every box lives in one boxrun.slice directory, as with systemd, so
	// that boxes running at once share the [slice] budget.
	slice := filepath.Join(b.parent, SliceName)
	rel := filepath.Join(slice, name)
	usable := usableOf(NeededControllers(req.Policy), available)
	req.Slice = sliceToApply(cgroupDir{mount: b.mount, rel: slice}, name, req.Slice, req.Warn)
	// The slice enables, of the controllers usable for the box, those its
	// own limits need; the box enables the rest on its way down.
	var sliceUsable []string
	if s := req.Slice; !s.Empty() {
		sliceUsable = usableOf(controllersOf(s.Settings()), usable)
	}
	// Another boxrun may remove an empty slice between the two steps:
	// try again once.
	var sliceErr error
	for try := 0; try < 2; try++ {
		if sliceErr = makeCgroup(b.mount, slice, sliceUsable, req.Slice.Settings()); sliceErr != nil {
			continue
		}
		if err = makeCgroup(b.mount, rel, usable, req.Policy.Settings()); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if sliceErr != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(b.mount, slice), sliceErr)
	}
	if err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(b.mount, rel), err)
	}
	return &cgroupfsBox{req: req, cg: cgroupDir{mount: b.mount, rel: rel}, home: cgroupDir{mount: b.mount, rel: b.parent}}, nil
}

// cgroupfsBox is one cgroup made by the cgroupfs backend.
type cgroupfsBox struct {
	req Request
	cg  cgroupDir
	// home is the cgroup the guard's cgroup goes in: the one boxrun.slice
	// is in, or for a nested box the outer box.
	home cgroupDir
}

// guardBirthplace makes the guard's cgroup beside the slice (or, nested,
// beside the box): not below boxrun.slice, whose limits are the boxes',
// nor in the cgroup boxrun runs in, which may be stopped as a unit.
func (x *cgroupfsBox) guardBirthplace() (cgroupDir, error) {
	g := cgroupDir{mount: x.home.mount, rel: filepath.Join(x.home.rel, guardName(filepath.Base(x.cg.rel)))}
	if err := os.Mkdir(g.dir(), 0o755); err != nil {
		return cgroupDir{}, fmt.Errorf("creating the guard's cgroup: %w", err)
	}
	return g, nil
}

// adoptGuard has nothing to do: the guard was born in its cgroup.
func (x *cgroupfsBox) adoptGuard(context.Context, int) func() error { return nil }

func (x *cgroupfsBox) Unit() string { return "" }

func (x *cgroupfsBox) Dir() string {
	return x.cg.dir()
}

func (x *cgroupfsBox) Cgroup() string { return x.cg.rel }

// birthplace opens the box's directory for clone3's CLONE_INTO_CGROUP, so
// that the helper is born in the box and Place has nothing to move (a
// migration waits for an RCU grace period, the dearest step of a
// cgroupfs launch). The caller closes the file.
func (x *cgroupfsBox) birthplace() (*os.File, error) {
	return os.OpenFile(x.cg.dir(), os.O_RDONLY|unix.O_DIRECTORY, 0)
}

func (x *cgroupfsBox) Place(ctx context.Context, pid int) error {
	if cg, err := cgroupfs.PidCgroup(pid); err == nil && cg == x.cg.rel {
		return nil // born here (see birthplace)
	}
	m, err := cgroup2.Load(x.cg.rel, cgroup2.WithMountpoint(x.cg.mount))
	if err != nil {
		return fmt.Errorf("opening cgroup %s: %w", x.cg.dir(), err)
	}
	if err := m.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("moving the helper (pid %d) into %s: %w", pid, x.cg.dir(), err)
	}
	return nil
}

func (x *cgroupfsBox) Check(ctx context.Context) []LimitCheck {
	hint := func(ctrl string) string {
		return fmt.Sprintf("enable it in the parent: echo +%s > %s", ctrl, x.home.file("cgroup.subtree_control"))
	}
	checks := x.cg.check(x.req.Policy.Settings(), hint)
	if !x.req.Slice.Empty() {
		checks = append(checks, sliceChecks(cgroupDir{mount: x.cg.mount, rel: filepath.Dir(x.cg.rel)}, x.req.Slice, nil, hint)...)
	}
	return checks
}

func (x *cgroupfsBox) Procs() ([]int, error) { return x.cg.procs() }

func (x *cgroupfsBox) Signal(ctx context.Context, sig syscall.Signal) error {
	return x.cg.signal(sig)
}

func (x *cgroupfsBox) Kill(ctx context.Context) error { return x.cg.kill(ctx) }

// Destroy kills what is left and removes the cgroup directory.
func (x *cgroupfsBox) Destroy(ctx context.Context) error {
	if pop, _ := x.cg.populated(); pop {
		if err := x.cg.kill(ctx); err != nil {
			return err
		}
	}
	return x.cg.remove()
}
