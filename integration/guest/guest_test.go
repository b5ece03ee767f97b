//go:build boxrunguest

package guest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

// Roles the test binary plays when it is the command inside a box (hog,
// spin, probe, waiter), or, for the harness, the guest's watchdog.
const roleEnv = "BOXRUN_IT_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "waiter":
		os.Exit(waiter())
	case "hog":
		os.Exit(hog())
	case "spin":
		os.Exit(spin())
	case "probe":
		os.Exit(probe())
	case "watchdog":
		os.Exit(watchdog()) // the harness's, not a scenario's: see watchdog_test.go
	}
	// Every run with backpressure appends its decisions here; a failing
	// backpressure scenario shows its part (see traceOnFailure).
	os.Setenv("BOXRUN_BACKPRESSURE_TRACE", traceFile())
	os.Exit(m.Run())
}

// traceFile is where boxrun writes backpressure's decisions in the guest,
// one file for each user the scenarios run as.
func traceFile() string { return fmt.Sprintf("/tmp/boxrun-backpressure-%d.trace", os.Getuid()) }

// The trace grows over the whole guest session, in the guest's /tmp: a
// tmpfs, that is in its 1 GiB of RAM, as is this long-lived test process.
// A failing scenario logs at most traceTailLines lines of the last
// traceTailBytes its runs wrote, never the whole file; a scenario that
// finds the file over traceCapBytes empties it first (the scenarios before
// it have logged their part if they failed).
const (
	traceTailBytes = 256 << 10
	traceTailLines = 200
	traceCapBytes  = 8 << 20
)

// traceOnFailure logs, when the test fails, the backpressure decisions its
// runs wrote (the last traceTailLines lines): why a scenario was slow or
// paused for long is in there, and nowhere else once the guest is gone.
func traceOnFailure(t *testing.T) {
	t.Helper()
	path := traceFile()
	var from int64
	if fi, err := os.Stat(path); err == nil {
		from = fi.Size()
		if from > traceCapBytes && os.Truncate(path, 0) == nil {
			from = 0
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lines, written, err := traceTail(path, from)
		if err != nil || len(lines) == 0 {
			t.Logf("no backpressure trace from this test's runs in %s (%d bytes written, error %v)", path, written, err)
			return
		}
		t.Logf("backpressure trace (the last %d lines of the %d bytes this test's runs wrote to %s):\n%s",
			len(lines), written, path, strings.Join(lines, "\n"))
	})
}

