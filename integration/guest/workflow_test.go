//go:build boxrunguest

package guest

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
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
			// Each hog fits its own box: the report must not blame the
			// box's limit, and where the kernel log names the cgroup at
			// its limit (as root), it names the slice.
			if strings.Contains(r.stderr, "in this box at memory.max") || !strings.Contains(r.stderr, "around the box") {
				t.Errorf("run %d: the report blames the box's own limit for the slice's kill, or names nothing around the box:\n%s", i, r.stderr)
			}
			if mode(t) != "user" && !strings.Contains(r.stderr, "boxrun.slice, around the box, reached its limit") {
				t.Errorf("run %d: the kernel log names the slice's limit (oom_memcg), the report does not:\n%s", i, r.stderr)
			}
		}
	}
	t.Logf("figures: two boxes of 150M max each holding 120M in a 200M slice: %d of 2 killed at the slice", killed)
	if killed == 0 {
		t.Errorf("both 120M hogs lived in a 200M slice: the slice's budget is not in force\n%s\n%s", res[0].stdout, res[1].stdout)
	}
	// Each hog fits its own box (150M): a kill can only be the slice's.
}

// sliceMaxScript prints the memory.max of the slice that holds the box.
const sliceMaxScript = `cg=$(sed -n 's/^0:://p' /proc/self/cgroup); echo "slice_max=$(cat /sys/fs/cgroup$(dirname $cg)/memory.max)"`

// TestSliceBudgetIgnoresTheCaller: the [slice] percentages are of the
// machine, not of the cgroup boxrun is started from (issue #17, item 8):
// a run from a cgroup limited to 64M gives boxrun.slice 85% of the guest's
// memory, not 85% of 64M.
func TestSliceBudgetIgnoresTheCaller(t *testing.T) {
	pf := policyFile(t, fmt.Sprintf(basePolicy, "")+"\n[slice]\nmemory.high = \"max\"\nmemory.max = \"85%\"\n")
	args := append(backendArgs(t), "-f", pf, "-p", "it", "--", "sh", "-c", sliceMaxScript)
	var cmd *exec.Cmd
	if sr := systemdRun(t, "-p", "MemoryMax=64M"); sr != nil {
		cmd = exec.Command(sr[0], append(append(sr[1:], boxrunBin(t)), args...)...)
	} else {
		// Without systemd: a child of the root limited to 64M holds the
		// caller; the boxes go below the root, which boxrun, no longer
		// running there, is told of.
		const caller = "/sys/fs/cgroup/itcaller"
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0); err != nil {
			t.Fatalf("enabling memory below the root: %v", err)
		}
		if err := os.Mkdir(caller, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(caller) })
		if err := os.WriteFile(caller+"/memory.max", []byte("67108864"), 0); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("sh", append([]string{"-c", `echo $$ > ` + caller + `/cgroup.procs && exec "$@"`, "sh", boxrunBin(t)}, args...)...)
		cmd.Env = append(os.Environ(), "BOXRUN_CGROUP_PARENT=/sys/fs/cgroup")
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, errb.String())
	}
	memTotal, err := procfs.ReadMeminfo("MemTotal")
	if err != nil {
		t.Fatal(err)
	}
	memTotalKB := memTotal / 1024
	want := uint64(math.Floor(0.85 * float64(memTotalKB*1024)))
	want -= want % 4096
	got := fields(out.String())["slice_max"]
	t.Logf("figures: a caller limited to 64M, MemTotal %d kB: slice memory.max %s (85%% of the machine is %d, of 64M 57042944)", memTotalKB, got, want)
	if got != strconv.FormatUint(want, 10) {
		t.Errorf("slice memory.max %q, want %d (85%% of MemTotal %d kB), whatever the caller's limit\nstdout:\n%s\nstderr:\n%s", got, want, memTotalKB, out.String(), errb.String())
	}
}

