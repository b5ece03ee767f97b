//go:build boxrunguest

package guest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/ptytest"
)

// pidsIn reads the pids a script wrote, one per word.
func pidsIn(t *testing.T, file string) []int {
	t.Helper()
	data, _ := os.ReadFile(file)
	var pids []int
	for _, s := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(s); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitForPids waits until the started cmd's script has written n pids to
// pidfile; if it never does, it kills cmd and fails the test with what it
// printed.
func waitForPids(t *testing.T, cmd *exec.Cmd, pidfile string, n int, out fmt.Stringer) []int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if pids := pidsIn(t, pidfile); len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the command never started: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nothingLeft fails unless, within a few seconds, none of pids runs and no
// more boxes exist than before.
func nothingLeft(t *testing.T, pids []int, boxesBefore int) {
	t.Helper()
	var alive []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive = nil
		for _, pid := range pids {
			if st := procState(pid); st != "" && st != "Z" {
				alive = append(alive, fmt.Sprintf("%d (%s)", pid, st))
			}
		}
		b := boxes(t)
		if len(alive) == 0 && len(b) <= boxesBefore {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("left behind: processes %v, boxes %v", alive, b)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCommandKilledBySignal: the command dies by a signal; boxrun ends as
// a shell reads 128+N (it dies of SIGTERM itself, exits 137 and 139 for
// SIGKILL and SIGSEGV), and its children and box are gone.
func TestCommandKilledBySignal(t *testing.T) {
	pf := itPolicy(t, "")
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGSEGV} {
		t.Run(sig.String(), func(t *testing.T) {
			before := len(boxes(t))
			pidfile := filepath.Join(t.TempDir(), "pids")
			script := fmt.Sprintf(`sleep 300 & echo $$ $! > %s; kill -%d $$`, pidfile, int(sig))
			r := boxrun(t, "-q", "-f", pf, "-p", "it", "--", "sh", "-c", script)
			if want := 128 + int(sig); r.code != want {
				t.Errorf("exit %d, want %d", r.code, want)
			}
			nothingLeft(t, pidsIn(t, pidfile), before)
		})
	}
}

// TestBoxrunSignalledTwice: a signal that arrives twice in a row (an
// impatient Ctrl-C, a supervisor's TERM then TERM) still gives the
// command's status and leaves nothing behind.
func TestBoxrunSignalledTwice(t *testing.T) {
	pf := itPolicy(t, "")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(signalName(sig), func(t *testing.T) {
			before := len(boxes(t))
			pidfile := filepath.Join(t.TempDir(), "pids")
			// The command's child ignores nothing and outlives it: a leftover.
			script := fmt.Sprintf(`sleep 300 & echo $$ $! > %s; wait`, pidfile)
			cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "-f", pf, "-p", "it", "--", "sh", "-c", script)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForPids(t, cmd, pidfile, 2, &out)
			cmd.Process.Signal(sig)
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("boxrun did not return within 30s of two %v", sig)
			}
			if want := 128 + int(sig); shellCode(cmd.ProcessState) != want {
				t.Errorf("exit %d, want %d (the command's death by %v); output %q", shellCode(cmd.ProcessState), want, sig, out.String())
			}
			nothingLeft(t, pidsIn(t, pidfile), before)
		})
	}
}

// TestTerminalClosing runs boxrun on a pseudo-terminal and closes the
// terminal, as closing a terminal window does: the kernel hangs up the
// session; nothing of the run may be left.
func TestTerminalClosing(t *testing.T) {
	pf := itPolicy(t, "")
	before := len(boxes(t))
	master, slave := openPTY(t)
	pidfile := filepath.Join(t.TempDir(), "pids")
	script := fmt.Sprintf(`sleep 300 & echo $$ $! > %s; wait`, pidfile)
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--", "sh", "-c", script)...)
	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, errFile
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	// Nothing reads the terminal: what boxrun writes there fits its buffer
	// (its stderr goes to a file), and a reader blocked on the master would
	// keep it open past Close.
	waitForPids(t, cmd, pidfile, 2, noOutput{})
	master.Close() // the window closes
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		ps, _ := exec.Command("ps", "-eo", "pid,ppid,pgid,sid,stat,wchan:30,args").CombinedOutput()
		cmd.Process.Signal(syscall.SIGABRT)
		<-done
		data, _ := os.ReadFile(errFile.Name())
		t.Fatalf("boxrun did not return within 30s of the terminal closing\n%s\nboxrun's stderr:\n%s", ps, data)
	}
	t.Logf("boxrun exited %d after the hangup", shellCode(cmd.ProcessState))
	nothingLeft(t, pidsIn(t, pidfile), before)
}

