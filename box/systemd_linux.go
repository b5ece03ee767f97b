package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
)

// SliceName is the slice every boxrun scope lives in.
const SliceName = "boxrun.slice"

// systemdBackend makes boxes as transient scopes of a systemd manager.
type systemdBackend struct {
	conn  *sd.Conn
	which string // "user" or "system", for messages
	sock  string // the manager's private socket
	user  bool   // the user manager, not the system manager
	mount string // cgroup2 mount point
	// noOOMPolicy is set once the manager has refused OOMPolicy on a scope.
	noOOMPolicy bool
	// managerVersion is the manager's Version as it said it, asked once
	// (versionAsked) and only when needed: see ManagerVersion.
	managerVersion string
	versionAsked   bool
}

// newSystemd connects to the user manager (user=true) or the system manager
// through its private socket, the way systemctl does, so that no D-Bus
// daemon is needed and none is ever launched.
func newSystemd(ctx context.Context, user bool) (Backend, error) {
	which := "system"
	if user {
		which = "user"
	}
	sock := systemd.Socket(user)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		hint := "is systemd running as init?"
		if user {
			hint = "is a systemd user manager running for you (loginctl enable-linger $USER, or log in through a session)? Is XDG_RUNTIME_DIR set?"
		}
		return nil, fmt.Errorf("%w: no systemd %s manager socket at %s (%s)", ErrUnavailable, which, sock, hint)
	}
	mount, err := cgroupfs.MountPoint()
	if err != nil || mount == "" {
		return nil, fmt.Errorf("%w: systemd %s manager found, but no cgroup v2 hierarchy is mounted", ErrUnavailable, which)
	}
	if err := requireUnified(mount); err != nil {
		return nil, err
	}
	conn, err := systemd.Dial(ctx, which, sock)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, systemd.Trim(err))
	}
	return &systemdBackend{conn: conn, which: which, sock: sock, user: user, mount: mount}, nil
}

// manager returns a live connection to the manager. When the connection
// was lost during the run (the manager re-executed itself on an upgrade,
// or the user manager restarted), it dials again, once per call, and says
// so through warn.
func (b *systemdBackend) manager(ctx context.Context, warn func(string)) (*sd.Conn, error) {
	if b.conn.Connected() {
		return b.conn, nil
	}
	conn, err := systemd.Dial(ctx, b.which, b.sock)
	if err != nil {
		return nil, fmt.Errorf("the connection to the systemd %s manager was lost during the run and could not be made again: %v", b.which, systemd.Trim(err))
	}
	b.conn.Close() // the lost connection: nothing to flush
	b.conn = conn
	if warn != nil {
		warn(fmt.Sprintf("the connection to the systemd %s manager was lost during the run (it restarted or re-executed itself); boxrun connected again to remove the box", b.which))
	}
	return conn, nil
}

// ManagerVersion is the manager's version as its Version property says
// it ("252.39-1~deb12u1"), "" when it did not say. It is asked once, when
// first needed — by the run's report once the command has exited, or by a
// message before — never on the way to starting the command.
func (b *systemdBackend) ManagerVersion() string {
	if !b.versionAsked {
		b.versionAsked = true
		if v, err := b.conn.GetManagerProperty("Version"); err == nil && probe.SystemdVersion(v) > 0 {
			b.managerVersion = strings.Trim(v, `"`)
		}
	}
	return b.managerVersion
}

// version is the manager's version for messages.
func (b *systemdBackend) version() string {
	if v := b.ManagerVersion(); v != "" {
		return v
	}
	return "(version unknown)"
}

// call runs an idempotent request f on a live connection. A connection
// can look alive until a request finds it reset (the manager re-executed
// and dropped it), so f is tried once more on a new connection when it
// fails that way rather than with the manager's answer.
func (b *systemdBackend) call(ctx context.Context, warn func(string), f func(*sd.Conn) error) error {
	conn, err := b.manager(ctx, warn)
	if err != nil {
		return err
	}
	err = f(conn)
	var answer godbus.Error
	if err == nil || errors.As(err, &answer) || conn.Connected() {
		return err
	}
	if conn, err = b.manager(ctx, warn); err != nil {
		return err
	}
	return f(conn)
}

func (b *systemdBackend) Name() string { return KindSystemd }

func (b *systemdBackend) Close() error {
	b.conn.Close() // nothing to flush: every call waited for its answer
	return nil
}

// unitName builds "boxrun-<policy>-<id>.scope", escaping what a unit name
// may not contain.
func unitName(policyName, id string) string {
	var s strings.Builder
	for _, r := range policyName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			s.WriteRune(r)
		default:
			s.WriteByte('_')
		}
	}
	return "boxrun-" + s.String() + "-" + id + ".scope"
}

