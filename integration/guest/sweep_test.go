//go:build boxrunguest

package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNothingLeftBehind runs after every other scenario of a mode, in a
// second invocation of the test binary (integration/ runs it last): whatever
// the scenarios did (signals, OOM kills, SIGKILLed boxruns, protect
// watchers), no boxrun process, box, cgroup directory or runtime file of
// this user survives them, and no process of this user other than its
// service managers holds an inotify instance or an unusual number of file
// descriptors. The kernel allows 128 inotify instances per user
// (fs.inotify.max_user_instances): a leak there is how a user-mode run once
// failed with "too many open files" late in the suite.
func TestNothingLeftBehind(t *testing.T) {
	var stray []string
	var strayPIDs []int
	inotify := map[string]int{} // "comm[pid]" -> instances
	fds := map[string]int{}
	total := 0
	for _, pid := range userProcs() {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		comm := readTrim(filepath.Join(dir, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		who := fmt.Sprintf("%s[%d]", comm, pid)
		if leftover(args) && !heartbeat(pid) {
			stray = append(stray, fmt.Sprintf("%s %q", who, args))
			strayPIDs = append(strayPIDs, pid)
		}
		links, _ := os.ReadDir(filepath.Join(dir, "fd"))
		fds[who] = len(links)
		for _, l := range links {
			if dst, _ := os.Readlink(filepath.Join(dir, "fd", l.Name())); dst == "anon_inode:inotify" {
				inotify[who]++
				total++
			}
		}
	}
	t.Logf("figures: after the %s scenarios: %d inotify instances held by this user's processes %v; fds per process %v",
		mode(t), total, inotify, biggest(fds, 5))
	if len(stray) > 0 {
		t.Errorf("processes left behind by the scenarios:\n  %s", strings.Join(stray, "\n  "))
	}
	// Root shares the guest with every system service; only the
	// unprivileged user's processes are all known.
	for who := range inotify {
		if mode(t) == "user" && !manager(who) {
			t.Errorf("%s holds %d inotify instances after the scenarios: a leak (the user may hold 128)", who, inotify[who])
		}
	}
	for who, n := range fds {
		if n > 256 && mode(t) == "user" && !manager(who) {
			t.Errorf("%s holds %d file descriptors after the scenarios", who, n)
		}
	}
	b := boxes(t)
	if len(b) > 0 {
		t.Errorf("boxes left behind: %v", b)
	}
	g := guardCgroups()
	if len(g) > 0 {
		t.Errorf("guards' cgroups left behind: %v", g)
	}
	if len(stray) > 0 || len(b) > 0 || len(g) > 0 {
		// Reported above; now cleared, so that the next mode (the guest
		// runs root's, then the user's) starts with the memory and the
		// slots these held, and fails only for what it does itself.
		clearLeftovers(t, strayPIDs)
	}
	dir := "/run/boxrun"
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		dir = filepath.Join(x, "boxrun")
	}
	for _, sub := range []string{"boxes", "slots"} {
		var files []string
		filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		// A slot directory keeps one lock file per slot by design; records
		// of boxes and queue tickets must be gone.
		for _, f := range files {
			if sub == "boxes" || strings.Contains(filepath.Base(f), "ticket") {
				t.Errorf("runtime file left behind: %s", f)
			}
		}
	}
}

// clearLeftovers kills the processes the sweep found left behind, then has
// boxrun gc collect the boxes and records their owners left, and says what
// stayed.
func clearLeftovers(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for startTime(pid) != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	r := boxrunRaw(t, "gc")
	t.Logf("cleared what was left behind: killed %d processes; boxrun gc: exit %d %s", len(pids), r.code, strings.TrimSpace(r.stdout+r.stderr))
	if b := boxes(t); len(b) > 0 {
		t.Errorf("boxes still there after boxrun gc: %v", b)
	}
	if g := guardCgroups(); len(g) > 0 {
		t.Errorf("guards' cgroups still there after boxrun gc: %v", g)
	}
}

// leftover reports whether a command line is boxrun's or a scenario's
// command: the boxrun binary or its guard, the test binary acting in a box
// (hog, spin, probe, waiter), or the sleeps, shells and cargo processes
// scenarios start.
func leftover(args []string) bool {
	if len(args) == 0 || args[0] == "" {
		return false
	}
	base := filepath.Base(args[0])
	switch {
	case base == "boxrun", strings.Contains(strings.Join(args, " "), "__boxrun"):
		return true
	case base == "guest.test":
		return len(args) == 1 // a role (hog, spin, probe): the runner has -test flags
	case base == "sleep", base == "sh" && len(args) > 1 && args[1] == "-c", base == "cargo", base == "memcrate", base == "helper":
		return true
	}
	return false
}

// heartbeat reports whether pid is one of the harness's heartbeat processes
// or its watchdog (integration's guestScript), which run beside the
// scenarios on purpose, as root: the root-mode sweep would otherwise take
// the watchdog (this binary with a role, see leftover) for a scenario's.
func heartbeat(pid int) bool {
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range strings.Split(string(env), "\x00") {
		if kv == "BOXRUN_IT_HEARTBEAT=1" {
			return true
		}
	}
	return false
}

// manager reports whether a process is one of the service managers the
// guest runs for this user (they keep inotify instances for their life).
func manager(who string) bool {
	for _, m := range []string{"systemd[", "(sd-pam)[", "dbus-daemon[", "dbus-broker[", "systemd-journal[", "systemd-udevd[", "systemd-logind["} {
		if strings.HasPrefix(who, m) {
			return true
		}
	}
	return false
}

// biggest returns the n processes with the most file descriptors.
func biggest(fds map[string]int, n int) []string {
	var names []string
	for k := range fds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return fds[names[i]] > fds[names[j]] })
	if len(names) > n {
		names = names[:n]
	}
	out := make([]string, len(names))
	for i, k := range names {
		out[i] = fmt.Sprintf("%s=%d", k, fds[k])
	}
	return out
}

// ancestors returns pid and the pids of its ancestors.
func ancestors(pid int) map[int]bool {
	seen := map[int]bool{}
	for pid > 1 && !seen[pid] {
		seen[pid] = true
		pid = parentOf(pid)
	}
	return seen
}
