//go:build boxrunguest

package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// The protection scenarios: a fake editor — this binary as the hog role,
// exec'd through a symlink named code so that its comm is "code", holding
// memory at oom_score_adj 300 the way Electron sets its renderers — and
// boxrun protecting it. Under systemd it runs as a transient service of
// the mode's manager (so that, as the user, it has the floor of 100 that
// user@.service gives everything the user manager starts); without
// systemd it is a plain child.

// protectPolicy protects processes called code with 64M of memory.low.
const protectPolicy = `
[protect.iteditor]
match = ["code"]
memory.low = "64M"
oom_score_adj = -500

[policies.itprot]
description = "protect the fake editor"
protect = ["iteditor"]
`

const itLow = 64 << 20

// editorProc is one running fake editor.
type editorProc struct {
	pid   int
	start uint64
	unit  string // the transient service, "" without systemd
	cmd   *exec.Cmd
}

// userFlag is systemctl's and systemd-run's flag for the mode's manager.
func userFlag(t *testing.T) []string {
	if mode(t) == "user" {
		return []string{"--user"}
	}
	return nil
}

// run runs a helper command and returns its trimmed output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// startEditor starts a fake editor holding mb MiB at oom_score_adj 300, in
// slice (systemd modes; "" for the manager's default), and waits until it
// holds the memory.
func startEditor(t *testing.T, mb int, slice string) *editorProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code := filepath.Join(t.TempDir(), "code")
	if err := os.Symlink(self, code); err != nil {
		t.Fatal(err)
	}
	e := &editorProc{}
	env := []string{roleEnv + "=hog", fmt.Sprintf("HOG_MB=%d", mb), "HOG_HOLD=30m"}
	if mode(t) == "cgroupfs" {
		e.cmd = exec.Command(code)
		e.cmd.Env = append(os.Environ(), env...)
		if err := e.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		e.pid = e.cmd.Process.Pid
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", e.pid), []byte("300"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			e.cmd.Process.Kill()
			e.cmd.Wait()
		})
	} else {
		e.unit = fmt.Sprintf("app-code-it-%d.service", time.Now().UnixNano()%1000000000)
		args := append(userFlag(t), "--unit", e.unit, "--collect", "-q", "-p", "OOMScoreAdjust=300")
		if slice != "" {
			args = append(args, "--slice", slice)
		}
		for _, kv := range env {
			args = append(args, "-E", kv)
		}
		run(t, "systemd-run", append(args, code)...)
		t.Cleanup(func() {
			exec.Command("systemctl", append(userFlag(t), "stop", e.unit)...).Run()
		})
		for i := 0; i < 100 && e.pid == 0; i++ {
			e.pid, _ = strconv.Atoi(run(t, "systemctl", append(userFlag(t), "show", "-p", "MainPID", "--value", e.unit)...))
			if e.pid == 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if e.pid == 0 {
			t.Fatalf("%s has no main process", e.unit)
		}
	}
	// Its name too: exec.Cmd.Start returns once the close-on-exec pipe
	// closes, which execve does before it sets the new command name, so
	// /proc/PID/comm can still say guest.test just after Start.
	deadline := time.Now().Add(90 * time.Second)
	comm := func() string { return readTrim(fmt.Sprintf("/proc/%d/comm", e.pid)) }
	for rssMB(e.pid) < mb*9/10 || comm() != "code" {
		if time.Now().After(deadline) {
			t.Fatalf("the fake editor (pid %d) never reached %d MiB named code (at %d MiB, named %q); %s", e.pid, mb, rssMB(e.pid), comm(), memoryPicture())
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.start = startTime(e.pid)
	return e
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// rssMB is a process's resident memory in MiB (0 when gone).
func rssMB(pid int) int {
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return 0
	}
	return int(st.RSS >> 20)
}

// startTime is field 22 of /proc/PID/stat, 0 when the process is gone.
func startTime(pid int) uint64 {
	st, err := procfs.ReadStat(pid)
	if err != nil || st.State == 'Z' {
		return 0
	}
	return st.StartTime
}

// alive reports whether the fake editor still runs.
func (e *editorProc) alive() bool { return startTime(e.pid) == e.start && e.start != 0 }

func (e *editorProc) oomScoreAdj(t *testing.T) int {
	t.Helper()
	v, err := procfs.ReadOOMScoreAdj(e.pid)
	if err != nil {
		t.Fatalf("reading oom_score_adj of the fake editor: %v", err)
	}
	return v
}

// cgroup is the fake editor's cgroup, below the mount ("" once it is
// gone).
func (e *editorProc) cgroup() string { return cgroupOf(e.pid) }

// boxrunRaw runs boxrun with exactly args (no backend flags).
func boxrunRaw(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, boxrunBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running boxrun %v: %v", args, err)
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("boxrun %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// protectJSON is the part of `boxrun protect --json` the scenarios check.
type protectJSON struct {
	Processes []struct {
		PID    int    `json:"pid"`
		Comm   string `json:"comm"`
		Group  string `json:"group"`
		Unit   string `json:"unit"`
		Cgroup string `json:"cgroup"`
		Before int    `json:"oom_score_adj_before"`
		After  int    `json:"oom_score_adj_after"`
		Floor  bool   `json:"oom_score_adj_floor"`
	} `json:"processes"`
	Units []struct {
		Cgroup     string `json:"cgroup"`
		Unit       string `json:"unit"`
		Manager    string `json:"manager"`
		Set        uint64 `json:"memory_low_set"`
		Changed    bool   `json:"changed"`
		Protection struct {
			Effective uint64 `json:"effective"`
			Want      uint64 `json:"want"`
			Recursive bool   `json:"recursive_prot"`
			Chain     []struct {
				Cgroup string `json:"cgroup"`
				Low    uint64 `json:"memory_low"`
			} `json:"chain"`
			Fixes []struct {
				Cgroup    string `json:"cgroup"`
				Command   string `json:"command"`
				NeedsRoot bool   `json:"needs_root"`
				Applied   bool   `json:"applied"`
			} `json:"fixes"`
		} `json:"protection"`
		Error string `json:"error"`
	} `json:"units"`
	Problems []string `json:"problems"`
}

// protect runs `boxrun -f pf -p itprot protect --json ARGS` and parses it.
func protect(t *testing.T, pf string, args ...string) protectJSON {
	t.Helper()
	r := boxrunRaw(t, append([]string{"-f", pf, "-p", "itprot", "protect", "--json"}, args...)...)
	var rep protectJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("protect --json: exit %d, %v", r.code, err)
	}
	return rep
}

// memoryLowFile reads memory.low of a cgroup.
func memoryLowFile(t *testing.T, cg string) uint64 {
	t.Helper()
	s := readTrim(filepath.Join("/sys/fs/cgroup", cg, "memory.low"))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("memory.low of %s: %q", cg, s)
	}
	return v
}

// memAvailableMB is MemAvailable of /proc/meminfo in MiB.
func memAvailableMB(t *testing.T) int {
	t.Helper()
	b, err := procfs.ReadMeminfo("MemAvailable")
	if err != nil {
		t.Fatal(err)
	}
	return int(b >> 20)
}

// memoryPicture says where the guest's memory is, for a scenario that
// waited in vain for a process to allocate: /proc/meminfo's main lines and
// the processes holding the most.
func memoryPicture() string {
	var parts []string
	for _, k := range []string{"MemAvailable", "MemFree", "Cached", "Shmem", "AnonPages"} {
		if b, err := procfs.ReadMeminfo(k); err == nil {
			parts = append(parts, fmt.Sprintf("%s %d MiB", k, b>>20))
		}
	}
	type held struct {
		pid  int
		rss  uint64
		comm string
	}
	var top []held
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procfs.ReadStat(pid); err == nil {
			top = append(top, held{pid, st.RSS(), st.Comm})
		}
	}
	sort.Slice(top, func(i, j int) bool { return top[i].rss > top[j].rss })
	for _, h := range top[:min(len(top), 5)] {
		parts = append(parts, fmt.Sprintf("%s[%d] %d MiB", h.comm, h.pid, h.rss>>20))
	}
	return "memory: " + strings.Join(parts, ", ")
}

// vmstatOOMKills is the machine's oom_kill counter.
func vmstatOOMKills(t *testing.T) int {
	t.Helper()
	m, err := cgroupfs.ReadFlatKeyed("/proc/vmstat")
	n, ok := m["oom_kill"]
	if err != nil || !ok {
		t.Fatalf("no oom_kill in /proc/vmstat (%v)", err)
	}
	return int(n)
}

// kernelLog follows /dev/kmsg from now on; nil when it may not be read
// (kernel.dmesg_restrict for the unprivileged user). It uses the raw
// descriptor: through os.File, Go's poller would block at the end.
type kernelLog struct{ fd int }

func followKernelLog() *kernelLog {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if _, err := syscall.Seek(fd, 0, io.SeekEnd); err != nil {
		syscall.Close(fd)
		return nil
	}
	return &kernelLog{fd}
}

var killedRe = regexp.MustCompile(`Killed process (\d+) \(([^)]*)\)`)

// victims lists "pid comm" of the processes the OOM killer killed since.
func (k *kernelLog) victims() []string {
	if k == nil {
		return nil
	}
	defer syscall.Close(k.fd)
	var out []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(k.fd, buf)
		if err == syscall.EPIPE || err == syscall.EINTR {
			continue // records overwritten meanwhile
		}
		if err != nil || n <= 0 {
			return out
		}
		if m := killedRe.FindStringSubmatch(string(buf[:n])); m != nil {
			out = append(out, m[1]+" "+m[2])
		}
	}
}

