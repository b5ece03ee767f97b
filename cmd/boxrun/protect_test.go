package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/protect"
)

func TestProtectUnitMatchesContrib(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", protectUnitName))
	if err != nil {
		t.Fatal(err)
	}
	if got := protectUnit("/usr/local/bin/boxrun"); got != string(want) {
		t.Errorf("contrib/systemd/%s and the unit boxrun install writes differ; keep protectUnitTemplate and the file equal:\n%s", protectUnitName, got)
	}
}

func TestUnitExecPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/local/bin/boxrun", "/usr/local/bin/boxrun"},
		{"/home/me/go/bin/boxrun", "/home/me/go/bin/boxrun"},
		{"/opt/my tools/boxrun", `"/opt/my tools/boxrun"`},
		{"/opt/100%/boxrun", "/opt/100%%/boxrun"},
		{"/opt/$HOME/boxrun", "/opt/$$HOME/boxrun"},
		{`/opt/a"b/boxrun`, `"/opt/a\"b/boxrun"`},
	}
	for _, tt := range tests {
		if got := unitExecPath(tt.in); got != tt.want {
			t.Errorf("unitExecPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProtectCLI(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("SUDO_UID", "")
	empty := writeFile(t, "empty.toml", "[policies.bare]\nmemory.max = \"1G\"\n")
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"unknown group", []string{"protect", "emacs"}, 125, "", `unknown protection group "emacs" (known: editors, language-servers)`},
		{"undo takes no group", []string{"protect", "--undo", "editors"}, 125, "", "--undo"},
		{"watch and dry run", []string{"protect", "--watch", "--dry-run"}, 125, "", "cannot be used together"},
		{"bad flag", []string{"protect", "--frob"}, 125, "", "unknown flag: --frob"},
		{"unknown policy", []string{"protect", "-p", "nope"}, 125, "", `unknown policy "nope"`},
		{"policy without groups", []string{"-f", empty, "-p", "bare", "protect"}, 125, "", "protects no group"},
		{"dry run with nothing to protect", []string{"protect", "--dry-run", "emacs-free-group-name-is-not-here"}, 125, "", "unknown protection group"},
		{"nothing running", []string{"protect", "--dry-run", "language-servers"}, 0, "", "no process of yours belongs to group language-servers"},
		{"nothing to undo", []string{"protect", "--undo"}, 0, "", "nothing to undo"},
		{"dashdash makes protect a command", []string{"--", "protect"}, 127, "", "protect: command not found"},
		{"doctor bad argument", []string{"doctor", "now"}, 125, "", `unexpected argument "now"`},
		{"install what", []string{"install", "everything"}, 125, "", "user-unit"},
		{"uninstall nothing", []string{"uninstall"}, 125, "", "user-unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stderr containing %q", code, tt.code, stdout, stderr, tt.stderr)
			}
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if line != "" && !strings.HasPrefix(line, "boxrun: ") && !strings.HasPrefix(line, "  ") && tt.name != "bad flag" {
					t.Errorf("stderr line without the boxrun: prefix: %q", line)
				}
			}
		})
	}
}

func TestDoctorJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, stdout, stderr)
	}
	if (code == 0) != rep.OK || (code != 0 && code != 1) {
		t.Errorf("exit %d with ok=%v", code, rep.OK)
	}
	if rep.Policy != "tests" || len(rep.Checks) < 10 {
		t.Errorf("policy %q, %d checks", rep.Policy, len(rep.Checks))
	}
}

// startFakeEditor starts a process called code (sleep, through a symlink
// of that name) with oom_score_adj 300, as Electron sets its renderers.
func startFakeEditor(t *testing.T) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	code := filepath.Join(t.TempDir(), "code")
	if err := os.Symlink(sleep, code); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(code, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte("300"), 0); err != nil {
		t.Fatal(err)
	}
	// Wait for the exec to have renamed it.
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(b)) == "code" {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the fake editor never became code")
	return nil
}

func oomOf(t *testing.T, pid int) int {
	t.Helper()
	v, err := procfs.ReadOOMScoreAdj(pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestProtectAndUndoNatively protects a real process on this machine (no
// cgroup v2 needed for oom_score_adj) and undoes it.
func TestProtectAndUndoNatively(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("SUDO_UID", "")
	ed := startFakeEditor(t)
	pid := ed.Process.Pid

	code, stdout, stderr := runCLI(t, "protect", "--dry-run", "--json")
	var rep protect.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 {
		t.Fatalf("dry run: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if got := oomOf(t, pid); got != 300 {
		t.Fatalf("--dry-run changed oom_score_adj to %d", got)
	}
	if _, err := os.Stat(filepath.Join(runtime, "boxrun", "protect.json")); err == nil {
		t.Error("--dry-run wrote the state file")
	}
	var found *protect.ProtectedProcess
	for i := range rep.Processes {
		if rep.Processes[i].PID == pid {
			found = &rep.Processes[i]
		}
	}
	if found == nil || found.OOMBefore != 300 || found.OOMAfter != -500 || found.Group != "editors" {
		t.Fatalf("dry run does not show the fake editor going 300 → -500: %+v", rep.Processes)
	}

	code, stdout, stderr = runCLI(t, "protect")
	after := oomOf(t, pid)
	if code != 0 || after >= 300 || after < -500 {
		t.Fatalf("protect: exit %d, oom_score_adj %d; want below 300, at least -500\n%s\n%s", code, after, stdout, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("300 → %d", after)) || !strings.Contains(stdout, strconv.Itoa(pid)) {
		t.Errorf("the table does not show the change:\n%s", stdout)
	}
	if protect.HasCapSysResource() && after != -500 {
		t.Errorf("with CAP_SYS_RESOURCE the target -500 is allowed, got %d", after)
	}
	if !protect.HasCapSysResource() && !strings.Contains(stdout, fmt.Sprintf("300 → %d (floor)", after)) {
		t.Errorf("without CAP_SYS_RESOURCE the table should say the floor stopped it:\n%s", stdout)
	}

	code, stdout, stderr = runCLI(t, "protect", "--undo")
	if got := oomOf(t, pid); code != 0 || got != 300 {
		t.Fatalf("undo: exit %d, oom_score_adj %d, want 300\n%s\n%s", code, got, stdout, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("restored code (pid %d) oom_score_adj %d → 300", pid, after)) {
		t.Errorf("undo output: %q", stdout)
	}
	if _, err := os.Stat(filepath.Join(runtime, "boxrun", "protect.json")); err == nil {
		t.Error("the state file is still there after a full undo")
	}

	// A run of a policy that protects the editors applies it quietly.
	code, _, stderr = runCLI(t, "-q", "--backend", "none", "--", "true")
	if got := oomOf(t, pid); code != 0 || got >= 300 || stderr != "" {
		t.Errorf("run: exit %d, oom_score_adj %d, stderr %q; want the editor protected silently", code, got, stderr)
	}
	runCLI(t, "protect", "--undo")
	// A policy without protect leaves it alone.
	bare := writeFile(t, "bare.toml", "[policies.bare]\nmemory.max = \"1G\"\n")
	runCLI(t, "-q", "-f", bare, "-p", "bare", "--backend", "none", "--", "true")
	if got := oomOf(t, pid); got != 300 {
		t.Errorf("a policy with no protect list changed oom_score_adj to %d", got)
	}
}
