package observe

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/machinetest"
	"github.com/boxrun/boxrun/internal/procfs"
	"golang.org/x/sys/unix"
)

func durationMS(i int) time.Duration { return time.Duration(i) * time.Millisecond }

// fakeBox lays out the files of a box's cgroup under a fake cgroup2 mount.
func fakeBox(t *testing.T, rel string) (mount, dir string) {
	t.Helper()
	mount = t.TempDir()
	dir = filepath.Join(mount, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	machinetest.WriteFiles(t, dir, map[string]string{
		"memory.current": "1000\n",
		"memory.peak":    "5000\n",
		"memory.events":  "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		"pids.current":   "1\n",
		"pids.events":    "max 0\n",
		"cpu.stat":       "usage_usec 10\nuser_usec 6\nsystem_usec 4\n",
		"cgroup.events":  "populated 1\nfrozen 0\n",
	})
	machinetest.WriteFiles(t, filepath.Dir(dir), map[string]string{"memory.events": "oom_kill 7\n"})
	return mount, dir
}

func appendFile(t *testing.T, path, body string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(body); err != nil {
		t.Fatal(err)
	}
}

// testSampler returns a fast Sampler reading fake kernel files.
func testSampler(t *testing.T, mount string) (*Sampler, string, string) {
	t.Helper()
	tmp := t.TempDir()
	vmstat := filepath.Join(tmp, "vmstat")
	kmsg := filepath.Join(tmp, "kmsg")
	machinetest.WriteFiles(t, tmp, map[string]string{
		"vmstat": "pgfault 100\noom_kill 3\n",
		// An OOM kill from before the run: not this run's business.
		"kmsg": "3,1,2,-;Out of memory: Killed process 99 (old) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n",
	})
	s := NewSampler()
	s.interval, s.vmstatPath, s.kmsgPath, s.mount = 5*time.Millisecond, vmstat, kmsg, mount
	return s, vmstat, kmsg
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSamplerSurvivesTheBoxVanishing plays a run whose box is removed
// before Exited, as systemd does with an empty scope: the kill recorded
// through inotify while the box existed must still be reported.
func TestSamplerSurvivesTheBoxVanishing(t *testing.T) {
	const rel = "/boxrun.slice/boxrun-it-3f2a9c1d.scope"
	mount, dir := fakeBox(t, rel)
	s, vmstat, kmsg := testSampler(t, mount)
	s.Started(dir, 812)

	machinetest.WriteFiles(t, dir, map[string]string{"memory.current": "9000\n", "pids.current": "4\n"})
	waitFor(t, "a sample of 9000 bytes", func() bool { smp, ok := s.Latest(); return ok && smp.MemoryBytes == 9000 })
	// The files the sampler reads when an event arrives come first: the
	// kernel updates them before it signals (a map's order would sometimes
	// write the events first, and the test would wait for nothing).
	machinetest.WriteFiles(t, dir, map[string]string{
		"cpu.stat":    "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_throttled 4\nthrottled_usec 7000\n",
		"memory.peak": "130000000\n",
	})
	machinetest.WriteFiles(t, dir, map[string]string{
		"memory.events": "low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
		"pids.events":   "max 2\n",
	})
	waitFor(t, "inotify to report the OOM kill", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ev.mem.OOMKill == 1 && s.ev.pidsMax == 2 && s.ev.memPeak == 130000000 && s.ev.cpu.UsageUSec == 2000000
	})
	appendFile(t, kmsg, readFixture(t, "kmsg-memcg-oom.txt"))
	// Two kills anywhere during the run: the box's and one outside.
	machinetest.WriteFiles(t, filepath.Dir(vmstat), map[string]string{"vmstat": "pgfault 200\noom_kill 5\n"})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s.Exited()
	st := s.Stats()

	if !st.Measured || st.PID != 812 || st.Wall <= 0 {
		t.Errorf("Measured %v, PID %d, Wall %v", st.Measured, st.PID, st.Wall)
	}
	wantEv := MemoryEvents{High: 12, Max: 3, OOM: 1, OOMKill: 1}
	if st.Memory.Events != wantEv {
		t.Errorf("memory events %+v, want %+v", st.Memory.Events, wantEv)
	}
	if st.Memory.Peak != 130000000 || st.Memory.PeakSource != "memory.peak" {
		t.Errorf("memory peak %d from %q, want 130000000 from memory.peak", st.Memory.Peak, st.Memory.PeakSource)
	}
	if st.Pids.EventsMax != 2 || st.Pids.Peak != 4 || st.Pids.PeakSource != "samples" {
		t.Errorf("pids %+v, want events max 2 and a sampled peak of 4", st.Pids)
	}
	if st.CPU != (CPUStats{UsageUSec: 2000000, UserUSec: 1500000, SystemUSec: 500000, NrThrottled: 4, ThrottledUSec: 7000}) {
		t.Errorf("cpu %+v", st.CPU)
	}
	if len(st.OOMVictims) != 1 || st.OOMVictims[0].PID != 812 || !st.OOMVictims[0].InsideBox {
		t.Errorf("victims %+v, want pid 812 inside the box (and not the kill from before the run)", st.OOMVictims)
	}
	if st.OutsideOOMKills != 1 || st.KernelLogErr != "" {
		t.Errorf("outside kills %d (want 1), kernel log error %q", st.OutsideOOMKills, st.KernelLogErr)
	}
	if len(st.Samples) < 2 {
		t.Errorf("%d samples", len(st.Samples))
	}
	if !strings.Contains(strings.Join(st.Notes, "\n"), "gone when the command exited") {
		t.Errorf("notes %q do not say the box was gone", st.Notes)
	}
	s.Exited() // a second call changes nothing
	if s.Stats().Memory.Events != wantEv {
		t.Error("a second Exited changed the stats")
	}
}

func TestSamplerFinalReadAndOldKernel(t *testing.T) {
	mount, dir := fakeBox(t, "/boxrun-build-00ff00ff")
	if err := os.Remove(filepath.Join(dir, "memory.peak")); err != nil { // Linux < 5.19
		t.Fatal(err)
	}
	s, _, _ := testSampler(t, mount)
	s.kmsgPath = filepath.Join(t.TempDir(), "no-kmsg")
	s.Started(dir, 1)
	machinetest.WriteFiles(t, dir, map[string]string{"memory.current": "777\n", "pids.current": "9\n"})
	waitFor(t, "a sample", func() bool { smp, ok := s.Latest(); return ok && smp.MemoryBytes == 777 })
	machinetest.WriteFiles(t, dir, map[string]string{"memory.current": "5\n", "pids.events": "max 1\n", "pids.peak": "64\n"})
	s.Exited()
	st := s.Stats()
	if st.Memory.Peak != 1000 && st.Memory.Peak != 777 || st.Memory.PeakSource != "samples" {
		// The first sample (1000) is taken at Started.
		t.Errorf("peak %d from %q, want the highest sample", st.Memory.Peak, st.Memory.PeakSource)
	}
	if st.Pids.Peak != 64 || st.Pids.PeakSource != "pids.peak" || st.Pids.EventsMax != 1 {
		t.Errorf("pids %+v, want the final read of pids.peak and pids.events", st.Pids)
	}
	notes := strings.Join(st.Notes, "\n")
	if !strings.Contains(notes, "memory.peak needs Linux 5.19") || strings.Contains(notes, "gone") {
		t.Errorf("notes %q", notes)
	}
	if !strings.Contains(st.KernelLogErr, "no-kmsg") || len(st.OOMVictims) != 0 {
		t.Errorf("kernel log error %q, victims %v", st.KernelLogErr, st.OOMVictims)
	}
	if st.OutsideOOMKills != 0 {
		t.Errorf("outside kills %d", st.OutsideOOMKills)
	}
}

func TestSamplerWithoutCgroup(t *testing.T) {
	s := NewSampler()
	s.Exited() // before Started: nothing happens
	if st := s.Stats(); st.Wall != 0 {
		t.Errorf("stats before Started: %+v", st)
	}
	s.Started("", 5)
	if _, ok := s.Latest(); ok {
		t.Error("a sample without a cgroup")
	}
	time.Sleep(2 * time.Millisecond)
	s.Exited()
	st := s.Stats()
	if st.Measured || st.Wall <= 0 || st.PID != 5 || len(st.Samples) != 0 {
		t.Errorf("without a cgroup: %+v", st)
	}
}

// TestSamplerFallsBackToTheParent plays the race seen in the real-kernel
// suite: the OOM kill that empties the box is signalled up to 10 ms late,
// and systemd removes the box first. The parent's subtree counters must
// still attribute the kill to the box, not to "outside".
func TestSamplerFallsBackToTheParent(t *testing.T) {
	mount, dir := fakeBox(t, "/user.slice/boxrun.slice/boxrun-it-cb1769e6.scope")
	parent := filepath.Dir(dir)
	// The parent's own kills (memory.events.local) are not the box's.
	machinetest.WriteFiles(t, parent, map[string]string{"memory.events": "oom 2\noom_kill 7\n", "memory.events.local": "oom 2\noom_kill 7\n"})
	s, vmstat, _ := testSampler(t, mount)
	s.kmsgPath = filepath.Join(t.TempDir(), "unreadable")
	s.Started(dir, 3197)
	machinetest.WriteFiles(t, parent, map[string]string{"memory.events": "oom 3\noom_kill 8\n"})
	machinetest.WriteFiles(t, filepath.Dir(vmstat), map[string]string{"vmstat": "oom_kill 4\n"})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s.Exited()
	st := s.Stats()
	if st.Memory.Events.OOMKill != 1 || st.Memory.Events.OOM != 1 || st.OutsideOOMKills != 0 {
		t.Errorf("events %+v, outside %d; want the kill in the box (oom 1, oom_kill 1) and none outside", st.Memory.Events, st.OutsideOOMKills)
	}
	if !strings.Contains(strings.Join(st.Notes, "\n"), "come from its parent cgroup "+parent) {
		t.Errorf("notes %q do not say where the counts came from", st.Notes)
	}

	// Another box ran beside it in the slice: the parent's kills are not
	// the box's alone (four runs in one slice each reported the kills of
	// all four). The box keeps its own last reading, and says so.
	mount, dir = fakeBox(t, "/user.slice/boxrun.slice/boxrun-it-cb1769e7.scope")
	parent = filepath.Dir(dir)
	machinetest.WriteFiles(t, parent, map[string]string{"memory.events": "oom 2\noom_kill 7\n",
		"boxrun-it-0ther000.scope/memory.events": "oom 1\noom_kill 3\n", "boxrun-it-cb1769e7-guard/cgroup.procs": ""})
	s, _, _ = testSampler(t, mount)
	s.kmsgPath = filepath.Join(t.TempDir(), "unreadable")
	s.Started(dir, 3198)
	machinetest.WriteFiles(t, parent, map[string]string{"memory.events": "oom 4\noom_kill 10\n"})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s.Exited()
	st = s.Stats()
	if st.Memory.Events.OOMKill != 0 {
		t.Errorf("events %+v: the 3 kills of the slice were counted in the box beside another", st.Memory.Events)
	}
	if !strings.Contains(strings.Join(st.Notes, "\n"), "other boxes ran beside it in "+parent) {
		t.Errorf("notes %q do not say why the parent was not taken", st.Notes)
	}

	// With the box read at the end, the parent is not consulted.
	mount, dir = fakeBox(t, "/boxrun.slice/boxrun-it-00000001.scope")
	s, _, _ = testSampler(t, mount)
	s.Started(dir, 1)
	machinetest.WriteFiles(t, filepath.Dir(dir), map[string]string{"memory.events": "oom_kill 9\n"}) // a sibling's kills
	s.Exited()
	if st := s.Stats(); st.Memory.Events.OOMKill != 0 || strings.Contains(strings.Join(st.Notes, "\n"), "parent") {
		t.Errorf("a sibling's kill was counted in the box: %+v %q", st.Memory.Events, st.Notes)
	}
}

// TestSamplerNamesTheVictimWithoutTheKernelLog plays an OOM kill where
// /dev/kmsg cannot be read: a real process of the (fake) box is killed by
// SIGKILL and left a zombie while oom_kill rises, and the Sampler names it
// from its samples of the box's processes.
func TestSamplerNamesTheVictimWithoutTheKernelLog(t *testing.T) {
	mount, dir := fakeBox(t, "/boxrun-tests-0badf00d")
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	machinetest.WriteFiles(t, dir, map[string]string{"cgroup.procs": strconv.Itoa(pid) + "\n"})
	s, _, _ := testSampler(t, mount)
	s.kmsgPath = filepath.Join(t.TempDir(), "no-kmsg")
	s.Started(dir, pid)
	sampled := func() bool {
		s.procMu.Lock()
		defer s.procMu.Unlock()
		return len(s.victims.prev) == 1 && s.victims.prev[0].PID == pid
	}
	waitFor(t, "a sample of the box's process", sampled)

	// The OOM killer: SIGKILL (the zombie stays, nobody reaps it yet), the
	// process leaves cgroup.procs, oom_kill rises.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the process to die", func() bool { st, err := procfs.ReadStat(pid); return err == nil && st.State == 'Z' })
	machinetest.WriteFiles(t, dir, map[string]string{"cgroup.procs": ""})
	machinetest.WriteFiles(t, dir, map[string]string{"memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n"})
	waitFor(t, "the victim to be named", func() bool {
		s.procMu.Lock()
		defer s.procMu.Unlock()
		return len(s.victims.victims) == 1
	})
	s.Exited()
	st := s.Stats()
	want := []OOMVictim{{PID: pid, Comm: "sleep", InsideBox: true, Certainty: CertaintyVanished}}
	if len(st.OOMVictims) == 1 {
		want[0].AnonRSSBytes = st.OOMVictims[0].AnonRSSBytes // sleep's, whatever it is
	}
	if !reflect.DeepEqual(st.OOMVictims, want) || st.KernelLogErr == "" {
		t.Errorf("victims %+v (kernel log error %q); want %+v, named from the samples", st.OOMVictims, st.KernelLogErr, want)
	}
}

// TestBesideOthers: another box in the parent counts; the box's own guard
// (named after it) and plain files do not.
func TestBesideOthers(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"alone", map[string]string{"memory.events": "", "boxrun-it-1.scope/cgroup.procs": ""}, false},
		{"its guard beside it", map[string]string{"boxrun-it-1.scope/cgroup.procs": "", "boxrun-it-1-guard/cgroup.procs": ""}, false},
		{"another box", map[string]string{"boxrun-it-1.scope/cgroup.procs": "", "boxrun-it-2.scope/cgroup.procs": ""}, true},
	} {
		parent := t.TempDir()
		machinetest.WriteFiles(t, parent, tt.files)
		if got := besideOthers(filepath.Join(parent, "boxrun-it-1.scope")); got != tt.want {
			t.Errorf("%s: besideOthers = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestEndingNamesWhatTheCommandLastRan: a command sampled as "sh" that
// exec'd into sleep and ended before the next sample is named "sleep"
// once the Sampler sees its zombie (Ending), in its last sample and in a
// victim already named after it; a kernel log's name is left alone.
func TestEndingNamesWhatTheCommandLastRan(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read x; exec sleep 0.01")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := procfs.ReadStat(pid)
	if err != nil || st.Comm != "sh" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the command before its exec: %+v, %v; want sh", st, err)
	}
	s := NewSampler()
	s.victims.prev = []procSample{{PID: pid, StartTime: st.StartTime, Comm: "sh", RSSBytes: 4096}, {PID: pid + 1, Comm: "other"}}
	s.victims.victims = []OOMVictim{{PID: pid, Comm: "sh", Certainty: CertaintyVanished}, {PID: pid, Comm: "from-log", Certainty: CertaintyKernelLog}}
	in.Close() // sh execs sleep, which exits
	if err := waitNoReap(pid); err != nil {
		t.Fatal(err)
	}
	s.Ending(pid)
	cmd.Wait()
	if got := []string{s.victims.prev[0].Comm, s.victims.prev[1].Comm, s.victims.victims[0].Comm, s.victims.victims[1].Comm}; !reflect.DeepEqual(got, []string{"sleep", "other", "sleep", "from-log"}) {
		t.Errorf("names after Ending: %v; want sleep for the command's sample and sampled victim, the rest as they were", got)
	}
}

// waitNoReap waits for pid to exit and leaves it a zombie.
func waitNoReap(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
