package protect

import (
	"testing"
)

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
	editorsGroup = Group{Name: "editors", Match: []string{"code", "code-insiders", "codium", "code-oss", "cursor", "windsurf"}}
	lspGroup     = Group{Name: "language-servers", Match: []string{"rust-analyzer", "gopls", "tsserver", "typescript-language-server"}}
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
		groups []Group
		others []string
		want   []m
	}{
		{"editors only", []Group{editorsGroup}, lspGroup.Match, []m{
			{4242, "editors", "comm"}, {4250, "editors", "comm"}, {4252, "editors", "comm"}, {5400, "editors", "comm"},
			{4253, "editors", "child of 4252 (code)"},
		}},
		{"editors and language servers", []Group{editorsGroup, lspGroup}, nil, []m{
			{4242, "editors", "comm"}, {4250, "editors", "comm"}, {4252, "editors", "comm"}, {5400, "editors", "comm"},
			{4253, "editors", "child of 4252 (code)"},
			{4400, "language-servers", "comm"}, {4500, "language-servers", "script"}, {5300, "language-servers", "comm"},
			{4401, "language-servers", "child of 4400 (rust-analyzer)"},
		}},
		{"language servers only", []Group{lspGroup}, editorsGroup.Match, []m{
			{4400, "language-servers", "comm"}, {4500, "language-servers", "script"}, {5300, "language-servers", "comm"},
			{4401, "language-servers", "child of 4400 (rust-analyzer)"},
		}},
		{"nothing matches", []Group{{Name: "x", Match: []string{"emacs"}}}, nil, nil},
		{"empty pattern matches nothing", []Group{{Name: "x", Match: []string{""}}}, nil, nil},
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
		got := MatchProcesses(ps, []Group{editorsGroup}, MatchOptions{UID: 1000, SelfExe: "/usr/local/bin/boxrun"})
		if len(got) != 1 || got[0].PID != 10 {
			t.Errorf("got %+v, want only pid 10", got)
		}
	})
	t.Run("root protects only root's processes", func(t *testing.T) {
		got := MatchProcesses(desktop, []Group{editorsGroup}, MatchOptions{UID: 0})
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
