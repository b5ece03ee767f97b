package box

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/policy"
)

// TestMain lets the test binary act as boxrun's helper, as the real binary
// does, so that Run can be tested end to end with the none backend on any
// host (the real-kernel backends are tested in integration/). It also plays
// boxrun and a command on a terminal for TestTerminalSignalsReachTheCommandOnce.
func TestMain(m *testing.M) {
	if IsHelper(os.Args) {
		os.Exit(RunHelper(os.Args))
	}
	if file := os.Getenv(countSignalsEnv); file != "" {
		os.Exit(countSignals(file))
	}
	if dir := os.Getenv(runOnTerminalEnv); dir != "" {
		os.Exit(runOnTerminal(dir))
	}
	os.Exit(m.Run())
}

func testOptions(t *testing.T, args ...string) (Options, *os.File) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	adj := 500
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Backend:    NewNone("unit test"),
		Policy:     &policy.Resolved{Name: "unit", OOMScoreAdj: &adj, PidsMax: u64(100000), Leftovers: "kill", LeftoversGrace: time.Second},
		Args:       args,
		Stdout:     out,
		Stderr:     out,
		Executable: exe,
	}, out
}

func readOut(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunExitStatus(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		startCode int // non-zero: Run must fail with this StartError code
	}{
		{"success", []string{"true"}, 0, 0},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7, 0},
		{"killed by SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 143, 0},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137, 0},
		{"not found", []string{"boxrun-no-such-command"}, 0, 127},
		{"not found by path", []string{filepath.Join(dir, "missing")}, 0, 127},
		{"not executable", []string{noexec}, 0, 126},
		{"a directory", []string{dir}, 0, 126},
		{"empty command", []string{}, 0, 125},
		{"empty name", []string{""}, 0, 125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := testOptions(t, tt.args...)
			res, err := Run(context.Background(), o)
			if tt.startCode != 0 {
				var se *StartError
				if !errors.As(err, &se) || se.Code != tt.startCode {
					t.Fatalf("got %v, %v; want StartError %d", res, err, tt.startCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.code {
				t.Fatalf("exit code %d, want %d", res.ExitCode, tt.code)
			}
		})
	}
}

func TestRunAppliesOOMScoreAdjAndEnv(t *testing.T) {
	o, out := testOptions(t, "sh", "-c", `cat /proc/self/oom_score_adj; echo "policy=$BOXRUN_POLICY"`)
	res, err := Run(context.Background(), o)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v %v", res, err)
	}
	got := readOut(t, out)
	if !strings.Contains(got, "500\n") || !strings.Contains(got, "policy=unit\n") {
		t.Fatalf("output %q: want oom_score_adj 500 and BOXRUN_POLICY=unit", got)
	}
}

func TestRunStrictRefusesBeforeTheCommandRuns(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	o, _ := testOptions(t, "touch", marker)
	o.Strict = true
	_, err := Run(context.Background(), o)
	var se *StartError
	if !errors.As(err, &se) || se.Code != 125 || !strings.Contains(se.Error(), "pids.max") {
		t.Fatalf("got %v; want StartError 125 naming pids.max", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the command ran although --strict refused")
	}
}

func TestRunForwardsSignals(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	o, _ := testOptions(t, "sh", "-c", `trap 'exit 42' TERM; touch `+ready+`; while :; do sleep 0.05; done`)
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(ready); err == nil {
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 42 {
		t.Fatalf("exit code %d; want 42 from the command's TERM trap", res.ExitCode)
	}
}

func TestInsistenceCountsOnlySignalsInARow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name  string
		after []time.Duration // since the previous signal
		want  []int
	}{
		{"one", []time.Duration{0}, []int{1}},
		{"three quick", []time.Duration{0, time.Second, time.Second}, []int{1, 2, 3}},
		{"keeps killing", []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond, 4 * time.Second}, []int{1, 2, 3, 4}},
		{"a pause starts over", []time.Duration{0, time.Second, insistWindow, time.Second}, []int{1, 2, 1, 2}},
		{"a REPL interrupted now and then", []time.Duration{0, 10 * time.Second, time.Minute, 6 * time.Second}, []int{1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ins insistence
			now := t0
			for i, d := range tt.after {
				now = now.Add(d)
				if got := ins.next(now); got != tt.want[i] {
					t.Fatalf("signal %d: rank %d, want %d", i+1, got, tt.want[i])
				}
			}
		})
	}
}

// recordingBox is a Box that records what forwardSignals asks of it.
type recordingBox struct {
	Box
	signals chan syscall.Signal
	kills   chan struct{}
}

func (b *recordingBox) Signal(_ context.Context, sig syscall.Signal) error {
	b.signals <- sig
	return nil
}

func (b *recordingBox) Kill(context.Context) error {
	b.kills <- struct{}{}
	return nil
}

