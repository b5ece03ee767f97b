//go:build boxrunguest

package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMaxConcurrentBoundsBoxes starts 10 runs of a policy with
// max_concurrent = 3 at once, as the report's 8-10 parallel cargo test runs
// did: never more than 3 boxes exist, every run ends with its own exit
// status, and a waiter SIGKILLed in the queue does not wedge it.
func TestMaxConcurrentBoundsBoxes(t *testing.T) {
	pf := itPolicy(t, "max_concurrent = 3")
	before := len(boxes(t))
	var most int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := len(boxes(t)) - before; n > most {
				most = n
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	type run struct {
		code   int
		stderr string
	}
	runs := make([]run, 10)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--", "sh", "-c", fmt.Sprintf("sleep 0.5; exit %d", i))...)
			var errb strings.Builder
			cmd.Stderr = &errb
			err := cmd.Run()
			runs[i] = run{code: cmd.ProcessState.ExitCode(), stderr: errb.String()}
			if err != nil && cmd.ProcessState.ExitCode() < 0 {
				runs[i].code = -1
			}
		}(i)
	}
	// One more run joins the queue and is SIGKILLed while it waits.
	time.Sleep(300 * time.Millisecond)
	victim := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--", "true")...)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	victim.Process.Signal(syscall.SIGKILL)
	victim.Wait()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the runs did not all finish within 2 minutes: the queue is wedged")
	}
	close(stop)
	<-sampled
	waited := 0
	for i, r := range runs {
		if r.code != i {
			t.Errorf("run %d exited %d, want %d; stderr:\n%s", i, r.code, i, r.stderr)
		}
		if strings.Contains(r.stderr, "waiting for a slot (3 of 3 running") {
			waited++
		}
	}
	t.Logf("figures: max_concurrent = 3, 10 runs at once: at most %d boxes at a time, %d runs waited", most, waited)
	if most > 3 {
		t.Errorf("%d boxes at once, want at most 3", most)
	}
	if most == 0 || waited == 0 {
		t.Errorf("at most %d boxes, %d waited: the scenario proves nothing", most, waited)
	}
	// --no-wait fails at once when the slots are taken.
	hold := exec.Command(boxrunBin(t), append(backendArgs(t), "-f", pf, "-p", "it", "--set", "max_concurrent=1", "--", "sleep", "3")...)
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer hold.Wait()
	time.Sleep(time.Second)
	r := boxrun(t, "-f", pf, "-p", "it", "--set", "max_concurrent=1", "--no-wait", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "no free slot") {
		t.Errorf("--no-wait with the slot taken: exit %d, stderr %q; want 125 and why", r.code, r.stderr)
	}
	if n := len(boxes(t)) - before; n > 1 {
		t.Errorf("%d boxes while only the holder should run", n)
	}
}

// TestSliceBudgetIsShared: the [slice] limits are written to the slice that
// holds every box, and two boxes that each fit their own memory.max but not
// the slice's together are stopped at the slice.
func TestSliceBudgetIsShared(t *testing.T) {
	pf := policyFile(t, fmt.Sprintf(basePolicy, "")+"\n[slice]\nmemory.high = \"max\"\nmemory.max = \"200M\"\npids.max = 500\n")
	self, _ := os.Executable()
	script := `cg=$(sed -n 's/^0:://p' /proc/self/cgroup); s=/sys/fs/cgroup$(dirname $cg); ` +
		`echo "slice_max=$(cat $s/memory.max)"; echo "slice_pids=$(cat $s/pids.max)"; ` +
		fmt.Sprintf(`%s=hog HOG_MB=120 HOG_HOLD=4s %s; echo "hog=$?"`, roleEnv, self)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = runBoxrun(t, "-f", pf, "-p", "it", "--set", "memory.max=150M", "--set", "memory.high=max", "--set", "memory.backpressure=false", "--", "sh", "-c", script)
		}(i)
		time.Sleep(300 * time.Millisecond)
	}
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
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
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
		return string(out), cmd.ProcessState.ExitCode()
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
