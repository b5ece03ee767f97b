package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/boxrun/boxrun/backpressure"
)

// TestSizeStore reads the sizes file of a project as a run starts and
// writes it as the run ends: what the run starts from, what the report
// says, the one warning of a file or directory that is refused, and
// whether the sizes the run learned are kept.
func TestSizeStore(t *testing.T) {
	const cwd, mib = "/src/crate", 1 << 20
	now := time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	sizeFile := func(dir string, learned time.Time) string {
		return fmt.Sprintf(`{"version": 1, "dir": %q, "policy": "tests", "sizes": [{"comm": "job", "peak_bytes": %d, "learned": %q}]}`,
			dir, 60*mib, learned.Format(time.RFC3339))
	}
	// write puts body in the sizes file of the state directory.
	write := func(body string) func(*testing.T, string) {
		return func(t *testing.T, state string) {
			path := filepath.Join(state, "sizes", backpressure.SizeFileName(cwd, "tests"))
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		env  map[string]string
		// setup prepares the state directory, which does not exist before.
		setup   func(*testing.T, string)
		noState bool
		warn    string // a part of the one warning; "" for none
		known   map[string]uint64
		source  string // <file> stands for the sizes file, <state> for the state directory
		kept    bool
	}{
		{name: "no file yet: the run learns, and keeps what it learned",
			known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "the sizes of the last run", setup: write(sizeFile(cwd, now.Add(-24*time.Hour))),
			known: map[string]uint64{"job": 60 * mib}, source: "from the last run of this project (<file>), then learned in this run", kept: true},
		{name: "a corrupt file is ignored and replaced", setup: write(`{"version": 1, "dir": "/src/cr`),
			warn:  "learned sizes in <file> ignored: not a sizes file: unexpected end of JSON input; this run learns them afresh",
			known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "a file of another version is ignored", setup: write(`{"version": 9}`),
			warn: "ignored: version 9; this boxrun reads version 1", known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "a file recording another project is ignored", setup: write(sizeFile("/src/other", now)),
			warn: `ignored: records directory "/src/other", not "/src/crate"`, known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "a stale file is ignored", setup: write(sizeFile(cwd, now.Add(-40*24*time.Hour))),
			warn: "ignored: stale: the sizes were last learned on 2026-04-21, over 30 days ago", known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "a symbolic link is not followed", setup: func(t *testing.T, state string) {
			target := filepath.Join(t.TempDir(), "elsewhere.json")
			write(sizeFile(cwd, now))(t, state)
			path := filepath.Join(state, "sizes", backpressure.SizeFileName(cwd, "tests"))
			if err := os.Rename(path, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, warn: "ignored: it is a symbolic link", known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "a state directory others may write keeps nothing", setup: func(t *testing.T, state string) {
			write(sizeFile(cwd, now))(t, state)
			if err := os.Chmod(state, 0o777); err != nil {
				t.Fatal(err)
			}
		}, warn: "learned sizes are not kept between runs: <state> can be written by others (mode -rwxrwxrwx)",
			known: map[string]uint64{}, source: "learned in this run (not kept between runs: <state> can be written by others (mode -rwxrwxrwx))"},
		{name: "BOXRUN_SIZES=off keeps nothing", env: map[string]string{sizesEnv: "off"}, setup: write(sizeFile(cwd, now)),
			known: map[string]uint64{}, source: "learned in this run (not kept between runs: BOXRUN_SIZES=off)"},
		{name: "another BOXRUN_SIZES is warned of", env: map[string]string{sizesEnv: "no"},
			warn: `BOXRUN_SIZES="no" is not a value it takes; only off is`, known: map[string]uint64{}, source: "learned in this run", kept: true},
		{name: "no state directory keeps nothing", noState: true,
			known: map[string]uint64{}, source: "learned in this run (not kept between runs: no state directory, as neither XDG_STATE_HOME nor HOME is an absolute path)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state", "boxrun")
			if tt.setup != nil {
				tt.setup(t, state)
			}
			given := state
			if tt.noState {
				given = ""
			}
			path := filepath.Join(state, "sizes", backpressure.SizeFileName(cwd, "tests"))
			expand := func(s string) string {
				return strings.NewReplacer("<file>", path, "<state>", state).Replace(s)
			}
			before, _ := os.ReadFile(path)
			var warnings []string
			s := openSizes(given, cwd, "tests", func(k string) string { return tt.env[k] }, now, func(w string) { warnings = append(warnings, w) })
			switch {
			case tt.warn == "" && len(warnings) > 0:
				t.Errorf("warnings %q, want none", warnings)
			case tt.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], expand(tt.warn))):
				t.Errorf("warnings %q, want one saying %q", warnings, expand(tt.warn))
			}
			if got := s.known(); !reflect.DeepEqual(got, tt.known) {
				t.Errorf("known %v, want %v", got, tt.known)
			}
			if got := s.source(); got != expand(tt.source) {
				t.Errorf("source %q, want %q", got, expand(tt.source))
			}

			learned := map[string]backpressure.Size{"job": {Peak: 40 * mib, Learned: true}, "link": {Peak: 300 * mib}}
			if err := s.save(learned, now); err != nil {
				t.Fatalf("save: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !tt.kept {
				if string(after) != string(before) {
					t.Errorf("the sizes file changed from %q to %q; want nothing kept", before, after)
				}
				return
			}
			checkKept(t, path, cwd, now, map[string]uint64{"job": 40 * mib})
		})
	}
}