// traceTail returns the last traceTailLines lines of what was appended to
// the file at path after its first from bytes, reading at most the last
// traceTailBytes of them, and how many bytes were appended. A file now
// shorter than from was emptied or replaced: all of it is new.
func traceTail(path string, from int64) (lines []string, written int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	end := fi.Size()
	if end < from {
		from = 0
	}
	written = end - from
	if written == 0 {
		return nil, 0, nil
	}
	start := max(from, end-traceTailBytes)
	if start > from {
		start-- // the byte before, to tell whether a line starts there
	}
	buf := make([]byte, end-start)
	n, err := f.ReadAt(buf, start)
	if err != nil && err != io.EOF {
		return nil, written, err
	}
	buf = buf[:n]
	if start > from {
		// The read began inside the new bytes: drop up to the first line
		// that starts in it.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	text := strings.TrimRight(string(buf), "\n")
	if text == "" {
		return nil, written, nil
	}
	lines = strings.Split(text, "\n")
	if len(lines) > traceTailLines {
		lines = lines[len(lines)-traceTailLines:]
	}
	return lines, written, nil
}

// hog allocates HOG_MB megabytes in one step, touching every page, holds
// them flat for HOG_HOLD (a duration), and exits 0. Options, for the
// backpressure scenarios (burst_test.go):
//
//	HOG_REPORT=FILE  append "hold PID PLANNED_MS ACTUAL_MS GAP_MS PEAK_KB" to
//	                 FILE after the hold: the wall time the flat hold really
//	                 took, the longest gap between its 10 ms wake-ups, and
//	                 its peak resident size (VmHWM: runtime and all). A
//	                 process paused while it holds shows the pause in the gap
//	                 (and in the overshoot, if the pause outlasts the hold).
//	HOG_LOCK=FILE    after the first allocation, take flock(LOCK_EX) on FILE
//	HOG_MB2=N        (with HOG_LOCK) then allocate N MiB more, and hold; the
//	                 lock goes with the process at exit
//	HOG_WRITE_MB=N   after allocating, write N MiB to stdout (a producer)
//	HOG_READ=1       after allocating, read stdin to EOF keeping every byte
//	                 (a consumer that grows as it reads)
//	HOG_FLAT=DIR     hold with a file DIR/PID present: the process has done
//	                 all its growing and holds flat (see flatWatch)
func hog() int {
	mb, _ := strconv.Atoi(os.Getenv("HOG_MB"))
	hold, _ := time.ParseDuration(os.Getenv("HOG_HOLD"))
	bufs := allocate(nil, mb)
	if path := os.Getenv("HOG_LOCK"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "hog: locking %s: %v\n", path, err)
			return 1
		}
		mb2, _ := strconv.Atoi(os.Getenv("HOG_MB2"))
		bufs = allocate(bufs, mb2)
	}
	if n, _ := strconv.Atoi(os.Getenv("HOG_WRITE_MB")); n > 0 {
		chunk := bytes.Repeat([]byte{'x'}, 1<<20)
		for i := 0; i < n; i++ {
			if _, err := os.Stdout.Write(chunk); err != nil {
				fmt.Fprintf(os.Stderr, "hog: writing: %v\n", err)
				return 1
			}
		}
	}
	if os.Getenv("HOG_READ") != "" {
		for {
			b := make([]byte, 1<<20)
			n, err := io.ReadFull(os.Stdin, b)
			if n > 0 {
				bufs = append(bufs, b[:n])
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "hog: reading: %v\n", err)
				return 1
			}
		}
	}
	flat := ""
	if dir := os.Getenv("HOG_FLAT"); dir != "" {
		flat = filepath.Join(dir, strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(flat, nil, 0o666); err != nil {
			fmt.Fprintf(os.Stderr, "hog: %v\n", err)
			return 1
		}
	}
	start := time.Now()
	var gap time.Duration
	for last := start; ; {
		left := hold - time.Since(start)
		if left <= 0 {
			break
		}
		time.Sleep(min(left, 10*time.Millisecond))
		now := time.Now()
		gap = max(gap, now.Sub(last))
		last = now
	}
	took := time.Since(start)
	if flat != "" {
		os.Remove(flat)
	}
	if path := os.Getenv("HOG_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
		if err == nil {
			// One short write with O_APPEND: lines of concurrent hogs do
			// not interleave.
			st, _ := procfs.ReadStatus(os.Getpid())
			_, err = fmt.Fprintf(f, "hold %d %d %d %d %d\n", os.Getpid(), hold.Milliseconds(), took.Milliseconds(), gap.Milliseconds(), st.HWM>>10)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "hog: reporting the hold: %v\n", err)
			return 1
		}
	}
	if os.Getenv("HOG_WRITE_MB") == "" {
		fmt.Printf("hog held %d MB\n", len(bufs))
	}
	return 0
}

// allocate appends mb MiB to bufs, touching every page.
func allocate(bufs [][]byte, mb int) [][]byte {
	for i := 0; i < mb; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		bufs = append(bufs, b)
	}
	return bufs
}

// mode is the guest configuration this binary runs under.
func mode(t *testing.T) string {
	t.Helper()
	m := os.Getenv("BOXRUN_IT_MODE")
	switch m {
	case "root", "user", "cgroupfs":
		return m
	}
	t.Fatalf("BOXRUN_IT_MODE=%q: these tests run only inside the real-kernel guest started by integration/ (go test ./integration/)", m)
	return ""
}

func boxrunBin(t *testing.T) string {
	t.Helper()
	b := os.Getenv("BOXRUN_BIN")
	if b == "" {
		t.Fatal("BOXRUN_BIN is not set: run through integration/ (go test ./integration/)")
	}
	return b
}

// policyFile writes a policy file for one test.
func policyFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policies.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// result is one boxrun run.
type result struct {
	code           int
	stdout, stderr string
}

