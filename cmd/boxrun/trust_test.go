package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/boxes"
	"github.com/boxrun/boxrun/policy"
)

// TestProjectFileMayOnlyRestrict runs boxrun in a project whose
// .boxrun.toml tries what a project may not do: the run goes on, with one
// warning naming file:line and key for each, and only the restrictions in
// force. In the warnings and notes, FILE stands for the .boxrun.toml.
func TestProjectFileMayOnlyRestrict(t *testing.T) {
	tests := []struct {
		name     string
		toml     string
		warnings []string // prefixes of lines on stderr after "boxrun: warning: ", each once
		show     []string // in policy show tests, spaces collapsed
		notes    []string // prefixes of "note: " lines of policy show
	}{
		{
			name: "settings that reach outside the box",
			toml: `[protect.evil]
match = ["sshd"]
oom_score_adj = -1000

[slice]
memory.max = "max"

[policies.tests]
extends = "tests"
memory.max = "1G"
oom_score_adj = -900
protect = ["evil", "editors"]
leftovers = "keep"
`,
			warnings: []string{
				"FILE:1: [protect.evil] ignored: a project file may not define protection groups",
				"FILE:5: [slice] ignored: a project file may not set the limits of the slice",
				`FILE:11: oom_score_adj = -900 in policy "tests" ignored: a project file may only make the command more likely to be OOM-killed (500 or more)`,
				`FILE:12: protect = ["evil", "editors"] in policy "tests" ignored: a project file may not name protection groups`,
				`FILE:13: leftovers = "keep" in policy "tests" ignored: a project file may not keep processes alive`,
			},
			show:  []string{"memory.max 1073741824 (1G) FILE:10", "oom_score_adj 500 built-in", "protect editors built-in", "leftovers kill"},
			notes: []string{"FILE:11: oom_score_adj = -900"},
		},
		{
			name: "shadowing tests with looser limits",
			toml: `[policies.tests]
memory.max = "max"
pids.max = "max"
`,
			warnings: []string{
				`FILE:2: memory.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 75% = `,
				`FILE:3: pids.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (pids.max = 4096, built-in); ` +
					"set it in your own ~/.config/boxrun/policies.toml or with --set",
			},
			show:  []string{"pids.max 4096 built-in", "oom_score_adj 500 built-in", "protect editors built-in"},
			notes: []string{`FILE:2: memory.max = "max" in policy "tests" ignored`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := t.TempDir()
			sub := filepath.Join(project, "src")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			toml := filepath.Join(project, ".boxrun.toml")
			if err := os.WriteFile(toml, []byte(tt.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			file := func(s string) string { return strings.ReplaceAll(s, "FILE", toml) }
			t.Chdir(sub)
			t.Setenv("XDG_CONFIG_HOME", t.TempDir())
			t.Setenv("BOXRUN_POLICY_FILE", "")

			rec := &boxRecorder{}
			// --set protect= keeps the test from protecting this machine's editors.
			code, _, stderr := runBad(t, rec, []string{"--set", "protect=", "--", "true"}, allOpen)
			if code != 0 || rec.created != 1 {
				t.Fatalf("exit %d, %d boxes; the run must go on\n%s", code, rec.created, stderr)
			}
			for _, w := range tt.warnings {
				if n := countLinesWithPrefix(stderr, "boxrun: warning: "+file(w)); n != 1 {
					t.Errorf("%d lines start with %q, want 1\n%s", n, file(w), stderr)
				}
			}

			code, out, stderr := runCLI(t, "policy", "show", "tests")
			if code != 0 {
				t.Fatalf("policy show: exit %d\n%s", code, stderr)
			}
			collapsed := strings.Join(strings.Fields(out), " ")
			for _, want := range tt.show {
				if !strings.Contains(collapsed, file(want)) {
					t.Errorf("policy show lacks %q:\n%s", file(want), out)
				}
			}
			for _, n := range tt.notes {
				if countLinesWithPrefix(out, "note: "+file(n)) != 1 {
					t.Errorf("policy show does not note %q:\n%s", file(n), out)
				}
			}

			// policy list does not claim the project replaces tests whole.
			code, out, stderr = runCLI(t, "policy", "list")
			if code != 0 {
				t.Fatalf("policy list: exit %d\n%s", code, stderr)
			}
			var line string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "tests ") {
					line = l
				}
			}
			if !strings.Contains(line, file("FILE:")) || !strings.Contains(line, "(a project file: may only tighten built-in)") {
				t.Errorf("policy list does not say the project's tests may only tighten the built-in one: %q\n%s", line, out)
			}
		})
	}
}

