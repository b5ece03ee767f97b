package protect

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestProtectStateRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "boxrun", "protect.json")
	st, err := loadState(file)
	if err != nil || len(st.Processes) != 0 {
		t.Fatalf("a missing file is an empty state: %+v, %v", st, err)
	}
	code := Match{ProcInfo: ProcInfo{PID: 4242, StartTime: 5000, Comm: "code"}}
	st.recordProc(code, 300, 200)
	st.recordProc(code, 200, 100) // a second pass keeps the first before
	other := Match{ProcInfo: ProcInfo{PID: 4242, StartTime: 6000, Comm: "code"}}
	st.recordProc(other, 250, 100) // the pid reused: another process
	st.recordUnit(stateUnit{Manager: "user", UID: 1000, Unit: "app.scope", Cgroup: "/a/app.scope", Before: 0, After: gib})
	st.recordUnit(stateUnit{Manager: "user", UID: 1000, Unit: "app.scope", Cgroup: "/a/app.scope", Before: gib, After: 2 * gib})
	if err := saveState(file, st); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(file)
	if err != nil {
		t.Fatal(err)
	}
	wantProcs := []stateProc{{4242, 5000, "code", 300, 100}, {4242, 6000, "code", 250, 100}}
	wantUnits := []stateUnit{{"user", 1000, "app.scope", "/a/app.scope", 0, 2 * gib}}
	if !reflect.DeepEqual(back.Processes, wantProcs) || !reflect.DeepEqual(back.Units, wantUnits) {
		t.Errorf("got %+v %+v\nwant %+v %+v", back.Processes, back.Units, wantProcs, wantUnits)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v", fi, err)
	}
	// An empty state removes the file.
	if err := saveState(file, &protectState{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("empty state: file still there (%v)", err)
	}
	// A file that is not ours is an error that says what to do.
	os.WriteFile(file, []byte("{\"version\": 7}"), 0o600)
	if _, err := loadState(file); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("foreign state: %v", err)
	}
	os.WriteFile(file, []byte("nonsense"), 0o600)
	if _, err := loadState(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("corrupt state: %v", err)
	}
	// Saving forgets processes that have exited.
	procFS := fstest.MapFS{
		"4242/stat": {Data: []byte("4242 (code) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000 100\n")},
		"77/stat":   {Data: []byte("77 (code) Z 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7700 1000 100\n")},
	}
	pr := &protectState{Processes: []stateProc{{4242, 5000, "code", 300, 100}, {4242, 6000, "code", 250, 100}, {77, 7700, "code", 300, 100}, {9, 90, "code", 300, 100}}}
	pr.prune(procFS)
	if want := []stateProc{{4242, 5000, "code", 300, 100}}; !reflect.DeepEqual(pr.Processes, want) {
		t.Errorf("prune kept %+v, want %+v", pr.Processes, want)
	}
	// Undo of a state naming processes that are gone restores nothing and
	// forgets them.
	gone := &protectState{Processes: []stateProc{{PID: 1 << 22, StartTime: 1, Comm: "code", Before: 300, After: 100}}}
	if err := saveState(file, gone); err != nil {
		t.Fatal(err)
	}
	got, err := Undo(t.Context(), file, 0)
	if err != nil || len(got) != 1 || got[0].Skipped != "the process has exited" {
		t.Errorf("undo: %+v, %v", got, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("undo left the state file (%v)", err)
	}
}

func TestInsideMount(t *testing.T) {
	for cg, want := range map[string]bool{
		"/user.slice/user-1000.slice":  true,
		"/../../tmp/x":                 false,
		"/user.slice/../../../etc":     false,
		"/":                            false,
		"":                             false,
		"relative":                     false,
		"/user.slice/../system.slice/": true,
	} {
		if got := insideMount("/sys/fs/cgroup", cg); got != want {
			t.Errorf("insideMount(%q) = %v, want %v", cg, got, want)
		}
	}
}
