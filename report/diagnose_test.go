package report

import (
	"path"
	"strings"
	"testing"
)

func TestDiagnose(t *testing.T) {
	box := func(mod func(r *Run)) *Run {
		r := &Run{Policy: testsPolicy(), Cgroup: "/boxrun.slice/boxrun-tests-1a2b3c4d.scope", Backend: "systemd",
			Command: []string{"/usr/bin/cargo", "test"}, PID: 100, KernelLogRead: true}
		mod(r)
		return r
	}
	victim := func(pid int, comm string, inside, global bool) OOMVictim {
		return OOMVictim{PID: pid, Comm: comm, RSSBytes: 6 * gib, InsideBox: inside, Global: global, Certainty: CertaintyKernelLog}
	}
	// sampled is a victim named from boxrun's samples: the kernel log was
	// not read.
	sampled := func(pid int, comm string, c string) OOMVictim {
		return OOMVictim{PID: pid, Comm: comm, RSSBytes: 127 * mib, InsideBox: true, Certainty: c}
	}
	tests := []struct {
		name  string
		run   *Run
		kinds []string
		says  []string // substrings of the messages and details, in order
	}{
		{"nothing wrong", box(func(r *Run) {}), nil, nil},
		{"command OOM-killed at memory.max", box(func(r *Run) {
			r.Signal, r.ExitCode = "SIGKILL", intp(137)
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			r.OOMVictims = []OOMVictim{victim(100, "cargo", true, false)}
		}), []string{KindOOMKill}, []string{"cargo was killed by the kernel's OOM killer, inside this box, at memory.max=12G", `raise memory.max in policy "tests"`, "pid 100 cargo (6G, from the kernel log)"}},
		{"children OOM-killed, command survived", box(func(r *Run) {
			r.ExitCode = intp(101)
			r.Memory.Events = MemoryEvents{OOM: 2, OOMKill: 2}
			r.OOMVictims = []OOMVictim{victim(201, "bkt", true, false), victim(202, "rustc", true, false)}
		}), []string{KindOOMKill}, []string{"the kernel's OOM killer killed 2 processes in this box at memory.max=12G", "pid 201 bkt", "pid 202 rustc"}},
		{"OOM kill, kernel log unreadable", box(func(r *Run) {
			r.KernelLogRead = false
			r.Signal = "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
		}), []string{KindOOMKill}, []string{"cargo was killed by the kernel's OOM killer", "cannot name the victims: sudo dmesg"}},
		{"OOM kill, kernel log unreadable, the command seen leaving", box(func(r *Run) {
			r.KernelLogRead, r.Signal = false, "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			r.OOMVictims = []OOMVictim{sampled(100, "cargo", CertaintyVanished)}
		}), []string{KindOOMKill}, []string{"cargo was killed by the kernel's OOM killer, inside this box", "pid 100 cargo (127M when last seen; it left the box at the kill)", "boxrun named the victims from its samples of the box's processes: sudo dmesg"}},
		{"kernel log unreadable, the victim sampled only as it died", box(func(r *Run) {
			r.KernelLogRead, r.Signal = false, "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			v := sampled(100, "cargo", CertaintyVanished)
			v.RSSBytes = 0
			r.OOMVictims = []OOMVictim{v}
		}), []string{KindOOMKill}, []string{"pid 100 cargo (size unknown: sampled only as it died; it left the box at the kill)"}},
		{"kernel log unreadable, another process seen leaving: the SIGKILL was not the OOM killer's", box(func(r *Run) {
			r.KernelLogRead, r.Signal = false, "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			r.OOMVictims = []OOMVictim{sampled(555, "rustc", CertaintyVanished)}
		}), []string{KindOOMKill, KindSigkill}, []string{"killed 1 process in this box", "pid 555 rustc", "the OOM victims boxrun saw leave the box are others, not it"}},
		{"kernel log unreadable, a likely victim: the command may be it", box(func(r *Run) {
			r.KernelLogRead, r.Signal = false, "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			r.OOMVictims = []OOMVictim{sampled(555, "rustc", CertaintyLikely)}
		}), []string{KindOOMKill}, []string{"cargo was killed by the kernel's OOM killer", "pid 555 rustc (127M when last seen; likely: the largest of the processes that left the box at the kill)"}},
		{"kernel log unreadable, one of two victims seen", box(func(r *Run) {
			r.KernelLogRead = false
			r.Memory.Events = MemoryEvents{OOM: 2, OOMKill: 2}
			r.OOMVictims = []OOMVictim{sampled(555, "rustc", CertaintyVanished)}
		}), []string{KindOOMKill}, []string{"killed 2 processes in this box", "pid 555 rustc", "boxrun saw 1 of the 2 victims leave the box"}},
		{"memory.oom_group", box(func(r *Run) {
			r.Signal = "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 3, OOMGroupKill: 1}
		}), []string{KindOOMKill}, []string{"(3 processes killed in all)", "memory.oom_group took the whole box"}},
		{"global OOM killed a process of the box under its limit", box(func(r *Run) {
			r.Memory.Events = MemoryEvents{OOMKill: 1}
			r.OOMVictims = []OOMVictim{victim(300, "bkt", true, true)}
		}), []string{KindOOMKillGlobal}, []string{"killed 1 process in this box although the box stayed under its memory.max=12G", "lower memory.max"}},
		{"the slice of boxes at its limit, the box under its own", box(func(r *Run) {
			r.Memory.Events = MemoryEvents{OOMKill: 1}
			v := victim(300, "bkt", true, false)
			v.Cgroup, v.LimitCgroup = r.Cgroup, path.Dir(r.Cgroup)
			r.OOMVictims = []OOMVictim{v}
		}), []string{KindOOMKillGlobal}, []string{"although the box stayed under its memory.max=12G: /boxrun.slice, around the box, reached its limit", "raise [slice] memory.max"}},
		{"the box's own limit, named by the log though memory.events says no oom", box(func(r *Run) {
			r.Memory.Events = MemoryEvents{OOMKill: 1}
			v := victim(300, "bkt", true, false)
			v.Cgroup, v.LimitCgroup = r.Cgroup, r.Cgroup
			r.OOMVictims = []OOMVictim{v}
		}), []string{KindOOMKill}, []string{"killed 1 process in this box at memory.max=12G"}},
		{"the box's own limit, its path seen from inside a cgroup namespace", box(func(r *Run) {
			r.Memory.Events = MemoryEvents{OOMKill: 1}
			v := victim(300, "bkt", true, false)
			v.Cgroup, v.LimitCgroup = "/lxc/c1"+r.Cgroup, "/lxc/c1"+r.Cgroup
			r.OOMVictims = []OOMVictim{v}
		}), []string{KindOOMKill}, []string{"killed 1 process in this box at memory.max=12G"}},
		{"global OOM, no memory.max", box(func(r *Run) {
			r.Policy.MemoryMax = nil
			r.Memory.Events = MemoryEvents{OOMKill: 1}
		}), []string{KindOOMKillGlobal}, []string{"the box has no memory.max", `set memory.max in policy "tests"`}},
		{"the editor killed outside the box", box(func(r *Run) {
			r.OutsideOOMKills = 1
			r.OOMVictims = []OOMVictim{victim(11914, "code", false, true)}
		}), []string{KindOOMKillOutside}, []string{"the OOM killer killed 1 process outside this box while it ran, because the machine ran out of memory", "lower memory.max in policy \"tests\" (now 12G)", "pid 11914 code (6G, from the kernel log)"}},
		{"outside kills, log unreadable", box(func(r *Run) {
			r.KernelLogRead = false
			r.OutsideOOMKills = 2
		}), []string{KindOOMKillOutside}, []string{"2 processes outside this box (your editor, perhaps)", "cannot name them"}},
		{"outside kills at another cgroup's own limit", box(func(r *Run) {
			r.OutsideOOMKills = 1
			r.OOMVictims = []OOMVictim{victim(5, "java", false, false)}
		}), []string{KindOOMKillOutside}, []string{"at their own cgroup's memory limit", "not this box's doing"}},
		{"SIGKILL with no OOM kill: not the OOM killer", box(func(r *Run) {
			r.Signal, r.ExitCode = "SIGKILL", intp(137)
		}), []string{KindSigkill}, []string{"cargo was killed by SIGKILL, and not by the OOM killer (memory.events of this box counts no OOM kill)", "outside the box's OOM killer", "systemd-oomd"}},
		{"SIGKILL while the log names another victim", box(func(r *Run) {
			r.Signal = "SIGKILL"
			r.Memory.Events = MemoryEvents{OOM: 1, OOMKill: 1}
			r.OOMVictims = []OOMVictim{victim(555, "rustc", true, false)}
		}), []string{KindOOMKill, KindSigkill}, []string{"killed 1 process in this box", "pid 555 rustc", "the kernel log names other OOM victims, not it"}},
		{"SIGKILL without a box", box(func(r *Run) {
			r.Cgroup, r.Backend, r.Signal = "", "none", "SIGKILL"
		}), []string{KindSigkill}, []string{"without a box boxrun cannot tell"}},
		{"no box: counters are not judged", box(func(r *Run) {
			r.Cgroup = ""
			r.Memory.Events.OOMKill, r.Pids.EventsMax, r.OutsideOOMKills = 1, 1, 1
		}), nil, nil},
		{"fork failures", box(func(r *Run) { r.Pids.EventsMax = 37 }), []string{KindForkFailed},
			[]string{`fork failed 37 times: pids.max=4096 reached — raise pids.max in policy "tests"`}},
		{"one fork failure, no pids.max", box(func(r *Run) { r.Pids.EventsMax, r.Policy.PidsMax = 1, nil }), []string{KindForkFailed},
			[]string{"fork failed once: the process limit of a cgroup around the box"}},
		{"throttled above memory.high", box(func(r *Run) { r.Memory.Events.High = 1204 }), []string{KindMemoryHigh},
			[]string{"above memory.high=8G and was throttled 1,204 times", "raise memory.high"}},
		{"leftovers killed", box(func(r *Run) {
			r.Leftovers, r.LeftoversKilled = []Leftover{{50001, "sleep", "sleep 300"}}, true
		}), []string{KindLeftovers}, []string{"1 process outlived cargo and was killed", "pid 50001 sleep: sleep 300"}},
		{"leftovers of an interrupted boxrun", box(func(r *Run) {
			r.Leftovers, r.LeftoversKilled, r.Interrupted = []Leftover{{50001, "hog", "hog"}, {50002, "hog", "hog"}}, true, "SIGTERM"
		}), []string{KindLeftovers}, []string{"boxrun was interrupted by SIGTERM while 2 processes still ran in the box; they were killed"}},
		{"leftovers kept", box(func(r *Run) {
			r.Unit = "boxrun-tests-1a2b3c4d.scope"
			r.Leftovers = []Leftover{{1, "a", "a"}, {2, "b", "b"}}
		}), []string{KindLeftovers}, []string{`2 processes outlived cargo and were left running in boxrun-tests-1a2b3c4d.scope (leftovers = "keep")`}},
		{"errors before warnings", box(func(r *Run) {
			r.Leftovers, r.LeftoversKilled = []Leftover{{1, "a", "a"}}, true
			r.Memory.Events = MemoryEvents{High: 5, OOM: 1, OOMKill: 1}
			r.Pids.EventsMax = 2
			r.OutsideOOMKills = 1
		}), []string{KindOOMKill, KindOOMKillOutside, KindForkFailed, KindMemoryHigh, KindLeftovers}, nil},
		{"no command", box(func(r *Run) { r.Command, r.Signal = nil, "SIGKILL" }), []string{KindSigkill}, []string{"the command was killed by SIGKILL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := Diagnose(tt.run)
			var kinds []string
			var all strings.Builder
			for _, d := range ds {
				kinds = append(kinds, d.Kind)
				all.WriteString(d.Message + "\n" + strings.Join(d.Details, "\n") + "\n")
				if d.Message != strings.TrimSuffix(d.Message, ".") || d.Message == "" {
					t.Errorf("message %q is empty or ends with a period", d.Message)
				}
				if d.Severity != SeverityError && d.Severity != SeverityWarning {
					t.Errorf("severity %q", d.Severity)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tt.kinds, ",") {
				t.Errorf("kinds %v, want %v\n%s", kinds, tt.kinds, all.String())
			}
			rest := all.String()
			for _, s := range tt.says {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Errorf("diagnosis lacks %q (in order):\n%s", s, all.String())
					continue
				}
				rest = rest[i+len(s):]
			}
		})
	}
}
