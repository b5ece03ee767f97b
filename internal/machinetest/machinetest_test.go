package machinetest

import (
	"io/fs"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	entries, err := fs.ReadDir(machines, "machines")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no fixture machines: %v", err)
	}
	for _, e := range entries {
		fsys := MustLoad(t, e.Name())
		mounts, err := fs.ReadFile(fsys, "proc/mounts")
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if strings.Contains(string(mounts), "-- ") {
			t.Errorf("%s: proc/mounts runs into the next file:\n%s", e.Name(), mounts)
		}
	}
	if _, err := Load("nowhere.txt"); err == nil || !strings.Contains(err.Error(), "internal/machinetest/machines") {
		t.Errorf("Load of a missing fixture: %v; want an error saying where fixtures are", err)
	}
}
