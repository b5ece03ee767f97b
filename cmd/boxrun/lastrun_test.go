package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/report"
	"github.com/boxrun/boxrun/signals"
)

func TestPostMortemRun(t *testing.T) {
	start := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	p := pendingRun{Name: runName(start, 42), Policy: report.Policy{Name: "tests"}, Command: []string{"cargo", "test"}, Started: start}
	tests := []struct {
		name string
		pm   box.PostMortem
		// want are checks of the report, each a description and whether it holds.
		want func(r *report.Run) map[string]bool
	}{
		{"killed by SIGKILL with processes left (systemd)", box.PostMortem{
			BoxDir: "/sys/fs/cgroup/user.slice/boxrun.slice/boxrun-tests-1a2b3c4d.scope", Backend: box.KindSystemd, Kernel: "6.1.0-41-cloud-amd64",
			At: start.Add(90 * time.Second), BoxrunPID: 41, BoxrunSignal: syscall.SIGKILL, MemoryPeak: 5 << 30, PidsPeak: 30,
			MemoryEvents: map[string]uint64{"oom_kill": 1}, CPU: map[string]uint64{"usage_usec": 7}, Procs: []box.PostMortemProc{{PID: 50, Comm: "cargo"}, {PID: 51, Comm: "sleep"}},
		}, func(r *report.Run) map[string]bool {
			return map[string]bool{
				"unit is the scope":             r.Unit == "boxrun-tests-1a2b3c4d.scope",
				"the kernel named, not systemd": r.Kernel == "6.1.0-41-cloud-amd64" && r.Systemd == "" && jsonField(t, r, "systemd") == nil,
				"cgroup below the mount":        r.Cgroup == "/user.slice/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
				"boxrun killed by SIGKILL":      r.BoxrunKilled != nil && r.BoxrunKilled.Signal == "SIGKILL" && r.Interrupted == "SIGKILL",
				"two killed, 90 s in":           r.BoxrunKilled.ProcessesKilled == 2 && r.BoxrunKilled.AtSeconds == 90 && r.WallSeconds == 90,
				"the leftovers, killed":         len(r.Leftovers) == 2 && r.Leftovers[1].Comm == "sleep" && r.LeftoversKilled,
				"the command died of SIGKILL":   r.ExitCode != nil && *r.ExitCode == 137 && r.Signal == "SIGKILL",
				"the kernel's figures":          r.Memory.PeakBytes == 5<<30 && r.Memory.Events.OOMKill == 1 && r.Pids.Peak == 30 && r.CPU != nil && r.CPU.UsageUSec == 7,
				"says it is a post-mortem":      len(r.Notes) == 1 && strings.Contains(r.Notes[0], "post-mortem"),
				"peaks from the kernel's file":  r.Memory.PeakSource == report.PeakMemoryPeak && r.Pids.PeakSource == report.PeakPidsPeak,
				"memory.events read":            jsonField(t, r, "memory").(map[string]any)["events"] != nil,
			}
		}},
		{"signal unknown, box empty, cleanup failed (cgroupfs, old kernel)", box.PostMortem{
			BoxDir: "/sys/fs/cgroup/boxrun-tests-99aa00bb", Backend: box.KindCgroupfs, At: start.Add(time.Second),
			CleanupErr: errors.New("device or resource busy"),
		}, func(r *report.Run) map[string]bool {
			return map[string]bool{
				"no unit":                  r.Unit == "",
				"signal unknown":           r.BoxrunKilled.Signal == "" && r.Interrupted == "",
				"nothing killed":           r.BoxrunKilled.ProcessesKilled == 0 && len(r.Leftovers) == 0 && r.Signal == "",
				"no peaks measured":        r.Memory.PeakSource == report.PeakNone && r.Pids.PeakSource == report.PeakNone,
				"the cleanup failure told": len(r.Notes) == 2 && strings.Contains(r.Notes[1], "boxrun gc"),
				// Nobody saw the command end, and cpu.stat was not read:
				// unknown (JSON null), never 0.
				"exit code unknown":      r.ExitCode == nil && jsonField(t, r, "exit_code") == nil,
				"cpu unknown":            r.CPU == nil && jsonField(t, r, "cpu") == nil,
				"text says exit unknown": strings.Contains(textReport(t, r), "exit unknown") && strings.Contains(textReport(t, r), "cpu     unknown"),
				// The box was gone: its counters and the command's pid
				// were never read.
				"events unknown": jsonField(t, r, "memory").(map[string]any)["events"] == nil &&
					jsonField(t, r, "pids").(map[string]any)["events_max"] == nil,
				"pid unknown": jsonField(t, r, "pid") == nil,
			}
		}},
		{"box empty but still there: its cpu.stat is the truth (cgroupfs)", box.PostMortem{
			BoxDir: "/sys/fs/cgroup/boxrun-tests-99aa00bc", Backend: box.KindCgroupfs, At: start.Add(3 * time.Second),
			CPU: map[string]uint64{"usage_usec": 2_500_000, "user_usec": 2_000_000, "system_usec": 500_000},
		}, func(r *report.Run) map[string]bool {
			return map[string]bool{
				"exit code unknown":   r.ExitCode == nil && r.Signal == "",
				"the cpu time read":   r.CPU != nil && r.CPU.UsageUSec == 2_500_000 && r.CPU.SystemUSec == 500_000,
				"text shows the time": strings.Contains(textReport(t, r), "cpu     2.5s user+sys"),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postMortemRun(p, tt.pm)
			for what, ok := range tt.want(r) {
				if !ok {
					t.Errorf("%s: not so in %+v", what, r)
				}
			}
			var buf bytes.Buffer
			if err := report.JSON(&buf, r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// jsonField is field of r's JSON report, decoded.
func jsonField(t *testing.T, r *report.Run, field string) any {
	t.Helper()
	var buf bytes.Buffer
	if err := report.JSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m[field]
	if !ok {
		t.Fatalf("the JSON report has no %q", field)
	}
	return v
}

// textReport is r's text report.
func textReport(t *testing.T, r *report.Run) string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Text(&buf, r, false); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestRunLog: a run's pending file, its guard's post-mortem into the log
// and --report-json, and `boxrun last` printing the newest, text or JSON.
func TestRunLog(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	l, err := openRunLog(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 && l.dir != filepath.Join(state, "boxrun", "reports") {
		t.Fatalf("run log in %s", l.dir)
	}
	if os.Geteuid() == 0 {
		// Root's log is under /var/lib/boxrun: use a private one here.
		l = runLog{dir: filepath.Join(state, "reports")}
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	jsonOut := filepath.Join(t.TempDir(), "report.json")
	p := pendingRun{Name: runName(start, 7), Policy: report.Policy{Name: "tests"}, Command: []string{"sleep", "30"}, Started: start, ReportJSON: jsonOut}
	pending, err := l.begin(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(pending); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pending file %s: %v %v", pending, fi, err)
	}
	writePostMortem(box.PostMortem{File: pending, BoxDir: "/sys/fs/cgroup/boxrun-tests-1", Backend: box.KindCgroupfs,
		At: start.Add(2 * time.Second), BoxrunSignal: syscall.SIGKILL, Procs: []box.PostMortemProc{{PID: 9, Comm: "sleep"}}})
	if _, err := os.Stat(pending); !os.IsNotExist(err) {
		t.Errorf("the pending file is still there after the post-mortem: %v", err)
	}
	var got map[string]any
	data, err := os.ReadFile(jsonOut)
	if err != nil || json.Unmarshal(data, &got) != nil {
		t.Fatalf("--report-json after the post-mortem: %v %s", err, data)
	}
	if k, _ := got["boxrun_killed"].(map[string]any); k["signal"] != "SIGKILL" {
		t.Errorf("--report-json boxrun_killed = %v", got["boxrun_killed"])
	}
	if names := l.names(); len(names) != 1 || names[0] != p.Name {
		t.Errorf("log holds %v, want [%s]", names, p.Name)
	}
	text, _ := os.ReadFile(filepath.Join(l.dir, p.Name+".txt"))
	if !strings.Contains(string(text), "boxrun itself was killed by SIGKILL") {
		t.Errorf("the text report does not say boxrun was killed:\n%s", text)
	}
	// Many runs later only the newest keepReports are left, and a run that
	// never started leaves nothing.
	for i := 0; i < keepReports+3; i++ {
		if err := l.save(runName(start.Add(time.Duration(i+1)*time.Second), 8), &report.Run{Backend: "none"}); err != nil {
			t.Fatal(err)
		}
	}
	p2 := pendingRun{Name: runName(start.Add(time.Hour), 9)}
	if _, err := l.begin(p2); err != nil {
		t.Fatal(err)
	}
	l.drop(p2.Name)
	names := l.names()
	if len(names) != keepReports || names[len(names)-1] != runName(start.Add(time.Duration(keepReports+3)*time.Second), 8) {
		t.Errorf("after %d runs the log holds %d, newest %s", keepReports+4, len(names), names[len(names)-1])
	}
	entries, _ := os.ReadDir(l.dir)
	if len(entries) != 2*keepReports {
		t.Errorf("%d files in the log, want %d (a .json and a .txt per run, nothing pending)", len(entries), 2*keepReports)
	}
}

func TestLastCommand(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	if os.Geteuid() != 0 {
		// Root's run log is /var/lib/boxrun's, which may hold reports.
		code, _, stderr := runCLI(t, "last")
		if code != 1 || !strings.Contains(stderr, "no run report yet") {
			t.Errorf("last with no reports: exit %d, %q", code, stderr)
		}
	}
	marker := "boxrun-last-test-" + strconv.Itoa(os.Getpid())
	code, _, _ := runCLI(t, "-q", "--backend", "none", "--", "true", marker)
	if code != 0 {
		t.Fatalf("boxrun -- true: exit %d", code)
	}
	code, stdout, _ := runCLI(t, "last", "--json")
	if code != 0 || !strings.Contains(stdout, `"command": [`) || !strings.Contains(stdout, marker) {
		t.Errorf("last --json: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "last", "extra"); code != exitBoxrunFailed || stderr == "" {
		t.Errorf("last extra: exit %d %q", code, stderr)
	}
}

// TestKillerOf: the post-mortem names who killed boxrun from the signal
// tracer's records: the SIGKILL to boxrun's pid in the run's time, not one
// to another process or from before the run; nil without a tracer.
func TestKillerOf(t *testing.T) {
	start := time.Now()
	dir := filepath.Join(t.TempDir(), "1000")
	if got := killerOf(dir, 41, syscall.SIGKILL, start, start.Add(time.Second)); got != nil {
		t.Errorf("without a tracer: %+v, want nil", got)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := func(at time.Time, target int, senderComm string) signals.Record {
		return signals.Record{Time: at, Signal: "SIGKILL", Signo: 9, CodeName: "SI_USER", Result: "delivered",
			Target: signals.Process{PID: target, Comm: "boxrun", UID: 1000},
			Sender: signals.Process{PID: 77, Comm: senderComm, UID: 1000, Unit: "app-agent.scope"}}
	}
	var lines []byte
	for _, r := range []signals.Record{
		rec(start.Add(-time.Hour), 41, "old"),        // another run's boxrun of that pid
		rec(start.Add(time.Second), 42, "other"),     // another process
		rec(start.Add(2*time.Second), 41, "timeout"), // this one
	} {
		b, _ := json.Marshal(r)
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, signals.File), lines, 0o600); err != nil {
		t.Fatal(err)
	}
	got := killerOf(dir, 41, syscall.SIGKILL, start, start.Add(2*time.Second))
	if got == nil || got.Sender.Comm != "timeout" || got.Sender.Unit != "app-agent.scope" || got.Signal != "SIGKILL" {
		t.Fatalf("killerOf = %+v, want the SIGKILL from timeout", got)
	}
	run := postMortemRun(pendingRun{Started: start, Command: []string{"cargo", "test"}},
		box.PostMortem{Backend: box.KindCgroupfs, At: start.Add(2 * time.Second), BoxrunSignal: syscall.SIGKILL})
	run.BoxrunKilled.By = got
	ds := report.Diagnose(run)
	if len(ds) == 0 || !strings.Contains(ds[0].Message, "boxrun itself was killed by SIGKILL from pid 77 (timeout), uid 1000, in app-agent.scope (kill)") {
		t.Errorf("diagnosis %+v does not name the sender", ds)
	}
	// A harness reaped boxrun before its guard read the exit status: the
	// tracer's record still names the SIGKILL and its sender.
	run = postMortemRun(pendingRun{Started: start, Command: []string{"cargo", "test"}},
		box.PostMortem{Backend: box.KindCgroupfs, At: start.Add(2 * time.Second)})
	run.BoxrunKilled.By = killerOf(dir, 41, deathSignal(0), start, start.Add(2*time.Second))
	ds = report.Diagnose(run)
	if run.BoxrunKilled.Signal != "" || len(ds) == 0 || !strings.Contains(ds[0].Message, "boxrun itself was killed by SIGKILL from pid 77 (timeout), uid 1000, in app-agent.scope (kill)") {
		t.Errorf("exit status reaped: signal %q, diagnosis %+v; want no signal of its own, and the tracer's SIGKILL named", run.BoxrunKilled.Signal, ds)
	}
}
