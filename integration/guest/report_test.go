//go:build boxrunguest

package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runReport is the part of --report-json the scenarios check.
type runReport struct {
	Policy struct {
		Name      string  `json:"name"`
		MemoryMax *uint64 `json:"memory_max"`
	} `json:"policy"`
	Unit     *string `json:"unit"`
	Cgroup   *string `json:"cgroup"`
	Backend  string  `json:"backend"`
	Kernel   *string `json:"kernel"`
	Systemd  *string `json:"systemd"`
	PID      int     `json:"pid"`
	ExitCode int     `json:"exit_code"`
	Signal   *string `json:"signal"`
	Memory   struct {
		PeakBytes  uint64 `json:"peak_bytes"`
		PeakSource string `json:"peak_source"`
		Events     struct {
			High    uint64 `json:"high"`
			Max     uint64 `json:"max"`
			OOM     uint64 `json:"oom"`
			OOMKill uint64 `json:"oom_kill"`
		} `json:"events"`
	} `json:"memory"`
	Pids struct {
		Peak      uint64 `json:"peak"`
		EventsMax uint64 `json:"events_max"`
	} `json:"pids"`
	CPU struct {
		UsageUSec uint64 `json:"usage_usec"`
	} `json:"cpu"`
	Samples []struct {
		T           float64 `json:"t"`
		MemoryBytes uint64  `json:"memory_bytes"`
	} `json:"samples"`
	OOMVictims []struct {
		PID       int    `json:"pid"`
		Comm      string `json:"comm"`
		RSSBytes  uint64 `json:"rss_bytes"`
		InsideBox bool   `json:"inside_box"`
		Certainty string `json:"certainty"`
	} `json:"oom_victims"`
	OutsideOOMKills uint64 `json:"outside_oom_kills"`
	KernelLogRead   bool   `json:"kernel_log_read"`
	Leftovers       []struct {
		PID     int    `json:"pid"`
		Comm    string `json:"comm"`
		Cmdline string `json:"cmdline"`
	} `json:"leftovers"`
	LeftoversKilled bool `json:"leftovers_killed"`
	Diagnosis       []struct {
		Kind     string `json:"kind"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	} `json:"diagnosis"`
	Notes []string `json:"notes"`
}

// boxrunReport runs boxrun with --report-json and reads the report.
func boxrunReport(t *testing.T, args ...string) (result, runReport) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	r := boxrun(t, append([]string{"--report-json", path}, args...)...)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("boxrun wrote no --report-json: %v", err)
	}
	t.Logf("report.json:\n%s", data)
	var rep runReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--report-json is not the documented JSON: %v", err)
	}
	return r, rep
}

// diagnosis returns the report's diagnosis of kind, if any.
func (rep runReport) diagnosis(kind string) (string, bool) {
	for _, d := range rep.Diagnosis {
		if d.Kind == kind {
			return d.Message, true
		}
	}
	return "", false
}

func TestReportExplainsAnOOMKill(t *testing.T) {
	pf := itPolicy(t, "")
	self, _ := os.Executable()
	// The hog is the command itself: the box empties the moment the OOM
	// killer takes it, and systemd removes an empty scope at once, so the
	// figures must have been read while it happened. -q: an OOM kill is
	// reported all the same.
	r, rep := boxrunReport(t, "-q", "-f", pf, "-p", "it", "--set", "memory.high=max", "--",
		"env", roleEnv+"=hog", "HOG_MB=400", "HOG_HOLD=1s", self)
	if r.code != 137 || rep.ExitCode != 137 || rep.Signal == nil || *rep.Signal != "SIGKILL" {
		t.Errorf("exit %d, report exit %d signal %v; want 137 and SIGKILL", r.code, rep.ExitCode, rep.Signal)
	}
	if rep.Memory.Events.OOMKill < 1 || rep.Memory.Events.OOM < 1 {
		t.Errorf("memory.events oom %d, oom_kill %d; want both >= 1", rep.Memory.Events.OOM, rep.Memory.Events.OOMKill)
	}
	// memory.peak can pass memory.max by the last charge (a page, seen).
	// When systemd removed the emptied scope before boxrun's final read,
	// the peak is the last one read before (the report says so in notes).
	minPeak := uint64(100 << 20)
	if strings.Contains(strings.Join(rep.Notes, " "), "was gone when the command exited") {
		minPeak = 32 << 20
	}
	if rep.Memory.PeakSource != "memory.peak" || rep.Memory.PeakBytes < minPeak || rep.Memory.PeakBytes > 129<<20 {
		t.Errorf("memory peak %d from %q; want about memory.max=128M from memory.peak (Linux 6.1)", rep.Memory.PeakBytes, rep.Memory.PeakSource)
	}
	if len(rep.Samples) == 0 || rep.PID == 0 || rep.CPU.UsageUSec == 0 {
		t.Errorf("%d samples, pid %d, cpu %d usec; want samples, the command's pid and its CPU time", len(rep.Samples), rep.PID, rep.CPU.UsageUSec)
	}
	comm := kernelComm(self)
	switch {
	case rep.KernelLogRead:
		named := false
		for _, v := range rep.OOMVictims {
			named = named || v.PID == rep.PID && v.Comm == comm && v.InsideBox && v.RSSBytes > 64<<20 && v.Certainty == "kernel log"
		}
		if !named {
			t.Errorf("victims %+v do not name the hog (pid %d, %s, inside the box, from the kernel log)", rep.OOMVictims, rep.PID, comm)
		}
	case mode(t) == "user":
		// kernel.dmesg_restrict: the hog, the box's only process, is named
		// from boxrun's samples of the box's processes, and the text says
		// how to confirm it.
		named := false
		for _, v := range rep.OOMVictims {
			named = named || v.PID == rep.PID && v.Comm == comm && v.InsideBox && v.Certainty == "vanished at the kill"
		}
		if !named || !strings.Contains(r.stderr, "named the victims from its samples") {
			t.Errorf("the kernel log was unreadable: want the hog (pid %d, %s) named from the samples, and the text saying so; victims %+v, text %q", rep.PID, comm, rep.OOMVictims, r.stderr)
		}
	default:
		t.Errorf("as root the kernel log must be readable; notes: %q", rep.Notes)
	}
	msg, ok := rep.diagnosis("oom_kill")
	if !ok || !strings.Contains(msg, "memory.max=128M") {
		t.Errorf("diagnosis %+v: want oom_kill naming memory.max=128M", rep.Diagnosis)
	}
	if !strings.Contains(r.stderr, "boxrun: it · ") || !strings.Contains(r.stderr, "killed by the kernel's OOM killer, inside this box, at memory.max=128M") {
		t.Errorf("the text report (printed despite -q) does not say OOM: %q", r.stderr)
	}
	if rep.OutsideOOMKills != 0 {
		t.Errorf("outside_oom_kills %d: nothing else ran out of memory", rep.OutsideOOMKills)
	}
}

// kernelComm is the command name the kernel keeps for a program: its base
// name, cut to 15 characters.
func kernelComm(path string) string {
	comm := filepath.Base(path)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	return comm
}

// TestReportNamesTheOOMVictim: one hog of a box of three processes goes
// past memory.max, without backpressure, and is OOM-killed. The report
// names it — pid, command, a resident size and how sure — as root from the
// kernel log, and as the unprivileged user (kernel.dmesg_restrict) from
// boxrun's samples of the box's processes: the hog is the one process that
// left the box when its oom_kill rose.
func TestReportNamesTheOOMVictim(t *testing.T) {
	pf := itPolicy(t, "")
	self, _ := os.Executable()
	script := fmt.Sprintf(`sleep 2 & sib=$!
%s=hog HOG_MB=400 HOG_HOLD=1s %s & hog=$!; echo "hogpid=$hog"
wait $hog; echo "hog=$?"
wait $sib; echo "sibling=$?"`, roleEnv, self)
	// memory.high=max: without swap, throttling above high would only slow
	// the hog on its way to memory.max.
	r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--set", "memory.high=max", "--set", "memory.backpressure=false", "--", "sh", "-c", script)
	f := fields(r.stdout)
	hogPID, _ := strconv.Atoi(f["hogpid"])
	if f["hog"] != "137" || f["sibling"] != "0" || hogPID == 0 {
		t.Fatalf("hog pid %q exit %q, sibling exit %q; want the hog SIGKILLed by the OOM killer (137) and the sibling unharmed (0)", f["hogpid"], f["hog"], f["sibling"])
	}
	if rep.Memory.Events.OOMKill != 1 {
		t.Errorf("memory.events oom_kill %d, want 1", rep.Memory.Events.OOMKill)
	}
	comm := kernelComm(self)
	wantCertainty := "kernel log"
	if mode(t) == "user" {
		// kernel.dmesg_restrict: the scenario is about naming without it.
		if rep.KernelLogRead {
			t.Errorf("the unprivileged user read the kernel log: the guest must set kernel.dmesg_restrict=1 for this scenario to test naming without it")
		}
		wantCertainty = "vanished at the kill"
	}
	var named []string
	found := false
	for _, v := range rep.OOMVictims {
		named = append(named, fmt.Sprintf("pid %d %s %d bytes inside=%v %q", v.PID, v.Comm, v.RSSBytes, v.InsideBox, v.Certainty))
		if v.PID == hogPID {
			found = true
			// Its size is what a sample saw; a hog that fills the box
			// between two samples may be sampled only as it dies, its
			// memory already freed: the text must then say the size is
			// unknown, never 0 bytes.
			unknown := fmt.Sprintf("pid %d %s (size unknown: sampled only as it died;", v.PID, v.Comm)
			if v.Comm != comm || !v.InsideBox || v.Certainty != wantCertainty ||
				(v.RSSBytes == 0 && (wantCertainty == "kernel log" || !strings.Contains(r.stderr, unknown))) {
				t.Errorf("the hog's entry: pid %d %s %d bytes inside=%v certainty %q; want %s, inside the box, its resident size (or, from samples, a text saying it is unknown), certainty %q; text %q",
					v.PID, v.Comm, v.RSSBytes, v.InsideBox, v.Certainty, comm, wantCertainty, r.stderr)
			}
			t.Logf("figures: oom victim's size as reported: %d bytes (%s)", v.RSSBytes, v.Certainty)
		}
	}
	if !found || len(rep.OOMVictims) != 1 {
		t.Errorf("oom_victims %q: want exactly the hog, pid %d %s", named, hogPID, comm)
	}
	// The text names it and says how sure.
	how := "from the kernel log"
	if wantCertainty != "kernel log" {
		how = "it left the box at the kill"
	}
	if line := fmt.Sprintf("pid %d %s (", hogPID, comm); !strings.Contains(r.stderr, line) || !strings.Contains(r.stderr, how) {
		t.Errorf("the text report does not name the hog (%q) and say %q: %q", line, how, r.stderr)
	}
	t.Logf("figures: oom victim named %s (%s) as %s", comm, wantCertainty, mode(t))
}

func TestReportCountsRefusedForks(t *testing.T) {
	pf := itPolicy(t, "")
	r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--set", "pids.max=12", "--", "sh", "-c",
		`for i in $(seq 30); do sleep 2 & done; wait`)
	if rep.Pids.EventsMax < 1 {
		t.Errorf("pids.events_max %d, want >= 1 (forks refused at pids.max=12)", rep.Pids.EventsMax)
	}
	if msg, ok := rep.diagnosis("fork_failed"); !ok || !strings.Contains(msg, "pids.max=12 reached") {
		t.Errorf("diagnosis %+v: want fork_failed naming pids.max=12", rep.Diagnosis)
	}
	if !strings.Contains(r.stderr, "✗ fork failed") || !strings.Contains(r.stderr, `raise pids.max in policy "it"`) {
		t.Errorf("text report: %q", r.stderr)
	}
}

func TestReportSeesThrottlingAboveMemoryHigh(t *testing.T) {
	pf := itPolicy(t, "")
	// Page cache can be reclaimed without swap, so a run above memory.high
	// is throttled into reclaim and still finishes; anonymous memory would
	// only stall. The guest's writable layer is tmpfs (shmem, not
	// reclaimable either), so the page cache comes from reading one file
	// of the host's through virtiofs, made by the host next to this binary
	// (integration's pageCacheFile). One file, not a walk of the host's
	// /usr: a walk charges the box tens of thousands of virtiofs inodes
	// and dentries, kernel memory that reclaim frees slowly if at all, and
	// a box held above memory.high by it is throttled for minutes (a CI
	// run was cut off at 180 s). Pages already cached are charged to
	// whoever read them first: as root, start and end with an empty
	// cache, so that the user's run of this scenario reads afresh.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(filepath.Dir(self), "pagecache.bin")
	if fi, err := os.Stat(file); err != nil || fi.Size() < 150<<20 {
		t.Fatalf("the host made no page cache file of 150M or more next to the guest binary: %v", err)
	}
	dropCaches := func() {
		if mode(t) != "user" {
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
				t.Errorf("dropping the page cache: %v", err)
			}
		}
	}
	dropCaches()
	t.Cleanup(dropCaches)
	r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--set", "memory.high=32M", "--set", "memory.max=256M", "--", "sh", "-c",
		fmt.Sprintf(`cat %s | wc -c | sed 's/^/read=/'`, file))
	if n, _ := strconv.Atoi(strings.TrimSpace(fields(r.stdout)["read"])); n < 150<<20 {
		t.Errorf("read %d bytes of %s, want all of it", n, file)
	}
	if r.code != 0 {
		t.Errorf("exit %d, want 0: page cache above memory.high is reclaimed, not killed", r.code)
	}
	if rep.Memory.Events.High == 0 || rep.Memory.Events.OOMKill != 0 {
		t.Errorf("memory.events high %d, oom_kill %d; want high > 0 and no OOM kill", rep.Memory.Events.High, rep.Memory.Events.OOMKill)
	}
	if msg, ok := rep.diagnosis("memory_high"); !ok || !strings.Contains(msg, "memory.high=32M") {
		t.Errorf("diagnosis %+v: want memory_high naming memory.high=32M", rep.Diagnosis)
	}
	if !strings.Contains(r.stderr, "throttled above high 32M") {
		t.Errorf("text report: %q", r.stderr)
	}
}

func TestReportListsLeftovers(t *testing.T) {
	pf := itPolicy(t, "")
	pidfile := filepath.Join(t.TempDir(), "pid")
	r, rep := boxrunReport(t, "-f", pf, "-p", "it", "--", "sh", "-c",
		fmt.Sprintf(`sleep 300 & echo $! > %s; sleep 0.3; exit 3`, pidfile))
	data, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	found := false
	for _, l := range rep.Leftovers {
		found = found || l.PID == pid && l.Comm == "sleep" && l.Cmdline == "sleep 300"
	}
	if r.code != 3 || !found || !rep.LeftoversKilled {
		t.Errorf("exit %d, leftovers %+v (killed %v); want 3 and pid %d sleep: sleep 300, killed", r.code, rep.Leftovers, rep.LeftoversKilled, pid)
	}
	if _, ok := rep.diagnosis("leftovers"); !ok || !strings.Contains(r.stderr, "1 process outlived sh and was killed") {
		t.Errorf("diagnosis %+v, stderr %q", rep.Diagnosis, r.stderr)
	}
}

// TestReportSigkillFromOutside is the second user report's question: the
// command died by SIGKILL, and the report must say the OOM killer did not
// send it.
func TestReportSigkillFromOutside(t *testing.T) {
	pf := itPolicy(t, "")
	r, rep := boxrunReport(t, "-q", "-f", pf, "-p", "it", "--", "sh", "-c", "kill -KILL $$")
	if r.code != 137 || rep.Memory.Events.OOMKill != 0 {
		t.Errorf("exit %d, oom_kill %d; want 137 and no OOM kill", r.code, rep.Memory.Events.OOMKill)
	}
	if msg, ok := rep.diagnosis("sigkill"); !ok || !strings.Contains(msg, "not by the OOM killer") {
		t.Errorf("diagnosis %+v: want sigkill, not by the OOM killer", rep.Diagnosis)
	}
	if !strings.Contains(r.stderr, "the SIGKILL came from outside the box's OOM killer") {
		t.Errorf("text report (printed despite -q): %q", r.stderr)
	}
}

// statusEntry is the part of `boxrun status --json` the scenario checks.
type statusEntry struct {
	Backend string  `json:"backend"`
	Manager *string `json:"manager"`
	Unit    *string `json:"unit"`
	Cgroup  string  `json:"cgroup"`
	Policy  string  `json:"policy"`
	Command string  `json:"command"`
	Memory  struct {
		MaxBytes *uint64 `json:"max_bytes"`
	} `json:"memory"`
	Pids struct {
		Current uint64  `json:"current"`
		Max     *uint64 `json:"max"`
	} `json:"pids"`
	AgeSeconds *float64 `json:"age_seconds"`
}

func TestStatusShowsARunningBox(t *testing.T) {
	pf := itPolicy(t, "")
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(boxrunBin(t), append(backendArgs(t), "-q", "-f", pf, "-p", "it", "--", "sh", "-c", "touch "+ready+"; exec sleep 120")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) // forwarded to sleep
		cmd.Wait()
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the boxed sleep never started")
		}
	}
	// status takes no run flags (--backend, --system): it lists every box.
	out, err := exec.Command(boxrunBin(t), "status", "--json").Output()
	var list []statusEntry
	if err != nil || json.Unmarshal(out, &list) != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var box *statusEntry
	for i := range list {
		if list[i].Policy == "it" && strings.Contains(list[i].Command, "sleep 120") {
			box = &list[i]
		}
	}
	if box == nil {
		t.Fatalf("status does not show the boxed sleep with policy it: %+v", list)
	}
	if box.Memory.MaxBytes == nil || *box.Memory.MaxBytes != 128<<20 || box.Pids.Max == nil || *box.Pids.Max != 64 || box.Pids.Current < 1 || box.AgeSeconds == nil {
		t.Errorf("figures %+v: want memory max 128M, pids 1+ of 64, an age", box)
	}
	switch mode(t) {
	case "root", "user":
		want := map[string]string{"root": "system", "user": "user"}[mode(t)]
		if box.Backend != "systemd" || box.Unit == nil || !regexp.MustCompile(`^boxrun-it-[0-9a-f]{8}\.scope$`).MatchString(*box.Unit) ||
			box.Manager == nil || *box.Manager != want {
			t.Errorf("box %+v: want a boxrun-it-XXXXXXXX.scope of the %s manager", box, want)
		}
	case "cgroupfs":
		if box.Backend != "cgroupfs" || box.Unit != nil || !regexp.MustCompile(`^/boxrun\.slice/boxrun-it-[0-9a-f]{8}$`).MatchString(box.Cgroup) {
			t.Errorf("box %+v: want the cgroupfs box /boxrun.slice/boxrun-it-XXXXXXXX", box)
		}
	}
	text, err := exec.Command(boxrunBin(t), "status").Output()
	if err != nil || !strings.Contains(string(text), "POLICY") || !strings.Contains(string(text), filepath.Base(box.Cgroup)) {
		t.Errorf("status: %v, stdout %q; want a table naming the box", err, text)
	}
}