// runawayScript starts n workers of mb MiB each at once, the way a test
// suite starts its threads, writes their pids to pidfile, and at the end
// prints how many the OOM killer killed (exit 137). The workers hold their
// memory until they are told to stop (SIGTERM, exit 143): see runRunaway.
func runawayScript(n, mb int, pidfile string) string {
	self, _ := os.Executable()
	return fmt.Sprintf(`: > %[5]s
for i in $(seq %[1]d); do
  %[2]s=hog HOG_MB=%[3]d HOG_HOLD=20m %[4]s >/dev/null 2>&1 &
  echo $! >> %[5]s
done
oom=0
for p in $(cat %[5]s); do wait $p; [ $? = 137 ] && oom=$((oom+1)); done
echo "failed=$oom"`, n, roleEnv, mb, self, pidfile)
}

// runRunaway runs cmd (the runaway script, directly or under boxrun) until
// every one of its n workers holds its mb MiB, then has the kernel's
// global OOM killer choose a victim (see globalOOM), waits until the kill
// is done and every survivor still holds its memory, stops the survivors and
// returns cmd's output. Holding until then makes the choice real: no worker
// has finished and freed its memory before the OOM killer weighs them.
//
// Every step is bounded by what the kernel does, not by how long memory
// takes to run out: the whole exchange takes seconds.
func runRunaway(t *testing.T, cmd *exec.Cmd, pidfile string, n, mb int) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before := vmstatOOMKills(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var pids []int
	stopAll := func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGTERM)
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		stopAll()
		cmd.Process.Kill()
		<-done
		t.Fatalf(format+"; output:\n%s", append(args, out.String())...)
	}
	// The workers allocate in a few seconds even under emulation; the
	// deadline only turns a broken scenario into a failure.
	deadline := time.Now().Add(2 * time.Minute)
	triggered := false
	heldSince := time.Time{}
	for {
		select {
		case <-done:
			return out.String()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			fail("the runaway's %d workers of %d MiB did not all hold their memory, or the OOM kill did not finish, within 2 minutes (pids %v, OOM kills %d); %s",
				n, mb, pids, vmstatOOMKills(t)-before, memoryPicture())
		}
		if len(pids) < n {
			pids = pids[:0]
			for _, f := range strings.Fields(readTrim(pidfile)) {
				if p, err := strconv.Atoi(f); err == nil {
					pids = append(pids, p)
				}
			}
			if len(pids) < n {
				continue
			}
		}
		// Held: every worker is either gone or holds all its memory.
		held := true
		for _, p := range pids {
			if startTime(p) != 0 && rssMB(p) < mb*9/10 {
				held = false
			}
		}
		switch {
		case !held:
			heldSince = time.Time{}
			continue
		case heldSince.IsZero():
			heldSince = time.Now()
			continue
		case time.Since(heldSince) < time.Second:
			continue
		}
		if !triggered {
			globalOOM(t)
			triggered = true
			heldSince = time.Time{}
			continue
		}
		if vmstatOOMKills(t) > before {
			stopAll()
			<-done
			return out.String()
		}
	}
}

