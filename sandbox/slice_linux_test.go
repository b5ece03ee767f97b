package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/boxrun/boxrun/policy"
)

func TestSliceHolds(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	want := &policy.ResolvedSlice{MemoryHigh: u(800 << 20), MemoryMax: u(850 << 20), PidsMax: u(8192), CPUWeight: u(100)}
	tests := []struct {
		name  string
		files map[string]string
		holds bool
	}{
		{"set by an earlier run", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "pids.max": "8192", "cpu.weight": "100"}, true},
		{"a fresh slice", map[string]string{"memory.high": "max", "memory.max": "max", "pids.max": "max", "cpu.weight": "100"}, false},
		{"the policy changed one limit", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "pids.max": "4096", "cpu.weight": "100"}, false},
		{"a controller missing", map[string]string{"memory.high": "838860800", "memory.max": "891289600", "cpu.weight": "100"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"cgroup.controllers": "cpu memory pids"}
			for k, v := range tt.files {
				files[k] = v
			}
			for name, v := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := sliceHolds(cgroupDir{mount: dir, rel: "/"}, want); got != tt.holds {
				t.Errorf("sliceHolds = %v, want %v", got, tt.holds)
			}
		})
	}
}

func TestReadLiveSlice(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	const dir = "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/boxrun.slice"
	tests := []struct {
		name  string
		files map[string]string
		want  liveSlice
	}{
		{"a slice holding 10G under limits of 12G and 13G", map[string]string{"memory.current": "10737418240", "memory.high": "12884901888", "memory.max": "13958643712"},
			liveSlice{exists: true, current: 10 << 30, high: u(12 << 30), max: u(13 << 30)}},
		{"no limits", map[string]string{"memory.current": "4096", "memory.high": "max", "memory.max": "max"},
			liveSlice{exists: true, current: 4096, high: u(policy.Unlimited), max: u(policy.Unlimited)}},
		{"no memory controller", map[string]string{"pids.current": "3"}, liveSlice{}},
		{"no slice yet", nil, liveSlice{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, v := range tt.files {
				fsys[dir+"/"+name] = &fstest.MapFile{Data: []byte(v + "\n")}
			}
			if got := readLiveSlice(fsys, dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readLiveSlice = %+v, want %+v", got, tt.want)
			}
		})
	}
}
