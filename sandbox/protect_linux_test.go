package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/policy"
)

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"node\x00/usr/lib/tsserver.js\x00--stdio\x00", []string{"node", "/usr/lib/tsserver.js", "--stdio"}},
		// Electron rewrites its command line into argv[0].
		{"/usr/share/code/code --type=renderer --lang=en\x00", []string{"/usr/share/code/code", "--type=renderer", "--lang=en"}},
		{"my prog\x00", []string{"my prog"}},
	}
	for _, tt := range tests {
		if got := splitCmdline([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// procs builds a process table for matching tests: uid 1000 unless set.
type procSpec struct {
	pid, ppid int
	comm      string
	exe       string
	args      []string
	uid       int
	cgroup    string
	state     byte
}

const editorScope = "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-code-4242.scope"

func mkProcs(specs ...procSpec) []ProcInfo {
	var out []ProcInfo
	for _, s := range specs {
		uid := s.uid
		if uid == 0 {
			uid = 1000
		}
		if uid < 0 {
			uid = 0
		}
		cg := s.cgroup
		if cg == "" {
			cg = editorScope
		}
		st := s.state
		if st == 0 {
			st = 'S'
		}
		out = append(out, ProcInfo{PID: s.pid, PPID: s.ppid, Comm: s.comm, Exe: s.exe, Args: s.args, UID: uid, EUID: uid, Cgroup: cg, State: st, StartTime: uint64(s.pid * 10)})
	}
	return out
}

var (
	editorsGroup = ProtectGroup{Name: "editors", Match: []string{"code", "code-insiders", "codium", "code-oss", "cursor", "windsurf"}}
	lspGroup     = ProtectGroup{Name: "language-servers", Match: []string{"rust-analyzer", "gopls", "tsserver", "typescript-language-server"}}
)

func TestMatchProcesses(t *testing.T) {
	desktop := mkProcs(
		procSpec{pid: 4242, ppid: 1800, comm: "code", exe: "/usr/share/code/code", args: []string{"/usr/share/code/code"}},
		// Electron helpers: same binary, rewritten command line.
		procSpec{pid: 4250, ppid: 4242, comm: "code", exe: "/usr/share/code/code", args: []string{"/usr/share/code/code", "--type=zygote"}},
		// The setuid sandbox helper is root's: walked through, not touched.
		procSpec{pid: 4251, ppid: 4250, comm: "chrome-sandbox", exe: "/usr/share/code/chrome-sandbox", uid: -1},
		procSpec{pid: 4252, ppid: 4251, comm: "code", exe: "/usr/share/code/code", args: []string{"/usr/share/code/code", "--type=renderer"}},
		procSpec{pid: 4253, ppid: 4252, comm: "crashpad_handle", exe: "/usr/share/code/chrome_crashpad_handler"},
		// The integrated terminal: the shell and what runs in it are not the editor.
		procSpec{pid: 4300, ppid: 4242, comm: "bash", exe: "/usr/bin/bash", args: []string{"/bin/bash"}},
		procSpec{pid: 4301, ppid: 4300, comm: "cargo", exe: "/home/u/.cargo/bin/cargo", args: []string{"cargo", "test"}},
		// A language server: its own group, not an editor helper.
		procSpec{pid: 4400, ppid: 4242, comm: "rust-analyzer", exe: "/home/u/.cargo/bin/rust-analyzer"},
		procSpec{pid: 4401, ppid: 4400, comm: "cargo", exe: "/home/u/.cargo/bin/cargo"},
		// A node-based server, started by the extension host.
		procSpec{pid: 4500, ppid: 4242, comm: "node", exe: "/usr/bin/node", args: []string{"/usr/bin/node", "--max-old-space-size=3072", "/x/typescript/lib/tsserver.js"}},
		// A helper moved to another cgroup (a box).
		procSpec{pid: 4600, ppid: 4242, comm: "tool", exe: "/usr/bin/tool", cgroup: "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope"},
		// Another user's editor.
		procSpec{pid: 5000, ppid: 1, comm: "code", exe: "/usr/share/code/code", uid: 1001},
		// An exited one.
		procSpec{pid: 5100, ppid: 1, comm: "code", state: 'Z'},
		// A name that is only close.
		procSpec{pid: 5200, ppid: 1, comm: "codex", exe: "/usr/bin/codex"},
		// A comm cut to 15 bytes by the kernel.
		procSpec{pid: 5300, ppid: 1, comm: "typescript-lang", exe: "/usr/bin/node", args: []string{"node", "/usr/bin/typescript-language-server", "--stdio"}},
		// A binary replaced on disk.
		procSpec{pid: 5400, ppid: 1, comm: "cursor", exe: "/opt/cursor/cursor (deleted)"},
		// A process inside a box that happens to be called code.
		procSpec{pid: 5500, ppid: 1, comm: "code", cgroup: "/boxrun-it-0a1b2c3d"},
		// A kernel thread.
		procSpec{pid: 5600, ppid: 2, comm: "code"},
	)
	type m struct {
		pid   int
		group string
		via   string
	}
	tests := []struct {
		name   string
		groups []ProtectGroup
		others []string
		want   []m
	}{
		{"editors only", []ProtectGroup{editorsGroup}, lspGroup.Match, []m{
			{4242, "editors", "comm"}, {4250, "editors", "comm"}, {4252, "editors", "comm"}, {5400, "editors", "comm"},
			{4253, "editors", "child of 4252 (code)"},
		}},
		{"editors and language servers", []ProtectGroup{editorsGroup, lspGroup}, nil, []m{
			{4242, "editors", "comm"}, {4250, "editors", "comm"}, {4252, "editors", "comm"}, {5400, "editors", "comm"},
			{4253, "editors", "child of 4252 (code)"},
			{4400, "language-servers", "comm"}, {4500, "language-servers", "script"}, {5300, "language-servers", "comm"},
			{4401, "language-servers", "child of 4400 (rust-analyzer)"},
		}},
		{"language servers only", []ProtectGroup{lspGroup}, editorsGroup.Match, []m{
			{4400, "language-servers", "comm"}, {4500, "language-servers", "script"}, {5300, "language-servers", "comm"},
			{4401, "language-servers", "child of 4400 (rust-analyzer)"},
		}},
		{"nothing matches", []ProtectGroup{{Name: "x", Match: []string{"emacs"}}}, nil, nil},
		{"empty pattern matches nothing", []ProtectGroup{{Name: "x", Match: []string{""}}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MatchProcesses(desktop, tt.groups, MatchOptions{UID: 1000, Others: tt.others, SelfPID: 4301})
			var gm []m
			for _, x := range got {
				gm = append(gm, m{x.PID, x.Group, x.Via})
			}
			// Sort the expectation the way MatchProcesses sorts: by group, then pid.
			if !sameMatches(gm, tt.want) {
				t.Errorf("got  %v\nwant %v", gm, tt.want)
			}
		})
	}
	t.Run("boxrun and its children are never helpers", func(t *testing.T) {
		ps := mkProcs(
			procSpec{pid: 10, ppid: 1, comm: "code", exe: "/usr/share/code/code"},
			procSpec{pid: 11, ppid: 10, comm: "boxrun", exe: "/usr/local/bin/boxrun"},
			procSpec{pid: 12, ppid: 11, comm: "make", exe: "/usr/bin/make"},
		)
		got := MatchProcesses(ps, []ProtectGroup{editorsGroup}, MatchOptions{UID: 1000, SelfExe: "/usr/local/bin/boxrun"})
		if len(got) != 1 || got[0].PID != 10 {
			t.Errorf("got %+v, want only pid 10", got)
		}
	})
	t.Run("root protects only root's processes", func(t *testing.T) {
		got := MatchProcesses(desktop, []ProtectGroup{editorsGroup}, MatchOptions{UID: 0})
		if len(got) != 0 {
			t.Errorf("got %+v, want none: no editor runs as root", got)
		}
	})
}

func sameMatches[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[T]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// fakeOOM is an oom_score_adj file with a floor, as the kernel keeps it.
type fakeOOM struct {
	val, floor int
	writable   bool
	goneAfter  int // writes before the process exits; 0: never
	writes     int
}

func (f *fakeOOM) Get(int) (int, error) { return f.val, nil }

func (f *fakeOOM) Set(_ int, v int) error {
	f.writes++
	if f.goneAfter > 0 && f.writes > f.goneAfter {
		return syscall.ESRCH
	}
	if !f.writable {
		return &os.PathError{Op: "open", Path: "/proc/1/oom_score_adj", Err: syscall.EACCES}
	}
	if v < f.floor {
		return &os.PathError{Op: "write", Path: "/proc/1/oom_score_adj", Err: syscall.EACCES}
	}
	f.val = v
	return nil
}

func TestLowerOOMScoreAdj(t *testing.T) {
	tests := []struct {
		name             string
		cur, floor, tgt  int
		writable         bool
		goneAfter        int
		after            int
		limited, wantErr bool
	}{
		{"root reaches the target", 300, -1000, -500, true, 0, -500, false, false},
		{"user manager floor", 300, 100, -500, true, 0, 100, true, false},
		{"floor just above the target", 300, -499, -500, true, 0, -499, true, false},
		{"floor at the current value", 300, 300, -500, true, 0, 300, true, false},
		{"already below the target", -600, -1000, -500, true, 0, -600, false, false},
		{"at the target", -500, -1000, -500, true, 0, -500, false, false},
		{"not ours to write", 300, -1000, -500, false, 0, 300, false, true},
		{"exits during the search", 300, 100, -500, true, 3, 300, true, true},
		{"extremes", 1000, 999, -1000, true, 0, 999, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOOM{val: tt.cur, floor: tt.floor, writable: tt.writable, goneAfter: tt.goneAfter}
			after, limited, err := LowerOOMScoreAdj(f, 1, tt.cur, tt.tgt)
			if after != tt.after || limited != tt.limited || (err != nil) != tt.wantErr {
				t.Errorf("got %d, %v, %v; want %d, %v, error %v", after, limited, err, tt.after, tt.limited, tt.wantErr)
			}
			if err == nil && f.val != after {
				t.Errorf("the process is left at %d, reported %d", f.val, after)
			}
			if f.writes > 13 {
				t.Errorf("%d writes; the search should need at most 13", f.writes)
			}
		})
	}
	// Every floor between target and current ends exactly at the floor.
	for floor := -500; floor <= 300; floor += 7 {
		f := &fakeOOM{val: 300, floor: floor, writable: true}
		after, _, err := LowerOOMScoreAdj(f, 1, 300, -500)
		if err != nil || after != floor || f.val != floor {
			t.Fatalf("floor %d: got %d (process at %d), %v", floor, after, f.val, err)
		}
	}
}

// cgroupFS builds a cgroup tree: memory.low per path ("" = no memory
// controller there), mounted at mount with opts.
func cgroupFS(mount, opts string, lows map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"proc/mounts": {Data: []byte(fmt.Sprintf("sysfs /sys sysfs rw 0 0\ncgroup2 %s cgroup2 %s 0 0\n", mount, opts))},
	}
	for cg, low := range lows {
		dir := strings.TrimPrefix(filepath.Join(mount, cg), "/")
		fsys[dir+"/cgroup.procs"] = &fstest.MapFile{}
		if low != "" {
			fsys[dir+"/memory.low"] = &fstest.MapFile{Data: []byte(low + "\n")}
		}
	}
	return fsys
}

const (
	gib   = uint64(1 << 30)
	unitU = "/user.slice"
	unitS = "/user.slice/user-1000.slice"
	unitM = "/user.slice/user-1000.slice/user@1000.service"
	unitA = "/user.slice/user-1000.slice/user@1000.service/app.slice"
)

func TestEffectiveProtection(t *testing.T) {
	two := fmt.Sprint(2 * gib)
	four := fmt.Sprint(4 * gib)
	chain := func(u, s, m, a, leaf string) map[string]string {
		return map[string]string{unitU: u, unitS: s, unitM: m, unitA: a, editorScope: leaf}
	}
	const rp = "rw,nsdelegate,memory_recursiveprot"
	tests := []struct {
		name      string
		mount     string
		opts      string
		lows      map[string]string
		cgroup    string
		override  *uint64
		effective uint64
		levels    int
		fixes     []string
		note      string
	}{
		{"desktop, nothing set above the editor, no recursiveprot", "/sys/fs/cgroup", "rw,nsdelegate", chain("0", "0", "0", "0", two), editorScope, nil, 0, 5, []string{
			"sudo systemctl set-property user.slice MemoryLow=2G",
			"sudo systemctl set-property user-1000.slice MemoryLow=2G",
			"sudo systemctl set-property user@1000.service MemoryLow=2G",
			"systemctl --user set-property app.slice MemoryLow=2G",
		}, ""},
		{"with recursiveprot only the top caps it", "/sys/fs/cgroup", rp, chain("0", "0", "0", "0", two), editorScope, nil, 0, 5, []string{
			"sudo systemctl set-property user.slice MemoryLow=2G",
		}, ""},
		{"recursiveprot and user.slice protected", "/sys/fs/cgroup", rp, chain(four, "0", "0", "0", two), editorScope, nil, 2 * gib, 5, nil, ""},
		{"recursiveprot: the slice's protection flows down to a unit that sets none", "/sys/fs/cgroup", rp, chain(four, "0", "0", "0", "0"), editorScope, nil, 4 * gib, 5, nil, ""},
		{"every level set, one too low", "/sys/fs/cgroup", "rw", chain(four, fmt.Sprint(gib), four, four, two), editorScope, nil, gib, 5, []string{
			"sudo systemctl set-property user-1000.slice MemoryLow=2G",
		}, ""},
		{"max everywhere", "/sys/fs/cgroup", "rw", chain("max", "max", "max", "max", two), editorScope, nil, 2 * gib, 5, nil, ""},
		{"the unit's own setting is missing", "/sys/fs/cgroup", rp, chain(four, "0", "0", "0", "0"), editorScope, nil, 4 * gib, 5, nil, ""},
		{"the unit below what it should be, ancestors fine, no recursiveprot", "/sys/fs/cgroup", "rw", chain(four, four, four, four, "0"), editorScope, nil, 0, 5, []string{
			"systemctl --user set-property --runtime app-gnome-code-4242.scope MemoryLow=2G",
		}, ""},
		{"dry run counts what would be set", "/sys/fs/cgroup", "rw", chain(four, four, four, four, "0"), editorScope, &[]uint64{2 * gib}[0], 2 * gib, 5, nil, ""},
		{"levels without the memory controller are skipped", "/sys/fs/cgroup", rp, map[string]string{unitU: four, unitS: "", unitM: "0", unitA: "", editorScope: two}, editorScope, nil, 2 * gib, 3, nil, ""},
		{"a session scope belongs to the system manager", "/sys/fs/cgroup", "rw", map[string]string{unitU: four, unitS: four, unitS + "/session-2.scope": "0"}, unitS + "/session-2.scope", nil, 0, 3, []string{
			"sudo systemctl set-property --runtime session-2.scope MemoryLow=2G",
		}, ""},
		{"plain cgroups (no systemd)", "/sys/fs/cgroup", rp, map[string]string{"/itprot": "0", "/itprot/editor": two}, "/itprot/editor", nil, 0, 2, []string{
			fmt.Sprintf("echo %d | sudo tee /sys/fs/cgroup/itprot/memory.low", 2*gib),
		}, ""},
		{"hybrid mount point", "/sys/fs/cgroup/unified", "rw", map[string]string{"/itprot": two}, "/itprot", nil, 2 * gib, 1, nil, ""},
		{"the root cgroup", "/sys/fs/cgroup", rp, nil, "/", nil, 0, 0, nil, "root cgroup"},
		{"no memory controller anywhere", "/sys/fs/cgroup", rp, map[string]string{"/a": "", "/a/b": ""}, "/a/b", nil, 0, 0, nil, "memory controller is not enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := cgroupFS(tt.mount, tt.opts, tt.lows)
			p, err := EffectiveProtection(fsys, tt.cgroup, 2*gib, tt.override, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var cmds []string
			for _, f := range p.Fixes {
				cmds = append(cmds, f.Command)
			}
			if p.Effective != tt.effective || len(p.Levels) != tt.levels || !reflect.DeepEqual(cmds, tt.fixes) {
				t.Errorf("effective %d over %d levels, fixes %q\nwant %d over %d, fixes %q", p.Effective, len(p.Levels), cmds, tt.effective, tt.levels, tt.fixes)
			}
			if !strings.Contains(p.Note, tt.note) || (tt.note == "" && p.Note != "") {
				t.Errorf("note %q, want one containing %q", p.Note, tt.note)
			}
			if p.Recursive != strings.Contains(tt.opts, "memory_recursiveprot") {
				t.Errorf("recursive = %v for options %q", p.Recursive, tt.opts)
			}
		})
	}
	t.Run("no cgroup2", func(t *testing.T) {
		p, err := EffectiveProtection(fstest.MapFS{"proc/mounts": {Data: []byte("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")}}, editorScope, gib, nil, 1000)
		if err != nil || p.Effective != 0 || !strings.Contains(p.Note, "no cgroup v2") {
			t.Errorf("got %+v, %v", p, err)
		}
	})
	t.Run("fix needing root names the other user", func(t *testing.T) {
		f := fixFor(editorScope, gib, "/sys/fs/cgroup", 1001)
		if !f.NeedsRoot || !strings.Contains(f.Command, "--user --machine=") {
			t.Errorf("got %+v", f)
		}
	})
}

func TestReadProcs(t *testing.T) {
	stat := func(pid, ppid int, comm string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(fmt.Sprintf("%d (%s) S %d 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n", pid, comm, ppid, pid*100))}
	}
	fsys := fstest.MapFS{
		"4242/stat":    stat(4242, 1, "code"),
		"4242/status":  {Data: []byte("Name:\tcode\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n")},
		"4242/comm":    {Data: []byte("code\n")},
		"4242/cmdline": {Data: []byte("/usr/share/code/code\x00--no-sandbox\x00")},
		"4242/cgroup":  {Data: []byte("0::" + editorScope + "\n")},
		"99/stat":      stat(99, 1, "gone"), // no status: still listed, uid unknown
		"12/stat":      {Data: []byte("garbage")},
		"self/stat":    stat(1, 0, "self"),
		"uptime":       {Data: []byte("1 2\n")},
	}
	links := map[string]string{"4242/exe": "/usr/share/code/code"}
	procs, err := ReadProcs(fsys, func(name string) (string, error) {
		if l, ok := links[name]; ok {
			return l, nil
		}
		return "", os.ErrNotExist
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 {
		t.Fatalf("got %d processes, want 2: %+v", len(procs), procs)
	}
	p := procs[1]
	if procs[0].PID == 4242 {
		p = procs[0]
	}
	want := ProcInfo{PID: 4242, PPID: 1, UID: 1000, EUID: 1000, StartTime: 424200, State: 'S', Comm: "code", Exe: "/usr/share/code/code",
		Args: []string{"/usr/share/code/code", "--no-sandbox"}, Cgroup: editorScope}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}

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
	got, err := UndoProtection(t.Context(), file, 0)
	if err != nil || len(got) != 1 || got[0].Skipped != "the process has exited" {
		t.Errorf("undo: %+v, %v", got, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("undo left the state file (%v)", err)
	}
}

func TestResolveProtectGroups(t *testing.T) {
	st := &policy.Stack{Files: []*policy.File{policy.Builtin()}}
	groups, err := ResolveProtectGroups(st, []string{"editors", "language-servers"}, policy.Env{MemoryBytes: 16 * gib})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || *groups[0].MemoryLow != 2*gib || *groups[0].OOMScoreAdj != -500 || groups[1].Name != "language-servers" {
		t.Errorf("got %+v", groups)
	}
	if _, err := ResolveProtectGroups(st, []string{"emacs"}, policy.Env{}); err == nil || !strings.Contains(err.Error(), "known: editors, language-servers") {
		t.Errorf("unknown group: %v", err)
	}
	others := OtherGroupNames(st, []string{"editors"})
	if !reflect.DeepEqual(others, []string{"clangd", "gopls", "pyright", "rust-analyzer", "tsserver", "typescript-language-server"}) {
		t.Errorf("others: %q", others)
	}
}

func TestProcessNames(t *testing.T) {
	tests := []struct {
		p       ProcInfo
		pattern string
		via     string
	}{
		{ProcInfo{Comm: "code"}, "code", "comm"},
		{ProcInfo{Comm: "MainThread", Exe: "/opt/windsurf/windsurf"}, "windsurf", "exe"},
		{ProcInfo{Comm: "x", Args: []string{"/snap/bin/codium"}}, "codium", "argv[0]"},
		{ProcInfo{Comm: "python3", Args: []string{"python3", "-m", "/usr/lib/pyright"}}, "pyright", "script"},
		{ProcInfo{Comm: "node", Args: []string{"node", "/a/tsserver.js"}}, "tsserver", "script"},
		{ProcInfo{Comm: "typescript-lang"}, "typescript-language-server", "comm"},
		{ProcInfo{Comm: "code-insiders"}, "code", ""},
		{ProcInfo{Comm: "cat", Args: []string{"cat", "/a/tsserver.js"}}, "tsserver", ""},
	}
	for _, tt := range tests {
		via, ok := tt.p.matchName(tt.pattern)
		if via != tt.via || ok != (tt.via != "") {
			t.Errorf("%+v matching %q: got %q, %v; want %q", tt.p, tt.pattern, via, ok, tt.via)
		}
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		status string
		has    bool
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", true},
		{"CapEff:\t000001fffeffffff\n", false}, // root in a docker container
		{"CapEff:\t0000000000000000\n", false},
		{"Name:\tx\n", false},
	}
	for _, tt := range tests {
		if got := parseCapEff(tt.status)&(1<<capSysResource) != 0; got != tt.has {
			t.Errorf("%q: CAP_SYS_RESOURCE %v, want %v", tt.status, got, tt.has)
		}
	}
}