// globalOOM has the kernel's global OOM killer choose and kill one process
// now, through the magic SysRq key f. It is the same out_of_memory() an
// allocation calls when the machine has no memory left (no memory cgroup
// constrains it: CONSTRAINT_NONE), weighing every process by the same
// badness (its memory plus oom_score_adj thousandths of RAM), and it counts
// in /proc/vmstat's oom_kill and logs "Out of memory: Killed process".
//
// Why not exhaust memory for real: under emulation the guest then thrashes
// on the executables it rereads over virtiofs, and reclaim, which keeps
// finding page cache to evict, delays the OOM killer for as long as that
// lasts (43 s in one run, never settled in 6 minutes in another, as root
// under systemd, where it froze the rest of the run). Only the trigger is
// chosen; which process dies is the kernel's decision, as on the desktop.
func globalOOM(t *testing.T) {
	t.Helper()
	// /proc/sysrq-trigger takes every key from root whatever kernel.sysrq says.
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("f"), 0); err != nil {
		t.Fatalf("invoking the global OOM killer through /proc/sysrq-trigger: %v", err)
	}
}

// editorMB is the size of the fake editor in the global OOM scenario,
// workerMB the size of one runaway worker and runawayWorkers their number:
// together (with the Go runtime's few MiB each) the workers are about
// twice the editor, yet each is far smaller than the editor with its
// oom_score_adj of 300 (100 MiB + 300‰ of RAM), so without boxrun the
// kernel's choice is the editor.
//
// The sizes only have to order the badness, since the OOM killer is
// invoked (see globalOOM), not reached by running out of memory: 400 MiB
// in all leaves the 1 GiB guest room for the page cache it rereads. At
// 200 MiB and 3 × 128 MiB (608 MiB of the 763 MiB available), on a busy
// host, the first half took 97 s where 3 s is usual and the second editor
// then stayed at 4 MiB for 90 s: the guest was starved of memory for the
// executables it rereads over virtiofs.
const (
	editorMB       = 100
	workerMB       = 64
	runawayWorkers = 3
)

