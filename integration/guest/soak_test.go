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

// soakRuns is how many sequential runs TestSoak makes: 100 in the regular
// suite, $BOXRUN_IT_SOAK with `make soak` (1000).
func soakRuns() int {
	if n, err := strconv.Atoi(os.Getenv("BOXRUN_IT_SOAK")); err == nil && n > 0 {
		return n
	}
	return 100
}

// soakMarker is in every soak command line, to count what is left of them.
const soakMarker = "boxrun-soak-marker"

// soakCounts is what a run could leave behind.
type soakCounts struct {
	procs, boxes, cgroups, files int
}

func countLeft(t *testing.T) soakCounts {
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
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "boxrun-") {
			c.cgroups++
		}
		return nil
	})
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
	before := countLeft(t)
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
		if code := cmd.ProcessState.ExitCode(); code != c.code {
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
				if code := cmd.ProcessState.ExitCode(); code != want {
					errs <- fmt.Sprintf("concurrent run %d.%d: exit %d, want %d: %s", g, j, code, want, out)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	var after soakCounts
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = countLeft(t)
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
