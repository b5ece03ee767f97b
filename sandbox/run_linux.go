package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/policy"
)

// Environment variables boxrun sets for the command, so that tools (and a
// nested boxrun) can tell they run in a box.
const (
	EnvUnit   = "BOXRUN_UNIT"
	EnvCgroup = "BOXRUN_CGROUP"
	EnvPolicy = "BOXRUN_POLICY"
)

// Options configure one Run.
type Options struct {
	// Backend makes the box.
	Backend Backend
	// Policy holds the limits.
	Policy *policy.Resolved
	// Args is the command and its arguments.
	Args []string
	// Env is the command's environment; nil means boxrun's own.
	Env []string
	// Stdin, Stdout and Stderr are passed to the command as they are.
	Stdin, Stdout, Stderr *os.File
	// Strict refuses to run when a limit of the policy is not in force.
	Strict bool
	// ID names the box; empty picks a random one.
	ID string
	// Warn receives boxrun's warnings, one line each, without prefix.
	Warn func(string)
	// OwnerDir is where the run records that this boxrun owns the box
	// (see DefaultOwnerDir), for status and gc; "" records nothing.
	OwnerDir string
	// PostMortem is a file the caller keeps for the run's guard: if
	// boxrun dies before it finishes with the box, the guard hands it,
	// with what it saw, to the report function given to RunGuard (see
	// PostMortem). "" asks for none.
	PostMortem string
	// Slice holds the limits of the slice all boxes share; nil sets none.
	Slice *policy.ResolvedSlice
	// Checked, when set, receives the limits read back from the kernel
	// before the command starts, so the caller can warn about any that are
	// not in force.
	Checked func(checks []LimitCheck)
	// Observers watch the box while the command runs.
	Observers []Observer
	// Executable is the boxrun binary to re-execute as the helper; empty
	// means /proc/self/exe.
	Executable string
}

// Proc describes a process found in the box.
type Proc struct {
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Cmdline string `json:"cmdline"`
}

// Result is what happened in one run.
type Result struct {
	// ExitCode is the command's status in shell terms: its exit code, or
	// 128+N when it died by signal N.
	ExitCode int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
	// Interrupted is the first signal boxrun itself received while the
	// command ran (and passed on to it), or 0.
	Interrupted syscall.Signal
	// Backend, Unit and Cgroup identify the box.
	Backend, Unit, Cgroup string
	// Checks are the limits read back before the command started.
	Checks []LimitCheck
	// Leftovers are processes still in the box when the command exited.
	Leftovers []Proc
	// LeftoversKilled is true when the leftovers were killed.
	LeftoversKilled bool
	// Start and End bound the command's life.
	Start, End time.Time
}

// StartError reports that the command never started. Code is the exit status
// boxrun should use: 125 for boxrun's own failures, 126 when the command is
// not executable, 127 when it does not exist.
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

func startErr(code int, format string, a ...any) error {
	return &StartError{Code: code, Err: fmt.Errorf(format, a...)}
}

// NewID returns a short random id for a box name.
func NewID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff)
	}
	return hex.EncodeToString(b[:])
}

// ResolveCommand finds argv[0] the way a shell would (PATH lookup unless it
// contains a slash) and reports 127/126 errors before any box is made.
func ResolveCommand(argv0 string, env []string) (string, error) {
	if argv0 == "" {
		return "", startErr(125, `the command name is empty ("") (usage: boxrun [flags] -- COMMAND [ARGS...])`)
	}
	name := printable(argv0)
	path := argv0
	if !strings.Contains(argv0, "/") {
		p, err := lookPath(argv0, env)
		if err != nil {
			return "", err
		}
		path = p
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", startErr(127, "%s: no such file or directory", name)
	case err != nil:
		return "", startErr(126, "%s: %v", name, errors.Unwrap(err))
	case fi.IsDir():
		return "", startErr(126, "%s: is a directory", name)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return "", startErr(126, "%s: permission denied (not executable)", name)
	}
	return path, nil
}

// lookPath searches the PATH of env for an executable file.
func lookPath(name string, env []string) (string, error) {
	pathVar := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	var denied string
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return "", startErr(126, "%s: permission denied (not executable)", printable(denied))
	}
	return "", startErr(127, "%s: command not found", printable(name))
}