// boxrun runs the binary with args and returns its exit code and output.
func boxrun(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append(backendArgs(t), args...)
	cmd := exec.CommandContext(ctx, boxrunBin(t), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running boxrun %v: %v", full, err)
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			switch ws.Signal() {
			case syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM:
				// boxrun dies of the signal its command died of, after
				// cleaning up: as a shell reports it.
				code = 128 + int(ws.Signal())
			default:
				t.Fatalf("boxrun itself died by %v (args %v)\nstderr:\n%s", ws.Signal(), full, errb.String())
			}
		}
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("boxrun %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), code, r.stdout, r.stderr)
	return r
}

// backendArgs selects the backend for the mode.
func backendArgs(t *testing.T) []string {
	switch mode(t) {
	case "root":
		return []string{"--backend", "systemd", "--system"}
	case "user":
		return []string{"--backend", "systemd", "--user"}
	default:
		return []string{"--backend", "cgroupfs"}
	}
}

const basePolicy = `
[policies.it]
description = "integration test"
memory.high = "96M"
memory.max = "128M"
memory.swap.max = "0"
pids.max = 64
cpu.weight = 20
cpu.max = "150%%"
oom_score_adj = 700
leftovers = "kill"
leftovers_grace = "1s"
%s
`

func itPolicy(t *testing.T, extra string) string {
	return policyFile(t, fmt.Sprintf(basePolicy, extra))
}

// showCgroup is a shell snippet printing the command's cgroup and its limits.
const showCgroup = `cg=$(sed -n 's/^0:://p' /proc/self/cgroup); echo "cgroup=$cg"; ` +
	`for f in memory.high memory.max memory.swap.max pids.max cpu.weight cpu.max memory.oom.group; do ` +
	`printf '%s=' $f; cat /sys/fs/cgroup$cg/$f 2>/dev/null || echo missing; done; ` +
	`echo "oom_score_adj=$(cat /proc/self/oom_score_adj)"; echo "parent_cgroup=$(sed -n 's/^0:://p' /proc/$PPID/cgroup)"; ` +
	`echo "unit=$BOXRUN_UNIT"`

func fields(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestLimitsWrittenAndReadBack(t *testing.T) {
	pf := itPolicy(t, "")
	r := boxrun(t, "-f", pf, "-p", "it", "--", "sh", "-c", showCgroup)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	f := fields(r.stdout)
	want := map[string]string{
		"memory.high":     strconv.Itoa(96 << 20),
		"memory.max":      strconv.Itoa(128 << 20),
		"memory.swap.max": "0",
		"pids.max":        "64",
		"cpu.weight":      "20",
		"cpu.max":         "150000 100000",
		"oom_score_adj":   "700",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	cg := f["cgroup"]
	switch mode(t) {
	case "root", "user":
		if !regexp.MustCompile(`/boxrun\.slice/boxrun-it-[0-9a-f]{8}\.scope$`).MatchString(cg) {
			t.Errorf("cgroup %q: want .../boxrun.slice/boxrun-it-XXXXXXXX.scope", cg)
		}
		if f["unit"] != filepath.Base(cg) {
			t.Errorf("BOXRUN_UNIT=%q, want %q", f["unit"], filepath.Base(cg))
		}
		if mode(t) == "user" && !strings.Contains(cg, "/user@") {
			t.Errorf("cgroup %q is not under the user manager", cg)
		}
	case "cgroupfs":
		if !regexp.MustCompile(`^/boxrun\.slice/boxrun-it-[0-9a-f]{8}$`).MatchString(cg) {
			t.Errorf("cgroup %q: want /boxrun.slice/boxrun-it-XXXXXXXX", cg)
		}
	}
	// boxrun itself stays outside the box.
	if f["parent_cgroup"] == cg || f["parent_cgroup"] == "" {
		t.Errorf("boxrun's cgroup %q must differ from the box's %q", f["parent_cgroup"], cg)
	}
	if strings.Contains(r.stderr, "not enforced") || strings.Contains(r.stderr, "not boxed") {
		t.Errorf("unexpected warning: %s", r.stderr)
	}
	if _, err := os.Stat("/sys/fs/cgroup" + cg); err == nil {
		t.Errorf("box %s still exists after boxrun returned", cg)
	}
}

func TestEveryChildStartsInsideTheBox(t *testing.T) {
	pf := itPolicy(t, "")
	// The command forks at once; every process must report the box.
	r := boxrun(t, "-f", pf, "-p", "it", "--", "sh", "-c",
		`cat /proc/self/cgroup & (cat /proc/self/cgroup) & cat /proc/self/cgroup; wait`)
	lines := strings.Fields(strings.TrimSpace(r.stdout))
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines: %q", r.code, len(lines), r.stdout)
	}
	for _, l := range lines {
		if !strings.Contains(l, "boxrun-it-") {
			t.Errorf("a child ran outside the box: %q", l)
		}
	}
}

func TestOOMKillsOnlyTheHog(t *testing.T) {
	pf := itPolicy(t, "")
	self, _ := os.Executable()
	script := fmt.Sprintf(`sleep 2 & sib=$!
%s=hog HOG_MB=400 HOG_HOLD=1s %s; echo "hog=$?"
wait $sib; echo "sibling=$?"
echo "oom_kill=$(sed -n 's/^oom_kill //p' /sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.events)"`, roleEnv, self)
	// memory.high=max: without swap, throttling above high would only slow
	// the hog on its way to memory.max.
	r := boxrun(t, "-f", pf, "-p", "it", "--set", "memory.high=max", "--", "sh", "-c", script)
	f := fields(r.stdout)
	if f["hog"] != "137" {
		t.Errorf("hog exit %q, want 137 (SIGKILL by the OOM killer at memory.max)", f["hog"])
	}
	if f["sibling"] != "0" {
		t.Errorf("sibling exit %q, want 0: one OOM kill must not take the rest of the box", f["sibling"])
	}
	if n, _ := strconv.Atoi(f["oom_kill"]); n < 1 {
		t.Errorf("memory.events oom_kill = %q, want >= 1", f["oom_kill"])
	}
	if r.code != 0 {
		t.Errorf("boxrun exit %d, want the script's 0", r.code)
	}
}

// TestScopeCarriesOOMPolicy: the manager must not act on an OOM kill in
// the box, so boxrun asks for OOMPolicy=continue on the scope (see
// scopeProperties in box), and falls back with a warning on a manager
// that refuses the property. Which a guest shows depends on its systemd:
// upstream 253 brought OOMPolicy on scopes, Debian 12's 252 has it from
// 252.5 on (a stable backport), so both guests (252.39, 257) must carry
// "continue" and print no warning; an older manager must show the default
// "stop" and the warning. The cgroupfs backend has no manager and no unit.
// The run's report names the kernel release and the manager's Version as
// systemctl shows it (null without a manager).
func TestScopeCarriesOOMPolicy(t *testing.T) {
	pf := itPolicy(t, "")
	release := osRelease(t)
	if mode(t) == "cgroupfs" {
		r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--", "sh", "-c", `echo "unit=$BOXRUN_UNIT"`)
		if r.code != 0 || fields(r.stdout)["unit"] != "" {
			t.Errorf("cgroupfs: exit %d, stdout %q; want 0 and no unit", r.code, r.stdout)
		}
		if rep.Kernel == nil || *rep.Kernel != release || rep.Systemd != nil {
			t.Errorf("cgroupfs: the report's kernel %v, systemd %v; want %q and null", deref(rep.Kernel), deref(rep.Systemd), release)
		}
		return
	}
	systemctl := "systemctl"
	if mode(t) == "user" {
		systemctl = "systemctl --user"
	}
	r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--", "sh", "-c",
		`echo "version=$(`+systemctl+` show -p Version --value)"; echo "oom=$(`+systemctl+` show -p OOMPolicy --value "$BOXRUN_UNIT")"`)
	f := fields(r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	major, minor, ok := systemdRelease(f["version"])
	if !ok {
		t.Fatalf("the manager's Version %q: want a release such as 252.38-1~deb12u1 or 257.13-1~deb13u1", f["version"])
	}
	if rep.Kernel == nil || *rep.Kernel != release || rep.Systemd == nil || *rep.Systemd != f["version"] {
		t.Errorf("the report's kernel %v, systemd %v; want %q and the manager's %q", deref(rep.Kernel), deref(rep.Systemd), release, f["version"])
	}
	warned := strings.Contains(r.stderr, "cannot set OOMPolicy on a scope")
	if major > 252 || major == 252 && minor >= 5 {
		if f["oom"] != "continue" || warned {
			t.Errorf("systemd %s: the scope's OOMPolicy %q, warning %v (stderr %q); want continue and no warning", f["version"], f["oom"], warned, r.stderr)
		}
		t.Logf("figures: systemd %s carries OOMPolicy=%s on the scope", f["version"], f["oom"])
		return
	}
	if f["oom"] != "stop" || !warned {
		t.Errorf("systemd %s refuses OOMPolicy on a scope: the scope's OOMPolicy %q, warning %v (stderr %q); want the default stop and the warning", f["version"], f["oom"], warned, r.stderr)
	}
}

// osRelease is the guest kernel's release, as uname -r says it.
func osRelease(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatalf("reading the kernel release: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// deref is *s, or "null" for nil, for messages.
func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

// systemdRelease reads the major and minor release of a manager's
// Version ("252.38-1~deb12u1", "257.13-1~deb13u1", "253"); minor is 0
// when there is none.
func systemdRelease(v string) (major, minor int, ok bool) {
	v, _, _ = strings.Cut(strings.Trim(v, `"`), "-")
	maj, min, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(maj)
	if err != nil {
		return 0, 0, false
	}
	if min != "" {
		if minor, err = strconv.Atoi(min); err != nil {
			return 0, 0, false
		}
	}
	return major, minor, true
}

func TestOOMGroupKillsTheWholeBox(t *testing.T) {
	pf := itPolicy(t, "memory.oom_group = true")
	self, _ := os.Executable()
	r := boxrun(t, "-f", pf, "-p", "it", "--set", "memory.high=max", "--", "sh", "-c",
		fmt.Sprintf(`sleep 30 & %s=hog HOG_MB=400 HOG_HOLD=1s %s; wait`, roleEnv, self))
	if r.code != 137 {
		t.Errorf("boxrun exit %d, want 137: with memory.oom_group the whole tree dies together", r.code)
	}
}

func TestForkRejectedAtPidsMax(t *testing.T) {
	pf := itPolicy(t, "")
	// The inner shell forks until pids.max stops it (dash gives up at the
	// first failed fork). The outer shell then waits for the sleeps with
	// builtins only, since any fork fails while the box is full.
	r := boxrun(t, "-f", pf, "-p", "it", "--set", "pids.max=12", "--", "sh", "-c",
		`cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
sh -c 'for i in $(seq 30); do sleep 2 & done; wait'; echo "inner=$?"
while read cur < $cg/pids.current && [ "$cur" -gt 1 ]; do :; done
while read k v; do [ "$k" = max ] && echo "events=$v"; done < $cg/pids.events
exit 0`)
	f := fields(r.stdout)
	if n, _ := strconv.Atoi(f["events"]); n < 1 {
		t.Errorf("pids.events max = %q, want >= 1 (forks rejected at pids.max)", f["events"])
	}
	if f["inner"] == "0" || !strings.Contains(strings.ToLower(r.stderr), "fork") {
		t.Errorf("inner shell exit %q, stderr %q: want a failed fork reported", f["inner"], r.stderr)
	}
	if r.code != 0 {
		t.Errorf("boxrun exit %d, want 0", r.code)
	}
}

func TestExitCodes(t *testing.T) {
	pf := itPolicy(t, "")
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"success", []string{"true"}, 0},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7},
		{"SIGTERM", []string{"sh", "-c", "kill -TERM $$"}, 143},
		{"not executable", []string{noexec}, 126},
		{"not found", []string{"no-such-command-xyz"}, 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := boxrun(t, append([]string{"-f", pf, "-p", "it", "--"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
		})
	}
	t.Run("unknown policy", func(t *testing.T) {
		r := boxrun(t, "-f", pf, "-p", "nope", "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "nope") {
			t.Errorf("exit %d, stderr %q; want 125 naming the policy", r.code, r.stderr)
		}
	})
}

func TestSignalsAreForwarded(t *testing.T) {
	pf := itPolicy(t, "")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			script := fmt.Sprintf(`trap 'echo got; exit 42' %s; touch %s; while :; do sleep 0.1; done`,
				strings.TrimPrefix(signalName(sig), "SIG"), ready)
			cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--", "sh", "-c", script)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the command never started: %s", out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 42 || !strings.Contains(out.String(), "got") {
				t.Errorf("exit %d, output %q; want 42 from the command's trap", code, out.String())
			}
		})
	}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}

