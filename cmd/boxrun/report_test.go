package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/observe"
	"github.com/boxrun/boxrun/policy"
)

func TestReportCLI(t *testing.T) {
	dir := t.TempDir()
	reportFile := filepath.Join(dir, "r.json")
	badExec := filepath.Join(dir, "badexec")
	os.WriteFile(badExec, []byte("\x7fELF not really"), 0o755)
	created := filepath.Join(dir, "created-then-removed.json")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr
		noStderr bool
	}{
		{"report after the command", []string{"--backend", "none", "--", "sh", "-c", "exit 3"}, 3, "", "boxrun: tests · ", false},
		{"header names the exit", []string{"--backend", "none", "--", "sh", "-c", "exit 3"}, 3, "", " · exit 3\n", false},
		{"header names the signal", []string{"--backend", "none", "--", "sh", "-c", "kill -TERM $$"}, 143, "", " · killed by SIGTERM\n", false},
		{"quiet: nothing for a plain failure", []string{"-q", "--backend", "none", "--", "sh", "-c", "exit 3"}, 3, "", "", true},
		{"quiet: SIGKILL is reported", []string{"-q", "--backend", "none", "--", "sh", "-c", "kill -KILL $$"}, 137, "", "✗ sh was killed by SIGKILL", false},
		{"json to stdout", []string{"-q", "--backend", "none", "--report-json", "-", "--", "sh", "-c", "echo out; exit 4"}, 4, `"exit_code": 4`, "", true},
		{"json to a file", []string{"-q", "--backend", "none", "--report-json", reportFile, "--", "true"}, 0, "", "", true},
		{"json path not writable: refuse before running", []string{"--backend", "none", "--report-json", filepath.Join(dir, "no", "such", "dir.json"), "--", "touch", filepath.Join(dir, "ran")}, 125, "", "--report-json", false},
		{"json file removed when the command cannot start", []string{"--backend", "none", "--report-json", created, "--", badExec}, 126, "", "badexec", false},
		{"no colour off a terminal", []string{"--backend", "none", "--", "sh", "-c", "kill -KILL $$"}, 137, "", "  ✗ sh", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", stdout, tt.stdout, stderr, tt.stderr)
			}
			if tt.noStderr && withoutNoBoxNotice(stderr) != "" {
				t.Errorf("want no stderr, got %q", stderr)
			}
			if strings.Contains(stderr, "\x1b[") {
				t.Errorf("colour escapes although stderr is a file: %q", stderr)
			}
		})
	}
	var rep map[string]any
	if b, err := os.ReadFile(reportFile); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("--report-json file: %v %s", err, b)
	}
	if rep["backend"] != "none" || rep["exit_code"] != float64(0) || rep["signal"] != nil || rep["cgroup"] != nil {
		t.Errorf("report %v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although --report-json could not be written")
	}
	if _, err := os.Stat(created); err == nil {
		t.Error("the report file boxrun created is left behind although the command never ran")
	}
}