// TestProtectEditorSurvivesGlobalOOM is the first report's situation: an
// editor (editorMB) at oom_score_adj 300 beside a runaway (a suite of
// workers) with no memory limit, so that the kernel's global OOM killer
// must choose. Without boxrun it chooses the editor; with boxrun (the tests
// policy: the box at oom_score_adj 500, the editor lowered as far as
// allowed) it chooses a worker and the editor lives. The OOM killer is
// invoked once every worker holds its memory (see globalOOM for why it is
// not left to memory running out).
//
// As the unprivileged user, who may not invoke it, the same comparison is
// made from the badness the kernel reports: see oomRanking.
func TestProtectEditorSurvivesGlobalOOM(t *testing.T) {
	if mode(t) == "user" {
		oomRanking(t)
		return
	}
	n := runawayWorkers
	requireRoomUnboxed(t, editorMB+n*(workerMB+8))

	// Without boxrun.
	ed := startEditor(t, editorMB, "")
	log := followKernelLog()
	before := vmstatOOMKills(t)
	start := time.Now()
	pidfile := filepath.Join(t.TempDir(), "pids")
	out := runRunaway(t, exec.Command("sh", "-c", runawayScript(n, workerMB, pidfile)), pidfile, n, workerMB)
	plain := time.Since(start)
	plainKills := vmstatOOMKills(t) - before
	plainVictims := log.victims()
	plainDied := !ed.alive()
	t.Logf("without boxrun: %d workers of %d MiB: %s; editor alive: %v; OOM kills %d %v",
		n, workerMB, strings.TrimSpace(out), !plainDied, plainKills, plainVictims)
	if plainKills != 1 {
		t.Errorf("without boxrun the global OOM killer was invoked once and killed %d processes", plainKills)
	}
	if !plainDied {
		t.Errorf("without boxrun the global OOM killer spared the editor (victims %v): the scenario does not reproduce the report", plainVictims)
	}
	editorAdjPlain := 300

	// With boxrun: the built-in tests policy, but no memory limit and no
	// backpressure, so only the global OOM killer acts.
	ed2 := startEditor(t, editorMB, "")
	log = followKernelLog()
	before = vmstatOOMKills(t)
	start = time.Now()
	pidfile = filepath.Join(t.TempDir(), "pids")
	// The shared slice of boxes would hold the runaway back too: lift it.
	noSlice := policyFile(t, "[slice]\nmemory.high = \"max\"\nmemory.max = \"max\"\n")
	args := append(backendArgs(t), "-q", "-f", noSlice, "--set", "memory.max=max", "--set", "memory.high=max", "--set", "memory.backpressure=false",
		"--", "sh", "-c", runawayScript(n, workerMB, pidfile))
	boxOut := runRunaway(t, exec.Command(boxrunBin(t), args...), pidfile, n, workerMB)
	boxed := time.Since(start)
	boxKills := vmstatOOMKills(t) - before
	boxVictims := log.victims()
	adj := ed2.oomScoreAdj(t)
	t.Logf("with boxrun: %d workers: %s; editor alive: %v at oom_score_adj %d; OOM kills %d %v",
		n, strings.TrimSpace(boxOut), ed2.alive(), adj, boxKills, boxVictims)
	if boxKills != 1 {
		t.Errorf("with boxrun the global OOM killer was invoked once and killed %d processes", boxKills)
	}
	if !ed2.alive() {
		t.Errorf("with boxrun the global OOM killer killed the editor (victims %v)", boxVictims)
	}
	for _, v := range boxVictims {
		if strings.HasPrefix(v, strconv.Itoa(ed2.pid)+" ") {
			t.Errorf("the kernel log names the editor as a victim: %v", boxVictims)
		}
	}
	if f := fields(boxOut); f["failed"] != "1" {
		t.Errorf("with boxrun the OOM kill did not take exactly one worker (failed=%q, OOM kills %d, victims %v)", f["failed"], boxKills, boxVictims)
	}
	if adj >= 300 {
		t.Errorf("boxrun did not lower the editor's oom_score_adj (still %d)", adj)
	}
	t.Logf("figures: global OOM, %s: without boxrun the kernel killed %s (editor %dM at oom_score_adj %d, %d workers of %dM at 0), %.0fs; with boxrun it killed %s (workers at 500, editor at %d, alive), %.0fs",
		mode(t), describeVictims(plainVictims, plainKills, ed.pid), editorMB, editorAdjPlain, n, workerMB, plain.Seconds(),
		describeVictims(boxVictims, boxKills, ed2.pid), adj, boxed.Seconds())
	boxrunRaw(t, "protect", "--undo")
}

