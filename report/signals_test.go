package report

import (
	"strings"
	"testing"
)

func TestDescribeSender(t *testing.T) {
	for _, tc := range []struct {
		s         Signal
		oomVictim bool
		want      string
	}{
		{Signal{Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 1234, Comm: "timeout", UID: 1000, Unit: "app-foo.scope"}}, false,
			"from pid 1234 (timeout), uid 1000, in app-foo.scope (kill)"},
		{Signal{Signal: "SIGTERM", Code: "SI_TKILL", Sender: Sender{PID: 9, UID: 0, Cgroup: "/itsender"}}, false,
			"from pid 9, uid 0, in cgroup /itsender (tgkill)"},
		{Signal{Signal: "SIGKILL", Code: "SI_KERNEL", Kernel: true, Sender: Sender{PID: 77, Comm: "cc1plus"}}, false,
			"from the kernel (the OOM killer, or another kernel kill), in the context of pid 77 (cc1plus)"},
		// The report names its target as the box's OOM victim.
		{Signal{Signal: "SIGKILL", Code: "SI_KERNEL", Kernel: true, Sender: Sender{PID: 77, Comm: "cc1plus"}}, true,
			"from the kernel's OOM killer (SI_KERNEL), in the context of pid 77 (cc1plus)"},
		// A process's kill -9 to an OOM victim is still the process's.
		{Signal{Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 20, Comm: "kill", UID: 0}}, true,
			"from pid 20 (kill), uid 0 (kill)"},
		{Signal{Signal: "SIGSEGV", Code: "SEGV_MAPERR", Kernel: true, Sender: Sender{PID: 5, Comm: "t"}}, true,
			"from the kernel (SEGV_MAPERR), in the context of pid 5 (t)"},
	} {
		if got := describeSender(tc.s, tc.oomVictim); got != tc.want {
			t.Errorf("describeSender = %q\nwant %q", got, tc.want)
		}
	}
}

func TestWithSenders(t *testing.T) {
	base := func() *Run {
		return &Run{Policy: testsPolicy(), Cgroup: "/b/boxrun-tests-00000001", Backend: "cgroupfs", Command: []string{"sh"}, PID: 10,
			ExitCode: intp(137), Signal: "SIGKILL", Memory: Memory{PeakSource: PeakSamples}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Run)
		kinds string
		has   []string
	}{
		{"no tracer: one hint", func(r *Run) {}, "sigkill", []string{TracerHint}},
		{"a tracer without a record", func(r *Run) { r.SignalTracer = true }, "sigkill", []string{"recorded no SIGKILL to pid 10"}},
		{"the sender named", func(r *Run) {
			r.SignalTracer = true
			r.Signals = []Signal{{PID: 10, Comm: "sh", Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 20, Comm: "kill", UID: 0}}}
		}, "sigkill", []string{"sh was killed by SIGKILL from pid 20 (kill), uid 0 (kill)"}},
		{"a child killed, the command exited", func(r *Run) {
			r.SignalTracer, r.Signal, r.ExitCode = true, "", intp(137)
			r.Signals = []Signal{{PID: 11, Comm: "sleep", Signal: "SIGKILL", Code: "SI_USER", Sender: Sender{PID: 20, Comm: "kill", UID: 0}}}
		}, "signal", []string{"pid 11 sleep was killed by SIGKILL from pid 20 (kill), uid 0 (kill)"}},
		{"the command terminated", func(r *Run) {
			r.SignalTracer, r.Signal, r.ExitCode = true, "SIGTERM", intp(143)
			r.Signals = []Signal{{PID: 10, Comm: "sh", Signal: "SIGTERM", Code: "SI_USER", Sender: Sender{PID: 1, Comm: "systemd", UID: 0, Unit: "init.scope"}}}
		}, "signal", []string{"pid 10 sh was sent SIGTERM from pid 1 (systemd), uid 0, in init.scope (kill)"}},
		{"a child OOM-killed: the OOM killer sent it", func(r *Run) {
			r.SignalTracer, r.Signal, r.ExitCode = true, "", intp(1)
			r.Memory.Events.OOMKill = 1
			r.OOMVictims = []OOMVictim{{PID: 11, Comm: "hog", InsideBox: true, Certainty: CertaintyVanished}}
			r.Signals = []Signal{{PID: 11, Comm: "hog", Signal: "SIGKILL", Code: "SI_KERNEL", Kernel: true, Sender: Sender{PID: 11, Comm: "hog", UID: 1000}}}
		}, "oom_kill signal", []string{"pid 11 hog was killed by SIGKILL from the kernel's OOM killer (SI_KERNEL), in the context of pid 11 (hog)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.edit(r)
			ds := Diagnose(r)
			var kinds []string
			var text strings.Builder
			for _, d := range ds {
				kinds = append(kinds, d.Kind)
				text.WriteString(d.Message + "\n" + strings.Join(d.Details, "\n") + "\n")
			}
			if strings.Join(kinds, " ") != tc.kinds {
				t.Errorf("kinds %v, want %s", kinds, tc.kinds)
			}
			for _, h := range tc.has {
				if !strings.Contains(text.String(), h) {
					t.Errorf("diagnosis\n%s\nlacks %q", text.String(), h)
				}
			}
		})
	}
}
