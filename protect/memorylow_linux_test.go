package protect

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/machinetest"
	"github.com/boxrun/boxrun/internal/procfs"
)

// withMounts is the real root with a mount table of its own, which
// mounts cgroup2 on a test's directory.
type withMounts struct {
	fs.FS
	mounts string
}

func (f withMounts) Open(name string) (fs.File, error) {
	if name == "proc/mounts" {
		return fstest.MapFS{name: {Data: []byte(f.mounts)}}.Open(name)
	}
	return f.FS.Open(name)
}

// TestProtectCgroupPlain: protectCgroup sets memory.low of a plain cgroup
// (no systemd unit) by writing its file and remembers the value before;
// leaves one already protected, and a dry run, untouched; and with
// System, as root, lifts the ancestor that caps the protection.
func TestProtectCgroupPlain(t *testing.T) {
	const gib = 1 << 30
	root := os.Geteuid() == 0
	tests := []struct {
		name           string
		opt            Options
		top, app       string // memory.low of /top and /top/app before
		wantTop        string // after
		wantApp        string
		changed        bool
		set, effective uint64
		recorded       int
	}{
		{"writes the file", Options{}, "0", "0", "0", fmt.Sprint(gib), true, gib, 0, 1},
		{"already protected", Options{}, "0", fmt.Sprint(2 * gib), "0", fmt.Sprint(2 * gib), false, 2 * gib, 0, 0},
		{"dry run", Options{DryRun: true}, "0", "0", "0", "0", false, gib, 0, 0},
		{"lifts the ancestor as root", Options{System: true}, "0", "0", map[bool]string{true: fmt.Sprint(gib), false: "0"}[root], fmt.Sprint(gib), true, gib,
			map[bool]uint64{true: gib, false: 0}[root], map[bool]int{true: 2, false: 1}[root]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount := t.TempDir()
			if err := os.MkdirAll(filepath.Join(mount, "top", "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			machinetest.WriteFiles(t, mount, map[string]string{"top/memory.low": tt.top, "top/app/memory.low": tt.app})
			tt.opt.Timeout = 1
			p := &Protector{opt: tt.opt, rootFS: withMounts{os.DirFS("/"), "cgroup2 " + mount + " cgroup2 rw,nsdelegate 0 0\n"}}
			st := &protectState{}
			rep := &Report{}
			u := p.protectCgroup(context.Background(), cgroupfs.Mount{Path: mount}, "/top/app", "editors", gib, st, rep)
			if len(rep.Problems) > 0 || u.Error != "" {
				t.Fatalf("problems %q, error %q", rep.Problems, u.Error)
			}
			for file, want := range map[string]string{"top/memory.low": tt.wantTop, "top/app/memory.low": tt.wantApp} {
				if got, _ := os.ReadFile(filepath.Join(mount, file)); strings.TrimSpace(string(got)) != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
			if u.Changed != tt.changed || u.Set != tt.set || u.Protection.Effective != tt.effective || len(st.Units) != tt.recorded {
				t.Errorf("changed %v, set %d, effective %d, %d recorded; want %v, %d, %d, %d",
					u.Changed, u.Set, u.Protection.Effective, len(st.Units), tt.changed, tt.set, tt.effective, tt.recorded)
			}
			if tt.changed && st.Units[0].Before != 0 {
				t.Errorf("recorded %+v, want the value before, 0", st.Units[0])
			}
		})
	}
}

// TestApply: apply lowers each match's oom_score_adj to its group's, once
// (a second pass finds it at its floor and writes nothing), remembers the
// value before, reports what a dry run would try without a write, and asks
// one memory.low per cgroup, the highest its groups want.
func TestApply(t *testing.T) {
	self := os.Getpid()
	stat, err := procfs.ReadStatFS(os.DirFS("/proc"), self)
	if err != nil {
		t.Fatal(err)
	}
	target, low1, low2 := -500, uint64(1<<30), uint64(2<<30)
	groups := []Group{{Name: "editors", OOMScoreAdj: &target, MemoryLow: &low1}, {Name: "lsp", MemoryLow: &low2}, {Name: "none"}}
	proc := ProcInfo{PID: self, StartTime: stat.StartTime, Comm: "code", Cgroup: "/a"}
	matches := []Match{{ProcInfo: proc, Group: "editors"}, {ProcInfo: proc, Group: "lsp"}, {ProcInfo: ProcInfo{PID: self, StartTime: stat.StartTime, Cgroup: "/b"}, Group: "none"}}
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry run %v", dry), func(t *testing.T) {
			oom := &fakeOOM{val: 300, floor: -100, writable: true}
			statePath := filepath.Join(t.TempDir(), "protect.json")
			p := &Protector{opt: Options{Groups: groups, DryRun: dry, StatePath: statePath, Timeout: 1}, oom: oom, done: map[ProcKey]lowered{},
				procFS: os.DirFS("/proc"), rootFS: fstest.MapFS{"proc/mounts": {Data: []byte("sysfs /sys sysfs rw 0 0\n")}}}
			rep, err := p.apply(context.Background(), matches)
			if err != nil {
				t.Fatal(err)
			}
			wantAfter, wantFloor, wantVal := -100, true, -100
			if dry {
				wantAfter, wantFloor, wantVal = -500, false, 300
			}
			if len(rep.Processes) != 3 {
				t.Fatalf("%d processes, want 3", len(rep.Processes))
			}
			if pp := rep.Processes[0]; pp.OOMBefore != 300 || pp.OOMAfter != wantAfter || pp.OOMFloor != wantFloor || oom.val != wantVal {
				t.Errorf("oom_score_adj %d → %d (floor %v), the process at %d; want 300 → %d (floor %v), at %d",
					pp.OOMBefore, pp.OOMAfter, pp.OOMFloor, oom.val, wantAfter, wantFloor, wantVal)
			}
			if pp := rep.Processes[2]; pp.OOMTarget != nil || pp.OOMAfter != oom.val {
				t.Errorf("a group without oom_score_adj: %+v", pp)
			}
			if len(rep.Units) != 1 || rep.Units[0].Cgroup != "/a" || rep.Units[0].Group != "lsp" || rep.Units[0].Protection.Want != low2 {
				t.Errorf("units %+v, want /a with lsp's 2G", rep.Units)
			}
			if _, err := os.Stat(statePath); (err == nil) == dry {
				t.Errorf("state file: %v; want one unless a dry run", err)
			}
			if dry {
				return
			}
			writes := oom.writes
			if rep, _ = p.apply(context.Background(), matches); oom.writes != writes || !rep.Processes[0].OOMFloor {
				t.Errorf("a second pass wrote %d times, floor %v; want none, at the floor", oom.writes-writes, rep.Processes[0].OOMFloor)
			}
		})
	}
}
