package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/ptytest"
	"github.com/boxrun/boxrun/policy"
)

// noTerminal is where a boxrun without a controlling terminal stands:
// every signal it gets was sent to it.
func noTerminal() groups { return groups{} }

func TestDeliveryOf(t *testing.T) {
	const self, other = 4000, 4100
	fg := groups{Terminal: self, Self: self, Command: self}
	tests := []struct {
		name       string
		sig        syscall.Signal
		g          groups
		hangupSeen bool
		want       delivery
	}{
		{"Ctrl-C, boxrun and command in the foreground", syscall.SIGINT, fg, false, delivered},
		{"Ctrl-\\ in the foreground", syscall.SIGQUIT, fg, false, delivered},
		{"SIGTERM never comes from the terminal", syscall.SIGTERM, fg, false, forward},
		{"SIGHUP while the terminal is there was sent to boxrun", syscall.SIGHUP, fg, false, forward},
		{"no terminal at all (a script, CI, an IDE's pipe)", syscall.SIGINT, groups{Self: self, Command: self}, false, forward},
		{"boxrun in the background (boxrun ... &)", syscall.SIGINT, groups{Terminal: other, Self: self, Command: self}, false, forward},
		{"the command took the terminal (boxrun -- bash -i)", syscall.SIGINT, groups{Terminal: other, Self: self, Command: other}, false, forward},
		{"the command left boxrun's group, boxrun in the foreground", syscall.SIGINT, groups{Terminal: self, Self: self, Command: other}, false, forward},
		{"the command has exited (leftovers)", syscall.SIGINT, groups{Terminal: self, Self: self}, false, forward},
		{"hang-up: the first SIGHUP", syscall.SIGHUP, groups{HungUp: true, Self: self, Command: self}, false, delivered},
		{"hang-up: the second SIGHUP", syscall.SIGHUP, groups{HungUp: true, Self: self, Command: self}, true, repeated},
		{"hang-up with boxrun the session leader", syscall.SIGHUP, groups{HungUp: true, Leader: true, Self: self, Command: self}, false, forward},
		{"hang-up, the command in a group of its own", syscall.SIGHUP, groups{HungUp: true, Self: self, Command: other}, true, forward},
		{"Ctrl-C cannot come from a terminal that hung up", syscall.SIGINT, groups{HungUp: true, Self: self, Command: self}, false, forward},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deliveryOf(tt.sig, tt.g, tt.hangupSeen); got != tt.want {
				t.Errorf("deliveryOf(%v, %+v, %v) = %v, want %v", tt.sig, tt.g, tt.hangupSeen, got, tt.want)
			}
		})
	}
}

