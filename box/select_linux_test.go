package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/containerd/cgroups/v3"

	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestNoBoxReason: the one line of a run without a box names the real
// reason, and suggests BOXRUN_CGROUP_PARENT only where a delegated cgroup
// could help (issue #19).
func TestNoBoxReason(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		parent      string
		reason, fix string // substrings
		parentHint  bool
	}{
		{"hybrid", &hierarchyError{mode: cgroups.Hybrid, mount: "/sys/fs/cgroup/unified"}, "", "hybrid cgroup hierarchy", "boxrun doctor says how to switch to cgroup v2", false},
		{"hybrid, with a parent set", &hierarchyError{mode: cgroups.Hybrid, mount: "/sys/fs/cgroup/unified"}, "/sys/fs/cgroup/x", "hybrid cgroup hierarchy", "switch to cgroup v2", false},
		{"cgroup v1 only", &hierarchyError{mode: cgroups.Legacy}, "", "cgroup v1 only", "switch to cgroup v2", false},
		{"no cgroup file system", &hierarchyError{mode: cgroups.Unavailable}, "", "no cgroup file system is mounted", "boxrun doctor", false},
		{"unified, nothing delegated", fmt.Errorf("%w: boxrun runs in cgroup /user.slice, which holds processes", ErrUnavailable), "",
			"no systemd manager is reachable, and no cgroup is delegated", "boxrun doctor", true},
		{"unified, the parent does not work", fmt.Errorf("%w: cannot write /sys/fs/cgroup/x/cgroup.subtree_control", ErrUnavailable), "/sys/fs/cgroup/x",
			ParentEnv + "=/sys/fs/cgroup/x cannot be used", "boxrun doctor says why", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb := noBoxReason(tt.err, tt.parent)
			if !strings.Contains(nb.Reason, tt.reason) || !strings.Contains(nb.Fix, tt.fix) {
				t.Errorf("NoBox %+v, want reason with %q and fix with %q", nb, tt.reason, tt.fix)
			}
			if got := strings.Contains(nb.Fix, ParentEnv); got != tt.parentHint {
				t.Errorf("fix %q mentions %s: %v, want %v", nb.Fix, ParentEnv, got, tt.parentHint)
			}
			if strings.HasSuffix(nb.Reason, ".") || strings.HasSuffix(nb.Fix, ".") || nb.Reason != strings.ToLower(nb.Reason[:1])+nb.Reason[1:] {
				t.Errorf("NoBox %+v: want lowercase phrases without a period", nb)
			}
		})
	}
	var he *hierarchyError
	err := error(&hierarchyError{mode: cgroups.Hybrid, mount: "/sys/fs/cgroup/unified"})
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &he) || !strings.HasPrefix(err.Error(), "backend not available: this host has a hybrid cgroup hierarchy") {
		t.Errorf("hierarchyError %q is not ErrUnavailable", err)
	}
	b := newNone("why", NoBox{Reason: "r", Fix: "f"})
	if nb, ok := NoBoxOf(b); !ok || nb.Reason != "r" || nb.Fix != "f" {
		t.Errorf("NoBoxOf(none) = %+v, %v", nb, ok)
	}
	if nb, ok := NoBoxOf(NewNone("because")); !ok || nb.Reason != "because" || nb.Fix != "" {
		t.Errorf("NoBoxOf(NewNone) = %+v, %v", nb, ok)
	}
}

// writableOnly lets only the FS names given be written.
func writableOnly(names ...string) func(string) error {
	return func(name string) error {
		for _, n := range names {
			if n == name {
				return nil
			}
		}
		return os.ErrPermission
	}
}

