package boxes

import (
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/policy"
)

// machine is a fixture machine for the memory size: MemTotal, the cgroup
// boxrun runs in, and the memory.max of some cgroups (below
// /sys/fs/cgroup; "" for a cgroup that exists without a limit file).
func machine(memTotal uint64, own string, limits map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"proc/meminfo":     {Data: []byte("MemTotal:       " + strconv.FormatUint(memTotal/1024, 10) + " kB\nMemFree: 1024 kB\n")},
		"proc/mounts":      {Data: []byte("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n")},
		"proc/self/cgroup": {Data: []byte("0::" + own + "\n")},
	}
	for cg, max := range limits {
		dir := "sys/fs/cgroup" + cg
		if cg == "/" {
			dir = "sys/fs/cgroup"
		}
		fsys[dir+"/cgroup.procs"] = &fstest.MapFile{}
		if max != "" {
			fsys[dir+"/memory.max"] = &fstest.MapFile{Data: []byte(max + "\n")}
		}
	}
	return fsys
}

// TestMachineMemory: percentages are of the machine boxrun.slice lives
// in, whatever cgroup boxrun is started from (issue #17, item 8).
func TestMachineMemory(t *testing.T) {
	const (
		userMgr = "/user.slice/user-1000.slice/user@1000.service"
		term    = userMgr + "/app.slice/app-foot-4242.scope"
	)
	g := func(n uint64) string { return strconv.FormatUint(n<<30, 10) }
	user := box.Choice{Kind: box.KindAuto, User: true}
	tests := []struct {
		name string
		fsys fstest.MapFS
		c    box.Choice
		uid  int
		want uint64
	}{
		{"a caller in a 4G scope on a 64G machine", machine(64<<30, term, map[string]string{
			userMgr: "max", userMgr + "/app.slice": "max", term: g(4),
		}), user, 1000, 64 << 30},
		{"a caller in a 4G app.slice", machine(64<<30, term, map[string]string{
			userMgr: "max", userMgr + "/app.slice": g(4), term: "max",
		}), user, 1000, 64 << 30},
		{"a limit on the user's slice counts: boxrun.slice is below it", machine(64<<30, term, map[string]string{
			"/user.slice/user-1000.slice": g(32), userMgr: "max", term: g(4),
		}), user, 1000, 32 << 30},
		{"a limit on the user manager counts", machine(64<<30, term, map[string]string{
			userMgr: g(48), term: g(4),
		}), user, 1000, 48 << 30},
		{"boxrun.slice's own limit (an earlier run's) does not feed back", machine(64<<30, term, map[string]string{
			userMgr: "max", userMgr + "/" + box.SliceName: g(3), term: g(4),
		}), user, 1000, 64 << 30},
		{"started outside the user manager (an ssh session scope of 4G)", machine(64<<30, "/user.slice/user-1000.slice/session-3.scope", map[string]string{
			"/user.slice/user-1000.slice/session-3.scope": g(4), userMgr: "max",
		}), user, 1000, 64 << 30},
		{"root, system manager: the root cgroup has no limit", machine(64<<30, "/user.slice/user-1000.slice/session-3.scope", map[string]string{
			"/user.slice/user-1000.slice/session-3.scope": g(4), "/user.slice": g(40),
		}), box.Choice{Kind: box.KindAuto}, 0, 64 << 30},
		{"a container with its own cgroup namespace: its limit is the root's", machine(64<<30, "/", map[string]string{
			"/": g(8),
		}), user, 1000, 8 << 30},
		{"cgroupfs under a delegated parent with a limit", machine(64<<30, "/ci/job", map[string]string{
			"/ci": g(16), "/ci/job": g(2),
		}), box.Choice{Kind: box.KindCgroupfs, CgroupParent: "/sys/fs/cgroup/ci"}, 1000, 16 << 30},
		{"auto without a user manager: cgroupfs's parent", machine(64<<30, "/ci/job", map[string]string{
			"/ci": g(16), "/ci/job": g(2),
		}), box.Choice{Kind: box.KindAuto, User: true, CgroupParent: "/sys/fs/cgroup/ci"}, 1000, 16 << 30},
		{"the none backend: the machine", machine(64<<30, term, map[string]string{
			userMgr: g(48), term: g(4),
		}), box.Choice{Kind: box.KindNone, User: true}, 1000, 64 << 30},
		{"no cgroup2 mounted: MemTotal", fstest.MapFS{
			"proc/meminfo": {Data: []byte("MemTotal: 16777216 kB\n")},
		}, user, 1000, 16 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := machineMemory(tt.fsys, tt.c, tt.uid)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("machine memory %s, want %s", policy.FormatBytes(got), policy.FormatBytes(tt.want))
			}
		})
	}
}

// TestSliceBudgetOfTheMachine: the built-in [slice] resolves to 80% and
// 85% of a 64G machine for a caller in a 4G scope, not of the scope.
func TestSliceBudgetOfTheMachine(t *testing.T) {
	const userMgr = "/user.slice/user-1000.slice/user@1000.service"
	fsys := machine(64<<30, userMgr+"/app.slice/term.scope", map[string]string{userMgr: "max", userMgr + "/app.slice/term.scope": strconv.FormatUint(4<<30, 10)})
	mem, err := machineMemory(fsys, box.Choice{Kind: box.KindAuto, User: true}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	st := &policy.Stack{Files: []*policy.File{policy.Builtin()}}
	s, err := st.ResolveSlice(policy.Env{MemoryBytes: mem})
	if err != nil {
		t.Fatal(err)
	}
	// 80% and 85% of 64G, rounded down to a page.
	const wantHigh, wantMax = 54975578112, 58411552768
	if s.MemoryHigh == nil || *s.MemoryHigh != wantHigh || s.MemoryMax == nil || *s.MemoryMax != wantMax {
		value := func(p *uint64) any {
			if p == nil {
				return "unset"
			}
			return *p
		}
		t.Errorf("slice memory.high %v, memory.max %v; want %d (80%% of 64G) and %d (85%%)", value(s.MemoryHigh), value(s.MemoryMax), uint64(wantHigh), uint64(wantMax))
	}
}