// printable returns s as it is when it is plain UTF-8 text, else quoted, so
// that a command name cannot put control characters on the terminal.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strconv.Quote(s)
}

// Run runs the command in a new box and returns when the command has exited
// and the box is gone. An error of type *StartError means the command never
// ran.
func Run(ctx context.Context, o Options) (*Result, error) {
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	if len(o.Args) == 0 {
		return nil, startErr(125, "no command given (usage: boxrun [flags] -- COMMAND [ARGS...])")
	}
	path, err := ResolveCommand(o.Args[0], env)
	if err != nil {
		return nil, err
	}
	id := o.ID
	if id == "" {
		id = NewID()
	}
	res := &Result{Backend: o.Backend.Name()}
	box, err := o.Backend.Create(ctx, Request{Policy: o.Policy, ID: id, Description: describe(o.Policy.Name, o.Args), Slice: o.Slice, Warn: warn})
	if err != nil {
		return nil, startErr(125, "creating the box: %w", err)
	}
	// From here on the box must be destroyed on every path.
	destroy := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
		defer cancel()
		defer tracePhase(ctx, "teardown")
		if err := box.Destroy(dctx); err != nil {
			warn(fmt.Sprintf("removing the box: %v", err))
			return
		}
		if cg := box.Cgroup(); cg != "" {
			dropOwner(o.OwnerDir, cg)
		}
	}

	// From here the box must not outlive boxrun, however boxrun ends. The
	// guard starts first: its own cgroup is made while the box's is.
	grd := startGuardFor(ctx, o, box, warn)
	defer grd.release()

	var birth *os.File
	if b, ok := box.(interface{ birthplace() (*os.File, error) }); ok {
		birth, _ = b.birthplace() // without it, Place moves the helper
	}
	helper, release, status, err := startHelper(o, path, env, birth)
	if err != nil && birth != nil {
		// A kernel without CLONE_INTO_CGROUP (before 5.7): start it
		// outside and let Place move it.
		helper, release, status, err = startHelper(o, path, env, nil)
	}
	if birth != nil {
		birth.Close()
	}
	tracePhase(ctx, "helper")
	if err != nil {
		destroy()
		return nil, startErr(125, "starting the command: %w", err)
	}
	abort := func(e error) (*Result, error) {
		release.Close() // EOF without the magic: the helper exits at once
		status.Close()
		_ = helper.Wait()
		destroy()
		return nil, e
	}
	if err := box.Place(ctx, helper.Process.Pid); err != nil {
		return abort(startErr(125, "placing the command in its box: %w", err))
	}
	res.Unit, res.Cgroup = box.Unit(), box.Cgroup()
	if err := grd.settle(box.Dir()); err != nil {
		warn(fmt.Sprintf("the guard stays in boxrun's cgroup (the box would outlive a caller stopped as a whole): %v", err))
	}
	tracePhase(ctx, "guard")
	if res.Cgroup != "" {
		if err := writeOwner(o.OwnerDir, selfOwner(res.Cgroup, res.Unit)); err != nil {
			warn(fmt.Sprintf("%v (boxrun status will not know this box is ours)", err))
		}
	}
	res.Checks = box.Check(ctx)
	tracePhase(ctx, "readback")
	var failed []string
	for _, c := range res.Checks {
		if !c.OK() {
			failed = append(failed, c.String())
		}
	}
	if len(failed) > 0 && o.Strict {
		return abort(startErr(125, "--strict: %d limit(s) of policy %q not enforced here: %s", len(failed), o.Policy.Name, strings.Join(failed, "; ")))
	}

	if o.Checked != nil {
		o.Checked(res.Checks)
	}
	// Forward signals from now until the command is reaped.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	fwdDone := make(chan struct{})
	var interrupted atomic.Int32
	tty := openTerminal()
	defer tty.Close()
	where := func() groups { return tty.groups(helper.Process) }
	go forwardSignals(sigs, helper.Process, where, fwdDone, box, warn, &interrupted)
	defer close(fwdDone)

	msg := []byte(releaseMagic)
	for _, kv := range []string{EnvPolicy + "=" + o.Policy.Name, EnvUnit + "=" + res.Unit, EnvCgroup + "=" + res.Cgroup} {
		msg = append(append(msg, kv...), 0)
	}
	res.Start = time.Now()
	_, werr := release.Write(msg)
	release.Close()
	st, _ := io.ReadAll(status) // EOF: exec succeeded or failed
	status.Close()
	tracePhase(ctx, "exec")
	hs := parseHelperStatus(st)
	for _, w := range hs.warnings {
		warn(w)
	}
	if hs.execCode == 0 {
		for _, ob := range o.Observers {
			ob.Started(box.Dir(), helper.Process.Pid)
		}
	}
	waitErr := helper.Wait()
	res.End = time.Now()
	tracePhase(ctx, "command")
	if hs.execCode == 0 {
		for _, ob := range o.Observers {
			ob.Exited()
		}
	}
	if werr != nil && hs.execCode == 0 {
		destroy()
		return nil, startErr(125, "releasing the command: %w", werr)
	}
	if hs.execCode != 0 {
		destroy()
		return nil, startErr(hs.execCode, "%s", hs.execErr)
	}
	res.ExitCode, res.Signal = exitStatus(helper.ProcessState, waitErr)
	res.Interrupted = syscall.Signal(interrupted.Load())

	res.Leftovers, res.LeftoversKilled = handleLeftovers(ctx, box, o.Policy, warn)
	tracePhase(ctx, "leftovers")
	if len(res.Leftovers) == 0 || res.LeftoversKilled {
		destroy()
	} else if res.Cgroup != "" {
		rec := selfOwner(res.Cgroup, res.Unit)
		rec.Kept = true
		_ = writeOwner(o.OwnerDir, rec)
	}
	return res, nil
}

