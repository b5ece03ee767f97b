package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/box"
)

// TestMain lets the test binary serve as boxrun's helper, as main does,
// and as boxrun itself with BOXRUN_TEST_AS_MAIN=1 (for the shells that
// the completion tests run).
func TestMain(m *testing.M) {
	if box.IsHelper(os.Args) {
		os.Exit(box.RunHelper(os.Args))
	}
	if os.Getenv("BOXRUN_TEST_AS_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runCLI calls run with temporary files for the standard streams.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	stdin, _ := os.Open(os.DevNull)
	defer stdin.Close()
	t.Setenv("BOXRUN_POLICY_FILE", "")
	t.Setenv("XDG_CONFIG_HOME", dir) // keep the developer's own policies out
	if os.Getenv("XDG_STATE_HOME") == "" {
		t.Setenv("XDG_STATE_HOME", dir) // and their run reports (root's are /var/lib/boxrun's)
	}
	code := run(context.Background(), args, stdin, stdout, stderr)
	stdout.Close()
	stderr.Close()
	o, _ := os.ReadFile(stdout.Name())
	e, _ := os.ReadFile(stderr.Name())
	return code, string(o), string(e)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLI(t *testing.T) {
	good := writeFile(t, "good.toml", "[policies.mine]\ndescription = \"my own\"\nextends = \"tests\"\npids.max = 77\n")
	bad := writeFile(t, "bad.toml", "[policies.tests]\nmemory.max = \"12Q\"\n")
	unknownKey := writeFile(t, "unknown.toml", "[policies.x]\nmemory.hihg = \"1G\"\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring expected on stdout
		stderr   string // substring expected on stderr
		noStderr bool
	}{
		{"help", []string{"--help"}, 0, "usage: boxrun", "", true},
		{"no command", []string{}, 125, "", "boxrun: no command given", false},
		{"bad flag", []string{"--bogus", "--", "true"}, 125, "", "unknown flag: --bogus", false},
		{"user and system", []string{"--user", "--system", "--", "true"}, 125, "", "cannot be used together", false},
		{"unknown policy", []string{"-p", "nope", "--", "true"}, 125, "", `unknown policy "nope"`, false},
		{"bad size in file", []string{"-f", bad, "--", "true"}, 125, "", `bad.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)`, false},
		{"unknown key", []string{"-f", unknownKey, "-p", "x", "--", "true"}, 125, "", `unknown key "memory.hihg"`, false},
		{"missing policy file", []string{"-f", "/nonexistent/p.toml", "--", "true"}, 125, "", "/nonexistent/p.toml", false},
		{"policy file is a directory", []string{"-f", t.TempDir(), "--", "true"}, 125, "", "is a directory", false},
		{"set without =", []string{"--set", "memory.max", "--", "true"}, 125, "", `missing "="`, false},
		{"set unknown key", []string{"--set", "memory.hihg=1G", "--", "true"}, 125, "", "memory.hihg", false},
		{"unknown backend", []string{"--backend", "bogus", "--", "true"}, 125, "", `unknown backend "bogus"`, false},
		{"command not found", []string{"--backend", "none", "--", "no-such-command-xyz"}, 127, "", "no-such-command-xyz: command not found", false},
		{"not found before any box", []string{"--backend", "systemd", "--", "no-such-command-xyz"}, 127, "", "command not found", false},
		{"dashdash makes policy a command", []string{"--", "policy", "list"}, 127, "", "policy: command not found", false},
		{"exit code passes through", []string{"-q", "--backend", "none", "--", "sh", "-c", "exit 7"}, 7, "", "", true},
		{"signal exit", []string{"-q", "--backend", "none", "--", "sh", "-c", "kill -TERM $$"}, 143, "", "", true},
		{"output passes through", []string{"-q", "--backend", "none", "--", "echo", "hello"}, 0, "hello\n", "", true},
		{"strict refuses none", []string{"--strict", "--backend", "none", "--", "true"}, 125, "", "--strict", false},
		{"policy list", []string{"-f", good, "policy", "list"}, 0, "mine", "", true},
		{"policy show", []string{"-f", good, "policy", "show", "mine"}, 0, "pids.max", "", true},
		{"policy show set", []string{"--set", "pids.max=99", "policy", "show", "tests"}, 0, "99", "", true},
		{"policy show unknown", []string{"policy", "show", "nope"}, 125, "", "unknown policy", false},
		{"policy check good", []string{"policy", "check", good}, 0, "ok: 1 policy in ", "", true},
		{"policy check bad", []string{"policy", "check", bad}, 1, "", "bad.toml:2", false},
		{"policy no subcommand", []string{"policy"}, 125, "", "missing subcommand", false},
		{"policy bad subcommand", []string{"policy", "frob"}, 125, "", `unknown subcommand "frob"`, false},
		{"policy export oci", []string{"--set", "pids.max=77", "policy", "export", "tests", "--format", "oci"}, 0, `"limit": 77`,
			`boxrun: warning: not expressible in the oci format: oom_score_adj = 500 (the spec's process.oomScoreAdj, outside linux.resources); memory.backpressure`, false},
		{"policy export oci -q", []string{"-q", "policy", "export", "tests", "--format", "oci"}, 0, `"limit": 4096`, "", true},
		{"policy export systemd", []string{"-f", good, "policy", "export", "mine", "--format", "systemd"}, 0, "[Service]\n", "", true},
		{"policy export json by default", []string{"policy", "export", "strict"}, 0, `"name": "strict"`, "", true},
		{"policy export k8s", []string{"policy", "export", "strict", "--format=k8s"}, 0, "resources:\n  limits:\n", "", true},
		{"policy export bad format", []string{"policy", "export", "tests", "--format", "yaml"}, 125, "", `unknown format "yaml"`, false},
		{"policy export unknown policy", []string{"policy", "export", "nope"}, 125, "", `unknown policy "nope"`, false},
		{"policy export two policies", []string{"policy", "export", "tests", "strict"}, 125, "", "one policy at a time", false},
		// A native tool: --version, help, flags after the subcommand.
		{"--version", []string{"--version"}, 0, "boxrun ", "", false},
		{"-V", []string{"-V"}, 0, "boxrun ", "", false},
		{"version", []string{"version"}, 0, "boxrun ", "", false},
		{"version takes no argument", []string{"version", "x"}, 125, "", `unexpected argument "x"`, false},
		{"dashdash runs a program called help", []string{"--", "help"}, 127, "", "help: command not found", false},
		{"dashdash runs a program called version", []string{"--", "version"}, 127, "", "version: command not found", false},
		{"help of an unknown command", []string{"help", "frob"}, 125, "", `unknown command "frob"`, false},
		{"help of policy show", []string{"help", "policy", "show"}, 0, "usage: boxrun policy show", "", false},
		{"policy --help lists its commands", []string{"policy", "--help"}, 0, "policy export", "", false},
		{"policy list -f", []string{"policy", "list", "-f", good}, 0, "mine", "", false},
		{"policy list --policy-file=", []string{"policy", "list", "--policy-file=" + good}, 0, "mine", "", false},
		{"policy list --json", []string{"policy", "list", "-f", good, "--json"}, 0, `"name": "mine"`, "", false},
		{"policy list extra", []string{"policy", "list", "x"}, 125, "", `unexpected argument "x"`, false},
		{"policy list --set refused", []string{"policy", "list", "--set", "pids.max=1"}, 125, "", "unknown flag: --set", false},
		{"policy show -f", []string{"policy", "show", "mine", "-f", good}, 0, "pids.max", "", false},
		{"policy show --set after", []string{"--set", "cpu.weight=7", "policy", "show", "--set", "pids.max=99"}, 0, "99", "", false},
		{"policy show -p", []string{"policy", "show", "-p", "strict"}, 0, "policy strict", "", false},
		{"policy show --json", []string{"policy", "show", "strict", "--json"}, 0, `"name": "strict"`, "", false},
		{"policy show two", []string{"policy", "show", "tests", "strict"}, 125, "", "one policy at a time", false},
		{"policy check -f", []string{"policy", "check", "-f", good}, 0, "ok: ", "", false},
		{"policy export -f", []string{"policy", "export", "mine", "-f", good, "--format", "oci"}, 0, `"limit": 77`, `leftovers = "kill"`, false},
		{"policy flags before the subcommand", []string{"policy", "-f", good, "list"}, 125, "", "their flags go after them", false},
		{"run flag before status", []string{"--strict", "status"}, 125, "", "--strict is a flag of a run", false},
		{"run flag before policy list", []string{"-p", "build", "policy", "list"}, 125, "", "--policy is a flag of a run", false},
		{"gc extra", []string{"gc", "x"}, 125, "", `unexpected argument "x"`, false},
		// Did you mean (issue #19).
		{"mistyped policy name", []string{"-p", "test", "--", "true"}, 125, "", `unknown policy "test" (did you mean tests?)`, false},
		{"a setting for -p", []string{"-p", "MemoryMax=4G", "--", "true"}, 125, "", `unknown policy "MemoryMax=4G" (did you mean --set memory.max=4G?`, false},
		{"systemd's name for --set", []string{"--set", "MemoryMax=4G", "--", "true"}, 125, "", `unknown key "MemoryMax" (did you mean --set memory.max=4G?)`, false},
		{"a decimal unit for --set", []string{"--set", "memory.max=4GB", "--", "true"}, 125, "", `"4GB" is not a size (did you mean "4G"?`, false},
		{"mistyped command", []string{"polcy", "list"}, 127, "", "boxrun: polcy: command not found\nboxrun: hint: did you mean boxrun policy list?\n", false},
		{"mistyped command, one word", []string{"stauts"}, 127, "", "boxrun: hint: did you mean boxrun status?\n", false},
		{"mistyped subcommand", []string{"policy", "lsit"}, 125, "", `boxrun: policy: unknown subcommand "lsit" (did you mean policy list?)`, false},
		{"mistyped command after help", []string{"help", "polcy", "shwo"}, 125, "", `boxrun: help: unknown command "polcy shwo" (did you mean policy show?)`, false},
		{"mistyped command after --: no hint", []string{"--", "polcy", "list"}, 127, "", "boxrun: polcy: command not found\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderr)
			}
			if tt.noStderr && withoutNoBoxNotice(stderr) != "" {
				t.Errorf("want no stderr, got %q", stderr)
			}
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if line != "" && !strings.HasPrefix(line, "boxrun: ") && !strings.HasPrefix(line, "  ") && !strings.HasPrefix(tt.name, "bad flag") {
					t.Errorf("stderr line without the boxrun: prefix: %q", line)
				}
			}
		})
	}
}

