package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/policy"
)

// boxRecorder stands in for box.Select: it hands out the none backend
// and counts how often boxrun chose a backend and made a box with it.
type boxRecorder struct {
	selected, created int
	// policy is the policy of the last box created.
	policy *policy.Resolved
}

func (r *boxRecorder) selectBackend(ctx context.Context, c box.Choice) (box.Backend, []string, error) {
	r.selected++
	return &countingBackend{Backend: box.NewNone("test"), r: r}, nil, nil
}

// countingBackend counts the boxes it creates.
type countingBackend struct {
	box.Backend
	r *boxRecorder
}

func (b *countingBackend) Create(ctx context.Context, req box.Request) (box.Box, error) {
	b.r.created++
	b.r.policy = req.Policy
	return b.Backend.Create(ctx, req)
}

// streams says which standard stream a row hands run closed.
type streams int

const (
	allOpen streams = iota
	closedStdin
	closedStdout
	closedStderr
)

// badInputFiles is a directory of bad inputs for the table below.
type badInputFiles struct{ dir string }

// policy writes a policy file and returns its path.
func (f badInputFiles) policy(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runBad runs args through runWith with a recorder, recovering a panic so
// that the row fails instead of the whole test binary.
func runBad(t *testing.T, rec *boxRecorder, args []string, closed streams) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	so, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	se, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	si, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer si.Close()
	switch closed {
	case closedStdin:
		si.Close()
	case closedStdout:
		so.Close()
	case closedStderr:
		se.Close()
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("run panicked: %v", p)
			}
		}()
		code = runWith(context.Background(), rec.selectBackend, args, si, so, se)
	}()
	so.Close()
	se.Close()
	o, _ := os.ReadFile(so.Name())
	e, _ := os.ReadFile(se.Name())
	return code, string(o), string(e)
}

