package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/policy"
)

func TestComplete(t *testing.T) {
	builtin := func(string) *policy.Stack { return &policy.Stack{Files: []*policy.File{policy.Builtin()}} }
	policies := []string{"base", "build", "check", "strict", "tests"}
	tests := []struct {
		name  string
		words []string
		want  []string // exactly these candidates
		has   []string // at least these
		dir   string   // the directives line
	}{
		{"commands or a command to run", []string{""}, nil, []string{"policy", "status", "help", "version", "completion"}, ":command=0"},
		{"command prefix", []string{"po"}, []string{"policy"}, nil, ":command=0"},
		{"hidden command not offered", []string{"__"}, nil, nil, ":command=0"},
		{"root flags", []string{"--po"}, []string{"--policy", "--policy-file"}, nil, ":"},
		{"policy subcommands", []string{"policy", ""}, []string{"list", "show", "check", "export"}, nil, ":"},
		{"policy names for show", []string{"policy", "show", ""}, policies, nil, ":"},
		{"one policy name only", []string{"policy", "show", "tests", ""}, nil, nil, ":"},
		{"policy names for -p", []string{"-p", "t"}, []string{"tests"}, nil, ":"},
		{"policy names after -qp", []string{"-qp", ""}, policies, nil, ":"},
		{"policy names for --policy=", []string{"--policy=s"}, []string{"--policy=strict"}, nil, ":"},
		{"bash split --policy = s", []string{"--policy", "=", "s"}, []string{"strict"}, nil, ":"},
		{"bash split --policy =", []string{"--policy", "="}, policies, nil, ":"},
		{"set keys", []string{"--set", "cpu."}, []string{"cpu.weight=", "cpu.max="}, nil, ":nospace"},
		{"set keys in policy show", []string{"policy", "show", "--set", "pids"}, []string{"pids.max="}, nil, ":nospace"},
		{"backend", []string{"--backend", ""}, []string{"auto", "systemd", "cgroupfs", "none"}, nil, ":"},
		{"export format", []string{"policy", "export", "--format", "o"}, []string{"oci"}, nil, ":"},
		{"policy file", []string{"-f", ""}, nil, nil, ":files"},
		{"check files", []string{"policy", "check", ""}, nil, nil, ":files"},
		{"subcommand flags", []string{"policy", "list", "--"}, []string{"--help", "--json", "--policy-file"}, nil, ":"},
		{"gc flags", []string{"gc", "-"}, nil, []string{"--dry-run", "--kept", "-h"}, ":"},
		{"shells", []string{"completion", ""}, []string{"bash", "zsh", "fish"}, nil, ":"},
		{"install targets", []string{"install", "c"}, []string{"cargo-hook"}, nil, ":"},
		{"help topics", []string{"help", "ver"}, []string{"version"}, nil, ":"},
		{"after --", []string{"-p", "build", "--", "ma"}, nil, nil, ":command=3"},
		{"after -- and its arguments", []string{"--", "make", "-j"}, nil, nil, ":command=1"},
		{"command without --", []string{"-q", "cargo", "te"}, nil, nil, ":command=1"},
		{"after split --policy=x --", []string{"--policy", "=", "tests", "--", ""}, nil, nil, ":command=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := complete(tt.words, builtin)
			if tt.want != nil && !slices.Equal(c.words, tt.want) || tt.want == nil && tt.has == nil && len(c.words) > 0 {
				t.Errorf("got %q, want %q", c.words, tt.want)
			}
			for _, w := range tt.has {
				if !slices.Contains(c.words, w) {
					t.Errorf("got %q, want %q among them", c.words, w)
				}
			}
			if got := c.directives(); got != tt.dir {
				t.Errorf("directives %q, want %q", got, tt.dir)
			}
		})
	}
}

// asBoxrun returns a directory with a boxrun that is this test binary
// (see TestMain), and the environment that makes it act as boxrun.
func asBoxrun(t *testing.T) (dir string, env []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "boxrun")); err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	env = append(os.Environ(), "BOXRUN_TEST_AS_MAIN=1", "BOXRUN_POLICY_FILE=", "XDG_CONFIG_HOME="+cfg, "PATH="+dir+":"+os.Getenv("PATH"))
	return dir, env
}

// completionScript writes `boxrun completion SHELL` to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, stderr := runCLI(t, "completion", shell)
	if code != 0 {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
	}
	return writeFile(t, "boxrun."+shell, out)
}

