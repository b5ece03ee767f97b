package box

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestDivide: the first nested run moves the outer box's processes to
// boxrun.outer and enables what its box needs for the outer box's
// children; a later one enables only what is missing; and one that needs
// nothing more touches nothing.
func TestDivide(t *testing.T) {
	tests := []struct {
		name        string
		enabled     string
		controllers []string
		want        string // written to cgroup.subtree_control, "" for nothing
		moved       bool
	}{
		{"the first nested run", "", []string{"memory", "pids"}, "+memory +pids", true},
		{"one that also needs cpu", "memory pids", []string{"memory", "pids", "cpu"}, "+cpu", true},
		{"nothing missing", "memory pids cpu", []string{"memory", "pids"}, "memory pids cpu", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			box := t.TempDir()
			machinetest.WriteFiles(t, box, map[string]string{"cgroup.subtree_control": tt.enabled, "cgroup.procs": "4242\n"})
			if err := os.Mkdir(filepath.Join(box, OuterCgroup), 0o755); err != nil && tt.moved {
				t.Fatal(err)
			}
			if err := (cgroupDir{mount: box, rel: "/"}).divide(tt.controllers); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(box, "cgroup.subtree_control"))
			if strings.TrimSpace(string(got)) != tt.want {
				t.Errorf("cgroup.subtree_control = %q, want %q", got, tt.want)
			}
			moved, _ := os.ReadFile(filepath.Join(box, OuterCgroup, "cgroup.procs"))
			if (string(moved) == "4242") != tt.moved {
				t.Errorf("%s/cgroup.procs = %q; want the box's process moved: %v", OuterCgroup, moved, tt.moved)
			}
		})
	}
}

// TestOwnProcessesDir: a box's own processes live in boxrun.outer once a
// nested run made it, in the box before.
func TestOwnProcessesDir(t *testing.T) {
	box := t.TempDir()
	if got := OwnProcessesDir(box); got != box {
		t.Errorf("before any nested run: %q, want the box %q", got, box)
	}
	outer := filepath.Join(box, OuterCgroup)
	if err := os.Mkdir(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := OwnProcessesDir(box); got != outer {
		t.Errorf("after a nested run: %q, want %q", got, outer)
	}
}