// TestTerminalClosingUnderAShell closes the terminal of an interactive bash
// that runs boxrun in the foreground: bash sends SIGHUP to its job, then
// dies, and the kernel sends SIGHUP to the foreground group. The command
// gets those two from them, none more from boxrun, and boxrun does not take
// the second for insisting (it warned "SIGHUP again" and signalled the
// whole box); nothing of the run is left.
func TestTerminalClosingUnderAShell(t *testing.T) {
	pf := itPolicy(t, "")
	before := len(boxes(t))
	dir := t.TempDir()
	master, slave := openPTY(t)
	// The command counts its SIGHUPs; a second after the first it exits 3.
	script := filepath.Join(dir, "count")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
trap 'echo HUP >> "$1"' HUP
echo $$ > "$1.pid"
while [ ! -s "$1" ]; do sleep 0.1; done
sleep 1
exit 3
`), 0o755); err != nil {
		t.Fatal(err)
	}
	hups := filepath.Join(dir, "hups")
	errFile := filepath.Join(dir, "stderr")
	cmd := exec.Command("bash", "--norc", "--noprofile", "-i")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	line := strings.Join(append(append([]string{boxrunBin(t)}, backendArgs(t)...), "-f", pf, "-p", "it", "--", script, hups), " ")
	if _, err := fmt.Fprintf(master, "%s 2>%s\n", line, errFile); err != nil {
		t.Fatal(err)
	}
	waitForPids(t, cmd, hups+".pid", 1, noOutput{})
	boxrunPid := 0
	if out, err := exec.Command("pgrep", "-n", "-f", "^"+boxrunBin(t)+" ").Output(); err == nil {
		boxrunPid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	master.Close() // the window closes
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("bash did not end within 30s of the terminal closing")
	}
	// boxrun outlives bash until its command exits, a second later.
	for deadline := time.Now().Add(30 * time.Second); boxrunPid != 0 && procState(boxrunPid) != "" && procState(boxrunPid) != "Z"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("boxrun (pid %d) still runs 30s after the terminal closed", boxrunPid)
		}
	}
	got, _ := os.ReadFile(hups)
	stderr, _ := os.ReadFile(errFile)
	if n := strings.Count(string(got), "HUP"); n < 1 || n > 2 {
		t.Errorf("the command got SIGHUP %d times; want 1 or 2 (bash's and the kernel's), none from boxrun\nboxrun's stderr:\n%s", n, stderr)
	}
	if strings.Contains(string(stderr), "again") || strings.Contains(string(stderr), "killing every process") {
		t.Errorf("boxrun took the hang-up's SIGHUPs for insisting:\n%s", stderr)
	}
	t.Logf("the command got %d SIGHUP(s); boxrun's stderr:\n%s", strings.Count(string(got), "HUP"), stderr)
	nothingLeft(t, pidsIn(t, hups+".pid"), before)
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := ptytest.Open()
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestStrictContainsBombs: under the built-in strict policy a fork bomb
// stops at pids.max and a memory bomb is killed at memory.max (with the
// whole box: memory.oom_group); boxrun stays responsive and reports both.
func TestStrictContainsBombs(t *testing.T) {
	self, _ := os.Executable()
	t.Run("fork bomb", func(t *testing.T) {
		before := len(boxes(t))
		// Every process forks two more until pids.max refuses, for ever;
		// after 5 s the user gives up with Ctrl-C (SIGINT to boxrun).
		errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-p", "strict", "--", "sh", "-c",
			`b() { b 2>/dev/null & b 2>/dev/null & wait; }; b`)...)
		cmd.Stdout, cmd.Stderr = errFile, errFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			ps, _ := exec.Command("sh", "-c", "ps -eo pid,ppid,pgid,stat,wchan:30,args | grep -v 'sh -c b()' | head -50").CombinedOutput()
			cmd.Process.Kill()
			<-done
			t.Fatalf("boxrun did not return within 2 minutes of SIGINT during a fork bomb\n%s", ps)
		}
		took := time.Since(start)
		data, _ := os.ReadFile(errFile.Name())
		stderr := string(data)
		if !strings.Contains(stderr, "fork failed") || !strings.Contains(stderr, "pids.max") {
			t.Errorf("the report does not say forks failed at pids.max:\n%s", stderr)
		}
		t.Logf("figures: fork bomb under strict (pids.max 512): contained; boxrun returned %.1fs after SIGINT, exit %d", took.Seconds(), shellCode(cmd.ProcessState))
		nothingLeft(t, nil, before)
	})
	t.Run("memory bomb", func(t *testing.T) {
		before := len(boxes(t))
		// strict throttles at memory.high (20%) and stops at memory.max
		// (25%) with no swap: a 2000M allocation crawls at the throttle
		// and is stopped at the latest at memory.max. The user gives up
		// after 10 s.
		dir := t.TempDir()
		errFile, err := os.Create(filepath.Join(dir, "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		reportFile := filepath.Join(dir, "report.json")
		cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-p", "strict", "--report-json", reportFile, "--", "sh", "-c",
			fmt.Sprintf(`%s=hog HOG_MB=2000 HOG_HOLD=10s %s >/dev/null 2>&1`, roleEnv, self))...)
		cmd.Stdout, cmd.Stderr = errFile, errFile
		cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		// The shell waits for its child, which sees no SIGINT from a kill
		// of boxrun alone (a terminal's Ctrl-C would reach it): the user
		// insists, as with Ctrl-C pressed again.
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		cmd.Process.Signal(syscall.SIGINT)
		insist := time.NewTicker(5 * time.Second)
		defer insist.Stop()
		giveUp := time.After(2 * time.Minute)
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			case <-insist.C:
				cmd.Process.Signal(syscall.SIGINT)
			case <-giveUp:
				ps, _ := exec.Command("ps", "-eo", "pid,ppid,pgid,stat,wchan:30,args").CombinedOutput()
				cmd.Process.Signal(syscall.SIGABRT)
				<-done
				data, _ := os.ReadFile(errFile.Name())
				t.Fatalf("boxrun did not return within 2 minutes of SIGINT during a memory bomb\n%s\n%s", ps, data)
			}
		}
		took := time.Since(start)
		data, _ := os.ReadFile(errFile.Name())
		var rep struct {
			Policy struct {
				MemoryMax *uint64 `json:"memory_max"`
			} `json:"policy"`
			Memory struct {
				PeakBytes uint64 `json:"peak_bytes"`
				Events    struct {
					High    uint64 `json:"high"`
					OOMKill uint64 `json:"oom_kill"`
				} `json:"events"`
			} `json:"memory"`
		}
		raw, _ := os.ReadFile(reportFile)
		if err := json.Unmarshal(raw, &rep); err != nil || rep.Policy.MemoryMax == nil {
			t.Fatalf("report: %v\n%s\nstderr:\n%s", err, raw, data)
		}
		t.Logf("figures: memory bomb (2000M) under strict: peak %dM of max %dM, throttled %d times, %d OOM kills; boxrun returned %.1fs after the first SIGINT",
			rep.Memory.PeakBytes>>20, *rep.Policy.MemoryMax>>20, rep.Memory.Events.High, rep.Memory.Events.OOMKill, took.Seconds())
		if rep.Memory.PeakBytes > *rep.Policy.MemoryMax {
			t.Errorf("peak %d above memory.max %d", rep.Memory.PeakBytes, *rep.Policy.MemoryMax)
		}
		if rep.Memory.Events.High == 0 && rep.Memory.Events.OOMKill == 0 {
			t.Errorf("neither throttled nor OOM-killed: the bomb was not contained\n%s", data)
		}
		if !strings.Contains(string(data), "throttled") && !strings.Contains(string(data), "OOM") {
			t.Errorf("the report does not say what stopped the bomb:\n%s", data)
		}
		nothingLeft(t, nil, before)
	})
}

// TestOrphanedBoxIsCollected: when boxrun and its guard are both killed
// (nothing can then clean up), `boxrun status` shows the box as orphaned and
// `boxrun gc` kills what runs in it and removes it.
func TestOrphanedBoxIsCollected(t *testing.T) {
	pf := itPolicy(t, "")
	before := len(boxes(t))
	pidfile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "-f", pf, "-p", "it", "--", "sh", "-c",
		fmt.Sprintf(`sleep 300 & echo $$ $! > %s; wait`, pidfile))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForPids(t, cmd, pidfile, 2, noOutput{})
	guards := guardPids(t)
	if len(guards) != 1 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("found guards %v, want the one of this run", guards)
	}
	syscall.Kill(guards[0], syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()

	r := boxrunRaw(t, "status", "--json")
	var list []struct {
		Cgroup string `json:"cgroup"`
		Owner  string `json:"owner"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Owner != "orphaned" {
		t.Errorf("status after boxrun and its guard died: %v %+v (err %v); want one orphaned box", r.code, list, err)
	}
	if r := boxrunRaw(t, "status"); !strings.Contains(r.stderr, "boxrun gc") {
		t.Errorf("status does not point to boxrun gc: %q", r.stderr)
	}
	r = boxrunRaw(t, "gc", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would remove") {
		t.Errorf("gc --dry-run: exit %d, stdout %q", r.code, r.stdout)
	}
	if len(boxes(t)) <= before {
		t.Fatalf("gc --dry-run removed the box")
	}
	r = boxrunRaw(t, "gc")
	if r.code != 0 || !strings.Contains(r.stdout, "removed") {
		t.Errorf("gc: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	nothingLeft(t, pidsIn(t, pidfile), before)
}

// guardPids lists the running boxrun guards.
func guardPids(t *testing.T) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(data, []byte("__boxrun-guard")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// noOutput stands for the output of a command whose output is not kept.
type noOutput struct{}

func (noOutput) String() string { return "(output not kept)" }

// TestManagerReexecDuringRun re-executes the service manager boxrun talks
// to (systemctl daemon-reexec, as a package upgrade does) while a command
// runs: boxrun's D-Bus connection drops. The run goes on, the command's
// exit status, output and report come through, and neither the scope nor
// boxrun's record of it is left afterwards (the sweep checks the record).
func TestManagerReexecDuringRun(t *testing.T) {
	if mode(t) == "cgroupfs" {
		t.Log("not applicable: the cgroupfs backend has no service manager connection to lose")
		return
	}
	pf := itPolicy(t, "")
	before := len(boxes(t))
	pidfile := filepath.Join(t.TempDir(), "pids")
	script := fmt.Sprintf(`sleep 300 & echo $$ $! > %s; sleep 3; echo finished; exit 7`, pidfile)
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--", "sh", "-c", script)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := waitForPids(t, cmd, pidfile, 2, &stderr)
	reexec := []string{"daemon-reexec"}
	if mode(t) == "user" {
		reexec = []string{"--user", "daemon-reexec"}
	}
	if out, err := exec.Command("systemctl", reexec...).CombinedOutput(); err != nil {
		t.Errorf("systemctl %v: %v\n%s", reexec, err, out)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("boxrun did not return within 60s after the manager re-executed; stderr:\n%s", stderr.String())
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code := shellCode(cmd.ProcessState); code != 7 {
		t.Errorf("exit %d, want the command's 7", code)
	}
	if !strings.Contains(stdout.String(), "finished") {
		t.Errorf("the command did not run to its end: stdout %q", stdout.String())
	}
	// Whether boxrun needs the manager again depends on a race: systemd
	// usually collects the emptied scope before boxrun would stop it, and
	// then nothing is asked over D-Bus at all. When it is asked, it
	// connects again and says so.
	t.Logf("connected again: %v", strings.Contains(stderr.String(), "manager was lost during the run"))
	if !strings.Contains(stderr.String(), "peak") {
		t.Errorf("no report after the connection was lost: stderr %q", stderr.String())
	}
	nothingLeft(t, pids, before)
}

// guardName matches the cgroup of a box's guard: the box's name with
// "-guard" before any ".scope".
var guardName = regexp.MustCompile(`^boxrun-\w+-[0-9a-f]{8}-guard(\.scope)?$`)

// guardCgroups lists the guards' cgroups that exist now.
func guardCgroups() []string { return cgroupsNamed(guardName) }

// inRootChild is a command running args in a new child cgroup of the root,
// /sys/fs/cgroup/NAME, removed when the test ends (without systemd).
func inRootChild(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	dir := "/sys/fs/cgroup/" + name
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return exec.Command("sh", append([]string{"-c", `echo $$ > ` + dir + `/cgroup.procs && exec "$@"`, "sh"}, args...)...)
}

// cgroupOf is the cgroup of a process, below the mount ("" once it is gone).
func cgroupOf(pid int) string {
	cg, err := cgroupfs.PidCgroup(pid)
	if err != nil {
		return ""
	}
	return cg
}

// scopeSuffix is ".scope" where boxes are scopes, else "".
func scopeSuffix(t *testing.T) string {
	if mode(t) == "cgroupfs" {
		return ""
	}
	return ".scope"
}

// TestStoppedCallerLeavesNoBox: the cgroup boxrun was started in (a
// terminal's or an editor's scope) is killed as a unit, as systemd-oomd,
// systemctl stop or a logout with KillUserProcesses=yes do: boxrun dies
// with it, but its guard lives in a cgroup of its own (issue #17, item 4),
// so the box and the guard's cgroup are gone shortly after.
func TestStoppedCallerLeavesNoBox(t *testing.T) {
	pf := itPolicy(t, "")
	pidfile := filepath.Join(t.TempDir(), "pids")
	args := append(append([]string{boxrunBin(t)}, backendArgs(t)...), "-q", "-f", pf, "-p", "it", "--", "sh", "-c",
		fmt.Sprintf(`sleep 300 & echo $$ $! > %s; wait`, pidfile))
	var cmd *exec.Cmd
	caller := fmt.Sprintf("itcaller-%08x", uint32(time.Now().UnixNano()))
	if sr := systemdRun(t, "--unit="+caller, "-p", "CollectMode=inactive-or-failed"); sr != nil {
		cmd = exec.Command(sr[0], append(sr[1:], args...)...)
	} else {
		// Without systemd: a child of the root holds the caller; the
		// boxes go below the root, which boxrun, no longer running
		// there, is told of.
		cmd = inRootChild(t, caller, args...)
		cmd.Env = append(os.Environ(), "BOXRUN_CGROUP_PARENT=/sys/fs/cgroup")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := waitForPids(t, cmd, pidfile, 2, noOutput{})
	box := cgroupOf(pids[0])
	callerCg := cgroupOf(cmd.Process.Pid)
	guards := guardPids(t)
	if len(guards) != 1 || box == "" || callerCg == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("box %q, caller %q, guards %v: want one box, boxrun in its caller's cgroup, one guard", box, callerCg, guards)
	}
	guard := cgroupOf(guards[0])
	t.Logf("figures: caller %s, box %s, guard %s", callerCg, box, guard)
	wantGuard := filepath.Join(filepath.Dir(box), strings.TrimSuffix(filepath.Base(box), ".scope")+"-guard"+scopeSuffix(t))
	if mode(t) == "cgroupfs" {
		wantGuard = "/" + filepath.Base(box) + "-guard"
	}
	if guard != wantGuard {
		t.Errorf("the guard runs in %q, want its own cgroup %q (the caller's is %q)", guard, wantGuard, callerCg)
	}
	// Kill the caller's cgroup as a unit: boxrun, and whatever else is in it.
	if err := os.WriteFile("/sys/fs/cgroup"+callerCg+"/cgroup.kill", []byte("1"), 0); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("killing the caller's cgroup %s: %v", callerCg, err)
	}
	cmd.Wait()
	var left []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		left = nil
		for _, cg := range []string{box, guard} {
			if _, err := os.Stat("/sys/fs/cgroup" + cg); err == nil {
				procs, _ := os.ReadFile("/sys/fs/cgroup" + cg + "/cgroup.procs")
				left = append(left, fmt.Sprintf("%s (processes %q)", cg, strings.Fields(string(procs))))
			}
		}
		for _, pid := range pids {
			if st := procState(pid); st != "" && st != "Z" {
				left = append(left, fmt.Sprintf("process %d (%s)", pid, st))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("60s after the caller's cgroup was killed, left: %v", left)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
