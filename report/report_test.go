package report

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func u64(v uint64) *uint64 { return &v }
func intp(v int) *int      { return &v }

const (
	mib = 1 << 20
	gib = 1 << 30
)

func testsPolicy() Policy {
	return Policy{Name: "tests", MemoryHigh: u64(8 * gib), MemoryMax: u64(12 * gib), MemorySwapMax: u64(0),
		PidsMax: u64(4096), CPUWeight: u64(50), CPUMaxUSecPerSec: u64(4000000), OOMScoreAdj: intp(500)}
}

func ramp(n int, top uint64) []Sample {
	var s []Sample
	for i := 0; i < n; i++ {
		x := uint64(i)
		if i > n/2 {
			x = uint64(n - i)
		}
		s = append(s, Sample{T: float64(i) * 0.25, MemoryBytes: x * 2 * top / uint64(n), Pids: 10 + x})
	}
	return s
}

// runs are the report's fixtures: each is rendered to testdata/NAME.golden
// (text) and testdata/NAME.json.golden.
func runs() map[string]*Run {
	rs := fixtures()
	for _, r := range rs {
		r.Enforced = r.Backend != "none"
	}
	return rs
}

// fixtures are the runs as made, Enforced aside.
func fixtures() map[string]*Run {
	return map[string]*Run{
		// The block of issue 3: cargo test OOM-killed in its box, with
		// forks refused and processes left behind.
		"issue-example": {
			Policy: testsPolicy(), Unit: "boxrun-tests-1a2b3c4d.scope",
			Cgroup:  "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
			Backend: "systemd", Kernel: "6.11.4-301.fc41.x86_64", Systemd: "256.11-1.fc41",
			Command: []string{"cargo", "test"}, PID: 48100, ExitCode: intp(101), WallSeconds: 192.4,
			Memory:  Memory{PeakBytes: 79 * gib / 10, PeakSource: PeakMemoryPeak, Events: MemoryEvents{High: 1204, Max: 57, OOM: 2, OOMKill: 2}},
			Pids:    Pids{Peak: 412, PeakSource: PeakSamples, EventsMax: 37},
			CPU:     &CPU{UsageUSec: 663_000_000, UserUSec: 600_000_000, SystemUSec: 63_000_000},
			Samples: ramp(768, 79*gib/10),
			OOMVictims: []OOMVictim{
				{PID: 48211, Comm: "bkt-3f2a9c1d0e", RSSBytes: 61 * gib / 10, InsideBox: true, Cgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
					LimitCgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope", Certainty: CertaintyKernelLog},
				{PID: 48390, Comm: "rustc", RSSBytes: 12 * gib / 10, InsideBox: true, Cgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
					LimitCgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope", Certainty: CertaintyKernelLog},
			},
			KernelLogRead: true,
			Commands: []CommandUse{{Comm: "bkt-3f2a9c1d0e", Processes: 1, PeakBytes: 61 * gib / 10, TypicalBytes: 61 * gib / 10, CPUSeconds: 412.25},
				{Comm: "rustc", Processes: 31, PeakBytes: 12 * gib / 10, TypicalBytes: 310 * mib, CPUSeconds: 201.5},
				{Comm: "bkt", Processes: 72, PeakBytes: 180 * mib, TypicalBytes: 95 * mib, CPUSeconds: 40.125},
				{Comm: "cargo", Processes: 1, PeakBytes: 60 * mib, TypicalBytes: 60 * mib, CPUSeconds: 3.5}},
			Leftovers:       []Leftover{{50001, "sleep", "sleep 300"}, {50002, "distrobox-host-", "/usr/bin/distrobox-host-exec bkt flatpak list"}, {50007, "conmon", "/usr/bin/conmon --api-version 1 -c 3f2a"}},
			LeftoversKilled: true,
		},
		// The second user report: SIGKILL, and no OOM kill anywhere.
		"sigkill-not-oom": {
			Policy: testsPolicy(), Unit: "boxrun-tests-0badf00d.scope", Cgroup: "/boxrun.slice/boxrun-tests-0badf00d.scope",
			Backend: "systemd", Command: []string{"/usr/bin/cargo", "run", "-p", "dev-detach"}, PID: 700, ExitCode: intp(137), Signal: "SIGKILL", WallSeconds: 41.2,
			Memory:  Memory{PeakBytes: 310 * mib, PeakSource: PeakMemoryPeak},
			Pids:    Pids{Peak: 23, PeakSource: PeakSamples},
			CPU:     &CPU{UsageUSec: 5_300_000, UserUSec: 4_000_000, SystemUSec: 1_300_000},
			Samples: ramp(40, 310*mib), KernelLogRead: true,
		},
		// The same with the signal tracer: a harness's timeout killed the
		// command's process group, and a kill -9 from root took a child.
		"sigkill-named": {
			Policy: testsPolicy(), Unit: "boxrun-tests-0badf00e.scope", Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/boxrun-tests-0badf00e.scope",
			Backend: "systemd", Command: []string{"/usr/bin/cargo", "test"}, PID: 710, ExitCode: intp(137), Signal: "SIGKILL", WallSeconds: 600.1,
			Memory:  Memory{PeakBytes: 2 * gib, PeakSource: PeakMemoryPeak},
			Pids:    Pids{Peak: 40, PeakSource: PeakPidsPeak},
			CPU:     &CPU{UsageUSec: 900_000_000, UserUSec: 800_000_000, SystemUSec: 100_000_000},
			Samples: ramp(40, 2*gib), KernelLogRead: true,
			Signals: []Signal{
				{PID: 733, Comm: "sleep", Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 4001, Comm: "kill", UID: 0, Cgroup: "/user.slice/user-1000.slice/session-2.scope", Unit: "session-2.scope"}},
				{PID: 710, Comm: "cargo", Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 690, Comm: "timeout", UID: 1000, Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-agent.scope", Unit: "app-agent.scope"}},
				{PID: 741, Comm: "rustc", Signal: "SIGKILL", Code: "SI_KERNEL", Kernel: true, Sender: Sender{PID: 741, Comm: "rustc", UID: 1000}},
			},
			SignalTracer: true,
		},
		// The first user report: the editor killed by the global OOM killer
		// while the box stayed under its limit.
		"editor-killed-outside": {
			Policy: testsPolicy(), Unit: "boxrun-tests-1a2b3c4d.scope", Cgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope",
			Backend: "systemd", Command: []string{"cargo", "test"}, PID: 437000, ExitCode: intp(0), WallSeconds: 905,
			Memory:  Memory{PeakBytes: 113 * gib / 10, PeakSource: PeakMemoryPeak, Events: MemoryEvents{High: 88}},
			Pids:    Pids{Peak: 96, PeakSource: PeakSamples},
			CPU:     &CPU{UsageUSec: 9_800_000_000, UserUSec: 9_000_000_000, SystemUSec: 800_000_000, ThrottledUSec: 12_300_000, NrThrottled: 40},
			Samples: ramp(1200, 113*gib/10),
			OOMVictims: []OOMVictim{
				{PID: 11914, Comm: "code", RSSBytes: 1402312 * 1024, Global: true, Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-code-11902.scope", Certainty: CertaintyKernelLog},
			},
			OutsideOOMKills: 1, KernelLogRead: true,
		},
		// As an unprivileged user with kernel.dmesg_restrict, a victim
		// boxrun never saw: counts only.
		"oom-log-unreadable": {
			Policy: Policy{Name: "it", MemoryHigh: u64(96 * mib), MemoryMax: u64(128 * mib), MemorySwapMax: u64(0), PidsMax: u64(64)},
			Unit:   "boxrun-it-3f2a9c1d.scope", Cgroup: "/user.slice/user-1500.slice/user@1500.service/boxrun.slice/boxrun-it-3f2a9c1d.scope",
			Backend: "systemd", Command: []string{"env", "HOG_MB=400", "./hog"}, PID: 812, ExitCode: intp(137), Signal: "SIGKILL", WallSeconds: 2.35,
			Memory:  Memory{PeakBytes: 128 * mib, PeakSource: PeakMemoryPeak, Events: MemoryEvents{High: 3, Max: 41, OOM: 1, OOMKill: 1}},
			Pids:    Pids{Peak: 1, PeakSource: PeakSamples},
			CPU:     &CPU{UsageUSec: 1_900_000, UserUSec: 1_100_000, SystemUSec: 800_000},
			Samples: ramp(10, 128*mib),
			Notes:   []string{"the box's cgroup was gone when the command exited (systemd removes an empty scope at once): its figures are from boxrun's last reading, 3ms before"},
		},
		// The same, with the victim named from boxrun's samples of the
		// box's processes: the hog left the box as oom_kill rose.
		"oom-named-from-samples": {
			Policy: Policy{Name: "it", MemoryMax: u64(128 * mib), MemorySwapMax: u64(0), PidsMax: u64(64)},
			Unit:   "boxrun-it-5e6f7a8b.scope", Cgroup: "/user.slice/user-1500.slice/user@1500.service/boxrun.slice/boxrun-it-5e6f7a8b.scope",
			Backend: "systemd", Command: []string{"sh", "-c", "./hog & wait"}, PID: 811, ExitCode: intp(0), WallSeconds: 1.82,
			Memory:  Memory{PeakBytes: 128 * mib, PeakSource: PeakMemoryPeak, Events: MemoryEvents{Max: 37, OOM: 1, OOMKill: 1}},
			Pids:    Pids{Peak: 2, PeakSource: PeakPidsPeak},
			CPU:     &CPU{UsageUSec: 1_400_000, UserUSec: 700_000, SystemUSec: 700_000},
			Samples: ramp(8, 128*mib),
			OOMVictims: []OOMVictim{
				{PID: 812, Comm: "hog", RSSBytes: 121 * mib, InsideBox: true, Certainty: CertaintyVanished},
			},
			Notes: []string{"OOM victims are named from boxrun's samples of the box's processes, not from the kernel log: reading /dev/kmsg: operation not permitted (kernel.dmesg_restrict = 1)"},
		},
		// Backpressure spared the box its OOM kills.
		"backpressure": {
			Policy: testsPolicy(), Cgroup: "/boxrun-tests-77aa01fe", Backend: "cgroupfs", Kernel: "6.12.57+deb13-cloud-amd64", Command: []string{"cargo", "test"}, PID: 900, ExitCode: intp(0), WallSeconds: 74.5,
			Memory:  Memory{PeakBytes: 118 * gib / 10, PeakSource: PeakMemoryPeak, Events: MemoryEvents{High: 12}},
			Pids:    Pids{Peak: 120, PeakSource: PeakPidsPeak},
			CPU:     &CPU{UsageUSec: 200_000_000, UserUSec: 180_000_000, SystemUSec: 20_000_000},
			Samples: ramp(300, 118*gib/10),
			Backpressure: &Backpressure{Paused: 14, Resumed: 14, PausedSeconds: 14.1, MaxPauseSeconds: 3.2, MaxPauseReason: "its expected growth does not fit the box",
				MaxRunning: 9, ForcedResumes: 1, Forced: []ForcedResume{{"every running process waits on a lock or a pipe", 1}},
				Reasons:        []PauseReason{{"its expected growth does not fit the box", 12, 13.0, 3.2}, {"the box is at its memory target", 2, 1.1, 0.6}},
				BlockedSeconds: 0.12, Method: "freezer", Sizes: "from the last run of this project (/home/me/.local/state/boxrun/sizes/5d0c2f1e9a7b4c3d8e6f0a1b2c3d4e5f.json), then learned in this run"},
		},
		// boxrun was interrupted (timeout's SIGTERM) while it held processes
		// paused: the report says so, not that the command did not wait.
		"interrupted": {
			Policy: testsPolicy(), Cgroup: "/boxrun-tests-77aa01ff", Backend: "cgroupfs", Command: []string{"sh", "-c", "xargs -P 24 ..."}, PID: 901, ExitCode: intp(143),
			Signal: "SIGTERM", Interrupted: "SIGTERM", WallSeconds: 45,
			Memory:          Memory{PeakBytes: 3 * gib, PeakSource: PeakMemoryPeak},
			Pids:            Pids{Peak: 50, PeakSource: PeakPidsPeak},
			CPU:             &CPU{},
			Leftovers:       []Leftover{{950, "hog", "hog 150"}, {951, "hog", "hog 150"}},
			LeftoversKilled: true,
			Backpressure: &Backpressure{Paused: 2, Resumed: 2, PausedSeconds: 1.5, MaxPauseSeconds: 0.9, MaxPauseReason: "the box is at its memory target",
				MaxRunning: 22, Reasons: []PauseReason{{"the box is at its memory target", 2, 1.5, 0.9}}, Method: "SIGSTOP", Restopped: 1, PausedAtEnd: 2, ThrottleLifted: 1,
				Sizes: "learned in this run"},
		},
		// boxrun's process group killed by a harness's timeout: the
		// guard's post-mortem.
		"boxrun-killed": {
			Policy: testsPolicy(), Unit: "boxrun-tests-5e6f7a8b.scope",
			Cgroup:  "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-5e6f7a8b.scope",
			Backend: "systemd", Kernel: "6.1.0-41-cloud-amd64", Command: []string{"cargo", "test"}, ExitCode: intp(137), Signal: "SIGKILL", Interrupted: "SIGKILL", WallSeconds: 600.2,
			Memory:          Memory{PeakBytes: 5 * gib, PeakSource: PeakMemoryPeak, Events: MemoryEvents{High: 3}},
			Pids:            Pids{Peak: 211, PeakSource: PeakPidsPeak},
			CPU:             &CPU{UsageUSec: 2900e6, UserUSec: 2500e6, SystemUSec: 400e6},
			Leftovers:       []Leftover{{4811, "cargo", ""}, {4990, "memcrate-3f2a9", ""}},
			LeftoversKilled: true,
			BoxrunKilled:    &BoxrunKilled{Signal: "SIGKILL", ProcessesKilled: 2, AtSeconds: 600.2},
			Notes:           []string{"a post-mortem: boxrun died before the command finished, and its guard wrote this report from what the box showed then; samples, CPU time and backpressure were boxrun's and died with it"},
		},
		// boxrun's process group killed and boxrun reaped at once: the
		// group kill took the box's processes, systemd removed the empty
		// scope before the guard read it, and only the signal tracer saw
		// what killed boxrun.
		"boxrun-killed-empty": {
			Policy: testsPolicy(), Unit: "boxrun-tests-5e6f7a8b.scope",
			Cgroup:  "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-5e6f7a8b.scope",
			Backend: "systemd", Command: []string{"cargo", "test"}, WallSeconds: 2,
			Memory:          Memory{PeakSource: PeakNone, EventsUnknown: true},
			Pids:            Pids{PeakSource: PeakNone, EventsUnknown: true},
			LeftoversKilled: true, SignalTracer: true,
			BoxrunKilled: &BoxrunKilled{AtSeconds: 2, By: &Signal{PID: 4120, Comm: "boxrun", Signal: "SIGKILL", Code: "SI_USER",
				Sender: Sender{PID: 4200, Comm: "timeout", UID: 1000, Unit: "app-agent.scope"}}},
			Notes: []string{"a post-mortem: boxrun died before the command finished, and its guard wrote this report from what the box showed then; samples, OOM victims and backpressure were boxrun's and died with it"},
		},
		// The none backend: nothing measured.
		"no-box": {
			Policy: testsPolicy(), Backend: "none", Command: []string{"make", "-j8"}, PID: 31, ExitCode: intp(2), WallSeconds: 0.85, CPU: &CPU{},
			Memory: Memory{EventsUnknown: true}, Pids: Pids{EventsUnknown: true},
		},
		// A clean run.
		"clean": {
			Policy: testsPolicy(), Unit: "boxrun-tests-00000001.scope", Cgroup: "/boxrun.slice/boxrun-tests-00000001.scope",
			Backend: "systemd", Kernel: "6.1.0-41-cloud-amd64", Systemd: "252.39-1~deb12u1",
			Command: []string{"go", "test", "./..."}, PID: 1000, ExitCode: intp(0), WallSeconds: 12.34,
			Memory: Memory{PeakBytes: 1536 * mib, PeakSource: PeakSamples},
			Pids:   Pids{Peak: 48, PeakSource: PeakSamples},
			CPU:    &CPU{UsageUSec: 30_500_000, UserUSec: 28_000_000, SystemUSec: 2_500_000}, Samples: ramp(50, 1536*mib), KernelLogRead: true,
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./report -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	schema := loadSchema(t)
	for name, r := range runs() {
		t.Run(name, func(t *testing.T) {
			r.Diagnosis = Diagnose(r)
			var text bytes.Buffer
			if err := Text(&text, r, false); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".golden", text.Bytes())
			var js bytes.Buffer
			if err := JSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json.golden", js.Bytes())
			if err := schema.validate(decodeJSON(t, js.Bytes())); err != nil {
				t.Errorf("the JSON report does not match report/schema.json: %v\n%s", err, js.String())
			}
			for i, line := range strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n") {
				switch {
				case i == 0 && !strings.HasPrefix(line, "boxrun: "):
					t.Errorf("header %q lacks the boxrun: prefix", line)
				case i > 0 && !strings.HasPrefix(line, "  "):
					t.Errorf("line %q under the header is not indented", line)
				case strings.HasSuffix(line, "."):
					t.Errorf("line %q ends with a period", line)
				}
			}
		})
	}
}

func TestTextColor(t *testing.T) {
	r := runs()["issue-example"]
	r.Diagnosis = Diagnose(r)
	var b bytes.Buffer
	if err := Text(&b, r, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "issue-example.color.golden", b.Bytes())
	for _, want := range []string{"\x1b[1mtests · 3m12s · exit 101\x1b[0m", "\x1b[31m✗\x1b[0m", "\x1b[33m!\x1b[0m"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("coloured text lacks %q", want)
		}
	}
	var plain bytes.Buffer
	Text(&plain, r, false)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape sequences without colour")
	}
}

func TestTextCapsDetails(t *testing.T) {
	r := runs()["clean"]
	for i := 0; i < 20; i++ {
		r.Leftovers = append(r.Leftovers, Leftover{PID: 100 + i, Comm: "sleep", Cmdline: "sleep 9"})
	}
	r.LeftoversKilled = true
	r.Diagnosis = Diagnose(r)
	var b bytes.Buffer
	Text(&b, r, false)
	if !strings.Contains(b.String(), "… and 12 more") || strings.Count(b.String(), "sleep 9") != 8 {
		t.Errorf("20 leftovers: want 8 named and '… and 12 more':\n%s", b.String())
	}
}

func TestJSONNulls(t *testing.T) {
	r := &Run{Backend: "none", Memory: Memory{EventsUnknown: true}, Pids: Pids{EventsUnknown: true}}
	var b bytes.Buffer
	if err := JSON(&b, r); err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, b.Bytes()).(map[string]any)
	for _, k := range []string{"unit", "cgroup", "kernel", "systemd", "pid", "exit_code", "signal", "interrupted", "cpu", "backpressure"} {
		if m[k] != nil {
			t.Errorf("%s = %v, want null", k, m[k])
		}
	}
	if ev := m["memory"].(map[string]any)["events"]; ev != nil {
		t.Errorf("memory.events = %v, want null when never read", ev)
	}
	if ev := m["pids"].(map[string]any)["events_max"]; ev != nil {
		t.Errorf("pids.events_max = %v, want null when never read", ev)
	}
	for _, k := range []string{"command", "samples", "oom_victims", "leftovers", "diagnosis", "notes"} {
		if l, ok := m[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %#v, want []", k, m[k])
		}
	}
	if src := m["memory"].(map[string]any)["peak_source"]; src != "none" {
		t.Errorf("peak_source %v, want none", src)
	}
	if err := loadSchema(t).validate(m); err != nil {
		t.Errorf("empty run: %v", err)
	}
}

