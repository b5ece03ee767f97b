package protect

import (
	"fmt"
	"os"
	"reflect"
	"testing"
	"testing/fstest"
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
