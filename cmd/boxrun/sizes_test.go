package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSizesStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "boxrun", "sizes.json")
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }

	// No file yet: nothing known, nothing to warn about.
	s := loadSizes(path, "tests", warn)
	if s.known() != nil || len(warnings) != 0 || s.from != "learned in this run" {
		t.Fatalf("fresh store: known %v, warnings %q, from %q", s.known(), warnings, s.from)
	}
	s.save(map[string]uint64{"bkt": 150 << 20}, warn)
	if len(warnings) != 0 {
		t.Fatalf("save warned: %q", warnings)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v; want mode 0700", fi, err)
	}

	// The next run of the suite starts with the sizes.
	s = loadSizes(path, "tests", warn)
	if want := map[string]uint64{"bkt": 150 << 20}; !reflect.DeepEqual(s.known(), want) {
		t.Errorf("second run: known %v, want %v", s.known(), want)
	}
	if !strings.Contains(s.from, "from an earlier run of this suite") {
		t.Errorf("from = %q", s.from)
	}
	// Another policy is another suite.
	if k := loadSizes(path, "build", warn).known(); k != nil {
		t.Errorf("another policy: known %v, want none", k)
	}

	// A corrupt file is ignored with a warning and rewritten.
	if err := os.WriteFile(path, []byte("{\"version\": 1, \"suites\""), 0o600); err != nil {
		t.Fatal(err)
	}
	s = loadSizes(path, "tests", warn)
	if s.known() != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "ignoring the sizes") {
		t.Errorf("corrupt file: known %v, warnings %q", s.known(), warnings)
	}
	s.save(map[string]uint64{"bkt": 1 << 20}, warn)
	if k := loadSizes(path, "tests", warn).known(); k["bkt"] != 1<<20 {
		t.Errorf("after rewriting the corrupt file: known %v", k)
	}

	// A symbolic link is not followed, for reading or writing.
	other := filepath.Join(dir, "elsewhere.json")
	if err := os.WriteFile(other, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	warnings = nil
	s = loadSizes(path, "tests", warn)
	if s.known() != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "symbolic link") {
		t.Errorf("symlink: known %v, warnings %q", s.known(), warnings)
	}
	s.save(map[string]uint64{"bkt": 1 << 20}, warn)
	if data, _ := os.ReadFile(other); string(data) != "precious" {
		t.Errorf("saving through a symlink changed its target: %q", data)
	}

	// A directory others may write is refused.
	if err := os.Chmod(filepath.Dir(path), 0o777); err != nil {
		t.Fatal(err)
	}
	warnings = nil
	loadSizes(path, "tests", warn)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "written by others") {
		t.Errorf("world-writable directory: warnings %q", warnings)
	}
}

func TestSizesPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if os.Geteuid() == 0 {
		if p := sizesPath(env(map[string]string{"XDG_STATE_HOME": "/home/u/.local/state"})); p != "/var/lib/boxrun/sizes.json" {
			t.Errorf("root: %q, want /var/lib/boxrun/sizes.json whatever the environment says", p)
		}
	} else {
		if p := sizesPath(env(map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"})); p != "/s/boxrun/sizes.json" {
			t.Errorf("XDG_STATE_HOME: %q", p)
		}
		if p := sizesPath(env(map[string]string{"HOME": "/h"})); p != "/h/.local/state/boxrun/sizes.json" {
			t.Errorf("HOME: %q", p)
		}
		if p := sizesPath(env(map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/h"})); p != "/h/.local/state/boxrun/sizes.json" {
			t.Errorf("a relative XDG_STATE_HOME must be ignored: %q", p)
		}
	}
	if p := sizesPath(env(map[string]string{"BOXRUN_SIZES": "off"})); p != "" {
		t.Errorf("BOXRUN_SIZES=off: %q", p)
	}
}