// oomRanking is the global OOM scenario for the unprivileged user, without
// running out of memory: the global OOM killer kills the process with the
// highest badness, which the kernel shows as /proc/PID/oom_score. An editor
// (a user service: floor 100) of editorMB at 300 and a worker of workerMB
// are compared without boxrun and with the worker in a box of the tests policy
// (boxrun lowers the editor to its floor before the run).
func oomRanking(t *testing.T) {
	ed := startEditor(t, editorMB, "")
	score := func(pid int) int {
		v, err := strconv.Atoi(readTrim(fmt.Sprintf("/proc/%d/oom_score", pid)))
		if err != nil {
			t.Fatalf("oom_score of %d: %v", pid, err)
		}
		return v
	}
	self, _ := os.Executable()
	worker := func(args ...string) (int, func()) {
		pidfile := filepath.Join(t.TempDir(), "pid")
		script := fmt.Sprintf(`%s=hog HOG_MB=%d HOG_HOLD=20m %s >/dev/null 2>&1 & echo $! > %s; wait`, roleEnv, workerMB, self, pidfile)
		full := append(args, "sh", "-c", script)
		cmd := exec.Command(full[0], full[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(90 * time.Second)
		pid := 0
		for pid == 0 || rssMB(pid) < workerMB*9/10 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the worker never reached %d MiB", workerMB)
			}
			pid, _ = strconv.Atoi(readTrim(pidfile))
			time.Sleep(100 * time.Millisecond)
		}
		return pid, func() {
			syscall.Kill(pid, syscall.SIGTERM)
			cmd.Wait()
		}
	}
	w, stop := worker()
	edPlain, wPlain := score(ed.pid), score(w)
	stop()
	if edPlain <= wPlain {
		t.Errorf("without boxrun the editor's oom_score %d is not above the worker's %d: the global OOM killer would not pick it, the scenario does not reproduce the report", edPlain, wPlain)
	}
	args := append([]string{boxrunBin(t)}, backendArgs(t)...)
	args = append(args, "-q", "--set", "memory.max=max", "--set", "memory.high=max", "--set", "memory.backpressure=false", "--")
	w, stop = worker(args...)
	edBoxed, wBoxed := score(ed.pid), score(w)
	wAdj := readTrim(fmt.Sprintf("/proc/%d/oom_score_adj", w))
	stop()
	adj := ed.oomScoreAdj(t)
	if wBoxed <= edBoxed {
		t.Errorf("with boxrun the worker's oom_score %d (oom_score_adj %s) is not above the editor's %d (oom_score_adj %d)", wBoxed, wAdj, edBoxed, adj)
	}
	if adj >= 300 {
		t.Errorf("boxrun did not lower the editor's oom_score_adj (still %d)", adj)
	}
	t.Logf("figures: global OOM ranking, user (oom_score, the badness the OOM killer maximises): without boxrun editor %d > worker %d, so the editor would be killed; with boxrun worker %d (oom_score_adj %s) > editor %d (oom_score_adj 300 → %d, its floor)",
		edPlain, wPlain, wBoxed, wAdj, edBoxed, adj)
	boxrunRaw(t, "protect", "--undo")
}

// describeVictims names the OOM victims for the figures line.
func describeVictims(v []string, kills, editor int) string {
	if len(v) == 0 {
		if kills == 1 {
			return "1 process (the kernel log is not readable here)"
		}
		return fmt.Sprintf("%d processes (the kernel log is not readable here)", kills)
	}
	var names []string
	for _, x := range v {
		pid, comm, _ := strings.Cut(x, " ")
		if pid == strconv.Itoa(editor) {
			names = append(names, "the editor ("+comm+")")
		} else {
			names = append(names, "a worker ("+comm+")")
		}
	}
	return strings.Join(names, ", ")
}