// TestLiveSliceIsNotLowered: a run whose [slice] memory.max is below what
// the slice holds leaves the slice's limit as it is and says so, and the
// box holding the memory lives on (issue #17, item 8); once the slice
// holds less, the next run lowers it.
func TestLiveSliceIsNotLowered(t *testing.T) {
	slice := func(max string) string {
		return policyFile(t, fmt.Sprintf(basePolicy, "")+"\n[slice]\nmemory.high = \"max\"\nmemory.max = \""+max+"\"\n")
	}
	big, small := slice("600M"), slice("100M")
	self, _ := os.Executable()
	flat := t.TempDir()
	var holder result
	done := make(chan struct{})
	go func() {
		defer close(done)
		holder = runBoxrun(t, "-f", big, "-p", "it", "--set", "memory.max=300M", "--set", "memory.high=max", "--set", "memory.backpressure=false", "--",
			"sh", "-c", sliceMaxScript+fmt.Sprintf(`; %s=hog HOG_MB=150 HOG_HOLD=8s HOG_FLAT=%s %s; echo "hog=$?"`, roleEnv, flat, self))
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if held, _ := os.ReadDir(flat); len(held) > 0 {
			break
		}
		select {
		case <-done:
			t.Fatalf("the 150M box ended before it held its memory:\n%s\n%s", holder.stdout, holder.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the 150M box never held its memory")
		}
		time.Sleep(100 * time.Millisecond)
	}
	lower := boxrun(t, "-f", small, "-p", "it", "--", "sh", "-c", sliceMaxScript)
	<-done
	after := boxrun(t, "-f", small, "-p", "it", "--", "sh", "-c", sliceMaxScript)
	t.Logf("figures: slice memory.max while 150M is held: %s (asked 100M); after: %s", fields(lower.stdout)["slice_max"], fields(after.stdout)["slice_max"])
	if got := fields(lower.stdout)["slice_max"]; got != fmt.Sprint(600<<20) {
		t.Errorf("while the slice holds 150M, a run asking for 100M set its memory.max to %q, want it left at %d\n%s", got, 600<<20, lower.stderr)
	}
	if !strings.Contains(lower.stderr, "boxrun.slice holds") || !strings.Contains(lower.stderr, "its memory.max stays at 600M, not the 100M of [slice] memory.max") {
		t.Errorf("the run that left the slice's limit did not say why:\n%s", lower.stderr)
	}
	if f := fields(holder.stdout); f["slice_max"] != fmt.Sprint(600<<20) || f["hog"] != "0" {
		t.Errorf("the box holding 150M: slice memory.max %q, hog exit %q; want %d and 0 (not killed at the slice)\n%s", f["slice_max"], f["hog"], 600<<20, holder.stderr)
	}
	if got := fields(after.stdout)["slice_max"]; got != fmt.Sprint(100<<20) || strings.Contains(after.stderr, "boxrun.slice holds") {
		t.Errorf("once the slice holds less, a run asking for 100M: slice memory.max %q, want %d, without a warning\n%s", got, 100<<20, after.stderr)
	}
}

// nestScript is a shell script for the nested scenarios: run as
// `sh SCRIPT LEVEL [MAX...]`, it prints its cgroup and that cgroup's
// memory.max as cgLEVEL= and maxLEVEL=; with a MAX left, runs boxrun (auto
// backend, as a cargo shim would) with memory.max=MAX on itself at the next
// level, and prints that run's exit status (codeLEVEL=), whether its box
// is gone (leftLEVEL=), and the cgroup its own shell is in after
// (ownLEVEL=).
const nestScript = `level=$1; shift
cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
echo "cg$level=$cg"
echo "max$level=$(cat /sys/fs/cgroup$cg/memory.max)"
if [ $# -gt 0 ]; then
	next=$1; shift
	out=$(%[1]s -f %[2]s -p it --set memory.max=$next --set memory.high=max -- sh %[3]s $((level+1)) "$@")
	echo "code$level=$?"
	echo "$out"
	inner=$(echo "$out" | sed -n "s/^cg$((level+1))=//p")
	if [ -d "/sys/fs/cgroup$inner" ]; then echo "left$level=yes"; else echo "left$level=no"; fi
fi
echo "own$level=$(sed -n 's/^0:://p' /proc/self/cgroup)"
`

// runNested runs the outer box (memory.max 128M) with nestScript, each
// nested run at the next memory.max of maxes, and returns the run and the
// fields it printed. The policy allows one run at a time: a nested run
// must not wait for the slot its outer run holds.
func runNested(t *testing.T, maxes ...string) (result, map[string]string) {
	t.Helper()
	pf := itPolicy(t, "max_concurrent = 1")
	script := filepath.Join(t.TempDir(), "nest.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(nestScript, boxrunBin(t), pf, script)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := boxrun(t, append([]string{"-f", pf, "-p", "it", "--set", "memory.max=128M", "--set", "memory.high=max", "--", "sh", script, "1"}, maxes...)...)
	return r, fields(r.stdout)
}

// nestedIn matches the cgroup of a box nested in the box at outer.
func nestedIn(outer string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(outer) + `/boxrun-it-[0-9a-f]{8}$`)
}

// TestNestedRunGetsItsOwnBox: boxrun run inside a box makes its box inside
// that box, with its own policy's limits (issue #17, item 3): a tighter
// memory.max is in the nested box's own memory.max file, the outer box's
// processes move to its boxrun.outer, the nested box goes when its run
// ends, and the nested run does not wait for the slot its outer run holds.
func TestNestedRunGetsItsOwnBox(t *testing.T) {
	r, f := runNested(t, "64M")
	if r.code != 0 || f["code1"] != "0" {
		t.Fatalf("nested run: exit %d, nested exit %q\n%s", r.code, f["code1"], r.stderr)
	}
	t.Logf("figures: outer box %s (memory.max %s), nested box %s (memory.max %s), outer shell after in %s", f["cg1"], f["max1"], f["cg2"], f["max2"], f["own1"])
	if !nestedIn(f["cg1"]).MatchString(f["cg2"]) {
		t.Errorf("the nested run's cgroup is %q, want a box inside the outer box %q", f["cg2"], f["cg1"])
	}
	if f["max1"] != fmt.Sprint(128<<20) || f["max2"] != fmt.Sprint(64<<20) {
		t.Errorf("memory.max: outer %q, nested %q; want %d and %d", f["max1"], f["max2"], 128<<20, 64<<20)
	}
	if f["own1"] != f["cg1"]+"/boxrun.outer" {
		t.Errorf("the outer box's shell is in %q after the nested run, want %q", f["own1"], f["cg1"]+"/boxrun.outer")
	}
	if f["left1"] != "no" {
		t.Errorf("the nested box %s is left after its run", f["cg2"])
	}
	if !strings.Contains(r.stderr, "gets a box of its own") {
		t.Errorf("the nested run did not say it makes its box in the outer one: %q", r.stderr)
	}
}

// TestNestedRunNestsInTheInnermostBox: a boxrun inside a nested box makes
// its box in that box, the innermost, not in the outermost one.
func TestNestedRunNestsInTheInnermostBox(t *testing.T) {
	r, f := runNested(t, "64M", "32M")
	if r.code != 0 || f["code1"] != "0" || f["code2"] != "0" {
		t.Fatalf("nested runs: exit %d, nested exits %q and %q\n%s", r.code, f["code1"], f["code2"], r.stderr)
	}
	t.Logf("figures: boxes %s > %s > %s, memory.max %s > %s > %s", f["cg1"], f["cg2"], f["cg3"], f["max1"], f["max2"], f["max3"])
	if !nestedIn(f["cg1"]).MatchString(f["cg2"]) || !nestedIn(f["cg2"]).MatchString(f["cg3"]) {
		t.Errorf("cgroups %q > %q > %q: want each box inside the one before", f["cg1"], f["cg2"], f["cg3"])
	}
	if f["max3"] != fmt.Sprint(32<<20) {
		t.Errorf("the innermost box's memory.max is %q, want %d", f["max3"], 32<<20)
	}
	if f["own2"] != f["cg2"]+"/boxrun.outer" || f["own3"] != f["cg3"] {
		t.Errorf("after the runs the shells are in %q and %q, want %q and %q", f["own2"], f["own3"], f["cg2"]+"/boxrun.outer", f["cg3"])
	}
}

// TestNestedStrictRefusedWhereNotDelegated: inside a box boxrun may not
// divide (a scope named like a box but started without Delegate=yes; a
// cgroupfs box of root's, for another user), a nested run refuses under
// --strict, saying why, and otherwise runs in that box with one warning,
// even under -q (issue #17, item 3).
func TestNestedStrictRefusedWhereNotDelegated(t *testing.T) {
	id := fmt.Sprintf("%08x", uint32(time.Now().UnixNano()))
	run := func(unit string, args ...string) result {
		t.Helper()
		full := append([]string{boxrunBin(t), "-q"}, args...)
		var cmd *exec.Cmd
		if sr := systemdRun(t, "--unit="+unit); sr != nil {
			cmd = exec.Command(sr[0], append(sr[1:], full...)...)
		} else {
			// Without systemd: root's box, and boxrun as nobody in it.
			cmd = inRootChild(t, unit, append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, full...)...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent"}
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		r := result{code: shellCode(cmd.ProcessState), stdout: out.String(), stderr: errb.String()}
		t.Logf("%s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), r.code, r.stdout, r.stderr)
		return r
	}
	strict := run("boxrun-fake-"+id, "--strict", "-p", "tests", "--", "true")
	if strict.code != 125 || !strings.Contains(strict.stderr, "--strict") || !strings.Contains(strict.stderr, "cannot divide") {
		t.Errorf("--strict inside a box that is not delegated: exit %d, stderr %q; want 125 and why", strict.code, strict.stderr)
	}
	why := "Delegate=yes"
	if mode(t) == "cgroupfs" {
		why = "not writable by uid 65534"
	}
	if !strings.Contains(strict.stderr, why) {
		t.Errorf("the refusal does not say why (%q): %q", why, strict.stderr)
	}
	other := fmt.Sprintf("%08x", uint32(time.Now().UnixNano())+1)
	loose := run("boxrun-fake-"+other, "-p", "tests", "--", "sh", "-c", `sed -n 's/^0:://p' /proc/self/cgroup`)
	if loose.code != 0 || !strings.HasSuffix(strings.TrimSpace(loose.stdout), "/boxrun-fake-"+other+scopeSuffix(t)) {
		t.Errorf("without --strict: exit %d, cgroup %q; want the command run in the enclosing box", loose.code, loose.stdout)
	}
	if strings.Count(loose.stderr, "\n") != 1 || !strings.Contains(loose.stderr, "warning: inside box") {
		t.Errorf("without --strict, under -q: stderr %q; want one warning line", loose.stderr)
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
