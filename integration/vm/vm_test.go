package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// requireVM fails the test (never skips) when this host cannot boot the guest.
func requireVM(t *testing.T) {
	t.Helper()
	if err := Available(Debian12); err != nil {
		t.Fatalf("the real-kernel VM harness cannot run on this host: %v", err)
	}
}

// boot runs cfg, failing the test on a harness error, and logs the console on failure.
// With BOXRUN_VM_LOG=1 and -v the console is also logged live.
func boot(t *testing.T, cfg Config) *Result {
	t.Helper()
	if os.Getenv("BOXRUN_VM_LOG") != "" {
		w := lineLogger(t)
		defer w.Close()
		cfg.Log = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := Boot(ctx, cfg)
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Logf("boot %s, run %s, exit code %d", res.Boot.Round(time.Millisecond), res.Run.Round(time.Millisecond), res.ExitCode)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", res.Console)
		}
	})
	return res
}

// lineLogger returns a writer that logs each console line through t.Log.
func lineLogger(t *testing.T) io.WriteCloser {
	r, w := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			t.Log("console: " + strings.TrimRight(sc.Text(), "\r"))
		}
	}()
	return closerFunc(func() error { w.Close(); <-done; return nil }, w)
}

type closeWriter struct {
	io.Writer
	close func() error
}

func (c closeWriter) Close() error { return c.close() }

func closerFunc(f func() error, w io.Writer) io.WriteCloser { return closeWriter{w, f} }

func assertContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q; it is:\n%s", what, w, got)
		}
	}
}

// testUserFiles adds the test user boxtest (uid/gid 1500) to the guest.
var testUserFiles = map[string]File{
	"/etc/passwd": {Append: true, Data: "boxtest:x:1500:1500:boxrun test user:/home/boxtest:/bin/sh\n"},
	"/etc/group":  {Append: true, Data: "boxtest:x:1500:\n"},
	"/etc/shadow": {Append: true, Data: "boxtest:!:20000:0:99999:7:::\n"},
}

func TestBootSystemd(t *testing.T) {
	t.Parallel()
	requireVM(t)
	const userCheck = `
mkdir -p /home/boxtest && chown 1500:1500 /home/boxtest
systemctl start user@1500.service || { echo "user@1500 failed"; systemctl status --no-pager user@1500.service; }
echo "version: $(setpriv --reuid=1500 --regid=1500 --init-groups env XDG_RUNTIME_DIR=/run/user/1500 systemctl --user show -p Version)"
echo "delegated: $(cat /sys/fs/cgroup/user.slice/user-1500.slice/user@1500.service/cgroup.subtree_control)"
`
	res := boot(t, Config{
		Mode:    Systemd,
		Files:   testUserFiles,
		Env:     map[string]string{"GREETING": "it's here"},
		Command: `cat /proc/1/comm; cat /sys/fs/cgroup/cgroup.controllers; echo "greeting: $GREETING"; ` + userCheck + `echo out; echo err >&2; exit 7`,
	})
	assertContains(t, "Output", res.Output, "systemd\n", "memory", "pids", "cpu", "out\n", "err\n", "greeting: it's here\n")
	if res.ExitCode != 7 {
		t.Errorf("ExitCode = %d, want 7", res.ExitCode)
	}
	if !regexp.MustCompile(`(?m)^version: Version=\d+`).MatchString(res.Output) {
		t.Errorf("the user manager of uid 1500 did not answer systemctl --user show -p Version; Output:\n%s", res.Output)
	}
	m := regexp.MustCompile(`(?m)^delegated: (.*)$`).FindStringSubmatch(res.Output)
	if m == nil {
		t.Fatalf("no delegated controllers line in Output:\n%s", res.Output)
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+m[1]+" ", " "+c+" ") {
			t.Errorf("user@1500.service's cgroup.subtree_control is %q, want it to contain %s", m[1], c)
		}
	}
}