func TestLeftoversAreKilledAndNamed(t *testing.T) {
	pf := itPolicy(t, "")
	pidfile := filepath.Join(t.TempDir(), "pid")
	r := boxrun(t, "-f", pf, "-p", "it", "--", "sh", "-c",
		fmt.Sprintf(`sleep 300 & echo $! > %s; sleep 0.3; exit 3`, pidfile))
	if r.code != 3 {
		t.Errorf("exit %d, want the command's 3", r.code)
	}
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if !strings.Contains(r.stderr, fmt.Sprintf("pid %d sleep: sleep 300", pid)) {
		t.Errorf("stderr does not name the leftover (pid %d sleep: sleep 300): %q", pid, r.stderr)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("leftover pid %d still alive", pid)
	}
}

func TestLeftoverIgnoringTERMIsKilled(t *testing.T) {
	pf := itPolicy(t, "")
	pidfile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	r := boxrun(t, "-f", pf, "-p", "it", "--", "sh", "-c",
		fmt.Sprintf(`sh -c 'trap "" TERM; echo $$ > %s; while :; do sleep 0.2; done' & sleep 0.5; exit 0`, pidfile))
	if r.code != 0 {
		t.Errorf("exit %d", r.code)
	}
	data, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid == 0 || syscall.Kill(pid, 0) == nil {
		t.Errorf("leftover %d ignoring SIGTERM still alive", pid)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("boxrun returned after %v, before the 1s grace period", d)
	}
}