// TestProtectSetsMemoryLow writes memory.low on the editor's unit (or
// cgroup) and checks the effective protection computed from the real
// files, without and (where the mode may) with ancestor protection, then
// undoes it all.
func TestProtectSetsMemoryLow(t *testing.T) {
	pf := policyFile(t, protectPolicy)
	var ed *editorProc
	var top string // the ancestor that caps the protection
	switch mode(t) {
	case "root":
		// A nested slice: itprot-inner.slice sets nothing and, with
		// memory_recursiveprot, passes itprot.slice's protection down.
		ed = startEditor(t, 16, "itprot-inner.slice")
		top = "/itprot.slice"
	case "user":
		ed = startEditor(t, 16, "app.slice")
		top = "/user.slice"
	default:
		ed = startEditor(t, 16, "")
		for _, dir := range []string{"/sys/fs/cgroup/itprot", "/sys/fs/cgroup/itprot/editor"} {
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			os.WriteFile("/sys/fs/cgroup/cgroup.procs", []byte(strconv.Itoa(ed.pid)), 0)
			ed.cmd.Process.Kill()
			ed.cmd.Wait()
			os.Remove("/sys/fs/cgroup/itprot/editor")
			os.Remove("/sys/fs/cgroup/itprot")
		})
		for _, f := range []string{"/sys/fs/cgroup/cgroup.subtree_control", "/sys/fs/cgroup/itprot/cgroup.subtree_control"} {
			if err := os.WriteFile(f, []byte("+memory"), 0); err != nil {
				t.Fatalf("enabling memory in %s: %v", f, err)
			}
		}
		if err := os.WriteFile("/sys/fs/cgroup/itprot/editor/cgroup.procs", []byte(strconv.Itoa(ed.pid)), 0); err != nil {
			t.Fatal(err)
		}
		top = "/itprot"
	}
	cg := ed.cgroup()
	wantFix := map[string]string{
		"root":     "sudo systemctl set-property itprot.slice MemoryLow=64M",
		"user":     "sudo systemctl set-property user.slice MemoryLow=64M",
		"cgroupfs": fmt.Sprintf("echo %d | sudo tee /sys/fs/cgroup/itprot/memory.low", itLow),
	}[mode(t)]

	dry := protect(t, pf, "--dry-run")
	if got := memoryLowFile(t, cg); got != 0 || ed.oomScoreAdj(t) != 300 {
		t.Fatalf("--dry-run changed something: memory.low %d, oom_score_adj %d", got, ed.oomScoreAdj(t))
	}
	if len(dry.Units) != 1 || dry.Units[0].Set != itLow {
		t.Errorf("--dry-run should say it would set 64M on %s: %+v", cg, dry.Units)
	}

	rep := protect(t, pf)
	if len(rep.Units) != 1 || rep.Units[0].Cgroup != cg {
		t.Fatalf("want one unit, %s: %+v", cg, rep.Units)
	}
	u := rep.Units[0]
	got := memoryLowFile(t, cg)
	if got != itLow || u.Set != itLow || !u.Changed {
		t.Errorf("memory.low of %s is %d (reported %d, changed %v), want %d", cg, got, u.Set, u.Changed, itLow)
	}
	if !u.Protection.Recursive {
		t.Errorf("the guest mounts cgroup2 with memory_recursiveprot, protect says not")
	}
	var cmds []string
	for _, f := range u.Protection.Fixes {
		cmds = append(cmds, f.Command)
	}
	if u.Protection.Effective != 0 || len(cmds) != 1 || cmds[0] != wantFix {
		t.Errorf("without ancestor protection: effective %d, fixes %q; want 0 and exactly %q", u.Protection.Effective, cmds, wantFix)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].PID != ed.pid {
		t.Fatalf("want the fake editor, pid %d: %+v", ed.pid, rep.Processes)
	}
	p := rep.Processes[0]
	adj := ed.oomScoreAdj(t)
	floorNote := ""
	switch mode(t) {
	case "user":
		// The user manager started it: its floor is the manager's value,
		// user@.service's OOMScoreAdjust (100 since systemd 250).
		ppid := parentOf(ed.pid)
		floor, _ := procfs.ReadOOMScoreAdj(ppid)
		if adj != floor || p.After != floor || !p.Floor || p.Before != 300 {
			t.Errorf("oom_score_adj %d (reported %d → %d, floor %v); want 300 → %d, the user manager's, at the floor", adj, p.Before, p.After, p.Floor, floor)
		}
		floorNote = fmt.Sprintf(", stopped at the floor %d", floor)
	default:
		if adj != -500 || p.After != -500 {
			t.Errorf("as root oom_score_adj should reach -500: %d (reported %d)", adj, p.After)
		}
	}

	// With ancestor protection.
	effectiveWith := uint64(0)
	if mode(t) == "user" {
		r := boxrunRaw(t, "-f", pf, "-p", "itprot", "protect", "--system")
		if r.code != 125 || !strings.Contains(r.stderr, "needs root") {
			t.Errorf("--system as a user: exit %d, %q; want 125 saying it needs root", r.code, r.stderr)
		}
	} else {
		rep = protect(t, pf, "--system")
		u = rep.Units[0]
		if got := memoryLowFile(t, top); got != itLow {
			t.Errorf("--system: memory.low of %s is %d, want %d", top, got, itLow)
		}
		applied := false
		for _, f := range u.Protection.Fixes {
			applied = applied || (f.Applied && f.Command == wantFix)
			if !f.Applied {
				t.Errorf("--system left a fix undone: %s", f.Command)
			}
		}
		if !applied || u.Protection.Effective != itLow {
			t.Errorf("with %s protected: effective %d, fixes %+v; want %d and the fix applied", top, u.Protection.Effective, u.Protection.Fixes, itLow)
		}
		if mode(t) == "root" && memoryLowFile(t, "/itprot.slice/itprot-inner.slice") != 0 {
			t.Errorf("itprot-inner.slice should set nothing and pass the protection down")
		}
		effectiveWith = u.Protection.Effective
	}
	var chain []string
	for _, l := range u.Protection.Chain {
		chain = append(chain, fmt.Sprintf("%s=%d", l.Cgroup, l.Low))
	}

	r := boxrunRaw(t, "protect", "--undo")
	if r.code != 0 {
		t.Errorf("--undo: exit %d", r.code)
	}
	if got := memoryLowFile(t, cg); got != 0 {
		t.Errorf("after --undo memory.low of %s is %d, want 0", cg, got)
	}
	if mode(t) != "user" {
		if got := memoryLowFile(t, top); got != 0 {
			t.Errorf("after --undo memory.low of %s is %d, want 0", top, got)
		}
	}
	if adj := ed.oomScoreAdj(t); adj != 300 {
		t.Errorf("after --undo oom_score_adj is %d, want 300", adj)
	}
	t.Logf("figures: memory.low, %s: set 64M on %s; effective 0 (fix: %s), with %s protected %s; oom_score_adj 300 → %d%s; chain %s; undo restored all",
		mode(t), filepath.Base(cg), wantFix, top, fmtMiB(effectiveWith, mode(t) == "user"), p.After, floorNote, strings.Join(chain, " "))
}

