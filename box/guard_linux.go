package box

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/internal/probe"
)

// GuardArg makes the boxrun binary act as a run's guard: a small process
// outside the box, in a session of its own (so terminal signals do not reach
// it), holding the read end of a pipe from boxrun. boxrun writes guardDone
// when it has finished with the box. If the pipe closes without it — boxrun
// died, even by SIGKILL — the guard thaws every frozen cgroup of the box,
// resumes every process in it (none stays stopped by backpressure) and kills
// them all, so a box never outlives its boxrun unbounded; systemd then
// collects the empty scope, and a cgroupfs box is removed by the guard.
//
// The guard does not share boxrun's cgroup: a caller's scope stopped or
// OOM-killed as a unit (systemctl --user stop, systemd-oomd, a logout with
// KillUserProcesses=yes) would take boxrun and its guard together, and
// leave the box. With systemd it runs in a scope of its own beside the box
// (boxrun-POLICY-ID-guard.scope in boxrun.slice); with cgroupfs in a cgroup
// of its own (boxrun-POLICY-ID-guard) in the directory boxrun.slice is in.
const GuardArg = "__boxrun-guard"

// guardDone is what boxrun writes to tell its guard all is well. Before
// it, boxrun may write lines naming the box's directory once it is known
// (a scope's cgroup is known only once the scope runs).
const guardDone = 'D'

// guardSuffix ends the name of a guard's cgroup: the box's name, without
// ".scope", and this.
const guardSuffix = "-guard"

// guardNameRe matches the cgroup of a box's guard (see guardName); never a
// box's name (boxNameRe), which ends in the box's id.
var guardNameRe = regexp.MustCompile(`^boxrun-(.+)-[0-9a-f]{8}` + guardSuffix + `(\.scope)?$`)

// guardName is the name of the guard's cgroup for the box named box:
// boxrun-tests-1a2b3c4d.scope gets boxrun-tests-1a2b3c4d-guard.scope, a
// cgroupfs box boxrun-tests-1a2b3c4d gets boxrun-tests-1a2b3c4d-guard.
func guardName(box string) string {
	if name, ok := strings.CutSuffix(box, ".scope"); ok {
		return name + guardSuffix + ".scope"
	}
	return box + guardSuffix
}

// guardHome is a box that gives its guard a cgroup of its own.
type guardHome interface {
	// guardBirthplace makes the guard's cgroup when the guard is to be
	// born in it (cgroupfs), and returns it; a zero cgroupDir when the
	// guard is moved once started (systemd).
	guardBirthplace() (cgroupDir, error)
	// adoptGuard moves the started guard into its cgroup, when
	// guardBirthplace did not. The move may go on in the background:
	// wait says when it is done, and whether it failed.
	adoptGuard(ctx context.Context, pid int) (wait func() error)
}

// guard is boxrun's end of a running guard.
type guard struct {
	w *os.File
	// exited is closed once the guard has been reaped.
	exited chan struct{}
	// home is the guard's cgroup when it is boxrun's to remove (cgroupfs).
	home cgroupDir
	// adopted says when the guard is in its cgroup; nil when it was born
	// there, or when it has none.
	adopted func() error
	// boxKnown is set once the guard knows the box's directory.
	boxKnown bool
}