// boxName matches the cgroup of a box: boxrun-POLICY-ID, with .scope under
// systemd (and not the harness's own boxrun-test.service).
var boxName = regexp.MustCompile(`^boxrun-\w+-[0-9a-f]{8}(\.scope)?$`)

// boxes lists the boxrun cgroups that exist now.
func boxes(t *testing.T) []string { return cgroupsNamed(boxName) }

// cgroupsNamed lists the cgroups whose name re matches, not those below
// them.
func cgroupsNamed(re *regexp.Regexp) []string {
	var found []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && re.MatchString(d.Name()) {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func TestNoStrayBoxesAfterManyRuns(t *testing.T) {
	pf := itPolicy(t, "")
	before := boxes(t)
	scripts := []string{"true", "exit 1", "kill -TERM $$", "sleep 100 & exit 0", "sh -c 'sleep 100' & sleep 0.1"}
	for i := 0; i < 10; i++ {
		boxrun(t, "-q", "-f", pf, "-p", "it", "--", "sh", "-c", scripts[i%len(scripts)])
	}
	after := boxes(t)
	if len(after) > len(before) {
		t.Errorf("stray boxes after 10 runs: %v (before: %v)", after, before)
	}
}

func TestStrictRefusesWhatCannotBeEnforced(t *testing.T) {
	if mode(t) != "user" {
		// As root every controller is available; the user manager lacks io.
		pf := itPolicy(t, "")
		r := boxrun(t, "--strict", "-f", pf, "-p", "it", "--", "true")
		if r.code != 0 {
			t.Errorf("--strict with an enforceable policy: exit %d, want 0", r.code)
		}
		return
	}
	marker := filepath.Join(t.TempDir(), "ran")
	pf := itPolicy(t, "io.weight = 50")
	r := boxrun(t, "-f", pf, "-p", "it", "--", "true")
	if r.code != 0 || !strings.Contains(r.stderr, "io.weight") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("without --strict: exit %d, stderr %q; want 0 and a warning about io.weight with a hint", r.code, r.stderr)
	}
	r = boxrun(t, "--strict", "-f", pf, "-p", "it", "--", "touch", marker)
	if r.code != 125 || !strings.Contains(r.stderr, "io.weight") {
		t.Errorf("with --strict: exit %d, stderr %q; want 125 naming io.weight", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although --strict refused")
	}
}

func TestBuiltinPolicyWorksWithNoFile(t *testing.T) {
	r := boxrun(t, "--", "sh", "-c", showCgroup)
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	f := fields(r.stdout)
	if f["pids.max"] != "4096" || f["oom_score_adj"] != "500" || f["memory.max"] == "max" || f["memory.max"] == "missing" {
		t.Errorf("built-in tests policy not applied: %v", f)
	}
}

// shellCode is a finished process's status as a shell reports it: its exit
// status, or 128+N when it died of signal N (boxrun dies of the SIGINT,
// SIGHUP or SIGTERM its command died of).
func shellCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