func fmtMiB(v uint64, na bool) string {
	if na {
		return "n/a (needs root)"
	}
	return fmt.Sprintf("%dM", v>>20)
}

// parentOf reads a process's parent pid, 0 when the process is gone.
func parentOf(pid int) int {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.PPID
}

// TestProtectWatchPicksUpNewEditor: `protect --watch` tells systemd it is
// ready, protects an editor started after it, and exits 0 on SIGTERM.
func TestProtectWatchPicksUpNewEditor(t *testing.T) {
	pf := policyFile(t, protectPolicy)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(boxrunBin(t), "-f", pf, "-p", "itprot", "protect", "--watch")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("no READY=1 from protect --watch: %q, %v\nstderr: %s", buf[:n], err, stderr.String())
	}
	ed := startEditor(t, 16, "")
	started := time.Now()
	for ed.oomScoreAdj(t) >= 300 {
		if time.Since(started) > 30*time.Second {
			t.Fatalf("protect --watch did not lower the new editor's oom_score_adj within 30s\nstderr: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	latency := time.Since(started)
	adj := ed.oomScoreAdj(t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("protect --watch after SIGTERM: %v, want exit 0\nstderr: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("protect --watch did not exit within 15s of SIGTERM")
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("protected code (pid %d", ed.pid)) {
		t.Errorf("protect --watch did not say it protected pid %d:\n%s", ed.pid, stderr.String())
	}
	t.Logf("figures: protect --watch, %s: a new editor protected %.1fs after it held its memory (oom_score_adj 300 → %d)", mode(t), latency.Seconds(), adj)
	boxrunRaw(t, "protect", "--undo")
}

// doctorJSON is `boxrun doctor --json`.
type doctorJSON struct {
	OK     bool `json:"ok"`
	Checks []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Summary string `json:"summary"`
		Fix     string `json:"fix"`
	} `json:"checks"`
}

func TestDoctorVerdicts(t *testing.T) {
	r := boxrunRaw(t, "doctor", "--json")
	var d doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("doctor --json: %v", err)
	}
	status := map[string]string{}
	var line []string
	for _, c := range d.Checks {
		status[c.ID] = c.Status
		line = append(line, c.ID+"="+c.Status)
	}
	want := map[string]string{
		"versions": "ok", "cgroup2": "ok", "backend": "ok", "recursiveprot": "ok", "psi": "ok",
		"memory.peak": "ok", "cgroup.kill": "ok", "clone_into_cgroup": "ok", "container": "ok",
		"swap": "warn", // the guest has none
	}
	// Both guests' managers (252.39, 257) set OOMPolicy on a scope
	// (252.5+; TestScopeCarriesOOMPolicy sees it carried).
	switch mode(t) {
	case "root":
		want["systemd"], want["controllers"], want["scope_oompolicy"] = "ok", "ok", "ok"
	case "user":
		// user@.service delegates cpu, memory and pids, not io.
		want["systemd"], want["controllers"], want["scope_oompolicy"] = "ok", "warn", "ok"
	case "cgroupfs":
		want["systemd"], want["controllers"] = "warn", "ok"
		if _, ok := status["scope_oompolicy"]; ok {
			t.Errorf("scope_oompolicy shown without the systemd backend")
		}
	}
	for _, c := range d.Checks {
		// The versions line names this kernel, and a manager only where
		// one answered.
		if c.ID == "versions" && (!strings.Contains(c.Summary, "Linux "+osRelease(t)+", ") ||
			strings.Contains(c.Summary, "no systemd manager answered") != (mode(t) == "cgroupfs")) {
			t.Errorf("versions: %q; want Linux %s and, in mode %s, the manager's version", c.Summary, osRelease(t), mode(t))
		}
	}
	for id, s := range want {
		if status[id] != s {
			t.Errorf("%s: %q, want %q", id, status[id], s)
		}
	}
	if r.code != 0 || !d.OK {
		t.Errorf("doctor: exit %d, ok %v; want 0: the tests policy can be enforced here", r.code, d.OK)
	}
	// The text form: one line per check.
	txt := boxrunRaw(t, "doctor")
	if n := strings.Count(txt.stdout, "✓"); n < 8 {
		t.Errorf("doctor printed %d ✓ lines:\n%s", n, txt.stdout)
	}
	t.Logf("figures: doctor, %s: %s", mode(t), strings.Join(line, " "))
}

// TestInstallUserUnit installs the watcher as a user unit over D-Bus,
// checks that it runs and protects a new editor, and uninstalls it. Root
// (and the boot without systemd, which runs as root) is refused.
func TestInstallUserUnit(t *testing.T) {
	if mode(t) != "user" {
		r := boxrunRaw(t, "install", "user-unit")
		if r.code != 125 || !strings.Contains(r.stderr, "without sudo") {
			t.Errorf("install as root: exit %d, %q; want 125", r.code, r.stderr)
		}
		return
	}
	file := filepath.Join(os.Getenv("HOME"), ".config", "systemd", "user", "boxrun-protect.service")
	r := boxrunRaw(t, "install", "user-unit")
	t.Cleanup(func() {
		boxrunRaw(t, "uninstall", "user-unit")
		boxrunRaw(t, "protect", "--undo")
	})
	if r.code != 0 {
		t.Fatalf("install user-unit: exit %d", r.code)
	}
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), "ExecStart="+boxrunBin(t)+" protect --watch") {
		t.Fatalf("unit file %s: %v\n%s", file, err, data)
	}
	if st := run(t, "systemctl", "--user", "is-active", "boxrun-protect.service"); st != "active" {
		t.Errorf("boxrun-protect.service is %s", st)
	}
	if en, _ := exec.Command("systemctl", "--user", "is-enabled", "boxrun-protect.service").Output(); strings.TrimSpace(string(en)) != "enabled" {
		t.Errorf("boxrun-protect.service is %q, want enabled", strings.TrimSpace(string(en)))
	}
	// The installed watcher protects the editors group of the tests policy.
	ed := startEditor(t, 16, "")
	started := time.Now()
	for ed.oomScoreAdj(t) >= 300 && time.Since(started) < 30*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if adj := ed.oomScoreAdj(t); adj >= 300 {
		t.Errorf("the installed watcher did not protect a new editor within 30s (oom_score_adj %d)", adj)
	}
	r = boxrunRaw(t, "uninstall", "user-unit")
	if r.code != 0 {
		t.Errorf("uninstall user-unit: exit %d", r.code)
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("%s still exists after uninstall", file)
	}
	out, _ := exec.Command("systemctl", "--user", "is-active", "boxrun-protect.service").Output()
	if st := strings.TrimSpace(string(out)); st == "active" {
		t.Errorf("boxrun-protect.service still %s after uninstall", st)
	}
	r = boxrunRaw(t, "uninstall", "user-unit")
	if r.code != 0 || !strings.Contains(r.stderr, "was not installed") {
		t.Errorf("second uninstall: exit %d, %q", r.code, r.stderr)
	}
	t.Logf("figures: install user-unit: active and protecting a new editor %.1fs after start; uninstall removed it", time.Since(started).Seconds())
}
