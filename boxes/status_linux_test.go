package boxes

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestListCgroups walks a fake cgroup2 tree holding one live box of this
// user, an empty box, and cgroups that are not boxes.
func TestListCgroups(t *testing.T) {
	mount := t.TempDir()
	live := filepath.Join(mount, "boxrun-it-3f2a9c1d")
	scope := filepath.Join(mount, "system.slice", "boxrun.slice", "boxrun-x-11112222.scope")
	nested := filepath.Join(scope, "boxrun-y-44445555")
	for _, d := range []string{live, filepath.Join(mount, "boxrun-it-00000000"), scope, filepath.Join(mount, "user.slice"),
		filepath.Join(mount, "boxrun-it-3f2a9c1d-guard"), filepath.Join(scope, box.OuterCgroup), nested} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		machinetest.WriteFiles(t, d, map[string]string{"cgroup.procs": ""})
	}
	machinetest.WriteFiles(t, live, map[string]string{
		"cgroup.procs":   strconv.Itoa(os.Getpid()) + "\n",
		"memory.current": "1048576\n", "memory.peak": "2097152\n", "memory.high": "max\n", "memory.max": "134217728\n",
		"pids.current": "3\n", "pids.max": "64\n", "cpu.stat": "usage_usec 1500\n",
	})
	machinetest.WriteFiles(t, filepath.Join(scope, box.OuterCgroup), map[string]string{"cgroup.procs": "1\n"})
	machinetest.WriteFiles(t, nested, map[string]string{"cgroup.procs": strconv.Itoa(os.Getpid()) + "\n"})
	machinetest.WriteFiles(t, filepath.Join(mount, "boxrun-it-3f2a9c1d-guard"), map[string]string{"cgroup.procs": "1\n"})
	seen := map[string]bool{"/system.slice/boxrun.slice/boxrun-x-11112222.scope": true}
	boxes, err := listCgroups(mount, os.Geteuid(), seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 || boxes[1].Cgroup != "/system.slice/boxrun.slice/boxrun-x-11112222.scope/boxrun-y-44445555" || boxes[1].Policy != "y" {
		t.Fatalf("found %+v, want the live box and the box nested in the one seen through systemd (not the empty one, the one seen, nor a guard)", boxes)
	}
	b := boxes[0]
	self, _ := os.Executable()
	if b.Backend != box.KindCgroupfs || b.Cgroup != "/boxrun-it-3f2a9c1d" || b.Policy != "it" || !strings.Contains(b.Command, filepath.Base(self)) {
		t.Errorf("box %+v", b)
	}
	if b.MemoryCurrent != 1<<20 || b.MemoryPeak == nil || *b.MemoryPeak != 2<<20 || b.MemoryHigh != nil || b.MemoryMax == nil || *b.MemoryMax != 128<<20 ||
		b.PidsCurrent != 3 || b.PidsMax == nil || *b.PidsMax != 64 || b.CPUUsageUSec != 1500 || b.Started.IsZero() {
		t.Errorf("figures %+v", b)
	}
	if others, _ := listCgroups(mount, os.Geteuid()+1, nil); len(others) != 0 {
		t.Errorf("boxes of another user listed: %+v", others)
	}
}
