package doctor

// The checks of the cgroup hierarchy, the managers, the backend,
// controllers, containers, protection groups and systemd-oomd.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/container"
	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/protect"
)

// CheckStatus is the verdict of one check.
type CheckStatus string

// Check verdicts: ✓, ! and ✗.
const (
	// CheckOK: works.
	CheckOK CheckStatus = "ok"
	// CheckWarn: works, degraded or with a caveat worth knowing.
	CheckWarn CheckStatus = "warn"
	// CheckFail: a limit of the policy cannot be enforced.
	CheckFail CheckStatus = "fail"
)

// Symbol is the mark doctor prints for the status.
func (s CheckStatus) Symbol() string {
	switch s {
	case CheckOK:
		return "✓"
	case CheckFail:
		return "✗"
	}
	return "!"
}

// Check is one line of doctor's verdict.
type Check struct {
	// ID names the check: "versions", "cgroup2", "backend", "systemd",
	// "controllers", "recursiveprot", "swap", "psi", "memory.peak",
	// "cgroup.kill", "clone_into_cgroup", "scope_oompolicy", "container",
	// "protect:GROUP", "systemd-oomd", "signal-tracer".
	ID string `json:"id"`
	// Status is the verdict.
	Status CheckStatus `json:"status"`
	// Summary says what was found, in one line.
	Summary string `json:"summary"`
	// Fix says what to do, for a ✗ or !.
	Fix string `json:"fix,omitempty"`
	// Details are further lines (e.g. one per protected unit).
	Details []string `json:"details,omitempty"`
}

// OK reports whether boxrun can enforce the policy fully: no check
// failed.
func OK(checks []Check) bool {
	for _, c := range checks {
		if c.Status == CheckFail {
			return false
		}
	}
	return true
}

// Options says what doctor judges the machine against.
type Options struct {
	// Policy is the policy to enforce (the default, tests).
	Policy *policy.Resolved
	// Groups are its protection groups; Others the names of the rest.
	Groups []protect.Group
	Others []string
	// Timeout bounds each D-Bus question; 0 means 5s.
	Timeout time.Duration
}

// checker holds what the checks share.
type checker struct {
	m     *Machine
	opt   Options
	ctx   context.Context
	mount cgroupfs.Mount
	// user is true when boxes would use the user manager (not root).
	user bool
	// manager is the systemd version's major number when it answered,
	// -1 when it answered without one, else 0; managerVersion the whole
	// version as it said it ("252.39-1~deb12u1"); managerErr why it did
	// not answer.
	manager        int
	managerVersion string
	managerErr     error
	// backend is what --backend auto would pick.
	backend string
	// cgroupfsParent is where the cgroupfs backend would make boxes;
	// cgroupfsErr why it cannot, when it was asked (see box.ProbeCgroupfs).
	cgroupfsParent string
	cgroupfsErr    error
	// kernel answers which kernel features the machine has.
	kernel probe.Kernel
	// editorCgroups are the cgroups holding protected processes.
	editorCgroups []string
}

// Run runs every check against m, in the order doctor prints them.
func Run(ctx context.Context, m *Machine, opt Options) []Check {
	if opt.Timeout == 0 {
		opt.Timeout = 5 * time.Second
	}
	d := &checker{m: m, opt: opt, ctx: ctx, user: m.UID != 0}
	d.mount, _ = cgroupfs.ReadMount(m.FS)
	d.kernel = d.probeKernel()
	cgroup2 := d.checkCgroup2()
	d.probeBackend()
	checks := []Check{d.checkVersions(), cgroup2, d.checkSystemd(), d.checkBackend()}
	if c, ok := d.checkControllers(); ok {
		checks = append(checks, c)
	}
	checks = append(checks,
		d.checkRecursiveProt(),
		d.checkSwap(),
		d.checkPSI(),
		d.checkCgroupFile(probe.MemoryPeak),
		d.checkCgroupFile(probe.CgroupKill),
		d.checkCloneIntoCgroup(),
	)
	if c, ok := d.checkScopeOOMPolicy(); ok {
		checks = append(checks, c)
	}
	checks = append(checks, d.checkContainer())
	for _, g := range opt.Groups {
		checks = append(checks, d.checkGroup(g))
	}
	checks = append(checks, d.checkOOMD(), d.checkSignalTracer())
	return checks
}

// unified reports whether cgroup v2 is mounted and the only hierarchy.
func (d *checker) unified() bool {
	return d.mount.Path != "" && !d.mount.V1
}

