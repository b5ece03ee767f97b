//go:build boxrunguest

package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

// The TestBench scenarios measure boxrun's cost and what it buys (issue 6);
// `make bench` runs them (they are left out of make test) and collects
// their "bench:" lines. They report figures and fail only when they cannot
// measure.

// spin burns CPU for HOG_HOLD, or does SPIN_WORK million additions.
func spin() int {
	hold, _ := time.ParseDuration(os.Getenv("HOG_HOLD"))
	work, _ := strconv.Atoi(os.Getenv("SPIN_WORK"))
	end := time.Now().Add(hold)
	x := 0
	for n := 0; work > 0 && n < work || work == 0 && time.Now().Before(end); n++ {
		for i := 0; i < 1000000; i++ {
			x += i
		}
	}
	if x < 0 { // never: keeps the loop from being optimised away
		return 1
	}
	return 0
}

// probe is an editor-like process: it holds PROBE_MB of memory and, for
// PROBE_SECS, sleeps 10 ms at a time recording how late it wakes, and
// touches its working set every 250 ms recording how long that takes. It
// prints the results as JSON.
func probe() int {
	mb, _ := strconv.Atoi(os.Getenv("PROBE_MB"))
	secs, _ := strconv.Atoi(os.Getenv("PROBE_SECS"))
	ws := make([]byte, mb<<20)
	for i := 0; i < len(ws); i += 4096 {
		ws[i] = 1
	}
	var late, touch []float64
	end := time.Now().Add(time.Duration(secs) * time.Second)
	lastTouch := time.Now()
	for time.Now().Before(end) {
		t0 := time.Now()
		time.Sleep(10 * time.Millisecond)
		late = append(late, float64(time.Since(t0)-10*time.Millisecond)/1e6)
		if time.Since(lastTouch) > 250*time.Millisecond {
			t1 := time.Now()
			for i := 0; i < len(ws); i += 4096 {
				ws[i]++
			}
			touch = append(touch, float64(time.Since(t1))/1e6)
			lastTouch = time.Now()
		}
	}
	out, _ := json.Marshal(map[string]float64{
		"late_p50_ms": pct(late, 50), "late_p99_ms": pct(late, 99), "touch_p50_ms": pct(touch, 50), "touch_p99_ms": pct(touch, 99)})
	fmt.Println(string(out))
	return 0
}

func pct(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := len(s) * p / 100
	if i >= len(s) {
		i = len(s) - 1
	}
	return float64(int(s[i]*100)) / 100
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// benchLine reports one result for bench/ to collect.
func benchLine(t *testing.T, name string, v map[string]any) {
	t.Helper()
	v["bench"], v["mode"] = name, mode(t)
	data, _ := json.Marshal(v)
	t.Logf("figures: bench: %s", data)
}

// systemdRun is the systemd-run the user would reach for instead, or nil
// without systemd.
func systemdRun(t *testing.T, props ...string) []string {
	switch mode(t) {
	case "root":
		return append(append([]string{"systemd-run", "--scope", "-q"}, props...), "--")
	case "user":
		return append(append([]string{"systemd-run", "--user", "--scope", "-q"}, props...), "--")
	}
	return nil
}

// TestBenchLaunch: the time to run `true`, bare, under boxrun, and under
// systemd-run --scope, interleaved in one boot; medians and ratios.
func TestBenchLaunch(t *testing.T) {
	const n = 15
	kinds := map[string][]string{
		"bare":   {"true"},
		"boxrun": append(append([]string{boxrunBin(t)}, backendArgs(t)...), "-q", "--", "true"),
	}
	if sr := systemdRun(t); sr != nil {
		kinds["systemd-run"] = append(sr, "true")
	}
	times := map[string][]time.Duration{}
	phases := map[string][]time.Duration{} // boxrun's own breakdown (BOXRUN_TIMING)
	for i := 0; i < n; i++ {
		for _, k := range []string{"bare", "boxrun", "systemd-run"} {
			argv, ok := kinds[k]
			if !ok {
				continue
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			if k == "boxrun" {
				cmd.Env = append(os.Environ(), "BOXRUN_TIMING=1")
			}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", k, err, out)
			}
			times[k] = append(times[k], time.Since(start))
			if k == "boxrun" {
				for name, d := range timingPhases(string(out)) {
					phases[name] = append(phases[name], d)
				}
			}
		}
	}
	v := map[string]any{}
	for k, d := range times {
		v[k+"_ms"] = float64(median(d).Microseconds()) / 1000
	}
	breakdown := map[string]float64{}
	for name, d := range phases {
		breakdown[name] = float64(median(d).Microseconds()) / 1000
	}
	v["boxrun_phases_ms"] = breakdown
	v["boxrun_over_bare"] = float64(median(times["boxrun"])) / float64(median(times["bare"]))
	if d, ok := times["systemd-run"]; ok {
		v["boxrun_over_systemd_run"] = float64(median(times["boxrun"])) / float64(median(d))
	}
	benchLine(t, "launch", v)
}

// timingPhases reads boxrun's "boxrun: timing: NAME=1.23ms ..." line.
func timingPhases(out string) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "boxrun: timing: ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if name, val, ok := strings.Cut(f, "="); ok {
				if d, err := time.ParseDuration(val); err == nil {
					m[name] = d
				}
			}
		}
	}
	return m
}

