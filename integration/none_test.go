package integration

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
)

// runHost runs the built boxrun on this host.
func runHost(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			// As a shell reports it: boxrun dies of the signal its
			// command died of (SIGINT, SIGHUP, SIGTERM).
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestNoneBackendOnThisHost runs boxrun natively. On the project's hybrid
// build machines no cgroup v2 box can be had, so auto must fall back to the
// none backend, say so in one line that fits the host, still raise
// oom_score_adj, and --strict must refuse.
func TestNoneBackendOnThisHost(t *testing.T) {
	a := build(t)
	show := []string{"--", "sh", "-c", "cat /proc/self/oom_score_adj"}

	code, out, errs := runHost(t, a.boxrun, append([]string{"--backend", "none"}, show...)...)
	if code != 0 || strings.TrimSpace(out) != "500" {
		t.Errorf("--backend none: exit %d, stdout %q; want 0 and oom_score_adj 500 from the tests policy", code, out)
	}
	if n := strings.Count(errs, "warning: not boxed"); n != 1 || !strings.Contains(errs, "warning: not boxed: --backend none was asked for") {
		t.Errorf("--backend none: want exactly one warning saying there is no box, got %q", errs)
	}

	code, _, errs = runHost(t, a.boxrun, append([]string{"--strict", "--backend", "none"}, show...)...)
	if code != 125 || !strings.Contains(errs, "--strict") {
		t.Errorf("--strict --backend none: exit %d, stderr %q; want 125", code, errs)
	}

	// -q: one line that there is no box, once a day (a stamp in the
	// state directory: root's is /var/lib/boxrun whatever the environment
	// says, so start from no stamp), then silence.
	os.Remove("/var/lib/boxrun/none-warned")
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	code, _, errs = runHost(t, a.boxrun, append([]string{"-q", "--backend", "none"}, show...)...)
	if code != 0 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "not boxed: --backend none was asked for (said once a day with -q)") {
		t.Errorf("-q: exit %d, stderr %q; want one line saying there is no box", code, errs)
	}
	code, _, errs = runHost(t, a.boxrun, append([]string{"-q", "--backend", "none"}, show...)...)
	if code != 0 || errs != "" {
		t.Errorf("-q again the same day: exit %d, stderr %q; want silence", code, errs)
	}

	if cgroups.Mode() == cgroups.Hybrid || cgroups.Mode() == cgroups.Legacy {
		code, out, errs = runHost(t, a.boxrun, show...)
		if code != 0 || strings.TrimSpace(out) != "500" || strings.Count(errs, "warning: not boxed: ") != 1 ||
			!strings.Contains(errs, "hybrid") && !strings.Contains(errs, "cgroup v1 only") || !strings.Contains(errs, "boxrun doctor") {
			t.Errorf("auto on a hybrid host: exit %d, stdout %q, stderr %q; want the none backend with one line: the reason and boxrun doctor", code, out, errs)
		}
		// A delegated cgroup cannot help here: the line must not send the
		// user to BOXRUN_CGROUP_PARENT.
		if strings.Contains(errs, "BOXRUN_CGROUP_PARENT") {
			t.Errorf("auto on a hybrid host suggests BOXRUN_CGROUP_PARENT, which cannot help there: %q", errs)
		}
		code, _, errs = runHost(t, a.boxrun, append([]string{"--backend", "systemd"}, show...)...)
		if code != 125 || !strings.Contains(errs, "systemd") {
			t.Errorf("--backend systemd without systemd: exit %d, stderr %q; want 125 with the reason", code, errs)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--backend", "none", "--", "no-such-command-xyz"}, 127},
		{[]string{"--backend", "none", "--", "/"}, 126},
		{[]string{"--backend", "none", "--", "sh", "-c", "exit 7"}, 7},
		{[]string{"--backend", "none", "--", "sh", "-c", "kill -TERM $$"}, 143},
		{[]string{"--backend", "bogus", "--", "true"}, 125},
		{[]string{"--policy", "no-such-policy", "--", "true"}, 125},
		{[]string{}, 125},
	} {
		if code, _, errs := runHost(t, a.boxrun, tc.args...); code != tc.code {
			t.Errorf("boxrun %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
	}
}
