package protect

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

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

// The units above the editor on a systemd desktop.
const (
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
