//go:build boxrunguest

package guest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nativeParent is the cgroup TestBenchNativePatterns gives bench/native.sh
// as BOXRUN_CGROUP_PARENT, as a user of the script would make it.
const nativeParent = "/sys/fs/cgroup/bench-native"

// TestBenchNativePatterns runs bench/native.sh — the burst and lock
// patterns, unboxed and in boxes of the cgroupfs backend — scaled down to
// this 1 GiB, 2-vCPU guest (24 tasks of 40M, 8 at once; 16 lock tasks of
// 20M + 20M, 8 at once), and reports each run as a "native" bench line.
// The script is meant for native hosts, where allocation outruns the
// controller; here it checks that the script works end to end and records
// the emulated figures. Missed bounds are figures, not failures: the test
// fails only when the script cannot measure (its exit status 2, or no
// summary).
func TestBenchNativePatterns(t *testing.T) {
	if mode(t) != "cgroupfs" {
		t.Log("the cgroupfs boot runs it: bench/native.sh drives the cgroupfs backend only")
		return
	}
	env := map[string]string{}
	for _, k := range []string{"BOXRUN_IT_REPO", "BOXRUN_IT_WORKLOAD", "BOXRUN_IT_JSONGET"} {
		if env[k] = os.Getenv(k); env[k] == "" {
			t.Fatalf("%s is not set: run through integration/ (go test ./integration/), which builds the benchmark's binaries", k)
		}
	}
	makeNativeParent(t)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(env["BOXRUN_IT_REPO"], "bench", "native.sh"))
	cmd.Env = append(os.Environ(),
		"BOXRUN_CGROUP_PARENT="+nativeParent,
		"BOXRUN="+boxrunBin(t), "WORKLOAD="+env["BOXRUN_IT_WORKLOAD"], "JSONGET="+env["BOXRUN_IT_JSONGET"],
		"BENCH_BURST_TASKS=24", "BENCH_BURST_PARALLEL=8", "BENCH_BURST_MB=40",
		"BENCH_LOCK_TASKS=16", "BENCH_LOCK_PARALLEL=8", "BENCH_LOCK_MB=20", "BENCH_LOCK_MB2=20",
		// Unboxed, each pattern takes a few seconds here; a frozen run
		// is known after a minute.
		"BENCH_TIMEOUT=60")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running bench/native.sh: %v", err)
	}
	t.Logf("bench/native.sh exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	rows := nativeRows(stdout.String())
	if code != 0 && code != 1 || len(rows) == 0 {
		t.Fatalf("bench/native.sh could not measure (exit %d, %d runs in its summary)", code, len(rows))
	}
	for _, r := range rows {
		benchLine(t, "native", r)
	}
}

// makeNativeParent makes nativeParent with the memory and pids controllers
// available in it, and removes it afterwards. A box of the script left in
// it is an error (TestNothingLeftBehind would name it too).
func makeNativeParent(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory +pids"), 0); err != nil {
		t.Fatalf("enabling memory and pids in the root cgroup: %v", err)
	}
	if err := os.Mkdir(nativeParent, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []string{filepath.Join(nativeParent, "boxrun.slice"), nativeParent} {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Errorf("removing %s after the benchmark: %v", d, err)
			}
		}
	})
}

// nativeRows reads the summary table bench/native.sh prints (Markdown, a
// header row, a rule, one row per run) into one map per run.
func nativeRows(out string) []map[string]any {
	var head []string
	var rows []map[string]any
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if head == nil {
			for _, c := range cells {
				head = append(head, strings.ToLower(strings.ReplaceAll(c, " ", "_")))
			}
			continue
		}
		if len(cells) != len(head) {
			continue
		}
		r := map[string]any{}
		for i, c := range cells {
			r[head[i]] = c
		}
		rows = append(rows, r)
	}
	return rows
}
