package cgroupfs

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestProcsWalksTheTree lists the processes of a fake cgroup tree: the
// cgroup's own, its children's, and none from a child without
// cgroup.procs; a tree that is gone holds none and is no error.
func TestProcsWalksTheTree(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"cgroup.procs":                  "10\n11\n",
		"boxrun.paused/cgroup.procs":    "12\n",
		"child/grandchild/cgroup.procs": "13\nnot-a-pid\n",
		"empty/cgroup.procs":            "",
		"no-procs-file/memory.max":      "max\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Procs(dir)
	slices.Sort(got)
	if want := []int{10, 11, 12, 13}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Procs = %v, %v; want %v", got, err, want)
	}
	in := map[int]string{}
	if err := EachProc(dir, func(cg string, pid int) { in[pid] = cg }); err != nil {
		t.Fatal(err)
	}
	if in[12] != filepath.Join(dir, "boxrun.paused") || in[10] != dir {
		t.Errorf("EachProc put the processes in %v", in)
	}
	if got, err := Procs(filepath.Join(dir, "gone")); err != nil || len(got) != 0 {
		t.Errorf("a tree that is gone: %v, %v", got, err)
	}
}

func TestPopulatedAndEvent(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, events string
		populated    bool
		frozen       string
	}{
		{"running", "populated 1\nfrozen 0\n", true, "0"},
		{"empty and frozen", "populated 0\nfrozen 1\n", false, "1"},
		{"an old kernel without frozen", "populated 1\n", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte(tt.events), 0o644); err != nil {
				t.Fatal(err)
			}
			if pop, err := Populated(dir); err != nil || pop != tt.populated {
				t.Errorf("Populated = %v, %v; want %v", pop, err, tt.populated)
			}
			if v, err := Event(dir, "frozen"); err != nil || v != tt.frozen {
				t.Errorf("Event(frozen) = %q, %v; want %q", v, err, tt.frozen)
			}
		})
	}
	if pop, err := Populated(filepath.Join(dir, "gone")); err != nil || pop {
		t.Errorf("a cgroup that is gone: populated %v, %v; want empty", pop, err)
	}
	if _, err := Event(filepath.Join(dir, "gone"), "frozen"); !os.IsNotExist(err) {
		t.Errorf("Event of a cgroup that is gone: %v, want not exist", err)
	}
}

func TestRel(t *testing.T) {
	for _, tt := range []struct{ mount, dir, want string }{
		{"/sys/fs/cgroup", "/sys/fs/cgroup/ci", "/ci"},
		{"/sys/fs/cgroup", "/ci", "/ci"},
		{"/sys/fs/cgroup", "ci/", "/ci"},
		{"/sys/fs/cgroup", "/sys/fs/cgroup", "/"},
	} {
		if got := Rel(tt.mount, tt.dir); got != tt.want {
			t.Errorf("Rel(%q, %q) = %q, want %q", tt.mount, tt.dir, got, tt.want)
		}
	}
}