func TestShowRowsOrigins(t *testing.T) {
	f := writeFile(t, "p.toml", "[policies.tests]\nextends = \"tests\"\npids.max = 5\n")
	code, out, errs := runCLI(t, "-f", f, "policy", "show", "tests")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "p.toml:3") || !strings.Contains(out, "built-in") {
		t.Errorf("show must say where each value came from (p.toml:3 for pids.max, built-in for the rest):\n%s", out)
	}
}

// TestDeathSignalPassedOn: a command that dies of Ctrl-C makes boxrun die
// of it too (after the report), so that a shell loop around boxrun stops.
func TestDeathSignalPassedOn(t *testing.T) {
	for _, tt := range []struct {
		script string
		want   syscall.Signal
	}{
		{"kill -INT $$", syscall.SIGINT},
		{"kill -TERM $$", syscall.SIGTERM},
		{"kill -KILL $$", 0}, // an OOM kill's signal is reported, not passed on
		{"exit 130", 0},      // an exit status is not a signal
	} {
		var sig syscall.Signal
		dir := t.TempDir()
		out, _ := os.Create(filepath.Join(dir, "out"))
		in, _ := os.Open(os.DevNull)
		t.Setenv("BOXRUN_POLICY_FILE", "")
		t.Setenv("XDG_CONFIG_HOME", dir)
		code := run(withDeath(context.Background(), &sig), []string{"-q", "--backend", "none", "--", "sh", "-c", tt.script}, in, out, out)
		in.Close()
		out.Close()
		if sig != tt.want {
			t.Errorf("%s: exit %d, die of %v; want %v", tt.script, code, sig, tt.want)
		}
	}
}