// startGuardFor starts the guard of box (see GuardArg), nil when the box
// has no cgroup or the guard could not start (warn says so).
func startGuardFor(ctx context.Context, o Options, box Box, warn func(string)) *guard {
	name := box.Unit()
	if name == "" {
		name = filepath.Base(box.Dir())
	}
	if name == "" || name == "." {
		return nil // the none backend
	}
	record := ""
	if o.OwnerDir != "" {
		record = filepath.Join(o.OwnerDir, name+".json")
	}
	grd, err := startGuard(ctx, o.Executable, box, record, o.PostMortem)
	if err != nil {
		warn(fmt.Sprintf("no guard for the box (it would outlive a killed boxrun): %v", err))
		return nil
	}
	return grd
}

// describe is the scope description: policy and command line, shortened.
func describe(policyName string, args []string) string {
	s := "boxrun " + policyName + ": " + strings.Join(args, " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// startHelper starts the helper blocked on its release pipe; with cgroup
// non-nil (an open cgroup directory), the helper is born in that cgroup.
func startHelper(o Options, path string, env []string, cgroup *os.File) (*exec.Cmd, *os.File, *os.File, error) {
	relR, relW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		relR.Close()
		relW.Close()
		return nil, nil, nil, err
	}
	exe := o.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	hc := helperConfig{oomScoreAdj: o.Policy.OOMScoreAdj, path: path, argv: o.Args}
	if o.Backend.Name() == KindNone && o.Policy.PidsMax != nil && *o.Policy.PidsMax != policy.Unlimited {
		// Without a cgroup, RLIMIT_NPROC is the closest thing to pids.max
		// (it counts all of the user's processes, not just the box's).
		hc.nproc = *o.Policy.PidsMax
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       append([]string{"boxrun"}, helperArgs(hc)...),
		Env:        env,
		Stdin:      o.Stdin,
		Stdout:     o.Stdout,
		Stderr:     o.Stderr,
		ExtraFiles: []*os.File{relR, stW},
	}
	if cgroup != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgroup.Fd())}
	}
	err = cmd.Start()
	relR.Close()
	stW.Close()
	if err != nil {
		relW.Close()
		stR.Close()
		return nil, nil, nil, err
	}
	return cmd, relW, stR, nil
}