func (d *checker) checkCgroup2() Check {
	c := Check{ID: "cgroup2"}
	const bootFix = "boot with systemd.unified_cgroup_hierarchy=1 (Debian/Ubuntu: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run sudo update-grub, reboot)"
	switch {
	case d.mount.Path == "" && d.mount.V1:
		c.Status, c.Summary, c.Fix = CheckFail, "cgroup v1 only (legacy hierarchy): no cgroup v2 to make boxes in", bootFix
	case d.mount.Path == "":
		c.Status, c.Summary = CheckFail, "no cgroup file system is mounted"
		c.Fix = "in a container, give it its own cgroup namespace with cgroup v2 (podman/docker run --cgroupns=private on a cgroup v2 host), or run boxrun on the host"
	case d.mount.V1:
		c.Status = CheckFail
		c.Summary = fmt.Sprintf("hybrid hierarchy: cgroup v1 holds the controllers, cgroup v2 at %s has none to limit memory, pids or cpu", d.mount.Path)
		c.Fix = bootFix
	default:
		ctrl, _ := fs.ReadFile(d.m.FS, cgroupfs.FSPath(d.mount.Path, "cgroup.controllers"))
		c.Status = CheckOK
		c.Summary = fmt.Sprintf("cgroup v2: unified hierarchy at %s (controllers: %s)", d.mount.Path, orNoneText(strings.Join(cgroupfs.ParseControllers(string(ctrl)), " ")))
	}
	return c
}

func orNoneText(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ownCgroup is the cgroup this process runs in, from proc/self/cgroup.
func (d *checker) ownCgroup() string {
	f, err := d.m.FS.Open("proc/self/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	cg, _ := cgroupfs.ParseProcCgroup(f)
	return cg
}

// probeBackend works out what --backend auto would pick.
func (d *checker) probeBackend() {
	if d.m.Systemd != nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.opt.Timeout)
		d.managerVersion, d.managerErr = d.m.Systemd.Manager(ctx, d.user)
		cancel()
		d.manager = probe.SystemdVersion(d.managerVersion)
		if d.managerErr == nil && d.manager == 0 {
			d.manager = -1 // answered, version unknown
		}
	} else {
		d.managerErr = errors.New("no systemd manager can be asked here")
	}
	switch {
	case !d.unified():
		d.backend = box.KindNone
	case d.managerErr == nil:
		d.backend = box.KindSystemd
	default:
		writable := d.m.Writable
		if writable == nil {
			writable = func(string) error { return errors.New("cannot tell whether it may be written") }
		}
		parent, err := box.ProbeCgroupfs(d.m.FS, d.mount.Path, d.ownCgroup(), d.m.Getenv(box.ParentEnv), writable)
		if err != nil {
			d.backend, d.cgroupfsErr = box.KindNone, err
			return
		}
		d.backend, d.cgroupfsParent = box.KindCgroupfs, parent
	}
}

func (d *checker) managerName() string {
	if d.user {
		return "systemd user manager"
	}
	return "systemd system manager"
}

// checkVersions names what boxrun runs on: the kernel release and the
// version of the systemd manager that answered.
func (d *checker) checkVersions() Check {
	kernel := "Linux " + d.m.Kernel
	if d.m.Kernel == "" {
		kernel = "kernel release unknown"
	}
	manager := "no systemd manager answered"
	switch {
	case d.managerErr == nil && d.managerVersion != "":
		manager = fmt.Sprintf("systemd %s (%s)", d.managerVersion, strings.TrimPrefix(d.managerName(), "systemd "))
	case d.managerErr == nil:
		manager = fmt.Sprintf("%s version unknown", d.managerName())
	}
	return Check{ID: "versions", Status: CheckOK, Summary: "versions: " + kernel + ", " + manager}
}

