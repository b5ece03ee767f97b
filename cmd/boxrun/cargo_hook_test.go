package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stub writes an executable shell script.
func stub(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runShim runs the shim with PATH and extra environment, returning its
// output (stdout and stderr) and exit status.
func runShim(t *testing.T, shim, path string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(shim, args...)
	// Where the shim looks for its own cgroup: outside any box unless
	// the case says otherwise, wherever the tests themselves run.
	cmd.Env = append([]string{"PATH=" + path, "HOME=/nonexistent", "BOXRUN_SHIM_CGROUP_FILE=" + cgFile(t, "0::/user.slice/session-1.scope\n")}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

func TestCargoShimDispatch(t *testing.T) {
	root := t.TempDir()
	shimDir, realDir, other := filepath.Join(root, "shim"), filepath.Join(root, "real"), filepath.Join(root, "other")
	boxrun := filepath.Join(root, "boxrun")
	stub(t, boxrun, `echo "boxrun $*"`)
	stub(t, filepath.Join(realDir, "cargo"), `echo "real-cargo $*"`)
	if _, err := installShim(shimDir, boxrun); err != nil {
		t.Fatal(err)
	}
	// A second copy of the shim earlier on PATH than the real cargo: it
	// must be skipped, not run (that would recurse).
	if _, err := installShim(other, boxrun); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(shimDir, "cargo")
	path := strings.Join([]string{shimDir, other, realDir, "/usr/bin", "/bin"}, ":")
	real := filepath.Join(realDir, "cargo")
	boxed := func(args string) string { return "boxrun --policy tests -- " + real + " " + args }
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"test is boxed", nil, []string{"test"}, boxed("test")},
		{"t is test", nil, []string{"t", "--", "--nocapture"}, boxed("t -- --nocapture")},
		{"bench", nil, []string{"bench"}, boxed("bench")},
		{"nextest", nil, []string{"nextest", "run"}, boxed("nextest run")},
		{"miri test", nil, []string{"miri", "test"}, boxed("miri test")},
		{"miri run is not", nil, []string{"miri", "run"}, "real-cargo miri run"},
		{"build is not", nil, []string{"build", "--release"}, "real-cargo build --release"},
		{"no subcommand", nil, []string{"--version"}, "real-cargo --version"},
		{"toolchain first", nil, []string{"+nightly", "test"}, boxed("+nightly test")},
		{"global flags first", nil, []string{"--locked", "-q", "test"}, boxed("--locked -q test")},
		{"global option with a value", nil, []string{"-C", "test", "build"}, "real-cargo -C test build"},
		{"--color value", nil, []string{"--color", "always", "test"}, boxed("--color always test")},
		{"another policy", []string{"BOXRUN_CARGO_POLICY=check"}, []string{"test"}, "boxrun --policy check -- " + real + " test"},
		{"inside a box already", []string{"BOXRUN_SHIM_CGROUP_FILE=" + cgFile(t, "0::/user.slice/boxrun.slice/boxrun-tests-1a2b3c4d.scope\n")}, []string{"test"}, "real-cargo test"},
		{"inside a cgroupfs box, below its frozen child", []string{"BOXRUN_SHIM_CGROUP_FILE=" + cgFile(t, "0::/boxrun.slice/boxrun-tests-1a2b3c4d/boxrun.paused\n")}, []string{"test"}, "real-cargo test"},
		{"a stale BOXRUN_CGROUP is not a box", []string{"BOXRUN_CGROUP=/user.slice", "BOXRUN_SHIM_CGROUP_FILE=" + cgFile(t, "0::/user.slice/user-1000.slice/session-2.scope\n")}, []string{"test"}, boxed("test")},
		{"a name like a box's is not one", []string{"BOXRUN_SHIM_CGROUP_FILE=" + cgFile(t, "0::/user.slice/boxrun-tests-notahexid.scope\n")}, []string{"test"}, boxed("test")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := runShim(t, shim, path, tt.env, tt.args...)
			if code != 0 || got != tt.want {
				t.Errorf("cargo %v: %q (exit %d), want %q", tt.args, got, code, tt.want)
			}
		})
	}
	t.Run("no real cargo", func(t *testing.T) {
		got, code := runShim(t, shim, shimDir+":"+other+":/usr/bin:/bin", nil, "build")
		if code != 127 || !strings.Contains(got, "no cargo found") {
			t.Errorf("%q (exit %d), want 127 and why", got, code)
		}
	})
}