// startGuard starts the guard for box, before the box holds any process,
// so that its cgroup is being set up while the box is. executable ""
// means /proc/self/exe. record is the box's owner record to remove, ""
// for none; postMortem the run's post-mortem file (Options.PostMortem). The box's cgroups are boxrun's to remove with cgroupfs, and
// systemd's with a scope (which systemd removes itself and must find where
// it left them).
func startGuard(ctx context.Context, executable string, box Box, record, postMortem string) (*guard, error) {
	mode := KindSystemd
	if box.Unit() == "" {
		mode = KindCgroupfs
	}
	home, _ := box.(guardHome)
	var born cgroupDir
	if home != nil {
		var err error
		if born, err = home.guardBirthplace(); err != nil {
			return nil, err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		born.removeEmpty()
		return nil, err
	}
	if executable == "" {
		executable = "/proc/self/exe"
	}
	cmd, err := startIn(func() *exec.Cmd {
		return &exec.Cmd{
			Path:        executable,
			Args:        []string{"boxrun", GuardArg, box.Dir(), record, mode, born.dirOrEmpty(), postMortem},
			ExtraFiles:  []*os.File{r},
			SysProcAttr: &syscall.SysProcAttr{Setsid: true},
		}
	}, born)
	r.Close()
	if err != nil {
		w.Close()
		born.removeEmpty()
		return nil, err
	}
	g := &guard{w: w, exited: make(chan struct{}), home: born, boxKnown: box.Dir() != ""}
	// Reap it when it exits, without blocking boxrun.
	go func() {
		_ = cmd.Wait() // how the guard ended changes nothing for the run
		close(g.exited)
	}()
	if home != nil && born.rel == "" {
		g.adopted = home.adoptGuard(ctx, cmd.Process.Pid)
	}
	return g, nil
}

// startIn starts the command newCmd makes, born in the cgroup home
// (through CLONE_INTO_CGROUP, Linux 5.7) or, on older kernels, moved there
// at once; home's zero value starts it where boxrun is.
func startIn(newCmd func() *exec.Cmd, home cgroupDir) (*exec.Cmd, error) {
	cmd := newCmd()
	if home.rel == "" {
		return cmd, cmd.Start()
	}
	fd, err := os.Open(home.dir())
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", home.dir(), err)
	}
	defer fd.Close()
	born := *cmd.SysProcAttr
	born.UseCgroupFD, born.CgroupFD = true, int(fd.Fd())
	cmd.SysProcAttr = &born
	if err := cmd.Start(); err == nil {
		return cmd, nil
	}
	cmd = newCmd()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(home.file("cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		_ = cmd.Process.Kill() // the guard never got its cgroup: it is stopped, and the move's error is the one to report
		_ = cmd.Wait()
		return nil, fmt.Errorf("moving the guard into %s: %w", home.dir(), err)
	}
	return cmd, nil
}

// settle tells the guard where the box is, once the box holds its
// command, and waits until the guard is in its own cgroup. An error means
// it stayed in boxrun's: it guards the box as before, but dies with a
// caller stopped as a unit.
func (g *guard) settle(boxDir string) error {
	if g == nil {
		return nil
	}
	if !g.boxKnown && boxDir != "" {
		_, _ = g.w.Write([]byte(boxDir + "\n")) // fails only when the guard is gone: nothing left to tell
		g.boxKnown = true
	}
	if g.adopted == nil {
		return nil
	}
	err := g.adopted()
	g.adopted = nil
	return err
}

// guardExitWait is how long boxrun waits for its released guard to exit
// before it removes the guard's cgroup.
const guardExitWait = 2 * time.Second

// release tells the guard boxrun is done with the box and lets it go; a
// guard's cgroup that is boxrun's is removed once the guard has exited.
func (g *guard) release() {
	if g == nil {
		return
	}
	if g.adopted != nil {
		_ = g.adopted() // the job must be done before the scope can go
	}
	_, _ = g.w.Write([]byte{guardDone}) // likewise: a guard gone needs no word
	g.w.Close()
	if g.home.rel == "" {
		return
	}
	select {
	case <-g.exited:
		_ = g.home.remove() // a guard's cgroup left behind is boxrun gc's (see boxes)
	case <-time.After(guardExitWait):
	}
}

// runGuard is the guard's whole life (see GuardArg). Its arguments: the
// box's directory ("" until boxrun sends it), the owner record, the
// backend kind, its own cgroup when that is its to remove (""), and the
// run's post-mortem file ("" for none: see Options.PostMortem). When
// boxrun dies first and the run has a post-mortem file, report (when not
// nil) gets what the guard saw of the box before it emptied it.
func runGuard(args []string, report func(PostMortem)) int {
	if len(args) != 7 {
		return 125
	}
	pipe := os.NewFile(3, "boxrun-guard")
	if pipe == nil {
		return 125
	}
	// boxrun is the guard's parent until it dies: who to ask, then, what
	// it died of.
	boxrun := os.Getppid()
	boxrunStart, _ := procStartTime(boxrun)
	data, _ := io.ReadAll(pipe) // until boxrun closes it, or dies
	if len(data) > 0 && data[len(data)-1] == guardDone {
		return 0
	}
	sig := deathSignal(boxrun, boxrunStart)
	boxDir := lastLine(args[2], data)
	record, kind, home, postMortem := args[3], args[4], args[5], args[6]
	code := 0
	var pm PostMortem
	if boxDir != "" {
		pm = lookAtBox(boxDir)
		if pm.CleanupErr = cleanUpBox(boxDir, record, kind); pm.CleanupErr != nil {
			code = 1
		}
	}
	if home != "" && leaveCgroup(home) != nil {
		code = 1
	}
	if postMortem != "" && report != nil {
		pm.File, pm.Backend, pm.BoxrunPID, pm.BoxrunSignal = postMortem, kind, boxrun, sig
		pm.Kernel = probe.Release()
		report(pm)
	}
	return code
}

// lastLine is the last complete line boxrun sent (the box's directory), or
// first when it sent none.
func lastLine(first string, data []byte) string {
	lines := bytes.Split(data, []byte("\n"))
	for i := len(lines) - 2; i >= 0; i-- { // the last element follows the last "\n"
		if len(lines[i]) > 0 {
			return string(lines[i])
		}
	}
	return first
}

// cleanUpBox does what boxrun would have: thaws, resumes and kills all in
// the box at dir, drops its record, and removes a cgroupfs box.
func cleanUpBox(dir, record, kind string) error {
	cg := cgroupDir{mount: dir, rel: "/"}
	// Nothing may stay frozen or stopped: thaw and resume first, then
	// kill everything (a process frozen by backpressure would die of
	// SIGKILL as it is, but a frozen cgroup keeps the box populated on
	// kernels that kill each process).
	cg.thaw()
	_ = cg.signal(syscall.SIGCONT) // best effort: the kill below ends a stopped process too
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cg.kill(ctx); err != nil {
		return err
	}
	// The box is empty: no record of it may stay ("" when none was made).
	if record != "" {
		_ = os.Remove(record) // a record left names no live box: status skips it, gc prunes it
	}
	// systemd removes an empty scope's cgroup itself, and its slice's is
	// never ours; a cgroupfs box is, and so is its slice directory once no
	// other box is in it.
	if kind != KindCgroupfs {
		return nil
	}
	return cg.remove()
}

// thaw sets cgroup.freeze to 0 in the cgroup and every cgroup below it
// that is frozen.
func (c cgroupDir) thaw() {
	_ = filepath.WalkDir(c.dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		f := filepath.Join(p, "cgroup.freeze")
		if v, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(v)) == "1" {
			_ = os.WriteFile(f, []byte("0"), 0) // best effort: SIGKILL ends a frozen process too
		}
		return nil
	})
}

// leaveCgroup moves this process out of its own cgroup at dir, into the
// parent, and removes it. cgroup v2 lets a process into the parent only
// when that holds no controllers for its children or is the root; where it
// does not, the empty cgroup is left when this process exits, for boxrun
// gc.
func leaveCgroup(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.WriteFile(filepath.Join(parent, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return fmt.Errorf("leaving cgroup %s: %w", dir, err)
	}
	return cgroupDir{mount: dir, rel: "/"}.remove()
}

// dirOrEmpty is the cgroup's directory, "" for the zero cgroupDir.
func (c cgroupDir) dirOrEmpty() string {
	if c.rel == "" {
		return ""
	}
	return c.dir()
}

// removeEmpty removes a cgroup that holds nothing (one made for a guard
// that did not start); the zero cgroupDir is left alone.
func (c cgroupDir) removeEmpty() {
	if c.rel != "" {
		_ = os.Remove(c.dir()) // an empty cgroup left behind is boxrun gc's
	}
}
