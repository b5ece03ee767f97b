//go:build boxrunguest

package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalsRoot is where the tracer writes each user's records.
const signalsRoot = "/run/boxrun/signals"

// tracedSignal is one entry of the report's signals.
type tracedSignal struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	Signal string `json:"signal"`
	Code   string `json:"code"`
	Kernel bool   `json:"kernel"`
	Sender struct {
		PID  int     `json:"pid"`
		Comm string  `json:"comm"`
		UID  int     `json:"uid"`
		Unit *string `json:"unit"`
	} `json:"sender"`
}

// signalReport is the part of --report-json these scenarios check.
type signalReport struct {
	PID          int            `json:"pid"`
	ExitCode     int            `json:"exit_code"`
	Signal       *string        `json:"signal"`
	Signals      []tracedSignal `json:"signals"`
	SignalTracer bool           `json:"signal_tracer"`
	Diagnosis    []struct {
		Kind    string   `json:"kind"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	} `json:"diagnosis"`
}

// diagnosis returns the message and details of the diagnosis of kind.
func (r signalReport) diagnosis(kind string) (string, bool) {
	for _, d := range r.Diagnosis {
		if d.Kind == kind {
			return d.Message + "\n" + strings.Join(d.Details, "\n"), true
		}
	}
	return "", false
}

// TestSignalTracerNamesSender (issue 18, item 2): the signal tracer is
// loaded by this kernel — installed through the system manager with
// systemd, run in the background without — and a run's report names who
// sent the SIGKILLs: a kill -9 from another process, as root, to a child
// in the box, and timeout -s KILL inside it. With systemd the runs are the
// unprivileged user's, whose records only they may read. Root's mode and
// the cgroupfs boot run it; the user's mode cannot install a system
// service (integration/ leaves it out there).
func TestSignalTracerNamesSender(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it installs the signal tracer (integration/ runs it in the root and cgroupfs modes only)")
	}
	bin := boxrunBin(t)
	systemd := mode(t) == "root"
	if systemd {
		out, err := exec.Command(bin, "install", "signal-tracer").CombinedOutput()
		t.Logf("boxrun install signal-tracer: %v\n%s", err, out)
		if err != nil || !strings.Contains(string(out), "installed, enabled and started boxrun-signals.service") {
			t.Fatalf("boxrun install signal-tracer: %v: %s", err, out)
		}
		t.Cleanup(func() { uninstallTracer(t, bin) })
		if state := unitState(t, "ActiveState"); state != "active" {
			t.Fatalf("boxrun-signals.service is %s after install, want active\n%s", state, journal(t))
		}
	} else {
		startTracer(t, bin)
	}

	// Where the user's runs write their reports.
	uid := 0
	if systemd {
		uid = 1500
	}
	dir, err := os.MkdirTemp("/tmp", "boxrun-signals-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) (*exec.Cmd, string) {
		report := filepath.Join(dir, name+".json")
		backend := backendArgs(t)
		if systemd {
			backend = []string{"--backend", "systemd", "--user"}
		}
		full := append([]string{bin}, backend...)
		full = append(full, "-q", "--report-json", report, "--")
		full = append(full, args...)
		if systemd {
			full = append([]string{"setpriv", "--reuid=1500", "--regid=1500", "--init-groups",
				"env", "-i", "PATH=" + os.Getenv("PATH"), "HOME=/home/boxtest", "XDG_RUNTIME_DIR=/run/user/1500", "BOXRUN_SIZES=off"}, full...)
		}
		cmd := exec.Command(full[0], full[1:]...)
		return cmd, report
	}
	read := func(cmd *exec.Cmd, report string, out *strings.Builder) signalReport {
		t.Helper()
		t.Logf("%s -> %v\n%s", strings.Join(cmd.Args, " "), cmd.ProcessState, out.String())
		data, err := os.ReadFile(report)
		if err != nil {
			t.Fatalf("no report: %v", err)
		}
		t.Logf("report.json:\n%s", data)
		var rep signalReport
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		if !rep.SignalTracer {
			t.Errorf("signal_tracer is false: the run did not find %s/%d", signalsRoot, uid)
		}
		return rep
	}

	// 1. kill -9, from a process of root's outside the box, to a child.
	pidFile := filepath.Join(dir, "sleep.pid")
	cmd, report := run("kill", "sh", "-c", `sleep 30 & echo $! > `+pidFile+`; wait`)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sleepPID := waitPidFile(t, pidFile)
	// Let the tracer's walk of the cgroup tree see the box.
	time.Sleep(1500 * time.Millisecond)
	kill := exec.Command("kill", "-9", strconv.Itoa(sleepPID))
	if err := kill.Run(); err != nil {
		t.Fatalf("kill -9 %d: %v", sleepPID, err)
	}
	_ = cmd.Wait()
	rep := read(cmd, report, &out)
	found := false
	for _, s := range rep.Signals {
		if s.PID != sleepPID {
			continue
		}
		found = true
		if s.Signal != "SIGKILL" || s.Kernel || s.Code != "SI_USER" || s.Comm != "sleep" ||
			s.Sender.PID != kill.Process.Pid || s.Sender.Comm != "kill" || s.Sender.UID != 0 {
			t.Errorf("the signal to the sleep: %+v; want SIGKILL, SI_USER, not the kernel's, from pid %d (kill), uid 0", s, kill.Process.Pid)
		}
	}
	if !found {
		t.Errorf("no signal to the sleep (pid %d) in the report: %+v", sleepPID, rep.Signals)
	}
	want := fmt.Sprintf("pid %d sleep was killed by SIGKILL from pid %d (kill), uid 0", sleepPID, kill.Process.Pid)
	if msg, ok := rep.diagnosis("signal"); !ok || !strings.Contains(msg, want) {
		t.Errorf("diagnosis %+v: want a signal line saying %q", rep.Diagnosis, want)
	}

	// 2. timeout -s KILL in the box: it kills the sleep, then its own
	// process group, itself included.
	cmd, report = run("timeout", "timeout", "-s", "KILL", "2", "sleep", "30")
	out.Reset()
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	rep = read(cmd, report, &out)
	if rep.Signal == nil || *rep.Signal != "SIGKILL" {
		t.Errorf("the command's signal: %v, want SIGKILL", rep.Signal)
	}
	want = fmt.Sprintf("timeout was killed by SIGKILL from pid %d (timeout), uid %d", rep.PID, uid)
	if msg, ok := rep.diagnosis("sigkill"); !ok || !strings.Contains(msg, want) {
		t.Errorf("diagnosis %+v: want the sigkill line to say %q", rep.Diagnosis, want)
	}
	bySleep := false
	for _, s := range rep.Signals {
		if s.Comm == "sleep" && s.Signal == "SIGKILL" && s.Sender.Comm == "timeout" && s.Sender.PID == rep.PID && !s.Kernel {
			bySleep = true
		}
	}
	if !bySleep {
		t.Errorf("signals %+v: want the sleep's SIGKILL from pid %d (timeout)", rep.Signals, rep.PID)
	}

	// Only the user reads the records.
	fi, err := os.Stat(filepath.Join(signalsRoot, strconv.Itoa(uid)))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o700 || int(st.Uid) != uid {
		t.Errorf("%s/%d: mode %v, owner %d; want 0700 and %d", signalsRoot, uid, fi.Mode().Perm(), st.Uid, uid)
	}
	t.Logf("figures: tracer %s; kill -9 named pid %d (kill); timeout named pid %d (timeout)",
		map[bool]string{true: "installed through systemd", false: "run in the background"}[systemd], kill.Process.Pid, rep.PID)

	if systemd {
		uninstallTracer(t, bin)
		if _, err := os.Stat("/etc/systemd/system/boxrun-signals.service"); err == nil {
			t.Error("the unit file is still there after uninstall")
		}
		if state := unitState(t, "LoadState"); state != "not-found" {
			t.Errorf("boxrun-signals.service is %s after uninstall, want not-found", state)
		}
		if _, err := os.Stat(signalsRoot); err == nil {
			t.Errorf("%s is still there after uninstall", signalsRoot)
		}
	}
}

// TestSignalSenderHintWithoutTracer: with no tracer, a SIGKILL's report
// says how to have its sender named, in one line, and nothing fails.
func TestSignalSenderHintWithoutTracer(t *testing.T) {
	if _, err := os.Stat(signalsRoot); err == nil {
		t.Fatalf("%s exists: a tracer ran before this scenario and was not uninstalled", signalsRoot)
	}
	pf := itPolicy(t, "")
	path := filepath.Join(t.TempDir(), "report.json")
	r := boxrun(t, "-q", "--report-json", path, "-f", pf, "-p", "it", "--", "sh", "-c", "kill -KILL $$")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep signalReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	msg, ok := rep.diagnosis("sigkill")
	if r.code != 137 || !ok || rep.SignalTracer || len(rep.Signals) != 0 {
		t.Errorf("exit %d, report %s; want 137, a sigkill line, no tracer, no signals", r.code, data)
	}
	if n := strings.Count(r.stderr, "sudo boxrun install signal-tracer"); n != 1 || !strings.Contains(msg, "sudo boxrun install signal-tracer") {
		t.Errorf("the hint is in the text %d times (want once), and in the diagnosis: %q", n, msg)
	}
}

// startTracer runs boxrun signal-tracer in the background, as a boot
// without systemd must, until the test ends.
func startTracer(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.Command(bin, "signal-tracer")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	var lines strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "tracing fatal signals") {
				ready <- ""
			}
		}
		close(ready)
	}()
	select {
	case _, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("boxrun signal-tracer ended before it was ready: %v\n%s", cmd.ProcessState, lines.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("boxrun signal-tracer not ready within 30s\n%s", lines.String())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("boxrun signal-tracer on SIGTERM: %v, want exit 0", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("boxrun signal-tracer did not exit within 10s of SIGTERM")
		}
		// What uninstall does with systemd.
		os.RemoveAll(signalsRoot)
	})
}

func uninstallTracer(t *testing.T, bin string) {
	out, err := exec.Command(bin, "uninstall", "signal-tracer").CombinedOutput()
	t.Logf("boxrun uninstall signal-tracer: %v\n%s", err, out)
	if err != nil {
		t.Errorf("boxrun uninstall signal-tracer: %v: %s", err, out)
	}
}

// unitState is a property of boxrun-signals.service, as systemctl shows it.
func unitState(t *testing.T, prop string) string {
	out, err := exec.Command("systemctl", "show", "-p", prop, "--value", "boxrun-signals.service").Output()
	if err != nil {
		t.Fatalf("systemctl show: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func journal(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "journalctl", "--no-pager", "-n", "30", "-u", "boxrun-signals.service").CombinedOutput()
	return string(out)
}

// waitPidFile waits for a shell to write a pid to path.
func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			return pid
		}
	}
	t.Fatalf("no pid in %s within 30s", path)
	return 0
}
