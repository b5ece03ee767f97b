package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/boxes"
	"github.com/boxrun/boxrun/container"
	"github.com/boxrun/boxrun/observe"
	"github.com/boxrun/boxrun/policy"
)

// Exit statuses of boxrun itself, following env(1), timeout(1) and docker run.
const (
	exitBoxrunFailed = 125 // boxrun failed before the command started
	exitNotRunnable  = 126 // the command is not executable
	exitNotFound     = 127 // the command does not exist
)

// options are the parsed command-line flags of a run.
type options struct {
	policyName string
	policyFile string
	sets       []string
	backend    string
	user       bool
	system     bool
	strict     bool
	quiet      bool
	help       bool
	version    bool     // --version
	progress   bool     // --progress: a live status line on a terminal
	reportJSON string   // --report-json PATH, "-" for stdout
	noWait     bool     // --no-wait: fail instead of waiting for a slot or memory
	args       []string // the arguments as given, for a crossing to the host
	// dashdash is true when the command came after "--": it is a program,
	// never a mistyped boxrun command.
	dashdash bool
}

func newFlagSet(o *options, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("boxrun", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SetInterspersed(false) // everything after the command is the command's
	fs.StringVarP(&o.policyName, "policy", "p", "tests", "policy to apply")
	fs.StringVarP(&o.policyFile, "policy-file", "f", "", "read policies from this file first (adds to / overrides the lookup)")
	fs.StringArrayVar(&o.sets, "set", nil, "override one policy field for this run, e.g. --set memory.max=4G (repeatable)")
	fs.StringVar(&o.backend, "backend", box.KindAuto, "auto, systemd, cgroupfs or none")
	fs.BoolVar(&o.user, "user", false, "use the systemd user manager (default unless root)")
	fs.BoolVar(&o.system, "system", false, "use the systemd system manager (default as root)")
	fs.BoolVar(&o.strict, "strict", false, "refuse to run (exit 125) when a limit of the policy cannot be enforced here")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing of boxrun's own unless something went wrong")
	fs.BoolVar(&o.progress, "progress", false, "show a status line on stderr while the command runs (on a terminal)")
	fs.StringVar(&o.reportJSON, "report-json", "", "write the run report as JSON to this file (- for stdout)")
	fs.BoolVar(&o.noWait, "no-wait", false, "fail (exit 125) instead of waiting for a slot (max_concurrent) or for memory (start_when_available)")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.BoolVarP(&o.version, "version", "V", false, "print boxrun's version and exit")
	fs.Usage = func() { writeRootHelp(fs.Output(), fs) }
	return fs
}

// selectFunc opens a backend; box.Select, except in tests that check
// that bad input never gets as far as making a box.
type selectFunc func(context.Context, box.Choice) (box.Backend, []string, error)

// run is the whole CLI; main only exits with its result.
func run(ctx context.Context, args []string, stdin, stdout, stderr *os.File) int {
	return runWith(ctx, box.Select, args, stdin, stdout, stderr)
}

// runWith is run with the backend selection given: boxes are only ever
// made by a backend that selectBackend returned.
func runWith(ctx context.Context, selectBackend selectFunc, args []string, stdin, stdout, stderr *os.File) int {
	out := &printer{w: stderr, help: stdout}
	if err := checkUnprivileged(); err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	o := options{args: args}
	fs := newFlagSet(&o, stderr)
	if err := checkStreams(stdin, stdout, stderr); err != nil {
		out.errorf("%v", err)
		out.hintf("give boxrun open standard streams; redirect one to /dev/null to discard it")
		return exitBoxrunFailed
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		out.errorf("%v", err)
		out.hintf("run boxrun --help for the flags")
		return exitBoxrunFailed
	}
	rest := fs.Args()
	// A subcommand is only recognised when no "--" came before it, so that
	// `boxrun -- policy` still runs a program called policy.
	dashdash := fs.ArgsLenAtDash() == 0
	o.dashdash = dashdash
	c, n, isCommand := lookupCommand(rest)
	isCommand = isCommand && !dashdash
	switch {
	case o.help && isCommand: // boxrun --help policy list
		writeHelp(stdout, c.name, "", describeFlags(c))
		return 0
	case o.help:
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	case o.version:
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	out.quiet = o.quiet
	if isCommand {
		if !checkGlobals(fs, c, out) {
			return exitBoxrunFailed
		}
		return c.run(ctx, o, rest[n:], stdout, out)
	}
	if len(rest) == 0 {
		out.errorf("no command given")
		out.hintf("usage: boxrun [flags] [--] COMMAND [ARGS...], e.g. boxrun --policy tests -- cargo test")
		return exitBoxrunFailed
	}
	if o.user && o.system {
		out.errorf("--user and --system cannot be used together")
		return exitBoxrunFailed
	}
	if err := box.CheckKind(o.backend); err != nil {
		out.errorf("--backend: %v", err)
		return exitBoxrunFailed
	}
	return runCommand(ctx, o, selectBackend, rest, stdin, stdout, stderr, out)
}

// checkStreams fails when one of the standard streams is closed (or nil):
// the command would get no descriptor, or another file, in its place.
func checkStreams(stdin, stdout, stderr *os.File) error {
	for _, s := range []struct {
		name string
		f    *os.File
	}{{"stdin", stdin}, {"stdout", stdout}, {"stderr", stderr}} {
		if s.f == nil {
			return fmt.Errorf("%s is missing", s.name)
		}
		if _, err := s.f.Stat(); errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("%s is closed", s.name)
		}
	}
	return nil
}

// choice is the backend the flags ask for.
func (o options) choice() box.Choice {
	user := box.DefaultUser()
	if o.user {
		user = true
	}
	if o.system {
		user = false
	}
	return box.Choice{Kind: o.backend, User: user, CgroupParent: os.Getenv(box.ParentEnv)}
}

// machineEnv is what policies are resolved against for the backend the
// flags ask for: percentages are of the memory of the machine the boxes
// live in (boxes.MachineMemory), not of the cgroup boxrun is started
// from.
func machineEnv(o options) (policy.Env, error) {
	mem, err := boxes.MachineMemory(o.choice())
	return policy.Env{MemoryBytes: mem}, err
}

// resolvePolicy loads the lookup and resolves the named policy against
// the machine (machineEnv), which it returns too; out gets the warnings of
// loadStack.
func resolvePolicy(o options, out *printer) (*policy.Resolved, policy.Env, error) {
	env, err := machineEnv(o)
	if err != nil {
		return nil, env, err
	}
	_, pol, _, err := resolveRun(o, env, out)
	return pol, env, err
}

// resolveRun loads the lookup and resolves the named policy and the
// [slice] budget shared by all boxes against env; out gets the warnings
// of loadStack.
func resolveRun(o options, env policy.Env, out *printer) (*policy.Stack, *policy.Resolved, *policy.ResolvedSlice, error) {
	st, err := loadStack(o, out)
	if err != nil {
		return nil, nil, nil, err
	}
	pol, err := st.Resolve(o.policyName, o.sets, env)
	if err != nil {
		return nil, nil, nil, err
	}
	slice, err := st.ResolveSlice(env)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, pol, slice, nil
}

// runCommand runs the command in a box and returns its exit status.
//
// The phases read in order: planRun resolves the policy and finds the
// command; takeTurn finds the enclosing box or waits for a slot; the
// report file is opened and protection starts; openBackend connects;
// observe sets up what watches the box; box.Run runs the command; and
// report writes the report. A phase that fails says why on out and gives
// the exit status; the defers undo what the phases before it set up, last
// first.
func runCommand(ctx context.Context, o options, selectBackend selectFunc, argv []string, stdin, stdout, stderr *os.File, out *printer) (code int) {
	ctx, tm, printTiming := startTiming(ctx, out)
	defer printTiming()
	r, code := planRun(o, argv, out, tm)
	if code != 0 {
		return code
	}
	nested, release, code := r.takeTurn(ctx)
	if code != 0 {
		return code
	}
	defer release()
	// Open the --report-json file before any backend (after any wait), so
	// that a path that cannot be written fails before anything is set up.
	rep, err := newReporter(o, r.pol, argv, stdout, stderr, out)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	defer rep.close()
	// Protection runs while the backend connects and the box is made; it
	// is waited for before the command starts (and on every way out).
	protected := func(*printer) {}
	if len(r.pol.Protect) > 0 {
		protected = protectDuringStart(ctx, r.st, r.pol, r.env)
	}
	defer protected(out)
	backend, code := r.openBackend(ctx, selectBackend, nested)
	if backend == nil {
		return code
	}
	defer backend.Close()
	observers, closeTrace := r.observe(backend, rep)
	defer closeTrace()
	res, err := box.Run(ctx, r.runOptions(backend, observers, protected, rep.postMortem(), stdin, stdout, stderr))
	if err != nil {
		return startFailure(err, out)
	}
	return r.report(ctx, res, rep)
}

// commandRun is one run of runCommand, carried from phase to phase: the
// flags and the command, what the policy lookup resolved for them, and the
// backpressure the run set up.
type commandRun struct {
	o     options
	argv  []string
	out   *printer
	tm    *timing // nil unless BOXRUN_TIMING asks for one
	env   policy.Env
	st    *policy.Stack
	pol   *policy.Resolved
	slice *policy.ResolvedSlice
	path  string                // argv[0], resolved
	bp    *observe.Backpressure // nil without backpressure
	sizes *sizeStore            // the project's sizes; nil without backpressure
}

// planRun resolves the policy and the [slice] budget against the machine,
// says the policy's warnings and notes, and finds the command, before
// anything is set up: on failure it has said why on out and returns the
// exit status, and there is nothing to undo.
func planRun(o options, argv []string, out *printer, tm *timing) (*commandRun, int) {
	env, err := machineEnv(o)
	if err != nil {
		out.errorf("%v", err)
		return nil, exitBoxrunFailed
	}
	st, pol, slice, err := resolveRun(o, env, out)
	tm.mark("policy")
	if err != nil {
		policyError(err, out)
		return nil, exitBoxrunFailed
	}
	for _, ig := range pol.Ignored {
		out.warnf("%s", ig)
	}
	for _, n := range pol.Notes {
		out.warnf("policy %q: %s", pol.Name, n)
	}
	observe.PrepareBackpressure(pol)
	// Reject a missing or non-executable command before making any box.
	path, err := box.ResolveCommand(argv[0], nil)
	if err != nil {
		code := startFailure(err, out)
		// boxrun polcy list: no program is called polcy, so it was
		// meant for boxrun. Without "--" only: with it, a program was
		// named on purpose.
		if meant := mistypedCommand(argv); code == exitNotFound && !o.dashdash && meant != "" && !strings.Contains(argv[0], "/") {
			out.hintf("did you mean boxrun %s?", meant)
		}
		return nil, code
	}
	return &commandRun{o: o, argv: argv, out: out, tm: tm, env: env, st: st, pol: pol, slice: slice, path: path}, 0
}

// takeTurn decides where the run goes. Inside a box of an outer boxrun (a
// cargo shim under boxrun, a test that runs boxrun) the box for this run
// goes inside it, through nested, and its slot is ours; where that box is
// not boxrun's to divide, the command is executed directly and takeTurn
// returns only if that failed. Elsewhere it waits for a slot and for
// memory (waitForTurn). release gives the slot back; on failure (a
// non-zero code, said on out) nothing is held.
func (r *commandRun) takeTurn(ctx context.Context) (nested box.Backend, release func(), code int) {
	nested, direct, code := nestedBackend(ctx, r.o, r.pol, r.argv, r.out)
	switch {
	case code != 0:
		return nil, nil, code
	case direct:
		return nil, nil, startFailure(box.ExecDirect(r.path, r.argv), r.out)
	case nested != nil:
		return nested, func() {}, 0
	}
	release, code = waitForTurn(ctx, r.o, r.pol, r.argv, r.out)
	if code != 0 {
		return nil, nil, code
	}
	r.tm.mark("slot")
	return nil, release, 0
}

// openBackend opens the backend the flags ask for, unless takeTurn found
// one (nested). Where that is the none backend, --backend auto may instead
// run the whole command under the host's boxrun (crossToHost), and
// --strict refuses to run. On failure it has said why on out and returns a
// nil backend, closed again, and the exit status.
func (r *commandRun) openBackend(ctx context.Context, selectBackend selectFunc, nested box.Backend) (box.Backend, int) {
	backend, err := nested, error(nil)
	if backend == nil {
		backend, _, err = selectBackend(ctx, r.o.choice())
	}
	if err != nil {
		r.out.errorf("backend %s: %v", r.o.backend, err)
		r.out.hintf("boxrun --backend auto picks what works here; --backend none runs without a box")
		return nil, exitBoxrunFailed
	}
	r.tm.mark("connect")
	if backend.Name() == box.KindNone && r.o.backend == box.KindAuto {
		if code, crossed := crossToHost(r.o, r.argv, r.out); crossed {
			backend.Close()
			return nil, code
		}
	}
	if backend.Name() == box.KindNone && r.o.strict {
		nb := noBox(backend, nil)
		r.out.errorf("--strict: not boxed: %s, so policy %q cannot be enforced", nb.Reason, r.pol.Name)
		if nb.Fix != "" {
			r.out.hintf("%s", nb.Fix)
		}
		backend.Close()
		return nil, exitBoxrunFailed
	}
	return backend, 0
}

// observe gives the observers of the box: the report's, then backpressure
// when the policy asks for it and there is a box to steer, with its trace
// file and the sizes the project's runs taught it. closeTrace closes the
// trace file, all there is to undo.
func (r *commandRun) observe(backend box.Backend, rep *reporter) (observers []box.Observer, closeTrace func()) {
	closeTrace = func() {}
	// Without a box there is nothing to steer; the one line that says
	// there is no box says enough.
	if r.pol.MemoryBackpressure && backend.Name() != box.KindNone {
		if r.bp = observe.NewBackpressure(r.pol, r.warn); r.bp != nil {
			if f := openTrace(os.Getenv(traceEnv), r.warn); f != nil {
				closeTrace = func() { f.Close() }
				r.bp.TraceTo(f)
			}
			r.sizes = openProjectSizes(r.pol.Name, r.warn)
			r.bp.Know(r.sizes.known())
			observers = append(observers, r.bp)
		}
	}
	return append(rep.observers(), observers...), closeTrace
}

// runOptions are box.Run's options for this run. Once the limits are
// read back, those not in force are warned about and protection is waited
// for, before the command starts. postMortem is the file the run's guard
// writes the report from if boxrun dies (see reporter.postMortem).
func (r *commandRun) runOptions(backend box.Backend, observers []box.Observer, protected func(*printer), postMortem string, stdin, stdout, stderr *os.File) box.Options {
	return box.Options{
		Backend:    backend,
		Policy:     r.pol,
		Slice:      r.slice,
		OwnerDir:   box.DefaultOwnerDir(os.Getenv),
		PostMortem: postMortem,
		Args:       r.argv,
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		Strict:     r.o.strict,
		Warn:       r.warn,
		Observers:  observers,
		Checked: func(checks []box.LimitCheck) {
			warnChecks(backend, checks, r.pol, r.out)
			protected(r.out)
			r.tm.mark("protect")
		},
	}
}

// report keeps the sizes backpressure learnt, writes the run's report and
// returns boxrun's exit status; a command that died of a signal to pass on
// is recorded for main (dieOf).
func (r *commandRun) report(ctx context.Context, res *box.Result, rep *reporter) int {
	keepSizes(r.sizes, r.bp, time.Now(), r.warn)
	code := rep.finish(res, r.bp, r.sizes)
	dieOf(ctx, res.Signal)
	r.tm.mark("report")
	return code
}

// warn says s as one of boxrun's warnings.
func (r *commandRun) warn(s string) { r.out.warnf("%s", s) }

// nestedBackend decides what a run inside a box of an outer boxrun does
// (--backend auto only; a backend asked for by name is used as asked). Nil
// when it runs in no box: the run is like any other. Else a backend that
// makes its box inside the innermost enclosing box, with its own policy's
// limits under the outer ones. Where that box is not boxrun's to divide,
// direct: the command runs directly in the enclosing box, under its
// limits, not the policy's, said in one line even under -q; refused under
// --strict (a non-zero exit status, 125).
func nestedBackend(ctx context.Context, o options, pol *policy.Resolved, argv []string, out *printer) (_ box.Backend, direct bool, code int) {
	cg, unit, ok := box.Enclosing()
	if !ok || o.backend != box.KindAuto {
		return nil, false, 0
	}
	where := cg
	if unit != "" {
		where = unit
	}
	backend, err := box.NewNested(ctx, cg, unit)
	if err == nil {
		out.infof("inside box %s: %s gets a box of its own in it", where, argv[0])
		return backend, false, 0
	}
	if o.strict {
		out.errorf("--strict: running inside box %s, which boxrun cannot divide (%v), so policy %q cannot be enforced", where, err, pol.Name)
		out.hintf("run boxrun outside the box, or start the outer box with boxrun, whose boxes nested runs can divide")
		return nil, false, exitBoxrunFailed
	}
	out.noticef("inside box %s, which boxrun cannot divide (%v): running %s in it directly, under its limits, not policy %q's", where, err, argv[0], pol.Name)
	return nil, true, 0
}

// waitForTurn holds the run back until the policy's max_concurrent and
// start_when_available allow it to start. It returns the function that
// gives the slot back, or a non-zero exit status.
func waitForTurn(ctx context.Context, o options, pol *policy.Resolved, argv []string, out *printer) (release func(), code int) {
	release = func() {}
	if pol.MaxConcurrent > 0 {
		rel, err := boxes.AcquireSlot(ctx, boxes.SlotRequest{
			Dir: boxes.DefaultSlotDir(os.Getenv), Policy: pol.Name, N: pol.MaxConcurrent,
			Holder: strings.Join(argv, " "), NoWait: o.noWait,
			Waiting: func(holders []string) {
				out.infof("waiting for a slot (%d of %d running: %s)", len(holders), pol.MaxConcurrent, strings.Join(holders, "; "))
			},
		})
		if err != nil {
			out.errorf("policy %q: max_concurrent = %d: %v", pol.Name, pol.MaxConcurrent, err)
			if errors.Is(err, boxes.ErrNoSlot) {
				out.hintf("leave out --no-wait to wait for a slot, or raise max_concurrent")
			}
			return nil, exitBoxrunFailed
		}
		release = rel
	}
	if pol.StartWhenAvailable != nil {
		err := boxes.WaitForMemory(ctx, *pol.StartWhenAvailable, 500*time.Millisecond, o.noWait, func(have uint64) {
			out.infof("waiting until %s of memory is available (start_when_available; %s now)", policy.FormatBytes(*pol.StartWhenAvailable), policy.FormatBytes(have))
		})
		if err != nil {
			release()
			out.errorf("policy %q: %v", pol.Name, err)
			return nil, exitBoxrunFailed
		}
	}
	return release, 0
}

// crossToHost runs the whole command under the host's boxrun when boxrun
// runs in a container where no box can be made but a tool reaches the host
// (distrobox-host-exec, host-spawn, flatpak-spawn --host): one crossing
// per run, never one per child process. crossed is false when there is no
// such way, or this boxrun crossed already.
func crossToHost(o options, argv []string, out *printer) (code int, crossed bool) {
	if os.Getenv(container.CrossedEnv) != "" {
		return 0, false
	}
	c := container.Detect(os.DirFS("/"), os.Getenv, exec.LookPath)
	if c.Crossing == nil {
		return 0, false
	}
	// The host must see the same program: in the shared home, or in the
	// host's root that toolbox and distrobox mount at /run/host. A
	// program that exists only in here cannot be boxed from the host
	// (re-entering the container would start it in the container's own
	// cgroup, outside the box).
	if path, err := box.ResolveCommand(argv[0], nil); err == nil && !container.VisibleOnHost(path, os.Getenv("HOME")) {
		out.warnf("not crossing to the host through %s: %s exists only inside %s", strings.Join(c.Crossing, " "), path, c)
		return 0, false
	}
	tool, err := exec.LookPath(c.Crossing[0])
	if err != nil {
		return 0, false
	}
	cwd, _ := os.Getwd()
	cross := container.CrossArgv(c, cwd, o.args)
	out.infof("no box can be made inside %s: running the command under the host's boxrun through %s (one crossing, about %s)", c, strings.Join(c.Crossing, " "), container.CrossingCost)
	err = syscall.Exec(tool, cross, append(os.Environ(), container.CrossedEnv+"=1"))
	out.errorf("crossing to the host with %s: %v", tool, err)
	return exitBoxrunFailed, true
}

// startFailure prints why the command did not start and picks the status.
func startFailure(err error, out *printer) int {
	var se *box.StartError
	if errors.As(err, &se) {
		out.errorf("%v", se.Err)
		return se.Code
	}
	out.errorf("%v", err)
	return exitBoxrunFailed
}

// warnChecks explains, before the command starts, the limits that are not in
// force. Without a box that is one line, the reason and what helps (see
// noBoxLine); boxrun doctor has the details. With -q (an editor's check on
// every save) that line must not hide that nothing is enforced, nor be
// said every time: once a day.
func warnChecks(backend box.Backend, checks []box.LimitCheck, pol *policy.Resolved, out *printer) {
	if backend.Name() == box.KindNone {
		line := noBoxLine(noBox(backend, checks))
		if !out.quiet {
			out.warnf("%s", line)
		} else if onceADay(stateDir(os.Getenv), "none-warned") {
			out.noticef("%s (said once a day with -q)", line)
		}
		return
	}
	for _, c := range checks {
		if c.OK() {
			continue
		}
		out.warnf("policy %q: %s", pol.Name, c.String())
		if c.Hint != "" {
			out.hintf("%s", c.Hint)
		}
	}
}

// noBox is why backend, the none backend, makes no box; from its checks
// when it does not say (a backend that wraps it).
func noBox(backend box.Backend, checks []box.LimitCheck) box.NoBox {
	if nb, ok := box.NoBoxOf(backend); ok {
		return nb
	}
	if len(checks) > 0 {
		return box.NoBox{Reason: strings.TrimPrefix(checks[0].Problem, "no cgroup: ")}
	}
	return box.NoBox{Reason: "the none backend makes no cgroup"}
}

// noBoxLine is the one line a run without a box prints: "not boxed:
// REASON; FIX".
func noBoxLine(nb box.NoBox) string {
	line := "not boxed: " + nb.Reason
	if nb.Fix != "" {
		line += "; " + nb.Fix
	}
	return line
}

// onceADay reports whether the stamp file name in dir is missing or older
// than a day, and stamps it. Without a state directory, or one that cannot
// be written, it says yes every time: a warning too many beats none.
func onceADay(dir, name string) bool {
	if dir == "" {
		return true
	}
	stamp := filepath.Join(dir, name)
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < 24*time.Hour {
		return false
	}
	if os.MkdirAll(dir, 0o700) == nil && checkOwnedDir(dir) == nil {
		if f, err := os.OpenFile(stamp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600); err == nil {
			f.Close()
			now := time.Now()
			_ = os.Chtimes(stamp, now, now) // a stamp that keeps its old time only repeats the warning
		}
	}
	return true
}

// traceEnv names a file to which backpressure appends its decisions (see
// observe.Backpressure.TraceTo): for finding out why a suite was slow or
// paused long, and for the real-kernel scenarios.
const traceEnv = "BOXRUN_BACKPRESSURE_TRACE"

// openTrace opens the backpressure trace file named by path for
// appending; "" or a file that cannot be opened (warned) gives nil.
func openTrace(path string, warn func(string)) *os.File {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		warn(fmt.Sprintf("%s: %v; backpressure runs without a trace", traceEnv, err))
		return nil
	}
	return f
}
