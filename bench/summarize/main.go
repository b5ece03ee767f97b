// Command summarize turns the log of the real-kernel benchmark scenarios
// (bench/run.sh) into a table on stdout and bench/results/latest.json.
//
// It reads the "figures:" lines the scenarios print: the backpressure ones
// are sentences, kept as they are; "figures: bench: {...}" lines are JSON
// objects, grouped by benchmark. Go benchmark result lines (the host's
// micro-benchmarks of policy resolution and report formatting) are kept
// by name.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// results is bench/results/latest.json.
type results struct {
	Machine      string                      `json:"machine"`
	Date         string                      `json:"date"`
	Backpressure []string                    `json:"backpressure"`
	Bench        map[string][]map[string]any `json:"bench"`
	// Micro are Go micro-benchmarks run on the host, by name.
	Micro map[string]micro `json:"micro,omitempty"`
}

// micro is one Go benchmark's result line.
type micro struct {
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// parseBenchLine reads "BenchmarkText-2  195307  7025 ns/op  8081 B/op  44 allocs/op".
func parseBenchLine(line string) (string, micro, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return "", micro{}, false
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		name = name[:i]
	}
	var m micro
	ok := false
	for i := 2; i+1 < len(f); i += 2 {
		var v float64
		if _, err := fmt.Sscan(f[i], &v); err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/op":
			m.NsPerOp, ok = v, true
		case "B/op":
			m.BytesPerOp = v
		case "allocs/op":
			m.AllocsPerOp = v
		}
	}
	return name, m, ok
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: summarize MACHINE OUT.json < go-test-log")
		os.Exit(2)
	}
	r, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
	r.Machine, r.Date = os.Args[1], time.Now().UTC().Format(time.RFC3339)
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(os.Args[2], append(data, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
	table(os.Stdout, r)
}

func parse(in io.Reader) (*results, error) {
	r := &results{Bench: map[string][]map[string]any{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if name, m, ok := parseBenchLine(sc.Text()); ok {
			if r.Micro == nil {
				r.Micro = map[string]micro{}
			}
			r.Micro[name] = m
			continue
		}
		_, fig, ok := strings.Cut(sc.Text(), "figures: ")
		if !ok || seen[fig] {
			continue // the host repeats each guest line once more
		}
		seen[fig] = true
		if js, ok := strings.CutPrefix(fig, "bench: "); ok {
			var v map[string]any
			if err := json.Unmarshal([]byte(js), &v); err != nil {
				return nil, fmt.Errorf("bad bench line %q: %w", js, err)
			}
			name, _ := v["bench"].(string)
			r.Bench[name] = append(r.Bench[name], v)
			continue
		}
		if strings.Contains(fig, "backpressure") {
			r.Backpressure = append(r.Backpressure, fig)
		}
	}
	if len(r.Backpressure) == 0 && len(r.Bench) == 0 && len(r.Micro) == 0 {
		return nil, fmt.Errorf("no figures in the log")
	}
	return r, sc.Err()
}

func num(v map[string]any, k string) string {
	switch x := v[k].(type) {
	case float64:
		return fmt.Sprintf("%.2f", x)
	case bool:
		return fmt.Sprint(x)
	case string:
		return x
	}
	return "-"
}

func table(w io.Writer, r *results) {
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	if len(r.Backpressure) > 0 {
		fmt.Fprintln(w, "\nbackpressure:")
		for _, l := range r.Backpressure {
			fmt.Fprintln(w, "  "+l)
		}
	}
	cols := map[string][]string{
		"launch":     {"mode", "bare_ms", "boxrun_ms", "systemd-run_ms", "boxrun_over_bare", "boxrun_over_systemd_run"},
		"footprint":  {"mode", "steady_cpu_percent", "cpu_percent_of_one_cpu", "peak_rss_kib", "threads"},
		"throughput": {"mode", "bare_s", "boxrun_s", "boxrun_over_bare"},
		"editor":     {"mode", "scenario", "survived", "late_p50_ms", "late_p99_ms", "late_p99_over_idle", "touch_p50_ms", "touch_p99_ms"},
		// bench/native.sh's summary rows, scaled down to the guest.
		"native": {"mode", "pattern", "box", "tasks_passed", "oom_kills", "longest_pause", "paused", "wall", "vs_unboxed", "bounds"},
	}
	names := make([]string, 0, len(r.Bench))
	for n := range r.Bench {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cols[n]
		fmt.Fprintf(w, "\n%s:\n  %s\n", n, strings.Join(c, " | "))
		for _, row := range r.Bench[n] {
			vals := make([]string, len(c))
			for i, k := range c {
				vals[i] = num(row, k)
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(vals, " | "))
		}
		if n == "launch" {
			phaseTable(w, r.Bench[n])
		}
	}
	microTable(w, r)
}

// microTable prints the micro-benchmarks. They run natively on the host,
// not in the emulated guest, so they are set against nothing measured
// there; allocations per operation are the figure that does not drift
// with the machine's load.
func microTable(w io.Writer, r *results) {
	if len(r.Micro) == 0 {
		return
	}
	names := make([]string, 0, len(r.Micro))
	for n := range r.Micro {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nmicro (host, go test -bench):\n  name | µs/op | B/op | allocs/op\n")
	for _, n := range names {
		m := r.Micro[n]
		fmt.Fprintf(w, "  %s | %.1f | %.0f | %.0f\n", n, m.NsPerOp/1e3, m.BytesPerOp, m.AllocsPerOp)
	}
}

// launchPhases are boxrun's phases (BOXRUN_TIMING) in the order they run.
var launchPhases = []string{"policy", "slot", "connect", "protect", "helper", "StartTransientUnit", "job", "place",
	"readback", "guard", "exec", "command", "leftovers", "teardown", "report", "exit"}

// phaseTable prints the median time of each of boxrun's launch phases.
func phaseTable(w io.Writer, rows []map[string]any) {
	for _, row := range rows {
		ph, ok := row["boxrun_phases_ms"].(map[string]any)
		if !ok {
			continue
		}
		var parts []string
		for _, name := range launchPhases {
			if ms, ok := ph[name].(float64); ok {
				parts = append(parts, fmt.Sprintf("%s %.1f", name, ms))
			}
		}
		fmt.Fprintf(w, "  %s boxrun phases (ms, medians): %s\n", num(row, "mode"), strings.Join(parts, " · "))
	}
}
