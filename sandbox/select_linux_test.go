package sandbox

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
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