// checkScopeOOMPolicy: whether the manager that makes the boxes can set
// OOMPolicy on a scope, judged by its version; shown with the systemd
// backend only. The run tries it and falls back (with a warning) whatever
// doctor says, so it is never worse than !.
func (d *checker) checkScopeOOMPolicy() (Check, bool) {
	if d.backend != box.KindSystemd {
		return Check{}, false
	}
	f := probe.ScopeOOMPolicy
	c := Check{ID: "scope_oompolicy", Status: CheckOK}
	r := probe.SystemdHas(d.managerVersion, f)
	switch {
	case r.Supported:
		c.Summary = fmt.Sprintf("%s on a scope: systemd %s has it (%s+), so an OOM kill in a box leaves the rest of the run going", f, d.managerVersion, f.Systemd())
	case r.Known:
		c.Status = CheckWarn
		c.Summary = fmt.Sprintf("%s on a scope: systemd %s predates it (%s+) unless its distribution backported it; without it %s", f, d.managerVersion, f.Systemd(), f.Without())
		c.Fix = fmt.Sprintf("upgrade systemd to %s or later; a run says so when the manager refuses it", f.Systemd())
	default:
		c.Summary = fmt.Sprintf("%s on a scope: systemd version unknown; a run tries it (%s+) and says so when the manager refuses it", f, f.Systemd())
	}
	return c, true
}

func (d *checker) checkSystemd() Check {
	c := Check{ID: "systemd"}
	if d.managerErr == nil {
		c.Status = CheckOK
		c.Summary = d.managerName() + " reachable"
		if d.manager > 0 {
			c.Summary += fmt.Sprintf(" (systemd %d)", d.manager)
		}
		if d.user {
			c.Summary += " through its private socket " + managerSocketPath(d.m.Getenv, d.m.UID)
		}
		return c
	}
	c.Status = CheckFail
	if d.backend == box.KindCgroupfs {
		c.Status = CheckWarn
	}
	c.Summary = fmt.Sprintf("%s not reachable: %v", d.managerName(), d.managerErr)
	switch {
	case d.backend == box.KindCgroupfs:
		c.Fix = "nothing needed: boxes are made directly in cgroup v2 (cgroupfs backend)"
	case d.user && d.m.Getenv("XDG_RUNTIME_DIR") == "":
		c.Fix = fmt.Sprintf("XDG_RUNTIME_DIR is not set: log in through a session (ssh, a desktop) or export XDG_RUNTIME_DIR=/run/user/%d; with no session at all: sudo loginctl enable-linger $USER", d.m.UID)
	case !d.unified() && d.user:
		// A delegated cgroup cannot help without cgroup v2: no mention of
		// BOXRUN_CGROUP_PARENT.
		c.Fix = "start your user manager: log in through a session, or sudo loginctl enable-linger $USER (boxes also need the unified cgroup v2 hierarchy: see the cgroup2 line)"
	case !d.unified():
		c.Fix = "boot with systemd as init (boxes also need the unified cgroup v2 hierarchy: see the cgroup2 line)"
	case d.user:
		c.Fix = "start your user manager: log in through a session, or sudo loginctl enable-linger $USER; or set " + box.ParentEnv + " to a delegated cgroup for the cgroupfs backend"
	default:
		c.Fix = "boot with systemd as init, or set " + box.ParentEnv + " to a writable cgroup v2 directory for the cgroupfs backend"
	}
	return c
}

// managerSocketPath is the user manager's private socket for uid.
func managerSocketPath(getenv func(string) string, uid int) string {
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = "/run/user/" + strconv.Itoa(uid)
	}
	return path.Join(dir, "systemd", "private")
}

func (d *checker) checkBackend() Check {
	c := Check{ID: "backend"}
	name := d.opt.Policy.Name
	switch d.backend {
	case box.KindSystemd:
		c.Status = CheckOK
		c.Summary = "boxes are transient scopes in " + box.SliceName + " of the " + d.managerName() + " (--backend auto picks systemd)"
	case box.KindCgroupfs:
		c.Status = CheckOK
		c.Summary = fmt.Sprintf("boxes are cgroups under %s, made directly (--backend auto picks cgroupfs)", d.cgroupfsParent)
	default:
		c.Status = CheckFail
		c.Summary = fmt.Sprintf("no box can be made here (--backend auto falls back to none): the limits of policy %q are not enforced, only its oom_score_adj (and pids.max as RLIMIT_NPROC)", name)
		var busy *box.BusyCgroupError
		switch {
		case !d.unified():
			c.Fix = "switch to the unified cgroup v2 hierarchy (see the cgroup2 line)"
		case errors.As(d.cgroupfsErr, &busy):
			c.Summary += ": " + busy.Reason()
			c.Fix = busy.Fix()
		default:
			c.Fix = fmt.Sprintf("make the %s reachable, or set %s to a cgroup v2 directory delegated to you (its cgroup.subtree_control writable, holding no processes)", d.managerName(), box.ParentEnv)
		}
	}
	return c
}

// userManagerCgroup is the cgroup of user@UID.service (see the function
// of that name).
func (d *checker) userManagerCgroup() string {
	return systemd.UserManagerCgroup(d.ownCgroup(), d.m.UID)
}