// TestBenchFootprint: boxrun's own CPU, peak memory and threads over a
// 20 s run with the report sampler and backpressure at work.
func TestBenchFootprint(t *testing.T) {
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "--", "sleep", "20")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Steady state: boxrun's own CPU between 2 s (launch done) and 18 s,
	// from its /proc stat line; the whole run's rusage also counts the
	// launch and the helper's start.
	time.Sleep(2 * time.Second)
	cpu0, t0 := procCPU(pid), time.Now()
	threads := 0
	if st, err := procfs.ReadStatus(pid); err == nil {
		threads = st.Threads
	}
	time.Sleep(16 * time.Second)
	cpu1, t1 := procCPU(pid), time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0) + 2*time.Second
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	steady := cpu1 - cpu0
	benchLine(t, "footprint", map[string]any{
		"cpu_ms": cpu.Milliseconds(), "cpu_percent_of_one_cpu": 100 * cpu.Seconds() / wall.Seconds(),
		"steady_cpu_ms": steady.Milliseconds(), "steady_cpu_percent": 100 * steady.Seconds() / t1.Sub(t0).Seconds(),
		"peak_rss_kib": ru.Maxrss, "threads": threads, "wall_s": wall.Seconds()})
}

// procCPU is the user+system CPU time a process has used so far, 0 when
// it is gone.
func procCPU(pid int) time.Duration {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.CPU()
}

// TestBenchThroughput: a CPU-bound parallel workload that fits the policy,
// bare and under boxrun, interleaved; the ratio of medians.
func TestBenchThroughput(t *testing.T) {
	self, _ := os.Executable()
	// A fixed amount of work per CPU, about 6 s under emulation: a test
	// suite runs for longer than boxrun takes to start (150 ms here).
	work := fmt.Sprintf(`for i in $(seq %d); do %s=spin SPIN_WORK=7500 %s & done; wait`, runtime.NumCPU(), roleEnv, self)
	var bare, boxed []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if out, err := exec.Command("sh", "-c", work).CombinedOutput(); err != nil {
			t.Fatalf("bare: %v\n%s", err, out)
		}
		bare = append(bare, time.Since(start))
		start = time.Now()
		args := append(backendArgs(t), "-q", "--", "sh", "-c", work)
		if out, err := exec.Command(boxrunBin(t), args...).CombinedOutput(); err != nil {
			t.Fatalf("boxrun: %v\n%s", err, out)
		}
		boxed = append(boxed, time.Since(start))
	}
	benchLine(t, "throughput", map[string]any{
		"bare_s": median(bare).Seconds(), "boxrun_s": median(boxed).Seconds(),
		"boxrun_over_bare": float64(median(boxed)) / float64(median(bare))})
}

// TestBenchEditorLatency: an editor-like probe (named code, holding 64M)
// measures its wake-up lateness and working-set touch time, idle and while
// a runaway suite runs (CPU spinners, a memory hog growing to 80% of what
// is available — more would have the global OOM killer take the harness
// itself in this 1 GiB guest; TestProtectEditorSurvivesGlobalOOM covers
// that — and a fork storm): bare, under systemd-run --scope with the same
// limits, and under boxrun --policy tests with editor protection.
func TestBenchEditorLatency(t *testing.T) {
	self, _ := os.Executable()
	dir := t.TempDir()
	// A copy named like the editor (the editors group matches "code"), so
	// that it shares no page cache with the runaway's processes.
	code := filepath.Join(dir, "code")
	if out, err := exec.Command("cp", self, code).CombinedOutput(); err != nil {
		t.Fatalf("copying the probe: %v %s", err, out)
	}
	avail := memAvailableMB(t)
	runaway := fmt.Sprintf(`for i in $(seq %d); do %s=spin HOG_HOLD=8s %s & done; `+
		`%s=hog HOG_MB=%d HOG_HOLD=4s %s & `+
		`(end=$(($(date +%%s)+8)); while [ $(date +%%s) -lt $end ]; do for j in 1 2 3 4 5 6 7 8; do true & done; wait; done) & wait`,
		2*runtime.NumCPU(), roleEnv, self, roleEnv, avail*8/10, self)
	limits := []string{"-p", fmt.Sprintf("MemoryMax=%dM", avail*3/4), "-p", "CPUWeight=50", "-p", "TasksMax=4096"}
	run := func(label string, wrap []string) map[string]any {
		p := exec.Command(code)
		p.Env = append(os.Environ(), roleEnv+"=probe", "PROBE_MB=64", "PROBE_SECS=10")
		var out strings.Builder
		p.Stdout = &out
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", p.Process.Pid), []byte("300"), 0)
		time.Sleep(500 * time.Millisecond)
		if wrap != nil {
			argv := append(append([]string{}, wrap...), "sh", "-c", runaway)
			exec.Command(argv[0], argv[1:]...).Run()
		}
		err := p.Wait()
		res := map[string]any{"scenario": label, "survived": err == nil}
		var m map[string]float64
		if json.Unmarshal([]byte(strings.TrimSpace(out.String())), &m) == nil {
			for k, v := range m {
				res[k] = v
			}
		}
		return res
	}
	idle := run("idle", nil)
	rows := []map[string]any{idle, run("bare", []string{"env"})}
	if sr := systemdRun(t, limits...); sr != nil {
		rows = append(rows, run("systemd-run --scope", sr))
	}
	box := append([]string{boxrunBin(t)}, backendArgs(t)...)
	box = append(box, "-q", "-p", "tests", "--set", fmt.Sprintf("memory.max=%dM", avail*3/4))
	rows = append(rows, run("boxrun --policy tests", append(box, "--")))
	boxrunRaw(t, "protect", "--undo")
	for _, r := range rows {
		if p99, ok := idle["late_p99_ms"].(float64); ok && p99 > 0 {
			if v, ok := r["late_p99_ms"].(float64); ok {
				r["late_p99_over_idle"] = v / p99
			}
		}
		benchLine(t, "editor", r)
	}
}
