package cgroupfs

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseMounts(t *testing.T) {
	tests := []struct {
		name, in string
		want     Mount
	}{
		{"unified", "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nsdelegate,memory_recursiveprot 0 0\n",
			Mount{Path: "/sys/fs/cgroup", Options: []string{"rw", "nosuid", "nsdelegate", "memory_recursiveprot"}}},
		{"hybrid", "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n",
			Mount{Path: "/sys/fs/cgroup/unified", Options: []string{"rw", "relatime"}, V1: true}},
		{"v1 only", "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n", Mount{V1: true}},
		{"none", "proc /proc proc rw 0 0\n", Mount{}},
		{"prefers /sys/fs/cgroup", "cgroup2 /mnt/cg cgroup2 rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 ro 0 0\n",
			Mount{Path: "/sys/fs/cgroup", Options: []string{"ro"}}},
	}
	for _, tt := range tests {
		got, err := ParseMounts(strings.NewReader(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	if m := (Mount{Options: []string{"memory_recursiveprot"}}); !m.Has("memory_recursiveprot") || m.Has("nsdelegate") {
		t.Error("Has")
	}
}

func TestReadMount(t *testing.T) {
	fsys := fstest.MapFS{"proc/mounts": {Data: []byte(`cgroup2 /mnt/my\040cg cgroup2 rw 0 0` + "\n")}}
	if m, err := ReadMount(fsys); err != nil || m.Path != "/mnt/my cg" {
		t.Errorf("an escaped mount point: %+v, %v; want /mnt/my cg", m, err)
	}
	if _, err := ReadMount(fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "mount table") {
		t.Errorf("no mount table: %v", err)
	}
}

func TestFSPath(t *testing.T) {
	tests := []struct {
		parts []string
		want  string
	}{
		{[]string{"/sys/fs/cgroup", "/user.slice", "memory.low"}, "sys/fs/cgroup/user.slice/memory.low"},
		{[]string{"/sys/fs/cgroup", "", "cgroup.controllers"}, "sys/fs/cgroup/cgroup.controllers"},
		{[]string{"/sys/fs/cgroup"}, "sys/fs/cgroup"},
		{[]string{"/"}, "."},
		{nil, "."},
	}
	for _, tt := range tests {
		if got := FSPath(tt.parts...); got != tt.want {
			t.Errorf("FSPath(%q) = %q, want %q", tt.parts, got, tt.want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got, err := ParseProcCgroup(strings.NewReader("0::/user.slice/user-1000.slice/session-2.scope\n"))
	if err != nil || got != "/user.slice/user-1000.slice/session-2.scope" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, err = ParseProcCgroup(strings.NewReader("4:memory:/x\n1:name=systemd:/\n"))
	if err == nil || !strings.Contains(err.Error(), "cgroup v1 or hybrid") {
		t.Fatalf("v1-only file: got %v, want an error naming cgroup v1", err)
	}
}

func TestValueFormats(t *testing.T) {
	m, err := ParseFlatKeyed(strings.NewReader("low 0\nhigh 12\nbroken\noom_kill 3\nx y\n"))
	if err != nil || !reflect.DeepEqual(m, map[string]uint64{"low": 0, "high": 12, "oom_kill": 3}) {
		t.Errorf("ParseFlatKeyed = %v, %v", m, err)
	}
	for in, want := range map[string]struct {
		v  uint64
		ok bool
	}{"max\n": {1<<64 - 1, true}, "4096\n": {4096, true}, "-1": {0, false}, "": {0, false}} {
		if v, ok := ParseLimit(in); v != want.v || ok != want.ok {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d, %v", in, v, ok, want.v, want.ok)
		}
	}
	if _, ok := ParseCounter("max"); ok {
		t.Error(`ParseCounter("max") is not a counter`)
	}
}

func TestParseProcs(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"1\n42\n4242\n", []int{1, 42, 4242}},
		{"7\n\nnot-a-pid\n8", []int{7, 8}},
	}
	for _, tt := range tests {
		if got := ParseProcs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseProcs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