// buildBoxrun builds the boxrun binary into a temporary directory.
func buildBoxrun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "boxrun")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building boxrun: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryEndsAsItsCommand runs the real binary: whoever ran it sees it
// die of the signal its command died of (SIGINT, SIGTERM, SIGHUP), as if
// the command had run without boxrun; other deaths, and a run that cannot
// die of its signal, end in 128+N.
func TestBinaryEndsAsItsCommand(t *testing.T) {
	bin := buildBoxrun(t)
	env := append(os.Environ(), "BOXRUN_POLICY_FILE=", "XDG_CONFIG_HOME="+t.TempDir(), "BOXRUN="+bin)
	tests := []struct {
		name   string
		script string // run by sh, with $BOXRUN the binary
		died   syscall.Signal
		code   int // when died is 0
	}{
		{"SIGINT", `exec "$BOXRUN" -q --backend none -- sh -c 'kill -INT $$'`, syscall.SIGINT, 0},
		{"SIGTERM", `exec "$BOXRUN" -q --backend none -- sh -c 'kill -TERM $$'`, syscall.SIGTERM, 0},
		{"SIGHUP", `exec "$BOXRUN" -q --backend none -- sh -c 'kill -HUP $$'`, syscall.SIGHUP, 0},
		// Its default action dumps core: boxrun did not crash.
		{"SIGQUIT: 131, no core of boxrun", `exec "$BOXRUN" -q --backend none -- sh -c 'kill -QUIT $$'`, 0, 131},
		// An OOM kill's SIGKILL is the report's to explain.
		{"SIGKILL: 137", `exec "$BOXRUN" -q --backend none -- sh -c 'kill -KILL $$'`, 0, 137},
		{"exit 130 is an exit", `exec "$BOXRUN" -q --backend none -- sh -c 'exit 130'`, 0, 130},
		// Started with SIGINT ignored (a background job of a script),
		// boxrun cannot die of it: it exits 130.
		{"SIGINT ignored by boxrun's parent", `trap '' INT; exec "$BOXRUN" -q --backend none -- env --default-signal=INT sh -c 'kill -INT $$'`, 0, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tt.script)
			cmd.Env = env
			out, _ := cmd.CombinedOutput()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			switch {
			case tt.died != 0 && (!ws.Signaled() || ws.Signal() != tt.died):
				t.Errorf("boxrun ended with %v; want death by %v, like its command\n%s", cmd.ProcessState, tt.died, out)
			case tt.died == 0 && (ws.Signaled() || ws.ExitStatus() != tt.code):
				t.Errorf("boxrun ended with %v; want exit %d\n%s", cmd.ProcessState, tt.code, out)
			}
		})
	}
}