func TestForwardSignalsEscalates(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	box := &recordingBox{signals: make(chan syscall.Signal, 1), kills: make(chan struct{}, 1)}
	sigs := make(chan os.Signal, 3)
	done := make(chan struct{})
	defer close(done)
	var warnings []string
	warned := make(chan struct{}, 3)
	var first atomic.Int32
	go forwardSignals(sigs, child.Process, noTerminal, done, box, func(s string) { warnings = append(warnings, s); warned <- struct{}{} }, &first)

	sigs <- syscall.SIGTERM // first: to the command only
	child.Wait()
	if ws := child.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("the command ended with %v, want death by SIGTERM", child.ProcessState)
	}
	sigs <- syscall.SIGTERM // second: the whole box
	if got := <-box.signals; got != syscall.SIGTERM {
		t.Fatalf("the box got %v, want SIGTERM", got)
	}
	<-warned
	sigs <- syscall.SIGTERM // third: kill the box
	select {
	case <-box.kills:
	case <-time.After(5 * time.Second):
		t.Fatal("a third SIGTERM did not kill the box")
	}
	<-warned
	if len(warnings) != 2 || !strings.Contains(warnings[0], "again") || !strings.Contains(warnings[1], "killing every process") {
		t.Errorf("warnings %q: want one on the second and one on the third signal", warnings)
	}
	if got := syscall.Signal(first.Load()); got != syscall.SIGTERM {
		t.Errorf("the first signal recorded is %v, want SIGTERM (the report says boxrun was interrupted by it)", got)
	}
}

func TestWithBoxEnv(t *testing.T) {
	got := withBoxEnv(
		[]string{"PATH=/bin", "BOXRUN_CGROUP=/stale", "HOME=/h", "BOXRUN_UNIT=old.scope", "BOXRUN_POLICY=build", "BOXRUN_CGROUP_PARENT=/p"},
		[]string{"BOXRUN_POLICY=tests", "BOXRUN_UNIT=", "BOXRUN_CGROUP=/boxrun.slice/boxrun-tests-1a2b3c4d"})
	want := []string{"PATH=/bin", "HOME=/h", "BOXRUN_CGROUP_PARENT=/p", "BOXRUN_POLICY=tests", "BOXRUN_UNIT=", "BOXRUN_CGROUP=/boxrun.slice/boxrun-tests-1a2b3c4d"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withBoxEnv = %q\nwant          %q", got, want)
	}
}

func TestBoxOf(t *testing.T) {
	tests := []struct{ cg, box, unit string }{
		{"/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
			"/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope", "boxrun-tests-1a2b3c4d.scope"},
		{"/boxrun.slice/boxrun-tests-1a2b3c4d/boxrun.paused", "/boxrun.slice/boxrun-tests-1a2b3c4d", ""},
		{"/user.slice/user-1000.slice/session-2.scope", "", ""},
		{"/user.slice", "", ""},
		{"/boxrun.slice/boxrun-tests-nothex00.scope", "", ""},
		// The innermost box: a nested run's, in the outer box.
		{"/boxrun.slice/boxrun-build-1a2b3c4d.scope/boxrun-strict-5e6f7a8b/boxrun.outer",
			"/boxrun.slice/boxrun-build-1a2b3c4d.scope/boxrun-strict-5e6f7a8b", ""},
		{"/boxrun.slice/boxrun-build-1a2b3c4d.scope/boxrun.outer", "/boxrun.slice/boxrun-build-1a2b3c4d.scope", "boxrun-build-1a2b3c4d.scope"},
		// A guard's cgroup is no box.
		{"/boxrun.slice/boxrun-build-1a2b3c4d-guard.scope", "", ""},
	}
	for _, tt := range tests {
		box, unit, ok := boxOf(tt.cg)
		if box != tt.box || unit != tt.unit || ok != (tt.box != "") {
			t.Errorf("boxOf(%q) = %q, %q, %v; want %q, %q", tt.cg, box, unit, ok, tt.box, tt.unit)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		ws   syscall.WaitStatus
		code int
		sig  syscall.Signal
	}{
		{"exit 0", 0, 0, 0},
		{"exit 7", 7 << 8, 7, 0},
		{"SIGTERM", syscall.WaitStatus(syscall.SIGTERM), 143, syscall.SIGTERM},
		{"SIGKILL", syscall.WaitStatus(syscall.SIGKILL), 137, syscall.SIGKILL},
		{"SIGSEGV with core", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 139, syscall.SIGSEGV},
	}
	for _, tt := range tests {
		code, sig := exitCode(tt.ws)
		if code != tt.code || sig != tt.sig {
			t.Errorf("%s: got %d/%v, want %d/%v", tt.name, code, sig, tt.code, tt.sig)
		}
	}
}

// managedNone is the none backend as if a systemd manager of version v
// made its boxes.
type managedNone struct {
	Backend
	v string
}

func (b managedNone) ManagerVersion() string { return b.v }

// TestRunNamesVersions: a run's result names the kernel it ran on and,
// when a systemd manager made the box, that manager's version.
func TestRunNamesVersions(t *testing.T) {
	tests := []struct {
		name    string
		backend func(Backend) Backend
		systemd string
	}{
		{"no manager", func(b Backend) Backend { return b }, ""},
		{"a systemd manager", func(b Backend) Backend { return managedNone{b, "252.39-1~deb12u1"} }, "252.39-1~deb12u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := testOptions(t, "true")
			o.Backend = tt.backend(o.Backend)
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kernel == "" || res.Kernel != probe.Release() {
				t.Errorf("kernel %q, want this one's release %q", res.Kernel, probe.Release())
			}
			if res.Systemd != tt.systemd {
				t.Errorf("systemd %q, want %q", res.Systemd, tt.systemd)
			}
		})
	}
}