func (b *systemdBackend) Create(ctx context.Context, req Request) (Box, error) {
	return &systemdBox{b: b, req: req, unit: unitName(req.Policy.Name, req.ID)}, nil
}

// scopeProperties maps a resolved policy onto transient scope properties.
// oomPolicy says whether to send OOMPolicy, which older managers do not
// know for scopes (an unknown property fails the whole StartTransientUnit).
func scopeProperties(p *policy.Resolved, oomPolicy bool, desc string, pid int) []sd.Property {
	props := []sd.Property{
		sd.PropDescription(desc),
		sd.PropSlice(SliceName),
		sd.PropPids(uint32(pid)),
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
		// The subtree is boxrun's: backpressure keeps the processes it
		// paused in a frozen child cgroup (see observe).
		{Name: "Delegate", Value: godbus.MakeVariant(true)},
		{Name: "MemoryAccounting", Value: godbus.MakeVariant(true)},
		{Name: "TasksAccounting", Value: godbus.MakeVariant(true)},
		{Name: "CPUAccounting", Value: godbus.MakeVariant(true)},
	}
	// Every limit of the policy's table that a scope carries, in the
	// table's order; io.weight also needs IOAccounting.
	for _, l := range p.Settings() {
		if _, ok := l.SystemdValue(); ok && l.SystemdProperty == "IOWeight" {
			props = append(props, sd.Property{Name: "IOAccounting", Value: godbus.MakeVariant(true)})
		}
		props = appendLimit(props, l)
	}
	// OOMPolicy is "continue" whatever memory.oom_group says: the manager
	// must not act on an OOM kill in the box. The scope's default, "stop"
	// (DefaultOOMPolicy), would SIGTERM all of `cargo test` when one test
	// binary is OOM-killed. "kill" is no way to get memory.oom_group
	// either: besides setting memory.oom.group, a manager that knows
	// OOMPolicy on scopes (252.5 to 256 at least; see probe) stops the
	// scope on its first OOM kill, which for a scope means SIGTERM to every
	// process still in it, sent while the kernel is SIGKILLing the group
	// one process after the other. A process the SIGTERM reaches first
	// dies of SIGTERM: the command was reported "killed by SIGTERM" (143)
	// where the kernel's OOM kill took the box. Place writes
	// memory.oom.group itself, so the kernel alone kills the box.
	if oomPolicy {
		props = append(props, sd.Property{Name: "OOMPolicy", Value: godbus.MakeVariant("continue")})
	}
	return props
}

// appendLimit appends to props the property of l when l sets one.
func appendLimit(props []sd.Property, l policy.Setting) []sd.Property {
	if v, ok := l.SystemdValue(); ok {
		props = append(props, sd.Property{Name: l.SystemdProperty, Value: godbus.MakeVariant(v)})
	}
	return props
}

// oomPolicyWarning is what a run says when the manager (systemd version)
// refused OOMPolicy on its scope.
func oomPolicyWarning(version string) string {
	f := probe.ScopeOOMPolicy
	return fmt.Sprintf("systemd %s cannot set %s on a scope: one OOM kill in the box will make systemd stop the whole run (upgrade to %s or later, or set memory.oom_group = true to say so explicitly)", version, f, f.Requires())
}

// sliceProperties maps the shared budget onto the slice's properties:
// accounting, and each limit of the budget that is set.
func sliceProperties(s *policy.ResolvedSlice) []sd.Property {
	props := []sd.Property{
		{Name: "MemoryAccounting", Value: godbus.MakeVariant(true)},
		{Name: "TasksAccounting", Value: godbus.MakeVariant(true)},
	}
	for _, l := range s.Settings() {
		props = appendLimit(props, l)
	}
	return props
}

// systemdBox is one transient scope.
type systemdBox struct {
	b      *systemdBackend
	req    Request
	unit   string
	cg     cgroupDir
	placed bool
	// warnings are reported with the limit checks.
	warnings []string
	// sliceErr is why the slice's limits could not be set, if so.
	sliceErr error
}

// setSlice applies the shared budget to the slice that holds every box.
// Every run sets it again (runtime only, nothing is written to disk), so
// the newest policy files win and a manager restart loses nothing that
// matters.
func (b *systemdBackend) setSlice(ctx context.Context, s *policy.ResolvedSlice) error {
	if err := b.conn.SetUnitPropertiesContext(ctx, SliceName, true, sliceProperties(s)...); err != nil {
		return fmt.Errorf("setting the limits of %s: %w", SliceName, systemd.ExplainError(err))
	}
	return nil
}

func (x *systemdBox) Unit() string { return x.unit }

func (x *systemdBox) Dir() string {
	if !x.placed {
		return ""
	}
	return x.cg.dir()
}