// TestCtrlCStopsAShellLoop: Ctrl-C (SIGINT to the whole foreground group)
// during "for t in a b; do boxrun -- ...; done" stops the loop, as it
// would without boxrun; bash goes on only when its child exited, even with
// 130, rather than died of the signal.
func TestCtrlCStopsAShellLoop(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash here: the loop needs a shell that waits and exits cooperatively on SIGINT")
	}
	bin := buildBoxrun(t)
	dir := t.TempDir()
	cmd := exec.Command("bash", "-c", `for t in a b; do "$BOXRUN" -q --backend none -- sh -c 'touch "$READY.$0"; exec sleep 30' $t; echo "after $t"; done`)
	cmd.Env = append(os.Environ(), "BOXRUN_POLICY_FILE=", "XDG_CONFIG_HOME="+dir, "BOXRUN="+bin, "READY="+filepath.Join(dir, "ready"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the terminal's foreground group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default: // bash still leads the group this test made
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "ready.a")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first command never started:\n%s", out.String())
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the loop still runs 20s after Ctrl-C:\n%s", out.String())
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT || strings.Contains(out.String(), "after") {
		t.Errorf("bash ended with %v and printed %q; want death by SIGINT before any \"after\"", cmd.ProcessState, out.String())
	}
}

// withoutNoBoxNotice drops the once-a-day line that -q still prints when a
// run had no box (these tests run with --backend none).
func withoutNoBoxNotice(stderr string) string {
	var keep []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(l, "boxrun: warning: not boxed: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestOnceADay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if !onceADay(dir, "stamp") {
		t.Fatal("the first time: want yes")
	}
	if onceADay(dir, "stamp") {
		t.Error("again at once: want no")
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "stamp"), old, old); err != nil {
		t.Fatal(err)
	}
	if !onceADay(dir, "stamp") {
		t.Error("a day later: want yes")
	}
	if !onceADay("", "stamp") {
		t.Error("without a state directory: want yes every time")
	}
}