// TestBadInput runs boxrun on every kind of bad input of issue #7. Each
// row must end with exit 125 (126 or 127 for a command that cannot run),
// exactly one error line naming the input, at most one hint, no panic or
// stack trace, no colour, and no box: boxrun must not even have chosen a
// backend.
func TestBadInput(t *testing.T) {
	f := badInputFiles{dir: t.TempDir()}
	notExec := f.policy(t, "not-executable", "#!/bin/sh\n")
	aDir := filepath.Join(f.dir, "a-dir")
	if err := os.Mkdir(aDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(f.dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// A sparse 100 MB file: boxrun must refuse it by its size, not read it.
	huge := f.policy(t, "huge.toml", "")
	if err := os.Truncate(huge, 100<<20); err != nil {
		t.Fatal(err)
	}
	// A file that root cannot read either: its path goes through a file.
	throughFile := filepath.Join(notExec, "policies.toml")

	bad := func(name, key, value string) string {
		return f.policy(t, name, fmt.Sprintf("[policies.x]\n%s = %s\n", key, value))
	}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		closed streams
		code   int
		names  string // the error line must contain this: the input
	}{
		{name: "unknown policy", args: []string{"-p", "nope", "--", "true"}, code: 125, names: `unknown policy "nope"`},
		{name: "policy name not UTF-8", args: []string{"-p", "n\xffpe", "--", "true"}, code: 125, names: `unknown policy "n\xffpe"`},
		{name: "malformed TOML", args: []string{"-f", f.policy(t, "malformed.toml", "[policies.x\n"), "-p", "x", "--", "true"}, code: 125,
			names: "malformed.toml:1: TOML syntax error"},
		{name: "unknown key", args: []string{"-f", bad("unknown.toml", "memory.hihg", `"1G"`), "-p", "x", "--", "true"}, code: 125,
			names: `unknown.toml:2: unknown key "memory.hihg"`},
		{name: "wrong type", args: []string{"-f", bad("type.toml", "pids.max", `"lots"`), "-p", "x", "--", "true"}, code: 125,
			names: `type.toml:2: pids.max: expected a number of processes or "max", got string "lots"`},
		{name: "negative size", args: []string{"-f", bad("neg.toml", "memory.max", `"-1G"`), "-p", "x", "--", "true"}, code: 125,
			names: `neg.toml:2: memory.max: "-1G" is negative`},
		{name: "negative size as integer", args: []string{"-f", bad("negint.toml", "memory.max", `-1`), "-p", "x", "--", "true"}, code: 125,
			names: `negint.toml:2: memory.max: -1 is negative`},
		{name: "zero size", args: []string{"-f", bad("zero.toml", "memory.max", `"0"`), "-p", "x", "--", "true"}, code: 125,
			names: `zero.toml:2: memory.max: "0" is zero bytes`},
		{name: "overflowing size", args: []string{"-f", bad("over.toml", "memory.max", `"99999999T"`), "-p", "x", "--", "true"}, code: 125,
			names: `over.toml:2: memory.max: "99999999T" is too large`},
		{name: "fraction of a byte", args: []string{"-f", bad("frac.toml", "memory.high", `"0.5"`), "-p", "x", "--", "true"}, code: 125,
			names: `frac.toml:2: memory.high: "0.5" is zero bytes`},
		{name: "fraction without a leading digit", args: []string{"-f", bad("dot.toml", "memory.max", `".5G"`), "-p", "x", "--", "true"}, code: 125,
			names: `dot.toml:2: memory.max: ".5G" is not a size`},
		{name: "fractional size as a float", args: []string{"-f", bad("float.toml", "memory.max", `1.5`), "-p", "x", "--", "true"}, code: 125,
			names: `float.toml:2: memory.max: expected a size like "8G", "60%" or "max", got float 1.5`},
		{name: "percentage over 100", args: []string{"-f", bad("pct.toml", "memory.max", `"101%"`), "-p", "x", "--", "true"}, code: 125,
			names: `pct.toml:2: memory.max: "101%" is more than 100% of memory`},
		{name: "cpu.weight 0", args: []string{"-f", bad("w0.toml", "cpu.weight", "0"), "-p", "x", "--", "true"}, code: 125,
			names: "w0.toml:2: cpu.weight: 0 is out of range (use 1 to 10000"},
		{name: "cpu.weight 10001", args: []string{"-f", bad("w10001.toml", "cpu.weight", "10001"), "-p", "x", "--", "true"}, code: 125,
			names: "w10001.toml:2: cpu.weight: 10001 is out of range (use 1 to 10000"},
		{name: "many problems in one file", args: []string{"-f", f.policy(t, "many.toml", "[policies.x]\nmemory.max = \"12Q\"\npids.max = 0\ncpu.wieght = 5\n"), "-p", "x", "--", "true"}, code: 125,
			names: `many.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max) (and 2 more problems in ` + filepath.Join(f.dir, "many.toml") + ")"},
		{name: "mistyped policy", args: []string{"-p", "tsets", "--", "true"}, code: 125, names: `unknown policy "tsets" (did you mean tests?)`},
		{name: "a setting as the policy", args: []string{"-p", "TasksMax=100", "--", "true"}, code: 125, names: `unknown policy "TasksMax=100" (did you mean --set pids.max=100?`},
		{name: "mistyped command", args: []string{"polcy", "list"}, code: 127, names: "polcy: command not found"},
		{name: "extends cycle", args: []string{"-f", f.policy(t, "cycle.toml", "[policies.x]\nextends = \"y\"\n[policies.y]\nextends = \"x\"\n"), "-p", "x", "--", "true"},
			code: 125, names: "cycle.toml:4: extends cycle: x -> y -> x"},
		{name: "extends a missing parent", args: []string{"-f", bad("orphan.toml", "extends", `"nope"`), "-p", "x", "--", "true"}, code: 125,
			names: `orphan.toml:2: extends: policy "x" extends "nope", which is not defined`},
		{name: "--set without =", args: []string{"--set", "memory.max", "--", "true"}, code: 125, names: `--set "memory.max": missing "="`},
		{name: "--set unknown key", args: []string{"--set", "memory.hihg=1G", "--", "true"}, code: 125, names: `--set memory.hihg=1G: unknown key "memory.hihg"`},
		{name: "--set bad value", args: []string{"--set", "memory.max=12Q", "--", "true"}, code: 125, names: `--set memory.max=12Q: "12Q" is not a size`},
		{name: "--set cpu.weight 10001", args: []string{"--set", "cpu.weight=10001", "--", "true"}, code: 125, names: "--set cpu.weight=10001: 10001 is out of range"},
		{name: "--set not UTF-8", args: []string{"--set", "description=caf\xe9", "--", "true"}, code: 125, names: `--set "description=caf\xe9": is not valid UTF-8`},
		{name: "--set missing its value", args: []string{"--set"}, code: 125, names: "flag needs an argument: --set"},
		{name: "unknown flag", args: []string{"--bogus", "--", "true"}, code: 125, names: "unknown flag: --bogus"},
		{name: "unknown backend", args: []string{"--backend", "bogus", "--", "true"}, code: 125, names: `--backend: unknown backend "bogus"`},
		{name: "no command", args: []string{"--"}, code: 125, names: "no command given"},
		{name: "empty command", args: []string{"--", ""}, code: 125, names: `the command name is empty ("")`},
		{name: "command not found", args: []string{"--", "no-such-command-xyz"}, code: 127, names: "no-such-command-xyz: command not found"},
		{name: "command path not found", args: []string{"--", filepath.Join(f.dir, "nope")}, code: 127, names: filepath.Join(f.dir, "nope") + ": no such file or directory"},
		{name: "command with control characters", args: []string{"--", "no-such-\x1b[2J"}, code: 127, names: `"no-such-\x1b[2J": command not found`},
		{name: "command not executable", args: []string{"--", notExec}, code: 126, names: notExec + ": permission denied (not executable)"},
		{name: "command is a directory", args: []string{"--", aDir}, code: 126, names: aDir + ": is a directory"},
		{name: "policy file missing", args: []string{"-f", filepath.Join(f.dir, "none.toml"), "--", "true"}, code: 125,
			names: filepath.Join(f.dir, "none.toml") + ": no such file or directory"},
		{name: "BOXRUN_POLICY_FILE missing", args: []string{"--", "true"}, env: map[string]string{"BOXRUN_POLICY_FILE": filepath.Join(f.dir, "env.toml")},
			code: 125, names: filepath.Join(f.dir, "env.toml") + ": no such file or directory"},
		{name: "policy file unreadable (path through a file)", args: []string{"-f", throughFile, "--", "true"}, code: 125,
			names: "reading policy file " + throughFile + ": not a directory"},
		{name: "policy file unreadable (read fails)", args: []string{"-f", "/proc/self/mem", "--", "true"}, code: 125,
			names: "reading policy file /proc/self/mem: read /proc/self/mem: input/output error"},
		{name: "policy file is a FIFO without a writer", args: []string{"-f", fifo, "--", "true"}, code: 125,
			names: "policy file " + fifo + " is a named pipe (FIFO), not a regular file"},
		{name: "policy file is a device", args: []string{"-f", "/dev/zero", "--", "true"}, code: 125,
			names: "policy file /dev/zero is a character device, not a regular file"},
		{name: "policy file is a directory", args: []string{"-f", aDir, "--", "true"}, code: 125, names: "policy file " + aDir + " is a directory"},
		{name: "policy file of 100 MB", args: []string{"-f", huge, "--", "true"}, code: 125, names: "policy file " + huge + " is 100M; the limit is 1 MiB"},
		{name: "policy file not UTF-8", args: []string{"-f", f.policy(t, "latin1.toml", "[policies.x]\ndescription = \"caf\xe9\"\n"), "-p", "x", "--", "true"},
			code: 125, names: "latin1.toml:2: invalid UTF-8 at byte 31"},
		{name: "policy file with a terminal escape", args: []string{"-f", bad("esc.toml", "description", `"\u001b[2J"`), "-p", "x", "--", "true"}, code: 125,
			names: `esc.toml:2: description: "\x1b[2J" contains the control character U+001B`},
		{name: "--report-json into a missing directory", args: []string{"--report-json", filepath.Join(f.dir, "no", "r.json"), "--", "true"}, code: 125,
			names: "--report-json: open " + filepath.Join(f.dir, "no", "r.json") + ": no such file or directory"},
		{name: "NO_COLOR with a bad value", args: []string{"--set", "pids.max=0", "--", "true"}, env: map[string]string{"NO_COLOR": "1", "TERM": "xterm-256color"},
			code: 125, names: "--set pids.max=0: 0 is out of range"},
		{name: "stdin closed", args: []string{"--", "true"}, closed: closedStdin, code: 125, names: "stdin is closed"},
		{name: "stdout closed", args: []string{"--", "true"}, closed: closedStdout, code: 125, names: "stdout is closed"},
		{name: "stdout closed and a bad value", args: []string{"--set", "memory.max=12Q", "--", "true"}, closed: closedStdout, code: 125, names: "stdout is closed"},
		{name: "stderr closed", args: []string{"--", "true"}, closed: closedStderr, code: 125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			t.Chdir(home) // no .boxrun.toml above the working directory
			t.Setenv("XDG_CONFIG_HOME", home)
			t.Setenv("BOXRUN_POLICY_FILE", "")
			t.Setenv("NO_COLOR", "")
			t.Setenv("TERM", "dumb")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			rec := &boxRecorder{}
			start := time.Now()
			code, stdout, stderr := runBad(t, rec, tt.args, tt.closed)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v; bad input must fail fast", took)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, stderr)
			}
			if rec.selected != 0 || rec.created != 0 {
				t.Errorf("boxrun chose a backend %d times and made %d boxes; bad input must fail before", rec.selected, rec.created)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if tt.closed == closedStderr {
				return
			}
			checkOneError(t, stderr, tt.names)
		})
	}
}