// delegateFix delegates every controller to user managers.
const delegateFix = "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log out and in again"

// checkControllers: the controllers boxes can use. Not shown without a
// backend (the backend line already failed).
func (d *checker) checkControllers() (Check, bool) {
	c := Check{ID: "controllers"}
	var file, where string
	switch {
	case d.backend == box.KindSystemd && d.user:
		cg := d.userManagerCgroup()
		file, where = cgroupfs.FSPath(d.mount.Path, cg, "cgroup.subtree_control"), "delegated to your user manager ("+strings.TrimPrefix(cg, "/")+")"
	case d.backend == box.KindSystemd:
		file, where = cgroupfs.FSPath(d.mount.Path, "cgroup.controllers"), "available to the system manager"
	case d.backend == box.KindCgroupfs:
		file, where = cgroupfs.FSPath(d.mount.Path, d.cgroupfsParent, "cgroup.controllers"), "available under "+d.cgroupfsParent
	default:
		return c, false
	}
	data, err := fs.ReadFile(d.m.FS, file)
	have := cgroupfs.ParseControllers(string(data))
	need := box.NeededControllers(d.opt.Policy)
	var missing, missingOpt []string
	for _, ctl := range []string{"memory", "pids", "cpu", "io"} {
		if slices.Contains(have, ctl) {
			continue
		}
		if slices.Contains(need, ctl) {
			missing = append(missing, ctl)
		} else {
			missingOpt = append(missingOpt, ctl)
		}
	}
	c.Summary = fmt.Sprintf("controllers %s: %s", where, orNoneText(strings.Join(have, " ")))
	if err != nil {
		c.Summary = fmt.Sprintf("controllers %s: cannot read /%s: %v", where, file, err)
	}
	fix := "enable them in the parent's cgroup.subtree_control (echo +memory +pids +cpu +io > …/cgroup.subtree_control)"
	if d.backend == box.KindSystemd && d.user {
		fix = delegateFix
	}
	switch {
	case len(missing) > 0:
		c.Status = CheckFail
		c.Summary += fmt.Sprintf(" — missing %s, which policy %q needs", strings.Join(missing, ", "), d.opt.Policy.Name)
		c.Fix = fix
	case len(missingOpt) > 0:
		c.Status = CheckWarn
		c.Summary += fmt.Sprintf(" — no %s: policies that set %s are not enforced", strings.Join(missingOpt, ", "), optKeys(missingOpt))
		c.Fix = fix
	default:
		c.Status = CheckOK
	}
	return c, true
}

// optKeys names the policy keys of controllers.
func optKeys(ctls []string) string {
	var keys []string
	for _, c := range ctls {
		switch c {
		case "memory":
			keys = append(keys, "memory.*")
		case "pids":
			keys = append(keys, "pids.max")
		case "cpu":
			keys = append(keys, "cpu.weight or cpu.max")
		case "io":
			keys = append(keys, "io.weight")
		}
	}
	return strings.Join(keys, ", ")
}

func (d *checker) checkContainer() Check {
	c := Check{ID: "container"}
	lookPath := d.m.LookPath
	if lookPath == nil {
		lookPath = func(string) (string, error) { return "", fs.ErrNotExist }
	}
	ct := container.Detect(d.m.FS, d.m.Getenv, lookPath)
	if ct.Kind == "" {
		c.Status, c.Summary = CheckOK, "not inside a container"
		return c
	}
	ok, summary, fix := crossingSummary(ct, d.backend)
	c.Status, c.Summary, c.Fix = CheckWarn, summary+"; the host's editor is out of reach of protect", fix
	if !ok {
		c.Fix = fix
		// The container has a cgroup namespace; its root is what stands in
		// the way (see the backend line).
		if busy := (*box.BusyCgroupError)(nil); errors.As(d.cgroupfsErr, &busy) {
			c.Fix = busy.Fix()
		}
	}
	return c
}

// crossingSummary says which way boxes are made from inside
// a container and what it costs.
func crossingSummary(c container.Container, backend string) (ok bool, summary, fix string) {
	if backend != box.KindNone && backend != "" {
		return true, fmt.Sprintf("inside %s: boxes are made here (%s backend), no crossing to the host", c, backend), ""
	}
	if c.Crossing != nil {
		return true, fmt.Sprintf("inside %s with no box possible here: each run crosses once to the host's boxrun through %s (about %s per run, never per child process); the command must exist on the host",
			c, strings.Join(c.Crossing, " "), container.CrossingCost), ""
	}
	return false, fmt.Sprintf("inside %s: no box can be made here and no tool crosses to the host (distrobox-host-exec, host-spawn, flatpak-spawn --host)", c),
		"run boxrun on the host, or give the container a delegated cgroup v2 namespace (podman/docker run --cgroupns=private on a cgroup v2 host)"
}

