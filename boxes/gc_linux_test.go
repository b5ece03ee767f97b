package boxes

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestLeftoverGuards: gc finds the empty cgroups of guards gone, not a
// running guard's, nor a guard's scope (systemd's), nor boxes.
func TestLeftoverGuards(t *testing.T) {
	mount := t.TempDir()
	dirs := map[string]string{
		"boxrun-it-1a2b3c4d-guard":                               "populated 0\nfrozen 0\n",
		"boxrun-it-5e6f7a8b-guard":                               "populated 1\nfrozen 0\n",
		"boxrun.slice/boxrun-it-1a2b3c4d":                        "populated 0\nfrozen 0\n",
		"user.slice/boxrun.slice/boxrun-it-0a0b0c0d-guard.scope": "populated 0\nfrozen 0\n",
		"ci/boxrun-it-1a2b3c4d.scope/boxrun-x-99999999-guard":    "populated 0\nfrozen 0\n",
	}
	for d, events := range dirs {
		if err := os.MkdirAll(filepath.Join(mount, d), 0o755); err != nil {
			t.Fatal(err)
		}
		machinetest.WriteFiles(t, filepath.Join(mount, d), map[string]string{"cgroup.events": events})
	}
	got, err := leftoverGuards(mount, os.Geteuid())
	want := []string{"/boxrun-it-1a2b3c4d-guard", "/ci/boxrun-it-1a2b3c4d.scope/boxrun-x-99999999-guard"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("leftoverGuards = %q, %v; want %q", got, err, want)
	}
	if others, _ := leftoverGuards(mount, os.Geteuid()+1); len(others) != 0 {
		t.Errorf("guards' cgroups of another user: %q", others)
	}
}