// TestProbeCgroupfs: the cgroupfs backend is chosen only where it can
// enable memory and pids below its parent. A cgroup namespace's root that
// holds processes cannot (only the real root is exempt from the
// no-internal-processes rule), so a container with its own cgroup
// namespace falls back instead of failing every run (issue #17, item 9).
func TestProbeCgroupfs(t *testing.T) {
	const mount = "/sys/fs/cgroup"
	nsRoot := machinetest.MustLoad(t, "cgroupns.txt")
	vm := machinetest.MustLoad(t, "cgroupfs-vm.txt")
	// The same container once its processes moved to /init, as a
	// docker-in-docker entrypoint does.
	freed := fstest.MapFS{}
	for k, v := range nsRoot {
		freed[k] = v
	}
	freed["sys/fs/cgroup/cgroup.procs"] = &fstest.MapFile{}
	freed["sys/fs/cgroup/init/cgroup.procs"] = &fstest.MapFile{Data: []byte("1\n17\n42\n")}
	// A root that has memory and pids enabled already: nothing to enable.
	enabled := fstest.MapFS{}
	for k, v := range nsRoot {
		enabled[k] = v
	}
	enabled["sys/fs/cgroup/cgroup.subtree_control"] = &fstest.MapFile{Data: []byte("memory pids\n")}
	delegated := fstest.MapFS{
		"sys/fs/cgroup/ci/cgroup.type":              {Data: []byte("domain\n")},
		"sys/fs/cgroup/ci/cgroup.controllers":       {Data: []byte("cpu memory pids\n")},
		"sys/fs/cgroup/ci/cgroup.subtree_control":   {},
		"sys/fs/cgroup/ci/cgroup.procs":             {},
		"sys/fs/cgroup/busy/cgroup.type":            {Data: []byte("domain\n")},
		"sys/fs/cgroup/busy/cgroup.controllers":     {Data: []byte("cpu memory pids\n")},
		"sys/fs/cgroup/busy/cgroup.subtree_control": {},
		"sys/fs/cgroup/busy/cgroup.procs":           {Data: []byte("4242\n")},
	}
	rootWritable := writableOnly("sys/fs/cgroup/cgroup.subtree_control")
	tests := []struct {
		name           string
		fsys           fstest.MapFS
		own, override  string
		writable       func(string) error
		parent         string // when usable
		err            string // else a substring of the error
		busy, busyRoot bool   // the error is a *BusyCgroupError, of a namespace root
	}{
		{name: "a VM: the real root holds every process, and is exempt", fsys: vm, own: "/", writable: rootWritable, parent: "/"},
		{name: "a container's namespace root holding processes", fsys: nsRoot, own: "/", writable: rootWritable,
			err: "/sys/fs/cgroup is the root of this container's cgroup namespace, not of the hierarchy, and holds 3 processes", busy: true, busyRoot: true},
		{name: "the same container with its processes moved to a child", fsys: freed, own: "/init", override: "/sys/fs/cgroup", writable: rootWritable, parent: "/"},
		{name: "a namespace root with memory and pids enabled already", fsys: enabled, own: "/", writable: rootWritable, parent: "/"},
		{name: "a delegated parent holding no process", fsys: delegated, own: "/user.slice/x.scope", override: "/sys/fs/cgroup/ci", writable: writableOnly("sys/fs/cgroup/ci/cgroup.subtree_control"), parent: "/ci"},
		{name: "a delegated parent holding processes", fsys: delegated, own: "/user.slice/x.scope", override: "/sys/fs/cgroup/busy", writable: writableOnly("sys/fs/cgroup/busy/cgroup.subtree_control"),
			err: ParentEnv + "=/sys/fs/cgroup/busy holds 1 process", busy: true},
		{name: "boxrun in a cgroup below the root, no parent set", fsys: delegated, own: "/user.slice/x.scope", writable: rootWritable,
			err: "boxrun runs in cgroup /user.slice/x.scope, which holds processes"},
		{name: "a root that may not be written", fsys: nsRoot, own: "/", writable: writableOnly(),
			err: "cannot write /sys/fs/cgroup/cgroup.subtree_control: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, err := ProbeCgroupfs(tt.fsys, mount, tt.own, tt.override, tt.writable)
			if tt.err == "" {
				if err != nil || parent != tt.parent {
					t.Fatalf("probe = %q, %v; want %q", parent, err, tt.parent)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("probe = %q, %v; want ErrUnavailable saying %q", parent, err, tt.err)
			}
			var be *BusyCgroupError
			if errors.As(err, &be) != tt.busy || (tt.busy && be.nsRoot != tt.busyRoot) {
				t.Errorf("error %T %+v: busy %v (namespace root %v) wanted", err, err, tt.busy, tt.busyRoot)
			}
		})
	}
}

// failingSystemd is a systemd manager that is not there.
func failingSystemd(context.Context, bool) (Backend, error) {
	return nil, fmt.Errorf("%w: no systemd user manager socket at /run/user/1000/systemd/private", ErrUnavailable)
}

// TestSelectFallsBackInACgroupNamespace: where the cgroupfs backend cannot
// enable controllers, --backend auto falls back to none with the one line
// that says why, instead of picking cgroupfs and failing with 125; an
// explicit --backend cgroupfs says why it cannot be used.
func TestSelectFallsBackInACgroupNamespace(t *testing.T) {
	on := func(fsys fstest.MapFS, own string) openers {
		return openers{systemd: failingSystemd, cgroupfs: func(parent string) (Backend, error) {
			return newCgroupfsIn(fsys, "/sys/fs/cgroup", own, parent, writableOnly("sys/fs/cgroup/cgroup.subtree_control"))
		}}
	}
	ctx := context.Background()
	b, skipped, err := on(machinetest.MustLoad(t, "cgroupns.txt"), "/").choose(ctx, Choice{Kind: KindAuto, User: true})
	if err != nil || b.Name() != KindNone {
		t.Fatalf("auto in a container's busy namespace root: %v, %v; want the none backend", b, err)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[1], "cgroupfs: /sys/fs/cgroup is the root of this container's cgroup namespace") {
		t.Errorf("skipped %q: want systemd's reason, then cgroupfs's", skipped)
	}
	nb, _ := NoBoxOf(b)
	if !strings.Contains(nb.Reason, "the container's root cgroup holds processes") || !strings.Contains(nb.Fix, ParentEnv+"=/sys/fs/cgroup") {
		t.Errorf("no box: %+v; want the reason and the fix", nb)
	}
	if line := nb.Reason + "; " + nb.Fix; strings.Contains(line, "\n") || strings.HasSuffix(line, ".") {
		t.Errorf("no box line %q: want one line without a period", line)
	}
	if _, _, err := on(machinetest.MustLoad(t, "cgroupns.txt"), "/").choose(ctx, Choice{Kind: KindCgroupfs}); err == nil || !errors.Is(err, ErrUnavailable) {
		t.Errorf("--backend cgroupfs in a busy namespace root: %v; want ErrUnavailable", err)
	}
	b, _, err = on(machinetest.MustLoad(t, "cgroupfs-vm.txt"), "/").choose(ctx, Choice{Kind: KindAuto})
	if err != nil || b.Name() != KindCgroupfs {
		t.Errorf("auto in a VM without systemd: %v, %v; want cgroupfs", b, err)
	}
}