// TestReportJSONKeepsTheOldFile: --report-json used to truncate its file
// before the run, and leave it empty when the command never started.
func TestReportJSONKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "last.json")
	if err := os.WriteFile(path, []byte(`{"from": "the run before"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "-q", "--backend", "none", "--report-json", path, "--", filepath.Join(dir, "missing")); code != 127 {
		t.Fatalf("exit %d, want 127", code)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"from": "the run before"}` {
		t.Errorf("a run that never started changed the report file: %q", b)
	}
	if code, _, _ := runCLI(t, "-q", "--backend", "none", "--report-json", path, "--", "true"); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"exit_code": 0`) {
		t.Errorf("the report of a finished run did not replace the file: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left beside the report: %v", entries)
	}
}

func TestStatusCLI(t *testing.T) {
	code, stdout, stderr := runCLI(t, "status", "--json")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(stdout), "[") {
		t.Errorf("status --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "status", "extra"); code != 125 || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("status extra: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "status", "--bogus"); code != 125 || !strings.Contains(stderr, "bogus") {
		t.Errorf("status --bogus: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "status", "--help"); code != 0 {
		t.Errorf("status --help: exit %d", code)
	}
	if code, _, stderr := runCLI(t, "--", "status"); code != 127 || !strings.Contains(stderr, "status: command not found") {
		t.Errorf("-- status must run a program called status: exit %d, stderr %q", code, stderr)
	}
}

func TestBuildRun(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	adj := 500
	pol := &policy.Resolved{Name: "it", MemoryHigh: u(policy.Unlimited), MemoryMax: u(128 << 20), PidsMax: u(64), OOMScoreAdj: &adj}
	start := time.Unix(1000, 0)
	res := &box.Result{ExitCode: 137, Signal: syscall.SIGKILL, Backend: "systemd", Kernel: "6.12.57+deb13-cloud-amd64", Systemd: "257.9-1~deb13u1",
		Unit: "boxrun-it-1.scope", Cgroup: "/boxrun.slice/boxrun-it-1.scope",
		Start: start, End: start.Add(2500 * time.Millisecond), Leftovers: []box.Proc{{PID: 9, Comm: "sleep", Cmdline: "sleep 9"}}, LeftoversKilled: true}
	st := observe.Stats{PID: 812, Measured: true, Wall: 2 * time.Second,
		Memory:       observe.MemoryStats{Peak: 128 << 20, PeakSource: "memory.peak", Events: observe.MemoryEvents{OOM: 1, OOMKill: 1}},
		Pids:         observe.PidsStats{Peak: 2, PeakSource: "samples"},
		Samples:      []observe.Sample{{At: 250 * time.Millisecond, MemoryBytes: 5, Pids: 1}},
		OOMVictims:   []observe.OOMVictim{{PID: 812, Comm: "hog", AnonRSSBytes: 127 << 20, InsideBox: true, Certainty: observe.CertaintyVanished}},
		KernelLogErr: "reading /dev/kmsg: operation not permitted",
	}
	r := buildRun(pol, []string{"hog"}, res, st)
	if r.Signal != "SIGKILL" || r.ExitCode == nil || *r.ExitCode != 137 || r.WallSeconds != 2.5 || r.PID != 812 {
		t.Errorf("status fields %+v", r)
	}
	if r.Kernel != "6.12.57+deb13-cloud-amd64" || r.Systemd != "257.9-1~deb13u1" {
		t.Errorf("versions: kernel %q, systemd %q; want the result's", r.Kernel, r.Systemd)
	}
	if r.Policy.MemoryHigh != nil || r.Policy.MemoryMax == nil || *r.Policy.MemoryMax != 128<<20 || r.Policy.OOMScoreAdj == nil || *r.Policy.OOMScoreAdj != 500 {
		t.Errorf("policy %+v: max must become null, limits bytes", r.Policy)
	}
	if r.Memory.Events.OOMKill != 1 || len(r.OOMVictims) != 1 || r.OOMVictims[0].RSSBytes != 127<<20 || r.OOMVictims[0].Certainty != "vanished at the kill" || r.Samples[0].T != 0.25 {
		t.Errorf("figures %+v", r)
	}
	if r.KernelLogRead || !strings.Contains(strings.Join(r.Notes, "\n"), "named from boxrun's samples of the box's processes, not from the kernel log: reading /dev/kmsg") {
		t.Errorf("kernel log %v, notes %q", r.KernelLogRead, r.Notes)
	}
	st.OOMVictims = nil
	if r := buildRun(pol, []string{"hog"}, res, st); !strings.Contains(strings.Join(r.Notes, "\n"), "counted, not named") {
		t.Errorf("no victim named: notes %q", r.Notes)
	}
	if len(r.Leftovers) != 1 || r.Leftovers[0].Cmdline != "sleep 9" || !r.LeftoversKilled {
		t.Errorf("leftovers %+v", r.Leftovers)
	}
	none := buildRun(pol, []string{"x"}, &box.Result{Backend: "none", Start: start, End: start}, observe.Stats{})
	if none.Cgroup != "" || none.Memory.PeakSource != "" || none.KernelLogRead {
		t.Errorf("none backend %+v", none)
	}
}

func TestProgressLine(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	var out bytes.Buffer
	width := 200
	p := &progress{w: &out, width: func() int { return width }, pol: &policy.Resolved{Name: "tests", MemoryMax: u(12 << 30)},
		latest: func() (observe.Sample, bool) { return observe.Sample{MemoryBytes: 3 << 30, Pids: 87}, true }}
	if got, want := p.line(62*time.Second), "boxrun: tests · 1m02s · memory 3G of 12G · pids 87"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	width = 20
	if got := p.line(time.Second); len([]rune(got)) != 19 {
		t.Errorf("line %q not cut to the terminal's width - 1", got)
	}
	p.Started("", 1)
	time.Sleep(3 * progressInterval)
	p.Exited()
	p.Exited()
	s := out.String()
	if !strings.HasPrefix(s, "\rboxrun: tests") || !strings.HasSuffix(s, "\r\x1b[K") || strings.Count(s, "\r\x1b[K") != 1 {
		t.Errorf("progress output %q: want redraws, then the line cleared once", s)
	}
}