// TestProjectFileKeepsMemoryLimit checks that the box gets the limit a
// project file tried to lift: the built-in tests policy's memory.max, 75%
// of the machine's memory.
func TestProjectFileKeepsMemoryLimit(t *testing.T) {
	mem, err := boxes.MachineMemory(box.Choice{Kind: box.KindAuto, User: box.DefaultUser()})
	if err != nil {
		t.Skipf("memory available unknown: %v", err)
	}
	limit, err := policy.Size{Percent: 75}.Resolve(policy.Env{MemoryBytes: mem})
	if err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, ".boxrun.toml"), []byte("[policies.tests]\nmemory.max = \"max\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(project)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("BOXRUN_POLICY_FILE", "")

	rec := &boxRecorder{}
	// --set protect= keeps the test from protecting this machine's editors.
	code, _, stderr := runBad(t, rec, []string{"--set", "protect=", "--", "true"}, allOpen)
	if code != 0 || rec.policy == nil {
		t.Fatalf("exit %d, no box; the run must go on\n%s", code, stderr)
	}
	if got := rec.policy.MemoryMax; got == nil || *got != limit || rec.policy.Origins["memory.max"].File != policy.OriginBuiltin {
		t.Errorf("the box got memory.max %v from %v, want %d from the built-in tests policy", got, rec.policy.Origins["memory.max"], limit)
	}
	if !strings.Contains(stderr, `memory.max = "max" in policy "tests" ignored`) {
		t.Errorf("no warning about the ignored memory.max:\n%s", stderr)
	}
}

func countLinesWithPrefix(s, prefix string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

func TestForeignSymlink(t *testing.T) {
	tests := []struct {
		name           string
		path, target   string
		owner, uid     int
		wantSubstrings []string // none: no warning
	}{
		{"own file through a symlink", "/home/u/p.toml", "/srv/p.toml", 1000, 1000, nil},
		{"root's file through a symlink", "/home/u/p.toml", "/etc/p.toml", 0, 1000, nil},
		{"another user's file, no symlink", "/home/v/p.toml", "/home/v/p.toml", 1001, 1000, nil},
		{"target unknown", "/home/u/p.toml", "", 1001, 1000, nil},
		{"another user's file through a symlink", "/home/u/p.toml", "/home/v/p.toml", 1001, 1000,
			[]string{"/home/u/p.toml is a symlink to /home/v/p.toml", "another user (uid 1001)"}},
		{"as root, a user's file through a symlink", "/root/p.toml", "/home/v/p.toml", 1001, 0,
			[]string{"/root/p.toml is a symlink to /home/v/p.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := foreignSymlink(tt.path, tt.target, tt.owner, tt.uid)
			if (got == "") != (len(tt.wantSubstrings) == 0) {
				t.Fatalf("foreignSymlink = %q", got)
			}
			for _, w := range tt.wantSubstrings {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

// TestForeignSymlinkWarned follows a real symlink to a file of another
// user; making that file needs root (chown).
func TestForeignSymlinkWarned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user (chown); TestForeignSymlink covers the decision")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "theirs.toml")
	if err := os.WriteFile(target, []byte("[policies.theirs]\npids.max = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(target, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "mine.toml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "-f", link, "policy", "list")
	want := "boxrun: warning: policy file " + link + " is a symlink to " + target + ", which belongs to another user (uid 4242); boxrun reads it anyway\n"
	if code != 0 || !strings.Contains(out, "theirs") || stderr != want {
		t.Errorf("exit %d, stdout\n%s\nstderr %q\nwant stderr %q", code, out, stderr, want)
	}
}