func TestCargoShimOverAWrapper(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bin")
	boxrun := filepath.Join(root, "boxrun")
	stub(t, boxrun, `echo "boxrun $*"`)
	wrapper := filepath.Join(dir, "cargo")
	stub(t, wrapper, `echo "wrapper $*"`)
	before, _ := os.ReadFile(wrapper)
	did, err := installShim(dir, boxrun)
	if err != nil || !strings.Contains(did, "moved your") {
		t.Fatalf("install over a wrapper: %q, %v", did, err)
	}
	path := dir + ":/usr/bin:/bin"
	if got, _ := runShim(t, wrapper, path, nil, "build"); got != "wrapper build" {
		t.Errorf("cargo build: %q, want the wrapper's", got)
	}
	if got, _ := runShim(t, wrapper, path, nil, "test"); got != "boxrun --policy tests -- "+wrapper+origSuffix+" test" {
		t.Errorf("cargo test: %q, want boxrun running the wrapper", got)
	}
	// Installing again updates the shim and keeps the wrapper.
	if did, err := installShim(dir, boxrun); err != nil || !strings.HasPrefix(did, "updated") {
		t.Errorf("second install: %q, %v", did, err)
	}
	had, err := uninstallShim(dir)
	if !had || err != nil {
		t.Fatalf("uninstall: %v, %v", had, err)
	}
	after, _ := os.ReadFile(wrapper)
	if string(after) != string(before) {
		t.Errorf("the wrapper is not back: %q", after)
	}
	if _, err := os.Stat(wrapper + origSuffix); !os.IsNotExist(err) {
		t.Errorf("%s left behind", wrapper+origSuffix)
	}
	if had, _ := uninstallShim(dir); had {
		t.Errorf("uninstall removed the user's own cargo")
	}
}

func TestShimPathProblem(t *testing.T) {
	root := t.TempDir()
	shim, other := filepath.Join(root, "shim"), filepath.Join(root, "other")
	stub(t, filepath.Join(other, "cargo"), "true")
	if p := shimPathProblem(shim, shim+":"+other); p != "" {
		t.Errorf("shim first: %q", p)
	}
	if p := shimPathProblem(shim, other+":"+shim); !strings.Contains(p, "comes before") {
		t.Errorf("cargo before the shim: %q", p)
	}
	if p := shimPathProblem(shim, "/usr/bin"); !strings.Contains(p, "not on PATH") {
		t.Errorf("not on PATH: %q", p)
	}
}

func TestCargoConfigRunnerRoundTrip(t *testing.T) {
	for name, config := range map[string]string{
		"empty":              "",
		"newline at the end": "[build]\njobs = 8\n",
		"no final newline":   "[build]\njobs = 8",
		"other targets":      "[target.x86_64-unknown-linux-gnu]\nlinker = \"clang\"\n\n[alias]\nt = \"test\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			with, err := addRunner([]byte(config), "/usr/local/bin/box run")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(with), "[target.'cfg(all())']\nrunner = [\"/usr/local/bin/box run\", \"--policy\", \"tests\", \"--\"]\n") ||
				!strings.HasPrefix(string(with), config) {
				t.Errorf("config with the runner:\n%s", with)
			}
			if _, err := addRunner(with, "/x"); err == nil {
				t.Errorf("a second install was accepted")
			}
			back, had, err := removeRunner(with)
			if err != nil || !had || string(back) != config {
				t.Errorf("after uninstall: %q (had %v, err %v), want %q", back, had, err, config)
			}
		})
	}
	if _, err := addRunner([]byte("[target.\"cfg(all())\"]\nrunner = \"valgrind\"\n"), "/x"); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("a config with the table already: %v", err)
	}
	if out, had, err := removeRunner([]byte("[build]\n")); had || err != nil || string(out) != "[build]\n" {
		t.Errorf("uninstall without the hook: %q, %v, %v", out, had, err)
	}
	edited, _ := addRunner([]byte("[build]\n"), "/x")
	edited = []byte(strings.Replace(string(edited), configEnd, "", 1))
	if _, _, err := removeRunner(edited); err == nil || !strings.Contains(err.Error(), "edited by hand") {
		t.Errorf("a hand-edited block: %v", err)
	}
}

// cgFile writes a /proc/self/cgroup stand-in for the shim.
func cgFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
