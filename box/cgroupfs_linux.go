package box

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
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

// NeededControllers lists the controllers a policy needs. memory and pids
// are always enabled: the report reads their statistics.
func NeededControllers(p *policy.Resolved) []string {
	c := []string{"memory", "pids"}
	if p.CPUWeight != nil || p.CPUQuotaPerSecUSec != nil {
		c = append(c, "cpu")
	}
	if p.IOWeight != nil {
		c = append(c, "io")
	}
	return c
}

// cgroupResources maps the limits of the controllers available onto
// containerd's cgroup2 resources. Limits set to "max" are left out: a new
// cgroup starts at max.
func cgroupResources(p *policy.Resolved, available []string) *cgroup2.Resources {
	r := &cgroup2.Resources{}
	i64 := func(v *uint64) *int64 {
		if v == nil || *v == policy.Unlimited {
			return nil
		}
		n := int64(*v)
		return &n
	}
	if contains(available, "memory") {
		r.Memory = &cgroup2.Memory{High: i64(p.MemoryHigh), Max: i64(p.MemoryMax), Swap: i64(p.MemorySwapMax)}
		if p.MemoryOOMGroup {
			t := true
			r.Memory.OOMGroup = &t
		}
	}
	if contains(available, "pids") {
		r.Pids = &cgroup2.Pids{}
		if p.PidsMax != nil && *p.PidsMax != policy.Unlimited {
			r.Pids.Max = int64(*p.PidsMax)
		}
	}
	if contains(available, "cpu") && (p.CPUWeight != nil || p.CPUQuotaPerSecUSec != nil) {
		r.CPU = &cgroup2.CPU{Weight: p.CPUWeight}
		if p.CPUQuotaPerSecUSec != nil && *p.CPUQuotaPerSecUSec != policy.Unlimited {
			q := int64(cpuQuotaForPeriod(*p.CPUQuotaPerSecUSec))
			per := uint64(cpuPeriodUSec)
			r.CPU.Max = cgroup2.NewCPUMax(&q, &per)
		}
	}
	if contains(available, "io") && p.IOWeight != nil {
		r.IO = &cgroup2.IO{} // enables the controller; io.weight is written by us
	}
	return r
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
	var usable []string
	for _, c := range NeededControllers(req.Policy) {
		if contains(available, c) {
			usable = append(usable, c)
		}
	}
	req.Slice = sliceToApply(cgroupDir{mount: b.mount, rel: slice}, name, req.Slice, req.Warn)
	sliceRes := &cgroup2.Resources{}
	if s := req.Slice; !s.Empty() {
		sliceRes = cgroupResources(sliceLimits(s), usable)
	}
	res := cgroupResources(req.Policy, usable)
	// Another boxrun may remove an empty slice between the two steps:
	// try again once.
	var sliceErr error
	for try := 0; try < 2; try++ {
		if _, sliceErr = cgroup2.NewManager(b.mount, slice, sliceRes); sliceErr != nil {
			continue
		}
		if _, err = cgroup2.NewManager(b.mount, rel, res); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if sliceErr != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(b.mount, slice), sliceErr)
	}
	if err != nil {
		// NewManager removes the directory it made when it fails.
		return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Join(b.mount, rel), err)
	}
	box := &cgroupfsBox{req: req, cg: cgroupDir{mount: b.mount, rel: rel}, home: cgroupDir{mount: b.mount, rel: b.parent}}
	return box, box.setIOWeight(ctx, usable)
}

// setIOWeight writes the policy's io.weight, which containerd's resources
// do not carry, when the io controller is usable; the box is destroyed
// when it cannot be.
func (x *cgroupfsBox) setIOWeight(ctx context.Context, usable []string) error {
	if x.req.Policy.IOWeight == nil || !contains(usable, "io") {
		return nil
	}
	if err := os.WriteFile(x.cg.file("io.weight"), []byte("default "+strconv.FormatUint(*x.req.Policy.IOWeight, 10)), 0); err != nil {
		_ = x.Destroy(ctx) // the error below is what went wrong; the box holds nothing yet
		return fmt.Errorf("writing io.weight of %s: %w", x.cg.dir(), err)
	}
	return nil
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
	checks := x.cg.check(x.req.Policy, hint)
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
