package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCheck: policy check reports every error of every file, warns
// with file and line of what a run would ignore or is probably a mistake,
// exits 0 with warnings, 1 with errors, and 1 with warnings under --strict
// (issue #19).
func TestPolicyCheck(t *testing.T) {
	tests := []struct {
		name string
		// files are written to a directory of their own; args name them
		// as {NAME}, stdout and stderr as {NAME} too.
		files  map[string]string
		args   []string
		code   int
		stdout string   // exactly, "" for nothing
		stderr []string // exactly, line by line
	}{
		{
			name:   "one good policy",
			files:  map[string]string{"a.toml": "[policies.a]\nextends = \"tests\"\npids.max = 77\n"},
			args:   []string{"{a.toml}"},
			stdout: "ok: 1 policy in {a.toml}\n",
		},
		{
			name:   "two good policies",
			files:  map[string]string{"a.toml": "[policies.a]\npids.max = 77\n[policies.b]\npids.max = 78\n"},
			args:   []string{"{a.toml}"},
			stdout: "ok: 2 policies in {a.toml}\n",
		},
		{
			name: "every error of a file",
			files: map[string]string{"bad.toml": "[policies.a]\nmemory.mx = \"4G\"\npids.max = 0\n\n[policies.b]\n" +
				"memory.max = \"4GB\"\nMemoryHigh = \"2G\"\n"},
			args: []string{"{bad.toml}"},
			code: 1,
			stderr: []string{
				`boxrun: {bad.toml}:2: unknown key "memory.mx" in policy "a" (did you mean memory.max?)`,
				`boxrun: {bad.toml}:3: pids.max: 0 is out of range (use 1 or more, or "max")`,
				`boxrun: {bad.toml}:6: memory.max: "4GB" is not a size (did you mean "4G"? K, M, G and T are powers of 1024)`,
				`boxrun: {bad.toml}:7: unknown key "MemoryHigh" in policy "b" (did you mean memory.high? boxrun's keys are named after the cgroup v2 files, not systemd's properties)`,
				`boxrun: policy check: 4 errors in {bad.toml}`,
			},
		},
		{
			name: "every file",
			files: map[string]string{
				"x.toml": "[policies.x]\npids.max = 0\n",
				"y.toml": "[policies.y]\ncpu.weight = 0\n",
			},
			args: []string{"{x.toml}", "{y.toml}"},
			code: 1,
			stderr: []string{
				`boxrun: {x.toml}:2: pids.max: 0 is out of range (use 1 or more, or "max")`,
				`boxrun: {y.toml}:2: cpu.weight: 0 is out of range (use 1 to 10000; the default is 100)`,
				`boxrun: policy check: 2 errors in {x.toml}, {y.toml}`,
			},
		},
		{
			name:  "an error of many policies, once",
			files: map[string]string{"e.toml": "[policies.base2]\nextends = \"test\"\n[policies.a]\nextends = \"base2\"\n[policies.b]\nextends = \"base2\"\n"},
			args:  []string{"{e.toml}"},
			code:  1,
			stderr: []string{
				`boxrun: {e.toml}:2: extends: policy "base2" extends "test", which is not defined (did you mean tests?)`,
				`boxrun: policy check: 1 error in {e.toml}`,
			},
		},
		{
			name:   "a memory size in bytes is a warning",
			files:  map[string]string{"w.toml": "[policies.w]\nextends = \"tests\"\nmemory.max = 4096\n"},
			args:   []string{"{w.toml}"},
			stdout: "ok: 1 policy in {w.toml}, with 1 warning\n",
			stderr: []string{
				`boxrun: warning: {w.toml}:3: memory.max = 4096 in policy "w": 4096 bytes (4K) is less than 1M, too little memory for any command to run; a number without a unit counts bytes (did you mean "4096M"?)`,
			},
		},
		{
			name:  "--strict makes warnings fail",
			files: map[string]string{"w.toml": "[policies.w]\nmemory.high = \"8G\"\nmemory.max = \"4G\"\n"},
			args:  []string{"--strict", "{w.toml}"},
			code:  1,
			stderr: []string{
				`boxrun: warning: {w.toml}:2: memory.high = "8G" in policy "w": 8G is above memory.max 4G ({w.toml}:3): the box would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out`,
				`boxrun: policy check: 1 warning in {w.toml}, which --strict counts as errors`,
			},
		},
		{
			name:   "--strict without warnings",
			files:  map[string]string{"a.toml": "[policies.a]\nmemory.high = \"2G\"\nmemory.max = \"4G\"\n"},
			args:   []string{"{a.toml}", "--strict"},
			stdout: "ok: 1 policy in {a.toml}\n",
		},
		{
			name:  "-q hides the warnings, not the --strict failure",
			files: map[string]string{"w.toml": "[policies.w]\nmemory.max = 1\n"},
			args:  []string{"-q", "policy", "check", "--strict", "{w.toml}"},
			code:  1,
			stderr: []string{
				`boxrun: policy check: 1 warning in {w.toml}, which --strict counts as errors`,
			},
		},
		{
			name: "a project file: what a run would ignore",
			files: map[string]string{".boxrun.toml": "[policies.tests]\nextends = \"tests\"\npids.max = \"max\"\n" +
				"oom_score_adj = -100\nleftovers = \"keep\"\n\n[protect.mine]\nmatch = [\"vim\"]\n\n[slice]\npids.max = 99999\n"},
			args:   []string{"{.boxrun.toml}"},
			stdout: "ok: 1 policy in {.boxrun.toml}, with 5 warnings\n",
			stderr: []string{
				`boxrun: warning: {.boxrun.toml}:7: [protect.mine] ignored: a project file may not define protection groups, which change processes outside the box (define them in your own ~/.config/boxrun/policies.toml)`,
				`boxrun: warning: {.boxrun.toml}:10: [slice] ignored: a project file may not set the limits of the slice that holds every box (set them in your own ~/.config/boxrun/policies.toml)`,
				`boxrun: warning: {.boxrun.toml}:4: oom_score_adj = -100 in policy "tests" ignored: a project file may only make the command more likely to be OOM-killed (500 or more); set it in your own ~/.config/boxrun/policies.toml or with --set`,
				`boxrun: warning: {.boxrun.toml}:5: leftovers = "keep" in policy "tests" ignored: a project file may not keep processes alive after the command exits; set it in your own ~/.config/boxrun/policies.toml or with --set`,
				`boxrun: warning: {.boxrun.toml}:3: pids.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (pids.max = 4096, built-in); set it in your own ~/.config/boxrun/policies.toml or with --set`,
			},
		},
		{
			name:   "the same file through -f is trusted, as in a run",
			files:  map[string]string{".boxrun.toml": "[policies.tests]\nextends = \"tests\"\nleftovers = \"keep\"\n"},
			args:   []string{"-f", "{.boxrun.toml}"},
			stdout: "ok: 5 policies in the policy lookup\n",
		},
		{
			name:   "a file that cannot be read, and one with an error: both",
			files:  map[string]string{"x.toml": "[policies.x]\npids.max = 0\n"},
			args:   []string{"{missing.toml}", "{x.toml}"},
			code:   1,
			stderr: []string{"boxrun: policy file {missing.toml}: open {missing.toml}: no such file or directory", `boxrun: {x.toml}:2: pids.max: 0 is out of range (use 1 or more, or "max")`, "boxrun: policy check: 2 errors in {missing.toml}, {x.toml}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(t.TempDir()) // no .boxrun.toml above the working directory
			expand := func(s string) string {
				for i := strings.Index(s, "{"); i >= 0; i = strings.Index(s, "{") {
					j := strings.Index(s[i:], "}")
					if j < 0 || strings.ContainsAny(s[i+1:i+j], " \"") {
						break
					}
					s = s[:i] + filepath.Join(dir, s[i+1:i+j]) + s[i+j+1:]
				}
				return s
			}
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"policy", "check"}
			if len(tt.args) > 0 && tt.args[0] == "-q" {
				args = nil
			}
			for _, a := range tt.args {
				args = append(args, expand(a))
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if want := expand(tt.stdout); stdout != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
			}
			var want []string
			for _, l := range tt.stderr {
				want = append(want, expand(l))
			}
			if got := strings.TrimSuffix(stderr, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}