// checkKept checks that path is a private regular file in a private
// directory, holding the sizes want.
func checkKept(t *testing.T, path, cwd string, now time.Time, want map[string]uint64) {
	t.Helper()
	for p, mode := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), mode)
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := backpressure.DecodeSizeFile(fh, cwd, "tests", now)
	if err != nil {
		t.Fatalf("the kept file cannot be read back: %v", err)
	}
	if got := f.Known(); !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(tmps) > 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

// TestSizeStoreKeepsOnlyWhatWasLearned checks that a run that learned
// nothing itself (nothing finished, or backpressure never looked at the
// processes) leaves the file as it was, and that the next run starts from
// what the last one kept.
func TestSizeStoreKeepsOnlyWhatWasLearned(t *testing.T) {
	const cwd, mib = "/src/crate", 1 << 20
	now := time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	state := filepath.Join(t.TempDir(), "boxrun")
	getenv := func(string) string { return "" }
	noWarn := func(w string) { t.Errorf("warning %q", w) }
	path := filepath.Join(state, "sizes", backpressure.SizeFileName(cwd, "tests"))

	s := openSizes(state, cwd, "tests", getenv, now, noWarn)
	if err := s.save(map[string]backpressure.Size{"job": {Peak: 60 * mib}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a run that learned nothing wrote %s (%v)", path, err)
	}
	if err := s.save(map[string]backpressure.Size{"job": {Peak: 60 * mib, Learned: true}, "cc": {Peak: 5 * mib, Learned: true}}, now); err != nil {
		t.Fatal(err)
	}
	// The next run, of another policy, knows nothing; of the same, both.
	if got := openSizes(state, cwd, "build", getenv, now, noWarn).known(); len(got) != 0 {
		t.Errorf("policy build starts from %v, want nothing: the file is policy tests'", got)
	}
	next := openSizes(state, cwd, "tests", getenv, now.Add(time.Hour), noWarn)
	if got := next.known(); !reflect.DeepEqual(got, map[string]uint64{"job": 60 * mib, "cc": 5 * mib}) {
		t.Fatalf("the next run starts from %v", got)
	}
	// It learns cc anew and ends before any job finished: job is kept.
	if err := next.save(map[string]backpressure.Size{"job": {Peak: 60 * mib}, "cc": {Peak: 6 * mib, Learned: true}}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkKept(t, path, cwd, now, map[string]uint64{"job": 60 * mib, "cc": 6 * mib})
}

// TestSizeStoreConcurrentRuns saves the sizes of ten runs at once: of
// different projects each to its own file, of one project (two runs of the
// same suite) each whole or not at all, never a mix.
func TestSizeStoreConcurrentRuns(t *testing.T) {
	const mib = 1 << 20
	now := time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	state := filepath.Join(t.TempDir(), "boxrun")
	getenv := func(string) string { return "" }
	cwds := []string{"/src/a", "/src/b", "/src/c", "/src/d", "/src/e", "/src/f", "/src/g", "/src/h", "/src/same", "/src/same"}
	errs := make(chan error, len(cwds))
	for i, cwd := range cwds {
		go func() {
			s := openSizes(state, cwd, "tests", getenv, now, func(w string) { errs <- errors.New(w) })
			errs <- s.save(map[string]backpressure.Size{"job": {Peak: uint64(i+1) * mib, Learned: true}}, now)
		}()
	}
	for range cwds {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i, cwd := range cwds[:8] {
		checkKept(t, filepath.Join(state, "sizes", backpressure.SizeFileName(cwd, "tests")), cwd, now, map[string]uint64{"job": uint64(i+1) * mib})
	}
	s := openSizes(state, "/src/same", "tests", getenv, now, func(w string) { t.Errorf("warning %q", w) })
	if got := s.known()["job"]; got != 9*mib && got != 10*mib {
		t.Errorf("the project both runs kept has job %d MiB, want 9 or 10", got/mib)
	}
}
