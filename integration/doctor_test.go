package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3"
)

// doctorOutput is `boxrun doctor --json`.
type doctorOutput struct {
	OK     bool   `json:"ok"`
	Policy string `json:"policy"`
	Checks []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Summary string `json:"summary"`
		Fix     string `json:"fix"`
	} `json:"checks"`
}

// TestDoctorOnThisHost runs `boxrun doctor` natively. On the project's
// hybrid build machines it must say that no box can be made, why (the
// hybrid hierarchy), and how to fix it, and exit 1; anywhere, every ✗ has
// a fix and the exit status agrees with the verdict.
func TestDoctorOnThisHost(t *testing.T) {
	a := build(t)
	code, out, errs := runHost(t, a.boxrun, "doctor", "--json")
	var d doctorOutput
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("doctor --json: %v\nstdout: %s\nstderr: %s", err, out, errs)
	}
	if (code == 0) != d.OK || (code != 0 && code != 1) {
		t.Errorf("exit %d with ok=%v: want 0 exactly when ok, else 1", code, d.OK)
	}
	status := map[string]string{}
	for _, c := range d.Checks {
		status[c.ID] = c.Status
		if c.Status == "fail" && c.Fix == "" {
			t.Errorf("%s fails without a fix: %s", c.ID, c.Summary)
		}
		if c.ID == "cgroup2" && cgroups.Mode() == cgroups.Hybrid {
			if c.Status != "fail" || !strings.Contains(c.Summary, "hybrid") || !strings.Contains(c.Fix, "systemd.unified_cgroup_hierarchy=1") {
				t.Errorf("cgroup2 on a hybrid host: %+v", c)
			}
		}
	}
	if d.Policy != "tests" {
		t.Errorf("policy %q, want the default tests", d.Policy)
	}
	for _, id := range []string{"cgroup2", "systemd", "backend", "recursiveprot", "swap", "psi", "memory.peak", "cgroup.kill", "clone_into_cgroup", "container", "protect:editors", "systemd-oomd"} {
		if _, ok := status[id]; !ok {
			t.Errorf("no %s check", id)
		}
	}
	if cgroups.Mode() == cgroups.Hybrid || cgroups.Mode() == cgroups.Legacy {
		if code != 1 || d.OK || status["backend"] != "fail" {
			t.Errorf("on a %s host: exit %d, ok %v, backend %q; want 1, false, fail", modeName(cgroups.Mode()), code, d.OK, status["backend"])
		}
	}

	// The text form: one line per check, marked, with fixes indented.
	code2, txt, errs := runHost(t, a.boxrun, "doctor")
	if code2 != code {
		t.Errorf("doctor exits %d, doctor --json %d", code2, code)
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(txt), "\n") {
		switch {
		case strings.HasPrefix(l, "✓ "), strings.HasPrefix(l, "✗ "), strings.HasPrefix(l, "! "):
			lines++
		case strings.HasPrefix(l, "    "):
		default:
			t.Errorf("unexpected doctor line %q", l)
		}
	}
	if lines != len(d.Checks) {
		t.Errorf("%d marked lines for %d checks:\n%s", lines, len(d.Checks), txt)
	}
	if !d.OK && !strings.Contains(errs, "boxrun: policy \"tests\" cannot be enforced fully here") {
		t.Errorf("stderr %q should give the verdict", errs)
	}
	var marks []string
	for _, c := range d.Checks {
		marks = append(marks, c.ID+"="+c.Status)
	}
	t.Logf("figures: doctor on this host (%s): exit %d, %s", modeName(cgroups.Mode()), code, strings.Join(marks, " "))
}

// modeName names a cgroup mode.
func modeName(m cgroups.CGMode) string {
	switch m {
	case cgroups.Unified:
		return "unified"
	case cgroups.Hybrid:
		return "hybrid"
	case cgroups.Legacy:
		return "legacy"
	}
	return "no cgroups"
}
