package box

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

	"github.com/boxrun/boxrun/internal/probe"
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
	// Kernel is the release of the kernel the run ran on (uname -r), ""
	// when unknown; Systemd the version of the systemd manager that made
	// the box, as it says it ("252.39-1~deb12u1"), "" for the other
	// backends or when it did not say.
	Kernel, Systemd string
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

// newID returns a short random id for a box name.
func newID() string {
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
//
// The phases read in order: prepare makes the box; the guard is started;
// start puts the blocked helper in the box; check reads the limits back;
// forward passes boxrun's signals on; wait releases the command and reaps
// it; finish deals with leftovers and removes the box. A phase that fails
// has already undone what the phases before it made (each says what it
// leaves behind); Run's defers then release the guard and stop forwarding
// signals.
func Run(ctx context.Context, o Options) (*Result, error) {
	r, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	// From here the box must not outlive boxrun, however boxrun ends. The
	// guard starts first: its own cgroup is made while the box's is.
	r.grd = startGuardFor(ctx, o, r.box, r.warn)
	defer r.grd.release()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	// Forward signals from now until Run returns: through the command's
	// life, its leftovers and the box's removal.
	stop := r.forward()
	defer stop()
	if err := r.wait(ctx); err != nil {
		return nil, err
	}
	r.finish(ctx)
	return r.res, nil
}

// boxRun is one Run in progress, carried from phase to phase.
type boxRun struct {
	o    Options
	warn func(string) // o.Warn, or a function that drops the warning
	env  []string     // the command's environment
	path string       // the command, resolved (ResolveCommand)
	box  Box
	grd  *guard // nil without a guard
	// helper is the helper process (see startHelper), blocked until
	// release is written to; status reports how its exec went.
	helper          *exec.Cmd
	release, status *os.File
	// interrupted is the first signal forwardSignals passed on, or 0.
	interrupted atomic.Int32
	res         *Result
}

// prepare checks the command and makes its box. On failure nothing is left
// behind: the command was not found before any box was made, or Create
// failed, and by its contract left nothing either.
func prepare(ctx context.Context, o Options) (*boxRun, error) {
	r := &boxRun{o: o, warn: o.Warn, env: o.Env}
	if r.warn == nil {
		r.warn = func(string) {}
	}
	if r.env == nil {
		r.env = os.Environ()
	}
	if len(o.Args) == 0 {
		return nil, startErr(125, "no command given (usage: boxrun [flags] -- COMMAND [ARGS...])")
	}
	path, err := ResolveCommand(o.Args[0], r.env)
	if err != nil {
		return nil, err
	}
	r.path = path
	id := o.ID
	if id == "" {
		id = newID()
	}
	r.res = &Result{Backend: o.Backend.Name(), Kernel: probe.Release()}
	box, err := o.Backend.Create(ctx, Request{Policy: o.Policy, ID: id, Description: describe(o.Policy.Name, o.Args), Slice: o.Slice, Warn: r.warn})
	if err != nil {
		return nil, startErr(125, "creating the box: %w", err)
	}
	r.box = box
	return r, nil
}

// start starts the helper, born in the box where the kernel allows it, puts
// it in the box, moves the guard next to the box and records that this
// boxrun owns the box. The helper stays blocked on its release pipe. On
// failure the helper, if it started, has exited and been reaped, and the
// box is destroyed.
func (r *boxRun) start(ctx context.Context) error {
	var birth *os.File
	if b, ok := r.box.(interface{ birthplace() (*os.File, error) }); ok {
		birth, _ = b.birthplace() // without it, Place moves the helper
	}
	var err error
	r.helper, r.release, r.status, err = startHelper(r.o, r.path, r.env, birth)
	if err != nil && birth != nil {
		// A kernel without CLONE_INTO_CGROUP (before 5.7): start it
		// outside and let Place move it.
		r.helper, r.release, r.status, err = startHelper(r.o, r.path, r.env, nil)
	}
	if birth != nil {
		birth.Close()
	}
	tracePhase(ctx, "helper")
	if err != nil {
		r.destroy(ctx)
		return startErr(125, "starting the command: %w", err)
	}
	if err := r.box.Place(ctx, r.helper.Process.Pid); err != nil {
		return r.abort(ctx, startErr(125, "placing the command in its box: %w", err))
	}
	r.res.Unit, r.res.Cgroup = r.box.Unit(), r.box.Cgroup()
	if err := r.grd.settle(r.box.Dir()); err != nil {
		r.warn(fmt.Sprintf("the guard stays in boxrun's cgroup (the box would outlive a caller stopped as a whole): %v", err))
	}
	tracePhase(ctx, "guard")
	if r.res.Cgroup != "" {
		if err := writeOwner(r.o.OwnerDir, selfOwner(r.res.Cgroup, r.res.Unit)); err != nil {
			r.warn(fmt.Sprintf("%v (boxrun status will not know this box is ours)", err))
		}
	}
	return nil
}

// check reads back from the kernel what the limits became and hands them to
// Options.Checked. With Options.Strict a limit not in force fails the run
// before the command starts: the helper has exited and been reaped, and the
// box is destroyed.
func (r *boxRun) check(ctx context.Context) error {
	r.res.Checks = r.box.Check(ctx)
	tracePhase(ctx, "readback")
	var failed []string
	for _, c := range r.res.Checks {
		if !c.OK() {
			failed = append(failed, c.String())
		}
	}
	if len(failed) > 0 && r.o.Strict {
		return r.abort(ctx, startErr(125, "--strict: %d limit(s) of policy %q not enforced here: %s", len(failed), r.o.Policy.Name, strings.Join(failed, "; ")))
	}
	if r.o.Checked != nil {
		r.o.Checked(r.res.Checks)
	}
	return nil
}

// forward passes the signals boxrun receives on to the command (see
// forwardSignals) until stop is called; stop leaves boxrun's own handling
// of those signals as it was.
func (r *boxRun) forward() (stop func()) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	done := make(chan struct{})
	tty := openTerminal()
	where := func() groups { return tty.groups(r.helper.Process) }
	go forwardSignals(sigs, r.helper.Process, where, done, r.box, r.warn, &r.interrupted)
	return func() {
		close(done)
		tty.Close()
		signal.Stop(sigs)
	}
}