func TestFailed(t *testing.T) {
	rs := runs()
	for name, want := range map[string]bool{"issue-example": true, "sigkill-not-oom": true, "editor-killed-outside": true, "oom-log-unreadable": true, "oom-named-from-samples": true, "backpressure": false, "interrupted": false, "no-box": false, "clean": false} {
		r := rs[name]
		r.Diagnosis = Diagnose(r)
		if got := r.Failed(); got != want {
			t.Errorf("%s: Failed() = %v, want %v (diagnosis %+v)", name, got, want, r.Diagnosis)
		}
	}
}

// TestJSONMirrorsRun keeps the JSON form in step with Run: the same JSON
// names in the same order.
func TestJSONMirrorsRun(t *testing.T) {
	names := func(typ reflect.Type) []string {
		var out []string
		for i := 0; i < typ.NumField(); i++ {
			out = append(out, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		return out
	}
	run, wire := names(reflect.TypeOf(Run{})), names(reflect.TypeOf(runJSON{}))
	if !reflect.DeepEqual(run, wire) {
		t.Errorf("Run has JSON fields\n%v\nbut runJSON writes\n%v", run, wire)
	}
}

// BenchmarkText renders the example (768 samples, OOM victims,
// leftovers) as text, as every run ends by doing.
func BenchmarkText(b *testing.B) {
	r := runs()["issue-example"]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := Text(io.Discard, r, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSON renders the same run as --report-json does.
func BenchmarkJSON(b *testing.B) {
	r := runs()["issue-example"]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := JSON(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