// checkOneError checks that stderr is exactly one error line containing
// names and at most one hint, without a stack trace or colour.
func checkOneError(t *testing.T, stderr, names string) {
	t.Helper()
	var errs, hints []string
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "boxrun: hint: "):
			hints = append(hints, line)
		case strings.HasPrefix(line, "boxrun: warning: "):
			t.Errorf("warning on bad input: %q", line)
		case strings.HasPrefix(line, "boxrun: "):
			errs = append(errs, line)
		default:
			t.Errorf("line without the boxrun: prefix: %q", line)
		}
	}
	if len(errs) != 1 {
		t.Errorf("want exactly one error line, got %d:\n%s", len(errs), stderr)
	} else if !strings.Contains(errs[0], names) {
		t.Errorf("error line %q does not name the input: want %q in it", errs[0], names)
	}
	if len(hints) > 1 {
		t.Errorf("want at most one hint, got %d:\n%s", len(hints), stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", ".go:", "\x1b"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}
}

// TestBadInputRecorderSeesBoxes checks the seam TestBadInput relies on: a
// good run does choose a backend and make one box through it.
func TestBadInputRecorderSeesBoxes(t *testing.T) {
	home := t.TempDir()
	t.Chdir(home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("BOXRUN_POLICY_FILE", "")
	rec := &boxRecorder{}
	code, _, stderr := runBad(t, rec, []string{"-q", "--", "true"}, allOpen)
	if code != 0 || rec.selected != 1 || rec.created != 1 {
		t.Fatalf("exit %d, %d backends chosen, %d boxes made; want 0, 1, 1\n%s", code, rec.selected, rec.created, stderr)
	}
}