func TestBootNoSystemd(t *testing.T) {
	t.Parallel()
	requireVM(t)
	res := boot(t, Config{
		Mode: NoSystemd,
		Command: `set -e
cat /proc/1/comm
grep cgroup2 /proc/mounts
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/box
echo 32M > /sys/fs/cgroup/box/memory.max
echo "memory.max: $(cat /sys/fs/cgroup/box/memory.max)"`,
	})
	if res.ExitCode != 0 {
		t.Errorf("ExitCode = %d, want 0", res.ExitCode)
	}
	if strings.HasPrefix(res.Output, "systemd") {
		t.Errorf("PID 1 is systemd in NoSystemd mode; Output:\n%s", res.Output)
	}
	assertContains(t, "Output", res.Output,
		"cgroup2 /sys/fs/cgroup cgroup2 ", "nsdelegate", "memory_recursiveprot",
		"memory.max: 33554432\n")
	m := regexp.MustCompile(`(?m)^controllers: (.*)$`).FindStringSubmatch(res.Output)
	if m == nil {
		t.Fatalf("no controllers line in Output:\n%s", res.Output)
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+m[1]+" ", " "+c+" ") {
			t.Errorf("cgroup.controllers is %q, want it to contain %s", m[1], c)
		}
	}
}

func TestOOMVisible(t *testing.T) {
	t.Parallel()
	requireVM(t)
	res := boot(t, Config{
		Mode: NoSystemd,
		Command: `echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/t
echo 64M > /sys/fs/cgroup/t/memory.max
sh -c 'echo $$ > /sys/fs/cgroup/t/cgroup.procs && head -c 200M /dev/zero | tail -n 1 >/dev/null'
echo "status: $?"
echo "events: $(tr '\n' ' ' < /sys/fs/cgroup/t/memory.events)"`,
	})
	assertContains(t, "Console", res.Console, "Killed process")
	if !regexp.MustCompile(`(?m)oom_kill [1-9]`).MatchString(res.Output) {
		t.Errorf("memory.events of the box shows no oom_kill; Output:\n%s", res.Output)
	}
}

// TestBootCancelKillsVM cancels a boot while its command runs: Boot must fail with the
// cause and the last console lines, and leave no QEMU or virtiofsd behind.
func TestBootCancelKillsVM(t *testing.T) {
	t.Parallel()
	requireVM(t)
	const memoryMB = 333 // marks this test's QEMU in /proc
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var seen strings.Builder // the console arrives in chunks that may split a line
	_, err := Boot(ctx, Config{
		Mode:     NoSystemd,
		Command:  "echo sleeping-forever; sleep 600",
		MemoryMB: memoryMB,
		Timeout:  5 * time.Minute,
		Log: writerFunc(func(p []byte) {
			seen.Write(p)
			if strings.Contains(seen.String(), "sleeping-forever") {
				cancel(errors.New("the test cancelled the boot"))
			}
		}),
	})
	if err == nil {
		t.Fatal("Boot returned no error after its context was cancelled")
	}
	t.Logf("Boot error: %v", err)
	assertContains(t, "Boot's error", err.Error(), "running the command", "the test cancelled the boot", "last console lines", "sleeping-forever")
	for _, p := range leakedHelpers(t, fmt.Sprintf("size=%dM", memoryMB)) {
		t.Errorf("process left running after Boot returned: %s", p)
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// leakedHelpers lists QEMU processes whose command line contains qemuMark, and
// virtiofsd processes whose socket's directory is gone (Boot removes the payload
// directory only after virtiofsd exited, so those belong to no running Boot).
func leakedHelpers(t *testing.T, qemuMark string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var leaked []string
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		cmdline := strings.Join(args, " ")
		switch filepath.Base(args[0]) {
		case "qemu-system-x86_64":
			if strings.Contains(cmdline, qemuMark) {
				leaked = append(leaked, cmdline)
			}
		case "virtiofsd":
			for _, a := range args {
				if sock, ok := strings.CutPrefix(a, "--socket-path="); ok {
					if _, err := os.Stat(filepath.Dir(sock)); errors.Is(err, fs.ErrNotExist) {
						leaked = append(leaked, cmdline)
					}
				}
			}
		}
	}
	return leaked
}