func TestQuietRunWithoutABoxSaysSo(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	if os.Geteuid() == 0 {
		// Root keeps its state in /var/lib/boxrun whatever the
		// environment says: start from no stamp there.
		os.Remove("/var/lib/boxrun/none-warned")
	}
	code, _, stderr := runCLI(t, "-q", "--backend", "none", "--", "true")
	if want := "boxrun: warning: not boxed: --backend none was asked for (said once a day with -q)\n"; code != 0 || stderr != want {
		t.Errorf("-q without a box: exit %d, stderr %q; want one line saying there was no box: %q", code, stderr, want)
	}
	if _, _, stderr := runCLI(t, "-q", "--backend", "none", "--", "true"); stderr != "" {
		t.Errorf("-q without a box, again the same day: stderr %q, want nothing", stderr)
	}
}

// TestRunWithoutABoxSaysSoInOneLine: a run without a box says so in one
// line, with the reason; the details are boxrun doctor's (issue #19).
func TestRunWithoutABoxSaysSoInOneLine(t *testing.T) {
	code, _, stderr := runCLI(t, "--backend", "none", "--", "true")
	var warnings []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "boxrun: warning: ") || strings.HasPrefix(l, "boxrun: hint: ") {
			warnings = append(warnings, l)
		}
	}
	if want := "boxrun: warning: not boxed: --backend none was asked for"; code != 0 || strings.Join(warnings, "\n") != want {
		t.Errorf("exit %d, stderr %q; want one warning, %q (and the run report)", code, stderr, want)
	}
	code, _, stderr = runCLI(t, "--strict", "--backend", "none", "--", "true")
	if want := "boxrun: --strict: not boxed: --backend none was asked for, so policy \"tests\" cannot be enforced\n"; code != 125 || stderr != want {
		t.Errorf("--strict: exit %d, stderr %q; want 125 and %q", code, stderr, want)
	}
}

func TestNoBoxLine(t *testing.T) {
	tests := []struct {
		nb   box.NoBox
		want string
	}{
		{box.NoBox{Reason: "--backend none was asked for"}, "not boxed: --backend none was asked for"},
		{box.NoBox{Reason: "this host has a hybrid cgroup hierarchy, where cgroup v1 holds the controllers", Fix: "boxrun doctor says how to switch to cgroup v2"},
			"not boxed: this host has a hybrid cgroup hierarchy, where cgroup v1 holds the controllers; boxrun doctor says how to switch to cgroup v2"},
	}
	for _, tt := range tests {
		if got := noBoxLine(tt.nb); got != tt.want {
			t.Errorf("noBoxLine(%+v) = %q, want %q", tt.nb, got, tt.want)
		}
	}
	// A backend that wraps the none backend: the reason its checks give.
	checks := []box.LimitCheck{{Key: "memory.max", Problem: "no cgroup: test"}}
	if got := noBox(&countingBackend{Backend: box.NewNone("test")}, checks); got.Reason != "test" {
		t.Errorf("noBox of a wrapped none backend = %+v, want the reason of its checks", got)
	}
}