// TestBashCompletion sources the bash script in a real bash, with and
// without bash-completion, and calls its function as bash would.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed for this test: %v", err)
	}
	script := completionScript(t, "bash")
	_, env := asBoxrun(t)
	tests := []struct {
		name  string
		words []string // COMP_WORDS; the last is completed
		has   []string
		not   []string
	}{
		{"commands", []string{"boxrun", "pol"}, []string{"policy"}, []string{"status"}},
		{"policy names", []string{"boxrun", "policy", "show", ""}, []string{"tests", "strict"}, []string{"list"}},
		{"set keys", []string{"boxrun", "--set", "memory.m"}, []string{"memory.max="}, []string{"pids.max="}},
		{"split --policy=", []string{"boxrun", "--policy", "=", "st"}, []string{"strict"}, []string{"--policy=strict"}},
		{"the wrapped command's name", []string{"boxrun", "-p", "tests", "--", "fakecm"}, []string{"fakecmd"}, nil},
		{"boxrun's commands and programs without --", []string{"boxrun", "fakecm"}, []string{"fakecmd"}, nil},
	}
	run := func(t *testing.T, withBashCompletion bool, words []string) []string {
		t.Helper()
		var prog strings.Builder
		if withBashCompletion {
			prog.WriteString("source /usr/share/bash-completion/bash_completion || exit 3\n")
		}
		prog.WriteString("source \"$1\" || exit 4\ncomplete -p boxrun || exit 5\n")
		prog.WriteString("fakecmd() { :; }\ncomplete -W 'alpha beta' fakecmd\n")
		prog.WriteString("shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}\n")
		prog.WriteString("_boxrun boxrun \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\nprintf 'reply:%s\\n' \"${COMPREPLY[@]}\"\n")
		cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", prog.String(), "bash", script}, words...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "-F _boxrun boxrun") {
			t.Errorf("complete -p boxrun does not name _boxrun:\n%s", out)
		}
		var reply []string
		for _, l := range strings.Split(string(out), "\n") {
			if r, ok := strings.CutPrefix(l, "reply:"); ok {
				reply = append(reply, r)
			}
		}
		return reply
	}
	modes := []bool{false}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err == nil {
		modes = append(modes, true)
	} else {
		t.Log("bash-completion is not installed: testing the script without it only")
	}
	for _, withBC := range modes {
		for _, tt := range tests {
			t.Run(tt.name+map[bool]string{true: " with bash-completion", false: ""}[withBC], func(t *testing.T) {
				reply := run(t, withBC, tt.words)
				for _, w := range tt.has {
					if !slices.Contains(reply, w) {
						t.Errorf("COMPREPLY %q lacks %q", reply, w)
					}
				}
				for _, w := range tt.not {
					if slices.Contains(reply, w) {
						t.Errorf("COMPREPLY %q has %q", reply, w)
					}
				}
			})
		}
		if withBC {
			t.Run("the wrapped command's own completion", func(t *testing.T) {
				reply := run(t, true, []string{"boxrun", "--", "fakecmd", "al"})
				if !slices.Equal(reply, []string{"alpha"}) {
					t.Errorf("COMPREPLY %q, want [alpha] from fakecmd's completion", reply)
				}
			})
		}
	}
}

// TestZshFishCompletion checks that the zsh and fish scripts parse, and
// asks fish for real completions; a shell that is not installed fails
// the test with what to install (make test's packages include both).
func TestZshFishCompletion(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			path, err := exec.LookPath(shell)
			if err != nil {
				t.Fatalf("%s is not installed (apt-get install %s): its completion cannot be checked", shell, shell)
			}
			script := completionScript(t, shell)
			if out, err := exec.Command(path, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Fatalf("fish is not installed (apt-get install fish): %v", err)
	}
	script := completionScript(t, "fish")
	_, env := asBoxrun(t)
	for _, tt := range []struct{ line, want string }{
		{"boxrun policy sh", "show"},
		{"boxrun policy show st", "strict"},
		{"boxrun --backend sys", "systemd"},
	} {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, tt.line)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		if !slices.Contains(strings.Split(strings.TrimSpace(string(out)), "\n"), tt.want) {
			t.Errorf("fish completes %q to %q, want %q among them", tt.line, out, tt.want)
		}
	}
}