// checkGroup: the group's processes and the protection they actually get.
func (d *checker) checkGroup(g protect.Group) Check {
	c := Check{ID: "protect:" + g.Name}
	procFS, matches, err := d.groupProcesses(g)
	if err != nil {
		c.Status, c.Summary = CheckWarn, "cannot read /proc: "+err.Error()
		return c
	}
	if len(matches) == 0 {
		c.Status = CheckOK
		c.Summary = fmt.Sprintf("%s: no process of yours is running (%s)", g.Name, strings.Join(g.Match, ", "))
		return c
	}
	cgroups, byCgroup := groupByCgroup(matches)
	d.editorCgroups = append(d.editorCgroups, cgroups...)
	c.Status = CheckOK
	var fixes []string
	highOOM := false
	for _, cg := range cgroups {
		line, high := oomLine(procFS, g, cg, byCgroup[cg])
		highOOM = highOOM || high
		if g.MemoryLow != nil {
			low, short, lowFixes := d.lowLine(g, cg)
			line += low
			if short {
				c.Status = CheckWarn
				fixes = append(fixes, lowFixes...)
			}
		}
		c.Details = append(c.Details, line)
	}
	c.Summary = fmt.Sprintf("%s: %d processes running", g.Name, len(matches))
	if highOOM {
		c.Status = CheckWarn
		c.Summary += "; oom_score_adj not lowered"
		fixes = append([]string{"boxrun protect " + g.Name + " (or keep them protected: boxrun install user-unit)"}, fixes...)
	}
	if c.Status == CheckWarn {
		c.Summary += "; not fully protected"
		c.Fix = strings.Join(dedupe(fixes), "; ")
	}
	return c
}

// groupProcesses reads /proc and returns it with the processes of g;
// the error says why /proc cannot be read.
func (d *checker) groupProcesses(g protect.Group) (fs.FS, []protect.Match, error) {
	procFS, err := fs.Sub(d.m.FS, "proc")
	if err != nil {
		return nil, nil, err
	}
	var readlink func(string) (string, error)
	if d.m.Readlink != nil {
		readlink = func(name string) (string, error) { return d.m.Readlink("proc/" + name) }
	}
	procs, err := protect.ReadProcs(procFS, readlink)
	if err != nil {
		return nil, nil, err
	}
	return procFS, protect.MatchProcesses(procs, []protect.Group{g}, protect.MatchOptions{UID: d.m.UID, Others: d.opt.Others}), nil
}

// groupByCgroup returns the cgroups of matches, sorted, and the matches
// in each.
func groupByCgroup(matches []protect.Match) ([]string, map[string][]protect.Match) {
	byCgroup := map[string][]protect.Match{}
	var cgroups []string
	for _, m := range matches {
		if _, ok := byCgroup[m.Cgroup]; !ok {
			cgroups = append(cgroups, m.Cgroup)
		}
		byCgroup[m.Cgroup] = append(byCgroup[m.Cgroup], m)
	}
	sort.Strings(cgroups)
	return cgroups, byCgroup
}