func (x *systemdBox) Cgroup() string { return x.cg.rel }

// Place starts the scope with pid as its first process and waits for the
// job to finish.
func (x *systemdBox) Place(ctx context.Context, pid int) error {
	err := x.b.startScope(ctx, x.unit, scopeProperties(x.req.Policy, !x.b.noOOMPolicy, x.req.Description, pid))
	if err != nil && !x.b.noOOMPolicy && errors.Is(probe.Refused(probe.ScopeOOMPolicy, err), probe.ErrNotSupported) {
		// An older manager: start without it, and say what that costs.
		x.b.noOOMPolicy = true
		err = x.b.startScope(ctx, x.unit, scopeProperties(x.req.Policy, false, x.req.Description, pid))
		if err == nil && !x.req.Policy.MemoryOOMGroup {
			x.warnings = append(x.warnings, oomPolicyWarning(x.b.version()))
		}
	}
	if err != nil {
		return err
	}
	x.placed = true
	defer tracePhase(ctx, "place")
	// The job is done, so the kernel has the helper in the scope's cgroup:
	// its /proc entry says where, without another round trip to the
	// manager. The manager's ControlGroup property is the fallback.
	cg, err := cgroupfs.PidCgroup(pid)
	if err != nil || !strings.HasSuffix(cg, "/"+x.unit) {
		prop, perr := x.b.conn.GetUnitTypePropertyContext(ctx, x.unit, "Scope", "ControlGroup")
		if perr != nil {
			return fmt.Errorf("finding the cgroup of scope %s: %w", x.unit, perr)
		}
		if cg, _ = prop.Value.Value().(string); cg == "" {
			return fmt.Errorf("finding the cgroup of scope %s: the manager reports none", x.unit)
		}
	}
	x.cg = cgroupDir{mount: x.b.mount, rel: cg}
	slice := cgroupDir{mount: x.b.mount, rel: filepath.Dir(cg)}
	x.req.Slice = sliceToApply(slice, filepath.Base(cg), x.req.Slice, x.req.Warn)
	if !x.req.Slice.Empty() && !sliceHolds(slice, x.req.Slice) {
		if err := x.b.setSlice(ctx, x.req.Slice); err != nil {
			x.sliceErr = err
		}
	}
	// memory.oom.group is ours to write, never OOMPolicy=kill's (see
	// scopeProperties); the scope's cgroup belongs to the manager's user.
	// The command is still held by the helper: nothing in the box can
	// allocate before the file says 1.
	if x.req.Policy.MemoryOOMGroup {
		if err := os.WriteFile(x.cg.file("memory.oom.group"), []byte("1"), 0); err != nil {
			return fmt.Errorf("setting memory.oom.group on %s: %w", x.cg.dir(), err)
		}
	}
	return nil
}

// startScope starts a transient scope and waits for its job.
func (b *systemdBackend) startScope(ctx context.Context, unit string, props []sd.Property) error {
	wait := b.startJob(ctx, unit, props)
	tracePhase(ctx, "StartTransientUnit")
	defer tracePhase(ctx, "job")
	return wait()
}

// startJob asks the manager to start a transient scope and returns at
// once; wait waits for the job, with a timeout, and says how it ended.
func (b *systemdBackend) startJob(ctx context.Context, unit string, props []sd.Property) (wait func() error) {
	ch := make(chan string, 1) // buffered: go-systemd sends while holding a lock
	if _, err := b.conn.StartTransientUnitContext(ctx, unit, "fail", props, ch); err != nil {
		return func() error { return fmt.Errorf("starting scope %s: %w", unit, systemd.ExplainError(err)) }
	}
	return func() error {
		select {
		case res := <-ch:
			if res != "done" {
				_ = b.conn.ResetFailedUnitContext(ctx, unit) // the job's result is the error to report
				return fmt.Errorf("starting scope %s: job %s (see: journalctl %s-u %s)", unit, res, b.journalFlag(), unit)
			}
			return nil
		case <-time.After(systemd.JobTimeout):
			return fmt.Errorf("starting scope %s: no answer from systemd within %v", unit, systemd.JobTimeout)
		case <-ctx.Done():
			return fmt.Errorf("starting scope %s: %w", unit, ctx.Err())
		}
	}
}

// guardBirthplace: the guard of a scope starts where boxrun is, and its
// own scope is made for it (adoptGuard).
func (x *systemdBox) guardBirthplace() (cgroupDir, error) { return cgroupDir{}, nil }