// forwardSignals passes signals sent to boxrun on to the command. Those
// the terminal sent to its whole foreground group (Ctrl-C, Ctrl-\, a
// hang-up's SIGHUP) reached the command already, so they are not sent
// twice, and a hang-up's second SIGHUP is not counted again: see
// deliveryOf. where tells how things stand when a signal arrives.
//
// Insisting escalates, as with Ctrl-C pressed again: the second signal in a
// row goes to every process in the box (a test binary blocked on a child
// that kept running, a process that left the terminal's process group), and
// the third kills everything in the box at once. Signals further apart than
// insistWindow start over, so an interactive program under boxrun (a REPL,
// a debugger) can be interrupted any number of times.
func forwardSignals(sigs <-chan os.Signal, cmd *os.Process, where func() groups, done <-chan struct{}, box Box, warn func(string), first *atomic.Int32) {
	var ins insistence
	hangupSeen := false
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			sig := s.(syscall.Signal)
			d := deliveryOf(sig, where(), hangupSeen)
			if d == repeated {
				continue
			}
			if d == delivered && sig == syscall.SIGHUP {
				hangupSeen = true
			}
			first.CompareAndSwap(0, int32(sig))
			n := ins.next(time.Now())
			switch {
			case n == 2:
				warn(fmt.Sprintf("%s again: sending it to every process in the box (a third time kills them all)", signalName(sig)))
				_ = box.Signal(context.Background(), sig)
				continue
			case n >= 3:
				warn(fmt.Sprintf("%s a third time: killing every process in the box", signalName(sig)))
				go func() { _ = box.Kill(context.Background()) }()
				continue
			}
			if d == delivered {
				continue // the terminal sent it to the command already
			}
			// Through the process's pidfd: once the command is reaped
			// (boxrun is handling leftovers) this fails instead of
			// signalling whatever process got its pid next.
			_ = cmd.Signal(sig)
		}
	}
}

// insistWindow is how close together signals must come to count as
// insisting.
const insistWindow = 5 * time.Second

// insistence counts signals that come in a row.
type insistence struct {
	n    int
	last time.Time
}

// next records a signal at now and returns its rank in the current row:
// 1 for a signal after a pause of insistWindow or more.
func (i *insistence) next(now time.Time) int {
	if i.n == 0 || now.Sub(i.last) >= insistWindow {
		i.n = 0
	}
	i.n++
	i.last = now
	return i.n
}

// signalName is SIGINT, SIGTERM, ... as users know them.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}

// exitStatus maps a wait status to a shell exit code.
func exitStatus(ps *os.ProcessState, waitErr error) (int, syscall.Signal) {
	if ps == nil {
		return 125, 0
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.ExitCode(), 0
	}
	return ExitCode(ws)
}

// ExitCode maps a wait status to the exit code a shell would report: the
// exit status, or 128+N for death by signal N.
func ExitCode(ws syscall.WaitStatus) (int, syscall.Signal) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), 0
	case ws.Signaled():
		return 128 + int(ws.Signal()), ws.Signal()
	default:
		return 125, 0
	}
}

// handleLeftovers deals with processes still in the box after the command
// exited: it names them, and with leftovers = "kill" sends SIGTERM, waits
// the grace period, then kills the rest.
func handleLeftovers(ctx context.Context, box Box, p *policy.Resolved, warn func(string)) ([]Proc, bool) {
	pids, err := box.Procs()
	if err != nil {
		warn(fmt.Sprintf("listing leftover processes: %v", err))
	}
	if len(pids) == 0 {
		return nil, false
	}
	procs := make([]Proc, 0, len(pids))
	for _, pid := range pids {
		procs = append(procs, describeProc(pid))
	}
	if p.Leftovers == "keep" {
		return procs, false
	}
	_ = box.Signal(ctx, syscall.SIGTERM)
	if dir := box.Dir(); dir != "" {
		if (cgroupDir{mount: dir, rel: "/"}).waitEmpty(ctx, p.LeftoversGrace) {
			return procs, true
		}
	} else {
		deadline := time.Now().Add(p.LeftoversGrace)
		for time.Now().Before(deadline) {
			if left, err := box.Procs(); err == nil && len(left) == 0 {
				return procs, true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := box.Kill(ctx); err != nil {
		warn(fmt.Sprintf("killing leftover processes: %v", err))
	}
	return procs, true
}

// describeProc reads a process's name and command line from /proc.
func describeProc(pid int) Proc {
	p := Proc{PID: pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		p.Comm = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	return p
}
