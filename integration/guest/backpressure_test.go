//go:build boxrunguest

package guest

import (
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

	"github.com/boxrun/boxrun/internal/procfs"
)

// suiteScript is a test-suite-like workload: threads run jobs one after
// another, each job a process holding mb MiB for hold. It prints one line
// per failed job and, at the end, "failed=N" and the box's oom_kill count.
func suiteScript(threads, jobs, mb int, hold string) string {
	self, _ := os.Executable()
	return fmt.Sprintf(`cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
out=$(mktemp -d)
for t in $(seq %d); do
  ( for j in $(seq %d); do
      %s=hog HOG_MB=%d HOG_HOLD=%s %s >/dev/null 2>&1 || echo "job $t.$j failed: $?" >> $out/failed
    done ) &
done
wait
echo "failed=$(cat $out/failed 2>/dev/null | wc -l)"
cat $out/failed 2>/dev/null
echo "oom_kill=$(sed -n 's/^oom_kill //p' $cg/memory.events 2>/dev/null)"
rm -rf $out`, threads, jobs, roleEnv, mb, hold, self)
}

// editor starts an editor-like process outside any box: it holds memory and
// has the oom_score_adj Electron gives its renderers.
func editor(t *testing.T) *exec.Cmd {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"=hog", "HOG_MB=64", "HOG_HOLD=10m")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte("300"), 0)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestBackpressureFinishesTheSuiteWithoutOOM(t *testing.T) {
	traceOnFailure(t)
	// Each job holds 40M, about 44M resident with the Go runtime: 12 at
	// once want 533M, twice the 264M box.
	const threads, jobs, mb = 12, 2, 40
	hold := "1s"
	pf := itPolicy(t, "")
	script := suiteScript(threads, jobs, mb, hold)
	ed := editor(t)

	// The same workload, unboxed, measured in this boot: once before and
	// once after the boxed runs, averaged, as emulated time drifts.
	unboxedRun := func() time.Duration {
		start := time.Now()
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		if f := fields(string(out)); err != nil || f["failed"] != "0" {
			t.Fatalf("the workload fails even without a box: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	requireRoomUnboxed(t, threads*(mb+4))
	unboxed1 := unboxedRun()

	// A kill-only box: memory.max at half the demand OOM-kills jobs.
	common := []string{"-f", pf, "-p", "it", "--set", "memory.max=264M", "--set", "memory.high=max", "--set", "pids.max=max", "--set", "cpu.max=max"}
	r := boxrun(t, append(append([]string{}, common...), "--set", "memory.backpressure=false", "--", "sh", "-c", script)...)
	killOnly := fields(r.stdout)
	if n, _ := strconv.Atoi(killOnly["oom_kill"]); n == 0 || killOnly["failed"] == "0" {
		t.Fatalf("without backpressure: oom_kill %q, failed %q; the workload must overflow the box for this test to mean anything", killOnly["oom_kill"], killOnly["failed"])
	}

	// Backpressure: the same box finishes every job with no OOM kill.
	start := time.Now()
	r = boxrun(t, append(append([]string{}, common...), "--set", "memory.backpressure=true", "--", "sh", "-c", script)...)
	boxed := time.Since(start)
	unboxed := (unboxed1 + unboxedRun()) / 2
	f := fields(r.stdout)
	ratio := boxed.Seconds() / unboxed.Seconds()
	t.Logf("figures: unboxed %.1fs; kill-only box: %s failed, %s OOM kills; backpressure: %s failed, %s OOM kills, %.1fs (%.2fx unboxed)",
		unboxed.Seconds(), killOnly["failed"], killOnly["oom_kill"], f["failed"], f["oom_kill"], boxed.Seconds(), ratio)
	// Goal (issue 10): no failed job and no OOM kill.
	if f["failed"] != "0" || f["oom_kill"] != "0" {
		t.Errorf("with backpressure: failed %q, oom_kill %q; want 0 and 0", f["failed"], f["oom_kill"])
	}
	if r.code != 0 {
		t.Errorf("boxrun exit %d", r.code)
	}
	if !strings.Contains(r.stderr, "backpressure paused") {
		t.Errorf("stderr does not say what backpressure did: %q", r.stderr)
	}
	// The time against unboxed is a figure, not a test: the goal is 3x
	// (issue 10) and make bench reports the ratio (this figures line)
	// against it. Emulated on a shared 2-core host the same code has
	// measured 1.9x to 2.9x, and 4.1x and 4.4x as the user with the host
	// loaded; a bound on it fails on the host's load, not on a rule.
	// What must hold whatever the speed is above: no job failed, no OOM
	// kill, and below: the editor alive, nothing left stopped.
	if err := ed.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the editor-like process beside the box died: %v", err)
	}
	// Nothing stays stopped.
	for _, b := range boxes(t) {
		t.Errorf("box left behind: %s", b)
	}
}

// TestKilledBoxrunLeavesNothingBehind SIGKILLs boxrun while backpressure
// holds processes stopped: its guard must resume and kill everything in the
// box, and the box must go — nothing stopped forever, nothing running on.
// The guard then writes the run's report (a post-mortem): into
// --report-json's file and the run log, where `boxrun last` prints it,
// saying boxrun was killed by SIGKILL and which processes it killed.
func TestKilledBoxrunLeavesNothingBehind(t *testing.T) {
	pf := itPolicy(t, "")
	self, _ := os.Executable()
	pidfile := t.TempDir() + "/pids"
	reportFile := filepath.Join(t.TempDir(), "report.json")
	state := t.TempDir() // the user's run log (root's is /var/lib/boxrun's)
	// Four hogs of 40M in a 96M box: backpressure pauses some.
	script := fmt.Sprintf(`for i in 1 2 3 4; do %s=hog HOG_MB=40 HOG_HOLD=60s %s & echo $! >> %s; done; wait`, roleEnv, self, pidfile)
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--set", "memory.max=96M", "--report-json", reportFile,
		"--set", "memory.high=max", "--set", "memory.backpressure=true", "--", "sh", "-c", script)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readPids := func() []int {
		data, _ := os.ReadFile(pidfile)
		var pids []int
		for _, s := range strings.Fields(string(data)) {
			// A line that is not a pid must not become pid 0: killing
			// it would kill the harness's whole process group.
			if pid, err := strconv.Atoi(s); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	stopped := 0
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && stopped == 0 {
		time.Sleep(200 * time.Millisecond)
		for _, pid := range readPids() {
			if paused(pid) { // stopped, or frozen by the cgroup freezer
				stopped++
			}
		}
	}
	if stopped == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("backpressure never paused a process")
	}
	// boxrun dies without a chance to clean up. Its parent (this test, as
	// a harness would) reaps it a moment later: until then its exit
	// status says what killed it.
	cmd.Process.Kill()
	time.Sleep(time.Second)
	cmd.Wait()
	var alive []string
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		alive = nil
		for _, pid := range readPids() {
			if st := procState(pid); st != "" && st != "Z" {
				alive = append(alive, fmt.Sprintf("%d (%s)", pid, st))
			}
		}
		if len(alive) == 0 && len(boxes(t)) == 0 {
			checkPostMortem(t, reportFile, state, len(readPids()))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("15s after boxrun was killed: processes of its box still there: %v; boxes: %v", alive, boxes(t))
	for _, pid := range readPids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// checkPostMortem checks the report a guard wrote for a run whose boxrun
// was killed by SIGKILL with at least hogs processes (and their shell) in
// the box: in the --report-json file, and as `boxrun last` prints it.
func checkPostMortem(t *testing.T, reportFile, state string, hogs int) {
	t.Helper()
	// The guard writes the report once the box is empty: give it a moment.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(reportFile); err == nil {
			break
		}
	}
	rep := readReport(t, reportFile)
	if sig := rep.value("boxrun_killed", "signal"); sig != "SIGKILL" {
		t.Errorf("the post-mortem says boxrun died of %v (boxrun_killed %v), want SIGKILL", sig, rep.value("boxrun_killed"))
	}
	if n, _ := rep.num("boxrun_killed", "processes_killed"); int(n) < hogs+1 {
		t.Errorf("the post-mortem says the guard killed %v processes, want the %d hogs and their shell at least", n, hogs)
	}
	kinds := ""
	if ds, ok := rep.value("diagnosis").([]any); ok {
		for _, d := range ds {
			if m, _ := d.(map[string]any); m != nil {
				kinds += fmt.Sprint(m["kind"], " ")
			}
		}
	}
	if !strings.Contains(kinds, "boxrun_killed") {
		t.Errorf("the post-mortem's diagnosis (%s) has no boxrun_killed", kinds)
	}
	last := exec.Command(boxrunBin(t), "last")
	last.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	out, err := last.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "boxrun itself was killed by SIGKILL") {
		t.Errorf("boxrun last: %v\n%s", err, out)
	}
	t.Logf("figures: post-mortem of a killed boxrun: boxrun_killed %v", rep.value("boxrun_killed"))
	readmeFigures(t, "boxrun_killed", string(out))
}

// requireRoomUnboxed fails the scenario unless the guest has room for an
// unboxed baseline that holds wantMB at once, with 128 MiB to spare for the
// page cache of the programs it runs. Without it the baseline drives the
// whole guest into reclaim, where re-reading executables over virtiofs
// under emulation can stall every process for many minutes: the very
// freeze boxrun prevents, and one that took a whole CI boot with it.
func requireRoomUnboxed(t *testing.T, wantMB int) {
	t.Helper()
	avail := memAvailableMB(t)
	if avail < wantMB+128 {
		t.Fatalf("the guest has %d MiB available; the unboxed baseline holds about %d MiB and needs 128 MiB more to run without thrashing the guest: make the scenario smaller", avail, wantMB)
	}
	t.Logf("the guest has %d MiB available for an unboxed baseline of about %d MiB", avail, wantMB)
}

// procState returns the state letter of /proc/PID/stat ("" if gone).
func procState(pid int) string {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return ""
	}
	return string(st.State)
}