// adoptGuard starts the guard's own scope in boxrun.slice, beside the box,
// with pid, the guard, as its process. The scope has no limits: the guard
// waits on a pipe. It goes when the guard exits (CollectMode).
func (x *systemdBox) adoptGuard(ctx context.Context, pid int) func() error {
	return x.b.startJob(ctx, guardName(x.unit), []sd.Property{
		sd.PropDescription("boxrun: the guard of " + x.unit),
		sd.PropSlice(SliceName),
		sd.PropPids(uint32(pid)),
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
	})
}

func (b *systemdBackend) journalFlag() string {
	if b.user {
		return "--user "
	}
	return ""
}

func (x *systemdBox) Check(ctx context.Context) []LimitCheck {
	hint := func(ctrl string) string {
		if !x.b.user {
			return ""
		}
		return fmt.Sprintf("the user manager has no %s controller delegated; to delegate it: "+
			"sudo mkdir -p /etc/systemd/system/user@.service.d && "+
			"printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && "+
			"sudo systemctl daemon-reload, then log out and in again", ctrl)
	}
	checks := x.cg.check(x.req.Policy.Settings(), hint)
	if !x.req.Slice.Empty() {
		checks = append(checks, sliceChecks(cgroupDir{mount: x.cg.mount, rel: filepath.Dir(x.cg.rel)}, x.req.Slice, x.sliceErr, hint)...)
	}
	for _, w := range x.warnings {
		checks = append(checks, LimitCheck{Key: "memory.oom_group", File: "memory.oom.group", Want: "OOMPolicy=continue", Problem: w})
	}
	return checks
}

func (x *systemdBox) Procs() ([]int, error) {
	if !x.placed {
		return nil, nil
	}
	return x.cg.procs()
}

func (x *systemdBox) Signal(ctx context.Context, sig syscall.Signal) error {
	if !x.placed {
		return nil
	}
	return x.cg.signal(sig)
}

func (x *systemdBox) Kill(ctx context.Context) error {
	if !x.placed {
		return nil
	}
	if err := x.cg.kill(ctx); err != nil {
		// Ask the manager, which may hold rights we lack.
		if kerr := x.b.call(ctx, x.req.Warn, func(c *sd.Conn) error {
			return c.KillUnitWithTarget(ctx, x.unit, sd.All, int32(syscall.SIGKILL))
		}); kerr != nil {
			return fmt.Errorf("%w; KillUnit: %v", err, kerr)
		}
		if !x.cg.waitEmpty(ctx, 5*time.Second) {
			return err
		}
	}
	return nil
}

// Destroy kills what is left and stops the scope, so that no boxrun-*.scope
// stays behind.
func (x *systemdBox) Destroy(ctx context.Context) error {
	if !x.placed {
		return nil
	}
	var errs []error
	if pop, _ := x.cg.populated(); pop {
		if err := x.Kill(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(x.cg.dir()); errors.Is(err, os.ErrNotExist) && len(errs) == 0 {
		// systemd has stopped the emptied scope already and, with
		// CollectMode=inactive-or-failed, forgets it: no round trip left.
		return nil
	}
	ch := make(chan string, 1)
	err := x.b.call(ctx, x.req.Warn, func(c *sd.Conn) error {
		_, err := c.StopUnitContext(ctx, x.unit, "replace", ch)
		return err
	})
	switch {
	case err != nil && systemd.IsNoSuchUnit(err):
	case err != nil && !x.b.conn.Connected():
		// Without the manager: an empty scope is stopped and collected by
		// systemd itself; only a scope that still holds processes stays.
		if pop, perr := x.cg.populated(); perr == nil && !pop {
			if x.req.Warn != nil {
				x.req.Warn(fmt.Sprintf("%v; scope %s is empty, so systemd removes it by itself", err, x.unit))
			}
			return errors.Join(errs...)
		}
		return errors.Join(append(errs, fmt.Errorf("%v; scope %s is left (boxrun gc removes it)", err, x.unit))...)
	case err != nil:
		errs = append(errs, fmt.Errorf("stopping scope %s: %w", x.unit, err))
	default:
		select {
		case <-ch:
		case <-time.After(systemd.JobTimeout):
			errs = append(errs, fmt.Errorf("stopping scope %s: no answer from systemd within %v", x.unit, systemd.JobTimeout))
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	if err := x.b.call(ctx, x.req.Warn, func(c *sd.Conn) error { return c.ResetFailedUnitContext(ctx, x.unit) }); err != nil && !systemd.IsNoSuchUnit(err) && !isNotFailed(err) {
		errs = append(errs, fmt.Errorf("resetting scope %s: %w", x.unit, err))
	}
	return errors.Join(errs...)
}

func isNotFailed(err error) bool {
	var de godbus.Error
	// ResetFailedUnit of a unit that is not failed is not an error in
	// current systemd, but older ones say so.
	return errors.As(err, &de) && strings.Contains(de.Name, "NotFailed")
}
