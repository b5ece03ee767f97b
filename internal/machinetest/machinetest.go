// Package machinetest holds the fixture machines that tests of doctor and
// of the backends' probes run against: one text file a machine in
// machines/, each a short description followed by the files of its root
// file system; and the helpers tests of several packages share to lay out
// fake cgroup files and to start a process to signal (files.go). Only
// tests import it.
package machinetest

import (
	"embed"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

//go:embed machines/*.txt
var machines embed.FS

// Load reads the fixture machine name ("desktop.txt"): text before the
// first "-- name --" line describes it; each such line starts a file of
// the machine's root file system (a path without its leading "/").
func Load(name string) (fstest.MapFS, error) {
	data, err := machines.ReadFile("machines/" + name)
	if err != nil {
		return nil, fmt.Errorf("loading fixture machine %s (see internal/machinetest/machines): %w", name, err)
	}
	fsys := fstest.MapFS{}
	var cur *fstest.MapFile
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			cur = &fstest.MapFile{}
			fsys[strings.TrimSpace(trimmed[3:len(trimmed)-3])] = cur
			continue
		}
		if cur != nil {
			cur.Data = append(cur.Data, line...)
		}
	}
	return fsys, nil
}

// MustLoad is Load for a test, which fails at once when the fixture
// cannot be read.
func MustLoad(t testing.TB, name string) fstest.MapFS {
	t.Helper()
	fsys, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}
