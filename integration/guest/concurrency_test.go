//go:build boxrunguest

package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The scenarios with many boxruns at once run early in each mode (their file
// sorts first after the backpressure ones): after the full user-mode
// sequence they once failed with "too many open files" while passing alone
// (see the closing note of 2026-11-24); TestSoak logs what it can find
// about file descriptors when that happens.

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
			runs[i] = run{code: shellCode(cmd.ProcessState), stderr: errb.String()}
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
		if strings.Contains(r.stderr, "waiting for a slot (") {
			waited++
			t.Logf("run %d: %s", i, strings.TrimSpace(r.stderr))
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

// soakRuns is how many sequential runs TestSoak makes: 100 in the regular
// suite, $BOXRUN_IT_SOAK with `make soak` (1000).
func soakRuns() int {
	if n, err := strconv.Atoi(os.Getenv("BOXRUN_IT_SOAK")); err == nil && n > 0 {
		return n
	}
	return 100
}

// boxrunCgroups lists the cgroup directories named boxrun-* (boxes, nested
// boxes, guards) there are now.
func boxrunCgroups() map[string]bool {
	found := map[string]bool{}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "boxrun-") {
			found[p] = true
		}
		return nil
	})
	return found
}

// soakMarker is in every soak command line, to count what is left of them.
const soakMarker = "boxrun-soak-marker"

// soakCounts is what a run could leave behind.
type soakCounts struct {
	procs, boxes, cgroups, files int
}

// countLeft counts what runs could leave behind. Of the cgroups, only
// those not in known count: the scopes of earlier scenarios' guards and
// boxes go away by themselves, on systemd's time, and one that goes during
// the soak is no more the soak's than one that stays.
func countLeft(t *testing.T, known map[string]bool) soakCounts {
	t.Helper()
	var c soakCounts
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(data), soakMarker) || strings.Contains(string(data), "__boxrun-guard") {
			c.procs++
		}
	}
	c.boxes = len(boxes(t))
	for p := range boxrunCgroups() {
		if !known[p] {
			c.cgroups++
		}
	}
	// Slot and owner files of this user's runtime directory.
	dir := "/run/boxrun"
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		dir = filepath.Join(x, "boxrun")
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.Contains(p, "/slots/") || strings.Contains(p, "/boxes/")) {
			c.files++
		}
		return nil
	})
	return c
}

// TestSoak makes many runs mixing success, failure, death by signal and
// leftovers (half of them under a max_concurrent policy, so slot files are
// used), then 10 x 10 concurrent runs: every exit status is right, and no
// process, scope, cgroup directory, slot or record file is left; boxrun's
// own peak memory does not grow from the first runs to the last.
func TestSoak(t *testing.T) {
	pf := itPolicy(t, "")
	slotted := itPolicy(t, "max_concurrent = 4")
	earlier := boxrunCgroups()
	if len(earlier) > 0 {
		t.Logf("cgroups of earlier scenarios still there as the soak starts (not counted): %v", earlier)
	}
	before := countLeft(t, earlier)
	cases := []struct {
		script string
		code   int
	}{
		{"true", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 143},
		{"sleep 100 & exit 0", 0}, // a leftover, killed
		{"kill -KILL $$", 137},
		{"sh -c 'trap \"\" TERM; sleep 100' & sleep 0.1; exit 5", 5}, // a leftover ignoring TERM
	}
	n := soakRuns()
	rss := make([]int64, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		c := cases[i%len(cases)]
		policyFile := pf
		if i%2 == 1 {
			policyFile = slotted
		}
		cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "-f", policyFile, "-p", "it", "--set", "leftovers_grace=0.2s",
			"--", "sh", "-c", c.script, soakMarker)...)
		out, _ := cmd.CombinedOutput()
		if code := shellCode(cmd.ProcessState); code != c.code {
			t.Fatalf("run %d (%q): exit %d, want %d\n%s", i, c.script, code, c.code, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = append(rss, ru.Maxrss)
		}
	}
	seq := time.Since(start)

	// 10 x 10 at once, as in the report of concurrent cargo test runs.
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				want := (g*10 + j) % 7
				cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "-f", pf, "-p", "it", "--",
					"sh", "-c", fmt.Sprintf("exit %d", want), soakMarker)...)
				out, _ := cmd.CombinedOutput()
				if code := shellCode(cmd.ProcessState); code != want {
					errs <- fmt.Sprintf("concurrent run %d.%d: exit %d, want %d: %s", g, j, code, want, out)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	failed := false
	for e := range errs {
		t.Error(e)
		failed = true
	}
	if failed {
		fds, _ := os.ReadDir("/proc/self/fd")
		diag, _ := exec.Command("sh", "-c", "echo ulimit -n $(ulimit -n) -Hn $(ulimit -Hn); echo file-nr $(cat /proc/sys/fs/file-nr); "+
			"echo inotify instances of uid $(id -u): $(find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null | wc -l)").CombinedOutput()
		t.Logf("diagnostics: this test process holds %d fds; %s", len(fds), diag)
	}

	var after soakCounts
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = countLeft(t, earlier)
		if after == before || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	first, last := medianRSS(rss[:len(rss)/5]), medianRSS(rss[len(rss)-len(rss)/5:])
	t.Logf("figures: soak, %s: %d sequential runs in %.0fs + 100 concurrent (10x10); left behind: %d processes, %d boxes, %d cgroups, %d files (before: %+v); boxrun peak RSS median %d KiB first fifth, %d KiB last fifth",
		mode(t), n, seq.Seconds(), after.procs-before.procs, after.boxes-before.boxes, after.cgroups-before.cgroups, after.files-before.files, before, first, last)
	if after != before {
		t.Errorf("left behind after the soak: %+v, before %+v", after, before)
	}
	// A fresh boxrun per run: only state that piles up (records, slot
	// files) could make it grow; single runs vary by a few MiB with GC timing.
	if last > first*13/10 {
		t.Errorf("boxrun's peak RSS grew from %d KiB to %d KiB over the runs", first, last)
	}
}

func medianRSS(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
