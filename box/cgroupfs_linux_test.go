package box

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/internal/machinetest"
	"github.com/boxrun/boxrun/policy"
)

// resolveSet resolves an empty policy "p" with sets (--set KEY=VALUE).
func resolveSet(t *testing.T, sets ...string) *policy.Resolved {
	t.Helper()
	f, err := policy.Parse("p.toml", strings.NewReader("[policies.p]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := (&policy.Stack{Files: []*policy.File{f}}).Resolve("p", sets, policy.Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readDir returns the files of dir and their contents.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got[e.Name()] = string(data)
		}
	}
	return got
}

// TestWriteLimits: the cgroupfs backend writes each limit of the table to
// its file, as the kernel takes it (the values containerd's
// cgroup2.Resources wrote before); "max", false and an unset key write
// nothing, as a new cgroup starts at the kernel's default, nor does a
// limit whose controller the cgroup does not have.
func TestWriteLimits(t *testing.T) {
	all := []string{"memory", "pids", "cpu", "io"}
	tests := []struct {
		set         string
		controllers []string
		want        map[string]string
	}{
		{"memory.high=1G", all, map[string]string{"memory.high": "1073741824"}},
		{"memory.high=max", all, map[string]string{}},
		{"memory.max=512M", all, map[string]string{"memory.max": "536870912"}},
		{"memory.max=max", all, map[string]string{}},
		{"memory.swap.max=0", all, map[string]string{"memory.swap.max": "0"}},
		{"memory.oom_group=true", all, map[string]string{"memory.oom.group": "1"}},
		{"memory.oom_group=false", all, map[string]string{}},
		{"pids.max=4096", all, map[string]string{"pids.max": "4096"}},
		{"pids.max=max", all, map[string]string{}},
		{"cpu.weight=50", all, map[string]string{"cpu.weight": "50"}},
		{"cpu.max=250%", all, map[string]string{"cpu.max": "250000 100000"}},
		{"cpu.max=1%", all, map[string]string{"cpu.max": "1000 100000"}},
		{"cpu.max=max", all, map[string]string{}},
		{"io.weight=50", all, map[string]string{"io.weight": "default 50"}},
		{"oom_score_adj=500", all, map[string]string{}}, // the command's, not the cgroup's
		{"memory.max=1G", []string{"pids"}, map[string]string{}},
		{"cpu.weight=50", []string{"memory", "pids"}, map[string]string{}},
		{"io.weight=50", []string{"memory", "pids", "cpu"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.set+" "+strings.Join(tt.controllers, ","), func(t *testing.T) {
			dir := t.TempDir()
			if err := (cgroupDir{mount: dir, rel: "/"}).writeLimits(resolveSet(t, tt.set).Settings(), tt.controllers, true); err != nil {
				t.Fatal(err)
			}
			if got := readDir(t, dir); !mapsEqual(got, tt.want) {
				t.Errorf("wrote %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWriteLimitsResetsWhatWasThere: a cgroup that was there before the
// run (the slice outlives its boxes) gets "max" written, where an earlier
// run may have left a lower limit; a fresh one starts at max and does not.
func TestWriteLimitsResetsWhatWasThere(t *testing.T) {
	all := []string{"memory", "pids", "cpu", "io"}
	for _, fresh := range []bool{true, false} {
		dir := t.TempDir()
		machinetest.WriteFiles(t, dir, map[string]string{"memory.max": "536870912", "pids.max": "64"})
		p := resolveSet(t, "memory.max=max", "pids.max=128")
		if err := (cgroupDir{mount: dir, rel: "/"}).writeLimits(p.Settings(), all, fresh); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"memory.max": "max", "pids.max": "128"}
		if fresh {
			want["memory.max"] = "536870912" // untouched: a fresh cgroup is at max already
		}
		if got := readDir(t, dir); !mapsEqual(got, want) {
			t.Errorf("fresh=%v: %v, want %v", fresh, got, want)
		}
	}
}

// TestWriteLimitsEveryRow: every row of the limits table with a cgroup
// file is written by the cgroupfs backend, with the value the read-back
// expects, so that a new row needs nothing in the backend.
func TestWriteLimitsEveryRow(t *testing.T) {
	samples := map[policy.ValueType]string{
		policy.SizeValue: "1G", policy.CountValue: "100", policy.WeightValue: "50",
		policy.PercentValue: "50%", policy.BoolValue: "true",
	}
	for _, l := range policy.Limits() {
		if l.CgroupFile == "" {
			continue
		}
		t.Run(l.Key, func(t *testing.T) {
			sample, ok := samples[l.Type]
			if !ok {
				t.Fatalf("no sample value of type %s", l.Type)
			}
			p := resolveSet(t, l.Key+"="+sample)
			dir := t.TempDir()
			c := cgroupDir{mount: dir, rel: "/"}
			if err := c.writeLimits(p.Settings(), NeededControllers(p), true); err != nil {
				t.Fatal(err)
			}
			got := readDir(t, dir)
			if _, ok := got[l.CgroupFile]; !ok || len(got) != 1 {
				t.Fatalf("wrote %v, want %s alone", got, l.CgroupFile)
			}
			checks := c.check(p.Settings(), nil)
			if len(checks) != 1 || checks[0].Key != l.Key {
				t.Fatalf("read back %+v, want %s", checks, l.Key)
			}
			if c := checks[0]; c.Want != c.Got && l.Type != policy.SizeValue || c.Got != got[l.CgroupFile] {
				t.Errorf("wrote %q, the read-back wants %q", got[l.CgroupFile], c.Want)
			}
		})
	}
}

// TestNeededControllers: memory and pids always, cpu and io when a limit
// of theirs is set, "max" included (the box's own, not left to the parent's).
func TestNeededControllers(t *testing.T) {
	tests := []struct {
		sets []string
		want []string
	}{
		{nil, []string{"memory", "pids"}},
		{[]string{"memory.max=1G", "pids.max=10"}, []string{"memory", "pids"}},
		{[]string{"cpu.max=max"}, []string{"memory", "pids", "cpu"}},
		{[]string{"io.weight=10", "cpu.weight=10"}, []string{"memory", "pids", "cpu", "io"}},
	}
	for _, tt := range tests {
		if got := NeededControllers(resolveSet(t, tt.sets...)); !slices.Equal(got, tt.want) {
			t.Errorf("%v: %v, want %v", tt.sets, got, tt.want)
		}
	}
}

// TestCgroupfsCreate makes a box below a fixture of a delegated cgroup:
// the slice gets the [slice] budget's limits and enables the controllers
// they need, the box its policy's, and each controller the box needs is
// enabled on the way down; one the parent lacks (io here) is left out.
func TestCgroupfsCreate(t *testing.T) {
	mount := t.TempDir()
	if err := os.Mkdir(filepath.Join(mount, SliceName), 0o755); err != nil {
		t.Fatal(err)
	}
	machinetest.WriteFiles(t, mount, map[string]string{
		"cgroup.controllers":                  "cpu memory pids",
		"cgroup.subtree_control":              "",
		SliceName + "/cgroup.subtree_control": "",
	})
	u := func(v uint64) *uint64 { return &v }
	req := Request{
		Policy: resolveSet(t, "memory.max=1G", "memory.high=max", "cpu.max=200%", "io.weight=10", "memory.oom_group=true"),
		ID:     "ab12cd34",
		Slice:  &policy.ResolvedSlice{MemoryMax: u(4 << 30), PidsMax: u(policy.Unlimited), CPUWeight: u(100)},
	}
	req.Policy.Name = "p"
	x, err := (&cgroupfsBackend{mount: mount, parent: "/"}).Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// The slice was there already: its pids.max is written "max", which
	// an earlier run may have left lower; the new box's memory.high is not.
	slice := readDir(t, filepath.Join(mount, SliceName))
	if want := map[string]string{"memory.max": "4294967296", "pids.max": "max", "cpu.weight": "100", "cgroup.subtree_control": "+memory +pids +cpu"}; !mapsEqual(slice, want) {
		t.Errorf("slice: %v, want %v", slice, want)
	}
	box := readDir(t, x.Dir())
	if want := map[string]string{"memory.max": "1073741824", "memory.oom.group": "1", "cpu.max": "200000 100000"}; !mapsEqual(box, want) {
		t.Errorf("box: %v, want %v", box, want)
	}
	if got, _ := os.ReadFile(filepath.Join(mount, "cgroup.subtree_control")); !sameControllers(string(got), "+memory +pids +cpu") {
		t.Errorf("the parent's cgroup.subtree_control = %q, want memory, pids and cpu enabled", got)
	}
}

// sameControllers reports whether two cgroup.subtree_control writes name
// the same controllers, in any order.
func sameControllers(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !(v == w || strings.HasSuffix(k, "subtree_control") && sameControllers(v, w)) {
			return false
		}
	}
	return true
}