// oomLine describes the processes ms of g in cgroup cg: how many, their
// names, where, and the range of their oom_score_adj. high is true when
// one is above the group's oom_score_adj and above 100: not lowered.
func oomLine(procFS fs.FS, g protect.Group, cg string, ms []protect.Match) (line string, high bool) {
	names := map[string]bool{}
	lo, hi := 1001, -1001
	for _, m := range ms {
		names[m.Comm] = true
		if v, err := procfs.ReadOOMScoreAdjFS(procFS, m.PID); err == nil {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	nl := slices.Sorted(maps.Keys(names))
	where := cg
	if u, _, _ := systemd.UnitOwner(cg); u != "" {
		where = u
	}
	line = fmt.Sprintf("%d processes (%s) in %s", len(ms), strings.Join(nl, ", "), where)
	if hi < lo {
		return line, false
	}
	if lo == hi {
		line += fmt.Sprintf(": oom_score_adj %d", lo)
	} else {
		line += fmt.Sprintf(": oom_score_adj %d..%d", lo, hi)
	}
	return line, g.OOMScoreAdj != nil && hi > *g.OOMScoreAdj && hi > 100
}

// lowLine describes the memory.low protection of cgroup cg against the
// group's: its own, the effective and the wanted one. short is true when
// the effective is below the group's, and fixes then say what raises it.
// "" when it cannot be read.
func (d *checker) lowLine(g protect.Group, cg string) (line string, short bool, fixes []string) {
	p, err := protect.EffectiveProtection(d.m.FS, cg, *g.MemoryLow, nil, d.m.UID)
	if err != nil {
		return "", false, nil
	}
	own := uint64(0)
	if len(p.Levels) > 0 {
		own = p.Levels[len(p.Levels)-1].Low
	}
	line = fmt.Sprintf(", memory.low %s, effective %s of %s", protect.FormatLow(own), protect.FormatLow(p.Effective), protect.FormatLow(*g.MemoryLow))
	if p.Note != "" {
		line += " (" + p.Note + ")"
	}
	if p.Effective >= *g.MemoryLow {
		return line, false, nil
	}
	for _, f := range p.Fixes {
		fixes = append(fixes, f.Command)
	}
	return line, true, fixes
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// oomdSocket is where systemd-oomd listens when it runs.
const oomdSocket = "run/systemd/oom/io.systemd.ManagedOOM"

// checkOOMD: is systemd-oomd running, and would it pick the editor's
// cgroup (a descendant of a unit with ManagedOOMSwap= or
// ManagedOOMMemoryPressure=kill)?
func (d *checker) checkOOMD() Check {
	c := Check{ID: "systemd-oomd"}
	running := false
	how := ""
	if d.m.Systemd != nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.opt.Timeout)
		st, err := d.m.Systemd.UnitProperty(ctx, false, "systemd-oomd.service", "ActiveState")
		cancel()
		if err == nil && st == "active" {
			running, how = true, "systemd-oomd.service is active"
		}
	}
	if !running {
		if _, err := fs.Stat(d.m.FS, oomdSocket); err == nil {
			running, how = true, "its socket /"+oomdSocket+" exists"
		}
	}
	if !running {
		c.Status, c.Summary = CheckOK, "systemd-oomd is not running"
		return c
	}
	if len(d.editorCgroups) == 0 {
		c.Status, c.Summary = CheckOK, "systemd-oomd is running ("+how+"); no protected process to check"
		return c
	}
	var hits []string
	var fixes []string
	if d.m.Systemd != nil {
		seen := map[string]bool{}
		for _, cg := range d.editorCgroups {
			for _, lvl := range append([]string{"/-.slice"}, cgroupAncestors(cg)...) {
				unit, manager, _ := systemd.UnitOwner(lvl)
				if unit == "" || seen[unit] {
					continue
				}
				seen[unit] = true
				for _, prop := range []string{"ManagedOOMSwap", "ManagedOOMMemoryPressure"} {
					ctx, cancel := context.WithTimeout(d.ctx, d.opt.Timeout)
					v, err := d.m.Systemd.UnitProperty(ctx, manager == "user", unit, prop)
					cancel()
					if err == nil && v == "kill" {
						hits = append(hits, fmt.Sprintf("%s has %s=kill", unit, prop))
						if manager == "user" {
							fixes = append(fixes, fmt.Sprintf("systemctl --user set-property %s %s=auto", unit, prop))
						} else {
							fixes = append(fixes, fmt.Sprintf("sudo systemctl set-property %s %s=auto", unit, prop))
						}
					}
				}
			}
		}
	}
	if len(hits) == 0 {
		c.Status = CheckOK
		c.Summary = "systemd-oomd is running (" + how + "); no unit above the protected processes asks it to kill"
		return c
	}
	c.Status = CheckWarn
	c.Summary = "systemd-oomd is running and may kill the protected processes' whole cgroup under pressure (memory.low does not stop it): " + strings.Join(hits, "; ")
	c.Fix = "boxes are candidates too and usually under more pressure; to exempt the session: " + strings.Join(fixes, "; ")
	return c
}

// cgroupAncestors lists "/a", "/a/b", ... for "/a/b".
func cgroupAncestors(cg string) []string {
	var out []string
	cur := ""
	for _, c := range strings.Split(strings.Trim(cg, "/"), "/") {
		if c == "" {
			continue
		}
		cur += "/" + c
		out = append(out, cur)
	}
	return out
}