// wait lets the command run, tells the observers, reaps the command and
// records how it ended. When the command never ran (its exec failed, or the
// release could not be written) the box is destroyed and the error says
// why; the helper has been reaped either way.
func (r *boxRun) wait(ctx context.Context) error {
	hs, werr := r.releaseCommand(ctx)
	if hs.execCode == 0 {
		for _, ob := range r.o.Observers {
			ob.Started(r.box.Dir(), r.helper.Process.Pid)
		}
	}
	if hs.execCode == 0 {
		r.ending()
	}
	waitErr := r.helper.Wait()
	r.res.End = time.Now()
	tracePhase(ctx, "command")
	if hs.execCode == 0 {
		for _, ob := range r.o.Observers {
			ob.Exited()
		}
	}
	if werr != nil && hs.execCode == 0 {
		r.destroy(ctx)
		return startErr(125, "releasing the command: %w", werr)
	}
	if hs.execCode != 0 {
		r.destroy(ctx)
		return startErr(hs.execCode, "%s", hs.execErr)
	}
	r.res.ExitCode, r.res.Signal = exitStatus(r.helper.ProcessState, waitErr)
	r.res.Interrupted = syscall.Signal(r.interrupted.Load())
	if m, ok := r.o.Backend.(managed); ok {
		r.res.Systemd = m.ManagerVersion() // the command has exited: no one waits for this question
	}
	return nil
}

// managed is a Backend whose boxes a systemd manager makes: it can say the
// manager's version (see systemdBackend.ManagerVersion).
type managed interface {
	ManagerVersion() string
}

// releaseCommand writes the release message (the magic, then the box's
// names for the command's environment), closes both of the helper's pipes
// and returns what the helper said of its exec, with the error of the
// write. It leaves the helper running, or exited, to be reaped.
func (r *boxRun) releaseCommand(ctx context.Context) (helperStatus, error) {
	msg := []byte(releaseMagic)
	for _, kv := range []string{EnvPolicy + "=" + r.o.Policy.Name, EnvUnit + "=" + r.res.Unit, EnvCgroup + "=" + r.res.Cgroup} {
		msg = append(append(msg, kv...), 0)
	}
	r.res.Start = time.Now()
	_, werr := r.release.Write(msg)
	r.release.Close()
	st, _ := io.ReadAll(r.status) // EOF: exec succeeded or failed
	r.status.Close()
	tracePhase(ctx, "exec")
	hs := parseHelperStatus(st)
	for _, w := range hs.warnings {
		r.warn(w)
	}
	return hs, werr
}

// finish deals with the processes left in the box (see handleLeftovers)
// and removes the box, unless leftovers are kept: then the box stays, with
// an owner record that says it was kept, for status and gc.
func (r *boxRun) finish(ctx context.Context) {
	r.res.Leftovers, r.res.LeftoversKilled = handleLeftovers(ctx, r.box, r.o.Policy, r.warn)
	tracePhase(ctx, "leftovers")
	if len(r.res.Leftovers) == 0 || r.res.LeftoversKilled {
		r.destroy(ctx)
	} else if r.res.Cgroup != "" {
		rec := selfOwner(r.res.Cgroup, r.res.Unit)
		rec.Kept = true
		if err := writeOwner(r.o.OwnerDir, rec); err != nil {
			r.warn(fmt.Sprintf("%v (boxrun gc will take the kept box for an orphan and remove it)", err))
		}
	}
}

// abort ends a run whose command was never released and returns err:
// closing the release pipe without the magic makes the helper exit at once;
// it is reaped and the box destroyed.
func (r *boxRun) abort(ctx context.Context, err error) error {
	r.release.Close() // EOF without the magic: the helper exits at once
	r.status.Close()
	_ = r.helper.Wait() // reaped only: the helper never ran the command
	r.destroy(ctx)
	return err
}

// destroy removes the box, with up to 40 seconds even when ctx is
// cancelled, then the record that this boxrun owns it. A box that would not
// go keeps its record, and the user is warned.
func (r *boxRun) destroy(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
	defer cancel()
	defer tracePhase(ctx, "teardown")
	if err := r.box.Destroy(dctx); err != nil {
		r.warn(fmt.Sprintf("removing the box: %v", err))
		return
	}
	if cg := r.box.Cgroup(); cg != "" {
		dropOwner(r.o.OwnerDir, cg)
	}
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
				_ = box.Signal(context.Background(), sig) // a process gone meanwhile needs no signal
				continue
			case n >= 3:
				warn(fmt.Sprintf("%s a third time: killing every process in the box", signalName(sig)))
				go func() { _ = box.Kill(context.Background()) }() // leftovers handling kills again and reports
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
	return exitCode(ws)
}

// exitCode maps a wait status to the exit code a shell would report: the
// exit status, or 128+N for death by signal N.
func exitCode(ws syscall.WaitStatus) (int, syscall.Signal) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), 0
	case ws.Signaled():
		return 128 + int(ws.Signal()), ws.Signal()
	default:
		return 125, 0
	}
}