// TestCargoTestUnderBackpressure runs a real `cargo test` of a small crate
// whose 48 CLI tests each spawn its binary (integration/testdata/memcrate),
// under 24 test threads, in a box half the size of what they want at once.
// The host builds the crate beforehand and runs this only where the guest
// can reach its Rust toolchain (as root).
func TestCargoTestUnderBackpressure(t *testing.T) {
	traceOnFailure(t)
	cargo, crate := os.Getenv("BOXRUN_IT_CARGO"), os.Getenv("BOXRUN_IT_CRATE")
	if cargo == "" || crate == "" {
		t.Fatal("BOXRUN_IT_CARGO and BOXRUN_IT_CRATE are not set: the host found no cargo to build integration/testdata/memcrate with")
	}
	pf := itPolicy(t, "")
	// 24 threads x (16M + the binary's own ~2M) want about 430M at once:
	// unboxed, that leaves the 1 GiB guest (~820 MiB available) room to
	// run without reclaiming its executables (see requireRoomUnboxed).
	test := fmt.Sprintf(`cd %s && MEMCRATE_MIB=16 MEMCRATE_MILLIS=1000 %s test --offline -q -- --test-threads=24 2>&1; `+
		`echo "cargo_exit=$?"; echo "oom_kill=$(sed -n 's/^oom_kill //p' /sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.events 2>/dev/null)"`, crate, cargo)
	requireRoomUnboxed(t, 24*(16+2))
	start := time.Now()
	out, _ := exec.Command("sh", "-c", test).CombinedOutput()
	unboxed := time.Since(start)
	if f := fields(string(out)); f["cargo_exit"] != "0" {
		t.Fatalf("cargo test fails even without a box:\n%s", out)
	}
	common := []string{"-f", pf, "-p", "it", "--set", "memory.max=216M", "--set", "memory.high=max", "--set", "pids.max=max", "--set", "cpu.max=max"}
	// The OOM kill count comes from boxrun's own report: in a kill-only
	// box the shell that would print it may be among the killed.
	rj := filepath.Join(t.TempDir(), "kill-only.json")
	r := boxrun(t, append(append([]string{}, common...), "--set", "memory.backpressure=false", "--report-json", rj, "--", "sh", "-c", test)...)
	killOnly := fields(r.stdout)
	killOnly["oom_kill"] = reportOOMKills(t, rj)
	if killOnly["cargo_exit"] == "" {
		killOnly["cargo_exit"] = "unknown (the shell that prints it was OOM-killed too)"
	}
	if killOnly["cargo_exit"] == "0" {
		t.Fatalf("without backpressure cargo test passed (oom_kill %q): the box must be too small for this test to mean anything", killOnly["oom_kill"])
	}
	start = time.Now()
	r = boxrun(t, append(append([]string{}, common...), "--set", "memory.backpressure=true", "--", "sh", "-c", test)...)
	boxed := time.Since(start)
	f := fields(r.stdout)
	t.Logf("figures: cargo test, 24 threads: unboxed %.1fs; kill-only box: cargo exit %s, %s OOM kills; backpressure: cargo exit %s, %s OOM kills, %.1fs (%.2fx unboxed)",
		unboxed.Seconds(), killOnly["cargo_exit"], killOnly["oom_kill"], f["cargo_exit"], f["oom_kill"], boxed.Seconds(), boxed.Seconds()/unboxed.Seconds())
	if f["cargo_exit"] != "0" || f["oom_kill"] != "0" || !strings.Contains(r.stdout, "48 passed") {
		t.Errorf("with backpressure: cargo exit %q, oom_kill %q; want every test passing and no OOM kill", f["cargo_exit"], f["oom_kill"])
	}
	// How much slower than unboxed is a figure (the log above, make bench),
	// never a bound here: under emulation it follows the host's load.

	// The same suite twice with its sizes kept (the harness turns them off
	// for every other scenario), in a project directory of its own: the
	// second run starts from what the first learned.
	t.Setenv("BOXRUN_SIZES", "")
	t.Chdir(t.TempDir())
	var took [2]time.Duration
	for i := range took {
		rj := filepath.Join(t.TempDir(), "report.json")
		start = time.Now()
		r = boxrun(t, append(append([]string{}, common...), "--set", "memory.backpressure=true", "--report-json", rj, "--", "sh", "-c", test)...)
		took[i] = time.Since(start)
		f = fields(r.stdout)
		if f["cargo_exit"] != "0" || reportOOMKills(t, rj) != "0" {
			t.Errorf("run %d with sizes kept: cargo exit %q, %s OOM kills; want every test passing and none", i+1, f["cargo_exit"], reportOOMKills(t, rj))
		}
		sizes, _ := readReport(t, rj).value("backpressure", "sizes").(string)
		wantFrom := i == 1
		if got := strings.HasPrefix(sizes, "from the last run of this project"); got != wantFrom {
			t.Errorf("run %d with sizes kept: the report's sizes is %q; want it from the last run: %v", i+1, sizes, wantFrom)
		}
	}
	t.Logf("figures: cargo test with sizes kept: first run %.1fs (%.2fx unboxed), second %.1fs (%.2fx)",
		took[0].Seconds(), took[0].Seconds()/unboxed.Seconds(), took[1].Seconds(), took[1].Seconds()/unboxed.Seconds())
}