// TestForwardSignalsLeavesWhatTheTerminalSent feeds forwardSignals signals
// as the terminal or a kill(1) would send them: the command (sleep, which
// dies of any of them) gets only those that did not reach it already, and
// a hang-up's two SIGHUPs do not count as insisting.
func TestForwardSignalsLeavesWhatTheTerminalSent(t *testing.T) {
	self := unix.Getpgrp()
	fg := groups{Terminal: self, Self: self, Command: self}
	hungUp := groups{HungUp: true, Self: self, Command: self}
	tests := []struct {
		name     string
		g        groups
		sigs     []syscall.Signal
		died     syscall.Signal // 0: the command must still run
		boxSigs  int            // signals sent to the whole box
		warnings int
	}{
		{"Ctrl-C in the foreground", fg, []syscall.Signal{syscall.SIGINT}, 0, 0, 0},
		{"Ctrl-C twice: the box gets the second", fg, []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 0, 1, 1},
		{"kill -INT of a boxrun in the background", groups{Terminal: self + 1, Self: self, Command: self}, []syscall.Signal{syscall.SIGINT}, syscall.SIGINT, 0, 0},
		{"no terminal", groups{Self: self, Command: self}, []syscall.Signal{syscall.SIGINT}, syscall.SIGINT, 0, 0},
		{"a hang-up's two SIGHUPs", hungUp, []syscall.Signal{syscall.SIGHUP, syscall.SIGHUP}, 0, 0, 0},
		{"a hang-up with boxrun the session leader", groups{HungUp: true, Leader: true, Self: self, Command: self}, []syscall.Signal{syscall.SIGHUP}, syscall.SIGHUP, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child := exec.Command("sleep", "30")
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = child.Wait(); close(exited) }()
			defer func() { _ = child.Process.Kill(); <-exited }()

			box := &recordingBox{signals: make(chan syscall.Signal, 8), kills: make(chan struct{}, 8)}
			sigs := make(chan os.Signal, len(tt.sigs)+1)
			done := make(chan struct{})
			defer close(done)
			handled := make(chan struct{})
			var calls atomic.Int32
			// forwardSignals asks where things stand once per signal, in
			// order: when it asks for the extra last one, all of tt.sigs
			// were handled; that one waits until the test has looked.
			where := func() groups {
				if int(calls.Add(1)) > len(tt.sigs) {
					close(handled)
					<-done
					return groups{}
				}
				return tt.g
			}
			var warned atomic.Int32
			var first atomic.Int32
			go forwardSignals(sigs, child.Process, where, done, box, func(string) { warned.Add(1) }, &first)
			for _, s := range tt.sigs {
				sigs <- s
			}
			sigs <- syscall.SIGTERM
			<-handled
			if tt.died != 0 {
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					t.Fatalf("the command still runs; want it dead of %v", tt.died)
				}
				if ws := child.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != tt.died {
					t.Errorf("the command ended with %v, want death by %v", child.ProcessState, tt.died)
				}
			} else {
				time.Sleep(100 * time.Millisecond) // a signal sent would have killed it by now
				select {
				case <-exited:
					t.Errorf("the command got a signal the terminal had sent it already: %v", child.ProcessState)
				default:
				}
			}
			if len(box.signals) != tt.boxSigs || len(box.kills) != 0 || int(warned.Load()) != tt.warnings {
				t.Errorf("box signalled %d times, killed %d times, %d warnings; want %d, 0, %d", len(box.signals), len(box.kills), warned.Load(), tt.boxSigs, tt.warnings)
			}
			if got := syscall.Signal(first.Load()); got != tt.sigs[0] {
				t.Errorf("first signal recorded %v, want %v (the report says boxrun was interrupted by it)", got, tt.sigs[0])
			}
		})
	}
}

// The test binary plays boxrun on a real terminal: runOnTerminalEnv names
// the directory where runOnTerminal finds and leaves its files, and the
// command is the test binary again, counting the signals it gets
// (countSignalsEnv names the file).
const (
	runOnTerminalEnv = "BOXRUN_TEST_RUN_ON_TERMINAL"
	countSignalsEnv  = "BOXRUN_TEST_COUNT_SIGNALS"
)

// runOnTerminal runs the test binary as a counting command under Run, as
// boxrun would, and writes its pid to dir/pid and its exit code to
// dir/result. stdin is /dev/null: the terminal is only the controlling one.
func runOnTerminal(dir string) int {
	exe, err := os.Executable()
	if err != nil {
		return 125
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		return 125
	}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		return 125
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, runOnTerminalEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, countSignalsEnv+"="+filepath.Join(dir, "count"))
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return 125
	}
	res, err := Run(context.Background(), Options{
		Warn:       func(s string) { fmt.Fprintln(out, "warning:", s) },
		Backend:    NewNone("unit test"),
		Policy:     &policy.Resolved{Name: "unit", Leftovers: "kill", LeftoversGrace: time.Second},
		Args:       []string{exe},
		Env:        env,
		Stdin:      in,
		Stdout:     out,
		Stderr:     out,
		Executable: exe,
	})
	code := 125
	if err != nil {
		fmt.Fprintln(out, err)
	} else {
		code = res.ExitCode
	}
	_ = os.WriteFile(filepath.Join(dir, "result"), []byte(strconv.Itoa(code)), 0o644)
	return code
}

// countSignals appends the name of every SIGINT, SIGQUIT and SIGHUP it gets
// to file, one a line, and exits 0 once a second has passed without one
// after the first (or at SIGTERM; exit 3 after 30 s without any). It
// creates file.ready once it listens.
func countSignals(file string) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTERM)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 125
	}
	if err := os.WriteFile(file+".ready", nil, 0o644); err != nil {
		return 125
	}
	var quiet <-chan time.Time
	giveUp := time.After(30 * time.Second)
	for {
		select {
		case <-giveUp:
			return 3
		case s := <-sigs:
			if s == syscall.SIGTERM {
				return 0
			}
			fmt.Fprintln(f, signalName(s.(syscall.Signal)))
			quiet = time.After(time.Second)
		case <-quiet:
			return 0
		}
	}
}

