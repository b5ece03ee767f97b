//go:build boxrunguest

package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSliceBudgetIsShared: the [slice] limits are written to the slice that
// holds every box, and two boxes that each fit their own memory.max but not
// the slice's together are stopped at the slice.
func TestSliceBudgetIsShared(t *testing.T) {
	pf := policyFile(t, fmt.Sprintf(basePolicy, "")+"\n[slice]\nmemory.high = \"max\"\nmemory.max = \"200M\"\npids.max = 500\n")
	self, _ := os.Executable()
	// Both hogs start allocating only once both boxes run, so that they
	// are sure to overlap.
	syncDir := t.TempDir()
	script := `cg=$(sed -n 's/^0:://p' /proc/self/cgroup); s=/sys/fs/cgroup$(dirname $cg); ` +
		`echo "slice_max=$(cat $s/memory.max)"; echo "slice_pids=$(cat $s/pids.max)"; ` +
		fmt.Sprintf(`touch %s/ready.$$; while [ ! -e %s/go ]; do sleep 0.1; done; `, syncDir, syncDir) +
		fmt.Sprintf(`%s=hog HOG_MB=120 HOG_HOLD=6s %s; echo "hog=$?"`, roleEnv, self)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = runBoxrun(t, "-f", pf, "-p", "it", "--set", "memory.max=150M", "--set", "memory.high=max", "--set", "memory.backpressure=false", "--", "sh", "-c", script)
		}(i)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready, _ := filepath.Glob(filepath.Join(syncDir, "ready.*"))
		if len(ready) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two boxes never both ran (ready: %v)", ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(syncDir, "go"), nil, 0o644)
	wg.Wait()
	killed := 0
	for i, r := range res {
		f := fields(r.stdout)
		if f["slice_max"] != fmt.Sprint(200<<20) || f["slice_pids"] != "500" {
			t.Errorf("run %d: slice memory.max %q, pids.max %q; want %d and 500\n%s", i, f["slice_max"], f["slice_pids"], 200<<20, r.stderr)
		}
		if f["hog"] != "0" {
			killed++
		}
	}
	t.Logf("figures: two boxes of 150M max each holding 120M in a 200M slice: %d of 2 killed at the slice", killed)
	if killed == 0 {
		t.Errorf("both 120M hogs lived in a 200M slice: the slice's budget is not in force\n%s\n%s", res[0].stdout, res[1].stdout)
	}
	// Each hog fits its own box (150M): a kill can only be the slice's.
}

// TestNestedBoxrunStaysInItsBox: boxrun run inside a box runs the command
// in that box, saying so, instead of escaping to a box of its own.
func TestNestedBoxrunStaysInItsBox(t *testing.T) {
	pf := itPolicy(t, "max_concurrent = 1")
	inner := fmt.Sprintf(`%s -f %s -p it -- sh -c 'echo inner=$(sed -n "s/^0:://p" /proc/self/cgroup)'`, boxrunBin(t), pf)
	r := boxrun(t, "-f", pf, "-p", "it", "--", "sh", "-c", `echo outer=$(sed -n 's/^0:://p' /proc/self/cgroup); `+inner)
	f := fields(r.stdout)
	if r.code != 0 || f["outer"] == "" || f["inner"] != f["outer"] {
		t.Errorf("nested run: exit %d, outer cgroup %q, inner %q; want the same box (and no wait for the slot the outer run holds)", r.code, f["outer"], f["inner"])
	}
	if !strings.Contains(r.stderr, "already inside box") {
		t.Errorf("the nested run did not say it runs in the outer box: %q", r.stderr)
	}
}

// runBoxrun runs boxrun with the mode's backend flags from any goroutine
// (it reports no test failure itself).
func runBoxrun(t *testing.T, args ...string) result {
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return result{code: shellCode(cmd.ProcessState), stdout: out.String(), stderr: errb.String()}
}

// TestCargoShimBoxesTests installs the cargo shim and runs the real cargo
// through it on the test crate: cargo test lands in a box (boxrun's report
// follows it), cargo build does not, and nothing recurses.
func TestCargoShimBoxesTests(t *testing.T) {
	cargo, crate := os.Getenv("BOXRUN_IT_CARGO"), os.Getenv("BOXRUN_IT_CRATE")
	if cargo == "" || crate == "" {
		t.Fatal("BOXRUN_IT_CARGO and BOXRUN_IT_CRATE are not set: the host found no cargo to build integration/testdata/memcrate with")
	}
	dir := t.TempDir()
	r := boxrunRaw(t, "install", "cargo-hook", "--shim", dir)
	if r.code != 0 {
		t.Fatalf("install cargo-hook: exit %d: %s", r.code, r.stderr)
	}
	path := dir + ":" + filepath.Dir(cargo) + ":" + os.Getenv("PATH")
	run := func(args string) (string, int) {
		cmd := exec.Command("sh", "-c", "cd "+crate+" && MEMCRATE_MIB=4 MEMCRATE_MILLIS=10 cargo "+args)
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, _ := cmd.CombinedOutput()
		return string(out), shellCode(cmd.ProcessState)
	}
	out, code := run("test --offline -q -- --test-threads=4")
	if code != 0 || !strings.Contains(out, "48 passed") || !strings.Contains(out, "boxrun: tests ·") {
		t.Errorf("cargo test through the shim: exit %d, want the tests passing in a box (boxrun's report):\n%s", code, out)
	}
	out, code = run("build --offline -q")
	if code != 0 || strings.Contains(out, "boxrun:") {
		t.Errorf("cargo build through the shim: exit %d, want it run straight, unboxed:\n%s", code, out)
	}
	if r := boxrunRaw(t, "uninstall", "cargo-hook", "--shim", dir); r.code != 0 {
		t.Errorf("uninstall cargo-hook: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "cargo")); !os.IsNotExist(err) {
		t.Errorf("the shim is still there after uninstall: %v", err)
	}
}