// TestCargoRunLockUnderBackpressure is the lock pattern with the real
// cargo: memcrate's 24 lock tests (tests/lock.rs, run with --ignored) each
// run the workspace's helper through `cargo run -p helper`, under 12 test
// threads, so the cargo processes queue on cargo's own locks (package
// cache, build directory) holding their memory while the helpers that got
// through hold 32M each. The box is half of the peak the same run reaches
// unlimited in this boot. Every test passes, no OOM kill, no pause of 10 s
// or more. The host builds the crate beforehand; only root and the
// cgroupfs boot reach its Rust toolchain.
func TestCargoRunLockUnderBackpressure(t *testing.T) {
	cargo, crate := os.Getenv("BOXRUN_IT_CARGO"), os.Getenv("BOXRUN_IT_CRATE")
	if cargo == "" || crate == "" {
		t.Fatal("BOXRUN_IT_CARGO and BOXRUN_IT_CRATE are not set: the host found no cargo to build integration/testdata/memcrate with")
	}
	traceOnFailure(t)
	pf := itPolicy(t, "")
	// failed= is what checkRun reads: the lock tests that did not pass.
	test := fmt.Sprintf(`cd %s && out=$(MEMCRATE_MIB=32 MEMCRATE_MILLIS=1000 %s test --offline -q --test lock -- --ignored --test-threads=12 2>&1); e=$?
echo "$out"; passed=$(echo "$out" | sed -n 's/^test result: .* \([0-9]*\) passed;.*/\1/p' | tail -n 1)
echo "cargo_exit=$e"; echo "failed=$((24 - ${passed:-0}))"`, crate, cargo)
	start := time.Now()
	out, _ := exec.Command("sh", "-c", test).CombinedOutput()
	unboxed := time.Since(start)
	if f := fields(string(out)); f["cargo_exit"] != "0" || !strings.Contains(string(out), "24 passed") {
		t.Fatalf("the lock tests fail even without a box:\n%s", out)
	}
	// Its peak, unlimited, in this boot.
	dir := t.TempDir()
	measure := filepath.Join(dir, "unlimited.json")
	r := boxrunTimed(t, 2*time.Minute, "-f", pf, "-p", "it", "--report-json", measure, "--set", "memory.max=max", "--set", "memory.high=max",
		"--set", "pids.max=max", "--set", "cpu.max=max", "--set", "memory.backpressure=false", "--", "sh", "-c", test)
	peak, ok := readReport(t, measure).num("memory", "peak_bytes")
	if !ok || peak < 100<<20 || fields(r.stdout)["cargo_exit"] != "0" {
		t.Fatalf("unlimited box: cargo exit %q, peak %v (in report %v); want the tests passing and a peak over 100M to size the box by", fields(r.stdout)["cargo_exit"], peak, ok)
	}
	boxMB := int(peak) >> 20 / 2
	report := filepath.Join(dir, "report.json")
	r = boxrunTimed(t, 3*time.Minute, append(backpressureArgs(pf, report, boxMB), "--", "sh", "-c", test)...)
	rep := checkRun(t, r, report, 10*time.Second)
	f := fields(r.stdout)
	if f["cargo_exit"] != "0" || !strings.Contains(r.stdout, "24 passed") {
		t.Errorf("cargo exit %q; want all 24 lock tests passing", f["cargo_exit"])
	}
	t.Logf("figures: cargo run lock tests, 12 threads: unboxed %.1fs, peak %dM unlimited; box %dM: %.1fs (%.2fx unboxed), cargo exit %s; backpressure: %s",
		unboxed.Seconds(), int(peak)>>20, boxMB, r.took.Seconds(), r.took.Seconds()/unboxed.Seconds(), f["cargo_exit"], rep.bpSummary())
}

// reportOOMKills reads the box's OOM kill count from a --report-json file.
func reportOOMKills(t *testing.T, path string) string {
	t.Helper()
	var rep struct {
		Memory struct {
			Events struct {
				OOMKill *uint64 `json:"oom_kill"`
			} `json:"events"`
		} `json:"memory"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil || rep.Memory.Events.OOMKill == nil {
		t.Errorf("no OOM kill count in boxrun's report %s: %v", path, err)
		return "?"
	}
	return strconv.FormatUint(*rep.Memory.Events.OOMKill, 10)
}