// TestTerminalSignalsReachTheCommandOnce runs Run on a real pseudo-terminal
// with stdin from /dev/null (boxrun -- pytest </dev/null): Ctrl-C typed
// there, and the SIGHUPs of the terminal closing, reach the command from
// the terminal (or the shell) and not a second time through boxrun, and a
// hang-up's two SIGHUPs do not count as insisting.
func TestTerminalSignalsReachTheCommandOnce(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	typeKey := func(key byte) func(*testing.T, *os.File) {
		return func(t *testing.T, master *os.File) {
			if _, err := master.Write([]byte{key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hangUp := func(t *testing.T, master *os.File) { master.Close() }
	tests := []struct {
		name string
		// leader runs the session and starts the run; nil: the run
		// leads the session itself.
		leader []string
		act    func(*testing.T, *os.File)
		want   string
		most   int // the command gets the signal once, or up to this often from others
	}{
		{"Ctrl-C", nil, typeKey(3), "SIGINT", 1},
		{"Ctrl-\\", nil, typeKey(0x1c), "SIGQUIT", 1},
		// sh dies of the hang-up; the kernel then sends SIGHUP to the
		// foreground group, once.
		{"hang-up under sh", []string{"sh", "-c", `"$0"; exit 0`, exe}, hangUp, "SIGHUP", 1},
		// Interactive bash passes the SIGHUP on to its jobs, then dies,
		// and the kernel sends its own: two, from the others.
		{"hang-up under interactive bash", []string{"bash", "--norc", "--noprofile", "-i"}, hangUp, "SIGHUP", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			interactive := len(tt.leader) > 0 && tt.leader[0] == "bash"
			if len(tt.leader) > 0 {
				if _, err := exec.LookPath(tt.leader[0]); err != nil {
					t.Skipf("no %s here to lead the terminal's session", tt.leader[0])
				}
			}
			dir := t.TempDir()
			master, slave := openPTY(t)
			defer master.Close()
			cmd := exec.Command(exe)
			if len(tt.leader) > 0 {
				cmd = exec.Command(tt.leader[0], tt.leader[1:]...)
			}
			cmd.Env = append(os.Environ(), runOnTerminalEnv+"="+dir, "RUN="+exe)
			cmd.ExtraFiles = []*os.File{slave}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
			if interactive {
				// An interactive shell reads the terminal: it starts the
				// run as a job in the foreground.
				cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
				cmd.ExtraFiles = nil
				cmd.SysProcAttr.Ctty = 0
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			slave.Close()
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			defer func() {
				if !exists(dir, "result") {
					// Our own run, left over from a failure.
					if pid, err := strconv.Atoi(readFile(dir, "pid")); err == nil {
						if p, err := os.FindProcess(pid); err == nil {
							_ = p.Kill()
						}
					}
				}
				_ = cmd.Process.Kill()
				<-exited
			}()
			if interactive {
				if _, err := master.Write([]byte("\"$RUN\"\n")); err != nil {
					t.Fatal(err)
				}
			}
			waitUntil(t, dir, "the command", func() bool { return exists(dir, "count.ready") })
			tt.act(t, master)
			waitUntil(t, dir, "the end of the run", func() bool { return exists(dir, "result") })
			if got := strings.Fields(readFile(dir, "count")); len(got) < 1 || len(got) > tt.most || strings.Count(strings.Join(got, " "), tt.want) != len(got) {
				t.Errorf("the command got %q; want %s, at most %d time(s), none of them from boxrun", got, tt.want, tt.most)
			}
			if out := readFile(dir, "out"); strings.Contains(out, "warning:") {
				t.Errorf("the run warned (a signal taken for insisting?):\n%s", out)
			}
			if r := readFile(dir, "result"); r != "0" {
				t.Errorf("run ended %s, want 0 (the command's exit after the signal)\n%s", r, readFile(dir, "out"))
			}
		})
	}
}

// waitUntil waits up to 20 s for done to hold; what names what it waits
// for.
func waitUntil(t *testing.T, dir, what string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if done() {
			return
		}
	}
	t.Fatalf("waited 20s for %s; the run wrote:\n%s", what, readFile(dir, "out"))
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func readFile(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b))
}

// openPTY opens a pseudo-terminal pair; a machine without one skips the
// test that needs it.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := ptytest.Open()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}
