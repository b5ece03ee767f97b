package box

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestGuardNames: a guard's cgroup is named after its box, and no name is
// both a box's and a guard's, so that status, gc and the slice's count of
// boxes never take one for the other.
func TestGuardNames(t *testing.T) {
	tests := []struct {
		box, guard string
	}{
		{"boxrun-tests-1a2b3c4d.scope", "boxrun-tests-1a2b3c4d-guard.scope"},
		{"boxrun-tests-1a2b3c4d", "boxrun-tests-1a2b3c4d-guard"},
		{"boxrun-my_policy-00000000.scope", "boxrun-my_policy-00000000-guard.scope"},
	}
	for _, tt := range tests {
		if got := guardName(tt.box); got != tt.guard {
			t.Errorf("guardName(%q) = %q, want %q", tt.box, got, tt.guard)
		}
		if !boxNameRe.MatchString(tt.box) || guardNameRe.MatchString(tt.box) {
			t.Errorf("%q: box %v, guard %v; want a box only", tt.box, boxNameRe.MatchString(tt.box), guardNameRe.MatchString(tt.box))
		}
		if boxNameRe.MatchString(tt.guard) || !guardNameRe.MatchString(tt.guard) {
			t.Errorf("%q: box %v, guard %v; want a guard only", tt.guard, boxNameRe.MatchString(tt.guard), guardNameRe.MatchString(tt.guard))
		}
	}
	// A policy may be called "guard": its boxes are boxes.
	for _, name := range []string{"boxrun-guard-1a2b3c4d.scope", "boxrun-x-1a2b3c4d-guard-5e6f7a8b"} {
		if !boxNameRe.MatchString(name) || guardNameRe.MatchString(name) {
			t.Errorf("%q: box %v, guard %v; want a box only", name, boxNameRe.MatchString(name), guardNameRe.MatchString(name))
		}
	}
}

// TestLastLine: the guard takes the last directory boxrun sent, or the one
// it was started with.
func TestLastLine(t *testing.T) {
	tests := []struct {
		name, first, data, want string
	}{
		{"nothing sent", "/sys/fs/cgroup/boxrun.slice/boxrun-it-1a2b3c4d", "", "/sys/fs/cgroup/boxrun.slice/boxrun-it-1a2b3c4d"},
		{"nothing known", "", "", ""},
		{"sent once the scope runs", "", "/sys/fs/cgroup/boxrun.slice/boxrun-it-1a2b3c4d.scope\n", "/sys/fs/cgroup/boxrun.slice/boxrun-it-1a2b3c4d.scope"},
		{"a line cut short by boxrun's death", "", "/a\n/sys/fs/cg", "/a"},
	}
	for _, tt := range tests {
		if got := lastLine(tt.first, []byte(tt.data)); got != tt.want {
			t.Errorf("%s: lastLine = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestThaw: every frozen cgroup below the box is thawed, the others are
// not written.
func TestThaw(t *testing.T) {
	box := t.TempDir()
	for _, d := range []string{"boxrun.paused", "boxrun.outer", "boxrun-it-1a2b3c4d/deep"} {
		if err := os.MkdirAll(filepath.Join(box, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"cgroup.freeze": "0\n", "boxrun.paused/cgroup.freeze": "1\n", "boxrun.outer/cgroup.freeze": "0\n", "boxrun-it-1a2b3c4d/deep/cgroup.freeze": "1\n"}
	machinetest.WriteFiles(t, box, files)
	cgroupDir{mount: box, rel: "/"}.thaw()
	got := map[string]string{}
	for name := range files {
		data, _ := os.ReadFile(filepath.Join(box, name))
		got[name] = strings.TrimSpace(string(data))
	}
	want := map[string]string{"cgroup.freeze": "0", "boxrun.paused/cgroup.freeze": "0", "boxrun.outer/cgroup.freeze": "0", "boxrun-it-1a2b3c4d/deep/cgroup.freeze": "0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after thaw: %v, want %v", got, want)
	}
}
