// Package integration runs boxrun against a real kernel and a real systemd.
//
// The development and CI machines have a hybrid cgroup hierarchy and no
// systemd as PID 1, so the scenarios (integration/guest) run inside a QEMU
// guest in pure emulation (integration/vm): once as root against the system
// manager, once as an unprivileged user against a delegated user manager,
// and once in a boot without systemd for the cgroupfs backend. The none
// backend is tested natively on the host. A scenario that cannot run fails
// with the reason; nothing here skips.
//
// The VM tests read from the environment (see options):
//
//	BOXRUN_IT_GUEST           debian12 (the default: Linux 6.1 over the
//	                          host's root, its systemd 252), debian13
//	                          (Linux 6.12, systemd 257, a root built with
//	                          mmdebstrap once per machine) or all (both,
//	                          one after the other); see integration/vm
//	BOXRUN_IT_RUN             a -test.run pattern: run only these scenarios
//	                          (in every mode; the sweep still runs after them)
//	BOXRUN_IT_COUNT=N         run each chosen scenario N times in the one boot
//	                          (-test.count=N in every mode), to hammer a flaky
//	                          one without N boots; a whole number, 1 or more
//	BOXRUN_IT_WATCHDOG_STALL  how long the guest's heartbeat may stop before
//	                          its watchdog dumps blocked tasks and memory to
//	                          the console (a Go duration; default 2m)
//	BOXRUN_IT_SOAK=N          the soak scenarios' run count (make soak)
//	BOXRUN_VM_LOG=1           copy the guest's console to stderr as it comes
//	BOXRUN_VM_CACHE           where the kernel and the builds are kept
//
// For example, a scenario that fails one run in five, ten times in the
// cgroupfs boot:
//
//	BOXRUN_IT_COUNT=10 BOXRUN_IT_RUN=TestCtrlZ go test -count=1 -v -run RealKernelCgroupfs ./integration/
package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxrun/boxrun/integration/vm"
)

// artifacts are the binaries built once for all guests.
type artifacts struct {
	dir, boxrun, guest string
	// workload and jsonget are bench/native.sh's helpers, which the guest
	// (no Go toolchain, a read-only view of the repository) cannot build.
	workload, jsonget string
	// crate is a built copy of integration/testdata/memcrate, cargo the
	// host's cargo; both "" when the host has no Rust toolchain.
	crate, cargo string
	err          error
}

var (
	buildOnce sync.Once
	built     artifacts
)

// repoRoot finds the module root from this package's directory.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// build compiles boxrun and the guest test binary (static, CGO off) into a
// directory the guest can see through its read-only share of the host's root.
func build(t *testing.T) artifacts {
	t.Helper()
	buildOnce.Do(func() {
		base := os.Getenv("BOXRUN_VM_CACHE")
		if base == "" {
			base = "/var/tmp/boxrun-vm"
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			built.err = err
			return
		}
		dir, err := os.MkdirTemp(base, "it-")
		if err != nil {
			built.err = err
			return
		}
		os.Chmod(dir, 0o755) // the unprivileged guest user runs these
		built = artifacts{dir: dir, boxrun: filepath.Join(dir, "boxrun"), guest: filepath.Join(dir, "guest.test"),
			workload: filepath.Join(dir, "workload"), jsonget: filepath.Join(dir, "jsonget")}
		for _, args := range [][]string{
			{"build", "-o", built.boxrun, "./cmd/boxrun"},
			{"test", "-c", "-tags", "boxrunguest", "-o", built.guest, "./integration/guest"},
			{"build", "-o", built.workload, "./bench/workload"},
			{"build", "-o", built.jsonget, "./bench/jsonget"},
		} {
			cmd := exec.Command("go", args...)
			cmd.Dir = repoRoot()
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		built.crate, built.cargo = buildCrate(dir)
		built.err = makePageCacheFile(dir)
	})
	if built.err != nil {
		t.Fatalf("building the binaries for the guest: %v", built.err)
	}
	return built
}

// pageCacheFile is a file the guest reads to fill a box with page cache
// (the throttling scenario): one file of the host's, visible read-only
// through virtiofs, whose clean pages the guest kernel can reclaim.
const pageCacheFile = "pagecache.bin"

// makePageCacheFile makes it next to the guest binary: 160 MiB, sparse on
// the host (the guest reads zeros, and caches them like any data).
func makePageCacheFile(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, pageCacheFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(160 << 20); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// buildCrate copies the memcrate test crate next to the binaries and builds
// its tests with the host's cargo, so that the guest's `cargo test` (slow
// under emulation) only checks that everything is fresh. It returns "" for
// both when there is no cargo; the scenario then fails with the reason.
func buildCrate(dir string) (crate, cargo string) {
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		return "", ""
	}
	crate = filepath.Join(dir, "memcrate")
	cp := exec.Command("cp", "-r", filepath.Join(repoRoot(), "integration", "testdata", "memcrate"), crate)
	if err := cp.Run(); err != nil {
		return "", ""
	}
	// The tests, and the workspace's helper that the lock tests run through
	// `cargo run -p helper`.
	for _, args := range [][]string{{"build", "--tests", "--offline", "-q"}, {"build", "--offline", "-q", "-p", "helper"}} {
		b := exec.Command(cargo, args...)
		b.Dir = crate
		if out, err := b.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building memcrate (cargo %s): %v\n%s", strings.Join(args, " "), err, out)
			return "", ""
		}
	}
	return crate, cargo
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// requireVM fails (never skips) when guest g cannot run here.
func requireVM(t *testing.T, g vm.Guest) {
	t.Helper()
	if err := vm.Available(g); err != nil {
		t.Fatalf("the real-kernel VM (%s) cannot run on this machine, so boxrun's cgroup behaviour cannot be tested: %v", g, err)
	}
}

// shares are the host directories a guest with a root of its own
// (Debian 13) needs at their own paths: the binaries built for it, the
// repository (bench/native.sh) and, for the cargo scenarios, a rustup
// toolchain's homes, whose cargo built the crate (the guest's cargo then
// finds it fresh). A distribution's cargo (/usr/bin/cargo) is the host's
// own file and cannot be shared: on such a host the Debian 13 guest's
// cargo scenarios fail, saying cargo is missing.
func shares(a artifacts) []string {
	s := []string{a.dir, repoRoot()}
	if a.cargo != "" {
		if home := filepath.Dir(filepath.Dir(a.cargo)); filepath.Base(home) == ".cargo" {
			s = append(s, home, filepath.Join(filepath.Dir(home), ".rustup"))
		}
	}
	return s
}

// guestInfo prints what the booted guest is, for the summary line (see
// parseGuestInfo): its OS and version, kernel release and systemd's
// version (the binary's, also in a boot without systemd).
const guestInfo = `(. /etc/os-release; echo "guest| os $ID $VERSION_ID"); echo "guest| kernel $(uname -r)"; echo "guest| systemd $(/lib/systemd/systemd --version | head -1)"`

// guestVersions is what the guest said it is.
type guestVersions struct {
	os, kernel, systemd string // e.g. "Debian 13", "6.12", "257"
}

var (
	kernelLine  = regexp.MustCompile(`(?m)^guest\| kernel (\d+\.\d+)\S*$`)
	osLine      = regexp.MustCompile(`(?m)^guest\| os (\S+) (\S+)$`)
	systemdLine = regexp.MustCompile(`(?m)^guest\| systemd systemd (\d+)\b`)
)

// parseGuestInfo reads guestInfo's lines from a guest's output; what is
// missing stays "?".
func parseGuestInfo(output string) guestVersions {
	v := guestVersions{os: "?", kernel: "?", systemd: "?"}
	if m := osLine.FindStringSubmatch(output); m != nil {
		v.os = strings.ToUpper(m[1][:1]) + m[1][1:] + " " + m[2]
	}
	if m := kernelLine.FindStringSubmatch(output); m != nil {
		v.kernel = m[1]
	}
	if m := systemdLine.FindStringSubmatch(output); m != nil {
		v.systemd = m[1]
	}
	return v
}

const guestPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// sweep is the scenario that runs after all others of a mode, in a second
// invocation of the guest binary: it checks that they left nothing behind.
const sweep = "TestNothingLeftBehind"

// guestRun is a shell snippet running the guest tests in one mode, then the
// sweep, each line of output prefixed with "MODE| ", ending with
// "MODE| exit=N" (N is non-zero when either invocation failed).
// The sweep runs once whatever options.count: it checks what all the runs
// before it left.
//
// Each invocation's -test.timeout comes out of the guest's budget (the
// shell variable $end, see guestScript), keeping reserve for what follows:
// a scenario that hangs then fails with Go's goroutine dump and the name of
// the test, instead of eating the VM's time and taking every result with it.
func guestRun(a artifacts, o options, mode, prefix string, reserve time.Duration) string {
	run := func(timeout string) string {
		return fmt.Sprintf("%s env -i %s TMPDIR=/tmp %s BOXRUN_BIN=%s BOXRUN_IT_MODE=%s %s -test.v -test.timeout %s",
			prefix, guestPath, modeEnv(a, mode), a.boxrun, mode, a.guest, timeout)
	}
	budget := fmt.Sprintf("$(( end - $(date +%%s) - %d ))s", int((reserve + sweepTimeout).Seconds()))
	return fmt.Sprintf(`(cd /tmp && %s %s; e=$?; %s -test.run '^%s$'; echo "exit=$((e | $?))") 2>&1 | sed -u 's/^/%s| /'`,
		run(budget), modeFlags(mode, o), run(sweepTimeout.String()), sweep, mode)
}

// sweepTimeout bounds the sweep, which only lists what is left.
const sweepTimeout = 2 * time.Minute

// guestMemoryMB is each guest's RAM. No scenario may exhaust it: under
// emulation the guest then thrashes on the executables it rereads over
// virtiofs, for minutes, before the OOM killer acts (see globalOOM in
// guest/). Every scenario's unboxed baseline must leave room (see
// requireRoomUnboxed in guest/).
const guestMemoryMB = 1024

// vmTimeout bounds each boot; guestBudget is what the guest's scenarios may
// use of it (booting, powering off and a margin take the rest).
const (
	vmTimeout   = 24 * time.Minute
	guestBudget = vmTimeout - 2*time.Minute
)

// prepareTimeout bounds building a guest's kernel and root the first time
// (measured: 1m50s for Debian 13's).
const prepareTimeout = 15 * time.Minute

// guestScript joins the lines of a guest's command. It sets $end, the time
// by which the scenarios must be done, starts the watchdog (first, to
// watch everything after it; see watchdog_test.go), and prints a
// heartbeat every 30 s (uptime, available memory, memory pressure),
// touching heartbeatStamp for the watchdog: a guest that froze shows as a
// gap in them, and as the watchdog's dump; one that thrashed as their
// pressure.
func guestScript(a artifacts, o options, lines ...string) string {
	head := []string{
		quietConsole,
		guestInfo,
		fmt.Sprintf("end=$(( $(date +%%s) + %d ))", int(guestBudget.Seconds())),
		watchdogStart(a.guest, o.stall),
		// BOXRUN_IT_HEARTBEAT marks its processes as the harness's for the sweep.
		// (A subshell would keep the parent's environ: the marker must be
		// in what /proc shows, so the loop is a shell of its own.)
		// Below 200M available it also says where the memory is (the
		// largest processes, shared memory, unreclaimable slab): a guest
		// that runs out of memory powers off before anyone can look.
		`BOXRUN_IT_HEARTBEAT=1 sh -c 'while :; do : > ` + heartbeatStamp + `; echo "heartbeat| up $(cut -d" " -f1 /proc/uptime)s, $(grep MemAvailable /proc/meminfo | tr -s " "), memory pressure $(head -1 /proc/pressure/memory)"; ` +
			`if [ "$(sed -n "s/^MemAvailable: *\([0-9]*\).*/\1/p" /proc/meminfo)" -lt 204800 ]; then echo "heartbeat| low: $(grep -E "^(Shmem|SUnreclaim|Unevictable|AnonPages|Mlocked):" /proc/meminfo | tr -s " " | tr "\n" " ")largest: $(ps -eo rss=,comm= --sort=-rss | head -5 | tr -s " " | tr "\n" ";")"; sleep 5; else sleep 30; fi; done' & hb=$!`,
	}
	return strings.Join(append(append(head, lines...), "kill $hb $wd"), "\n")
}

// modeEnv is the environment of one mode's scenarios. Root reaches the
// host's Rust toolchain (under /root) for the cargo scenario. The
// repository (the guest sees the host's files) holds bench/native.sh.
// BOXRUN_SIZES=off makes every scenario a first run: they share a working
// directory and a policy name, and sizes one learned would steer the next;
// a scenario about a second run turns it back on for itself.
func modeEnv(a artifacts, mode string) string {
	common := fmt.Sprintf(" BOXRUN_SIZES=off BOXRUN_IT_REPO=%s BOXRUN_IT_WORKLOAD=%s BOXRUN_IT_JSONGET=%s", repoRoot(), a.workload, a.jsonget)
	if n, err := strconv.Atoi(os.Getenv("BOXRUN_IT_SOAK")); err == nil && n > 0 {
		common += fmt.Sprintf(" BOXRUN_IT_SOAK=%d", n) // make soak: the long version
	}
	if mode == "user" {
		return "HOME=/home/boxtest XDG_RUNTIME_DIR=/run/user/1500" + common
	}
	env := "HOME=/root" + common
	if a.cargo != "" {
		env += fmt.Sprintf(" BOXRUN_IT_CARGO=%s BOXRUN_IT_CRATE=%s", a.cargo, a.crate)
		// A rustup install (~/.cargo/bin/cargo, a proxy) needs its homes;
		// a distribution's /usr/bin/cargo needs none.
		if home := filepath.Dir(filepath.Dir(a.cargo)); filepath.Base(home) == ".cargo" {
			env += fmt.Sprintf(" CARGO_HOME=%s RUSTUP_HOME=%s", home, filepath.Join(filepath.Dir(home), ".rustup"))
		}
	}
	return env
}

// modeFlags leaves out the sweep (run on its own, last) and, for the
// unprivileged user, the cargo scenarios (the host's Rust toolchain lives
// under /root) and the signal tracer's (root's run installs it and runs
// boxrun as the user). Root and the cgroupfs boot run them.
// $BOXRUN_IT_RUN (options.run) narrows the scenarios to a -test.run
// pattern (bench/ uses it to run only the backpressure ones);
// $BOXRUN_IT_COUNT (options.count) runs each of them that many times.
func modeFlags(mode string, o options) string {
	skip := sweep
	if mode == "user" {
		skip += "|TestCargoTestUnderBackpressure|TestCargoShimBoxesTests|TestCargoRunLockUnderBackpressure"
		// It installs a system service as root, then runs boxrun as the
		// user itself.
		skip += "|TestSignalTracerNamesSender"
	}
	var flags []string
	if pat := o.run; pat != "" {
		flags = append(flags, "-test.run '"+strings.ReplaceAll(pat, "'", "")+"'")
	} else {
		// The benchmarks (make bench) are not tests: they only report.
		skip += "|TestBench"
	}
	if o.count > 1 {
		flags = append(flags, fmt.Sprintf("-test.count %d", o.count))
	}
	return strings.Join(append(flags, "-test.skip '"+skip+"'"), " ")
}

// quietConsole keeps kernel messages (the OOM kills the scenarios cause on
// purpose) off the console, where they could split the test results' lines;
// they stay in the kernel log.
const quietConsole = "echo 1 > /proc/sys/kernel/printk"

// testUserFiles adds the unprivileged test user to the guest.
var testUserFiles = map[string]vm.File{
	"/etc/passwd": {Data: "boxtest:x:1500:1500:boxrun test user:/home/boxtest:/bin/sh\n", Append: true},
	"/etc/group":  {Data: "boxtest:x:1500:\n", Append: true},
	// PAM (through the "other" config on Debian) refuses a user without
	// a shadow entry, and user@1500.service with it.
	"/etc/shadow": {Data: "boxtest:!:20000:0:99999:7:::\n", Append: true},
}

var resultLine = regexp.MustCompile(`^(\w+)\| --- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// guestReport is what one mode's guest tests said.
type guestReport struct {
	// runs are the top-level tests in the order they started; with
	// BOXRUN_IT_COUNT=N a test is there N times, each run with its own
	// result and output, so that one failed run of N shows as failed.
	runs    []scenarioRun
	exit    string // the test binary's exit status, "" if never seen
	running string // the last top-level test that started and never ended
}

// scenarioRun is one run of one top-level guest test.
type scenarioRun struct {
	name   string
	result string   // PASS, FAIL or SKIP; "" for a run that never ended
	logs   []string // its output lines, from its "=== RUN" on
}

// finished counts the runs that reported a result.
func (r guestReport) finished() int {
	n := 0
	for _, run := range r.runs {
		if run.result != "" {
			n++
		}
	}
	return n
}

// parseGuest splits the console output of one mode into per-run results.
func parseGuest(output, mode string) guestReport {
	var r guestReport
	prefix := mode + "| "
	current := -1 // index in r.runs of the last top-level test that started
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		body := strings.TrimPrefix(line, prefix)
		if name, ok := strings.CutPrefix(body, "=== RUN   "); ok && !strings.Contains(name, "/") {
			r.runs = append(r.runs, scenarioRun{name: name})
			current = len(r.runs) - 1
		}
		if m := resultLine.FindStringSubmatch(line); m != nil && m[1] == mode {
			r.setResult(m[3], m[2])
		}
		if e, ok := strings.CutPrefix(body, "exit="); ok {
			r.exit = e
		}
		if current >= 0 {
			r.runs[current].logs = append(r.runs[current].logs, body)
		}
	}
	if current >= 0 && r.runs[current].result == "" {
		r.running = r.runs[current].name
	}
	return r
}

// setResult gives the result to the latest run of the test that has none
// (one whose "=== RUN" line was lost gets a run of its own).
func (r *guestReport) setResult(name, result string) {
	for i := len(r.runs) - 1; i >= 0; i-- {
		if r.runs[i].name == name && r.runs[i].result == "" {
			r.runs[i].result = result
			return
		}
	}
	r.runs = append(r.runs, scenarioRun{name: name, result: result})
}

// runningLogs returns the output of the run of r.running that never ended.
func (r guestReport) runningLogs() []string {
	for i := len(r.runs) - 1; i >= 0; i-- {
		if r.runs[i].name == r.running && r.runs[i].result == "" {
			return r.runs[i].logs
		}
	}
	return nil
}

// report turns a guest report into host subtests and returns how many
// passed and, for each that failed, its name and the first line saying why.
func report(t *testing.T, mode string, r guestReport) (passed int, failed []string) {
	t.Helper()
	if r.finished() == 0 {
		t.Errorf("%s: the guest tests never reported a result (exit=%q)", mode, r.exit)
		return 0, []string{mode + ": never reported a result"}
	}
	for _, run := range r.runs {
		res := run.result
		if res == "" {
			continue // still running when the VM stopped: boot says so
		}
		// A test run N times (BOXRUN_IT_COUNT) gives N subtests, the
		// second and later named NAME#01, NAME#02... by go test.
		t.Run(mode+"/"+run.name, func(t *testing.T) {
			switch res {
			case "PASS":
				// Measurements the scenario reports ("figures: ...").
				for _, l := range run.logs {
					if i := strings.Index(l, "figures: "); i >= 0 {
						t.Log(l[i:])
					}
				}
			case "SKIP":
				t.Errorf("skipped in the guest: real-kernel scenarios must not skip\n%s", strings.Join(run.logs, "\n"))
			default:
				t.Errorf("failed in the guest:\n%s", strings.Join(run.logs, "\n"))
			}
		})
		if res == "PASS" {
			passed++
		} else {
			failed = append(failed, mode+"/"+run.name+" "+res+why(run.logs))
		}
	}
	switch {
	case r.exit == "":
		t.Errorf("%s: the guest test binary never finished: the VM stopped first", mode)
		failed = append(failed, mode+": never finished")
	case r.exit != "0" && len(failed) == 0:
		t.Errorf("%s: guest test binary exited %q with no failed test", mode, r.exit)
		failed = append(failed, fmt.Sprintf("%s: exited %s with no failed test", mode, r.exit))
	}
	return passed, failed
}

// why is the line of a failed scenario's logs that says why, cut to a
// length a summary line can carry, or "" when there is none. go test does
// not mark t.Error's lines apart from t.Log's, so it is the first
// "name_test.go:N:" line that says what it wanted or what went wrong (this
// suite's errors do: "want", "failed", "never", "did not", "cannot"), else
// the last such line, where t.Fatal leaves its message, the figures and the
// backpressure trace a failure dumps excepted.
func why(logs []string) string {
	last := ""
	for _, l := range logs {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "_test.go:"); i <= 0 || strings.Contains(l, "figures: ") || strings.Contains(l, "backpressure trace (") {
			continue
		}
		if len(l) > 160 {
			l = l[:160] + "…"
		}
		low := strings.ToLower(l)
		for _, w := range []string{"want", "fail", "never", "did not", "cannot"} {
			if strings.Contains(low, w) {
				return ": " + l
			}
		}
		last = ": " + l
	}
	return last
}

// The VM tests run one after the other (and make test runs packages one at
// a time): the scenarios compare wall times measured inside the guest, and
// a second emulated guest on a 2-core host would make those ratios noise.

// TestRealKernelSystemd and TestRealKernelCgroupfs boot each guest of
// $BOXRUN_IT_GUEST in turn, as a subtest named after it.
func TestRealKernelSystemd(t *testing.T) {
	o := requireOptions(t, os.Getenv)
	for _, g := range o.guests {
		t.Run(g.String(), func(t *testing.T) {
			requireVM(t, g)
			a := build(t)
			script := guestScript(a, o,
				"mkdir -p /home/boxtest && chown 1500:1500 /home/boxtest",
				"systemctl start user@1500.service || echo 'starting user@1500.service failed'",
				// The user's scenarios have taken 4-6 minutes.
				guestRun(a, o, "root", "", 8*time.Minute),
				guestRun(a, o, "user", "setpriv --reuid=1500 --regid=1500 --init-groups", 0),
			)
			cfg := vm.Config{Guest: g, Mode: vm.Systemd, Command: script, Files: testUserFiles, MemoryMB: guestMemoryMB, Shares: shares(a)}
			b := boot(t, cfg, o, "root", "user")
			v := b.versions()
			t.Logf("real kernel %s (%s, systemd %s): %s", v.kernel, v.os, v.systemd, b.summary())
		})
	}
}

func TestRealKernelCgroupfs(t *testing.T) {
	o := requireOptions(t, os.Getenv)
	for _, g := range o.guests {
		t.Run(g.String(), func(t *testing.T) {
			requireVM(t, g)
			a := build(t)
			cfg := vm.Config{Guest: g, Mode: vm.NoSystemd, Command: guestScript(a, o, guestRun(a, o, "cgroupfs", "", 0)), MemoryMB: guestMemoryMB, Shares: shares(a)}
			b := boot(t, cfg, o, "cgroupfs")
			v := b.versions()
			t.Logf("real kernel %s (%s, no systemd: cgroupfs backend): %s", v.kernel, v.os, b.summary())
		})
	}
}

// booted is what one VM's modes did.
type booted struct {
	res     *vm.Result // nil when the VM never ran the command
	passed  int
	failed  []string // each failed scenario (mode/name) and why, or what failed instead
	stopped string   // why the VM stopped before the command ended, "" if it did not
}

// versions is what the guest said it is; "?" for what it never said.
func (b booted) versions() guestVersions {
	if b.res == nil {
		return parseGuestInfo("")
	}
	return parseGuestInfo(b.res.Output)
}

// summary is the one line a run's log keeps for the VM: the counts and, for
// a VM that stopped early, where and why, so that even a log cut down to
// its summary lines says what happened.
func (b booted) summary() string {
	s := fmt.Sprintf("%d passed, %d failed", b.passed, len(b.failed))
	if len(b.failed) > 0 {
		s += " (" + strings.Join(b.failed, "; ") + ")"
	}
	if b.res != nil {
		s += fmt.Sprintf("; boot %.1fs, scenarios %.1fs", b.res.Boot.Seconds(), b.res.Run.Seconds())
	}
	if b.stopped != "" {
		s += "; the VM stopped early: " + b.stopped
	}
	return s
}

// boot runs one VM, reports each mode's results as subtests and counts
// them. When the VM stopped before the command ended (its time ran out,
// QEMU exited) it also reports the scenario that was running, with its
// output, the last heartbeats and the watchdog's dump of the kernel's
// state if it fired (watchdog_test.go), and fails the test.
func boot(t *testing.T, cfg vm.Config, o options, modes ...string) booted {
	t.Helper()
	// A first build of a guest (Debian 13's root: about 2 minutes) stays
	// out of the boot's time.
	pctx, pcancel := context.WithTimeout(context.Background(), prepareTimeout)
	ready, err := vm.Prepare(pctx, cfg.Guest)
	pcancel()
	if err != nil {
		t.Errorf("preparing the real-kernel VM: %v", err)
		return booted{failed: []string{"boot"}, stopped: firstLine(err.Error())}
	}
	t.Logf("guest %s", ready)
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout+time.Minute)
	defer cancel()
	cfg.Timeout = vmTimeout
	if os.Getenv("BOXRUN_VM_LOG") != "" {
		cfg.Log = os.Stderr
	}
	res, err := vm.Boot(ctx, cfg)
	if err != nil && (res == nil || !res.Partial) {
		t.Errorf("booting the real-kernel VM: %v", err)
		return booted{failed: []string{"boot"}, stopped: firstLine(err.Error())}
	}
	b := booted{res: res}
	// The log shows that the watchdog watched, and how; one that did not
	// start (its "not started" line is among the heartbeats) would leave
	// the next freeze as silent as before.
	if l := watchdogStarted(res.Output); l != "" {
		t.Log(l)
	} else {
		t.Errorf("the guest's watchdog never said it started; the heartbeats and its lines:\n%s", heartbeats(res.Output, 10))
	}
	for _, mode := range modes {
		r := parseGuest(res.Output, mode)
		if err != nil && r.finished() == 0 && r.running == "" {
			continue // the VM stopped before this mode began
		}
		p, f := report(t, mode, r)
		b.passed, b.failed = b.passed+p, append(b.failed, f...)
		if err != nil && r.running != "" {
			t.Errorf("%s: %s was still running when the VM stopped; its output:\n%s",
				mode, r.running, strings.Join(r.runningLogs(), "\n"))
			b.failed = append(b.failed, mode+"/"+r.running+" still running")
			b.stopped = fmt.Sprintf("%s %s was running; ", mode, r.running)
		}
	}
	if err != nil {
		t.Errorf("heartbeats and the watchdog's lines (a gap means the guest froze):\n%s", heartbeats(res.Output, 10))
		if dump := watchdogDump(res.Console); dump != "" {
			t.Errorf("the guest's watchdog saw no heartbeat for %s and had the kernel dump its blocked tasks and memory (sysrq w, m); the console from the dump on:\n%s", o.stall, dump)
		} else {
			t.Logf("no watchdog dump on the console: the heartbeat never stopped for %s (BOXRUN_IT_WATCHDOG_STALL), or the guest could not even run the watchdog", o.stall)
		}
		t.Errorf("the real-kernel VM: %v", err)
		b.stopped += firstLine(err.Error())
		return b
	}
	if res.ExitCode != 0 {
		t.Logf("guest script exited %d", res.ExitCode)
	}
	return b
}

// firstLine is the first line of s (errors of vm.Boot carry console lines after it).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// heartbeats returns the last n heartbeat and watchdog lines of a guest's
// output (the watchdog says when it started, fired and saw the heartbeat
// come back).
func heartbeats(output string, n int) string {
	var hb []string
	for _, l := range strings.Split(output, "\n") {
		if strings.HasPrefix(l, "heartbeat| ") || strings.HasPrefix(l, "watchdog| ") {
			hb = append(hb, l)
		}
	}
	if len(hb) > n {
		hb = hb[len(hb)-n:]
	}
	return strings.Join(hb, "\n")
}

// TestParseGuestRepeated: with BOXRUN_IT_COUNT a scenario runs several
// times in one invocation; each run keeps its own result and output, so a
// failed first run is not hidden by a passing second.
func TestParseGuestRepeated(t *testing.T) {
	out := strings.Join([]string{
		"cgroupfs| === RUN   TestCtrlZ",
		"cgroupfs|     ctrlz_test.go:10: first run broke",
		"cgroupfs| --- FAIL: TestCtrlZ (1.50s)",
		"heartbeat| up 30s",
		"cgroupfs| === RUN   TestCtrlZ",
		"cgroupfs| --- PASS: TestCtrlZ (1.20s)",
		"cgroupfs| === RUN   TestCtrlZ",
		"cgroupfs|     ctrlz_test.go:12: third run started",
		"",
	}, "\n")
	r := parseGuest(out, "cgroupfs")
	var got []string
	for _, run := range r.runs {
		got = append(got, fmt.Sprintf("%s=%s/%d", run.name, run.result, len(run.logs)))
	}
	if want := "TestCtrlZ=FAIL/3 TestCtrlZ=PASS/2 TestCtrlZ=/2"; strings.Join(got, " ") != want {
		t.Errorf("runs %v, want %s", got, want)
	}
	if r.finished() != 2 || r.running != "TestCtrlZ" || len(r.runningLogs()) != 2 || !strings.Contains(r.runningLogs()[1], "third run") {
		t.Errorf("finished %d, running %q with %q; want 2, the third run", r.finished(), r.running, r.runningLogs())
	}
}

// TestParseGuestInfo: the summary line's versions come from the booted
// guest's own lines, shortened to what a reader compares (6.12, 257).
func TestParseGuestInfo(t *testing.T) {
	out := strings.Join([]string{
		"guest| os debian 13",
		"heartbeat| up 3.1s",
		"guest| kernel 6.12.117+deb13-cloud-amd64",
		"guest| systemd systemd 257 (257.13-1~deb13u1)",
		"root| === RUN   TestX",
	}, "\n")
	if got, want := parseGuestInfo(out), (guestVersions{os: "Debian 13", kernel: "6.12", systemd: "257"}); got != want {
		t.Errorf("parseGuestInfo = %+v, want %+v", got, want)
	}
	if got, want := parseGuestInfo("root| guest| kernel 6.1.0\n"), (guestVersions{os: "?", kernel: "?", systemd: "?"}); got != want {
		t.Errorf("parseGuestInfo of a scenario's line = %+v, want %+v", got, want)
	}
}

// TestSummaryNamesFailures: the summary line is what a log cut to a few
// lines keeps, so it names each failed scenario and the line saying why,
// never only a count.
func TestSummaryNamesFailures(t *testing.T) {
	cases := []struct {
		name string
		b    booted
		want string
	}{
		{"green", booted{passed: 3}, "3 passed, 0 failed"},
		{"one failed", booted{passed: 2, failed: []string{"root/TestA FAIL: a_test.go:9: 1 OOM kill"}},
			"2 passed, 1 failed (root/TestA FAIL: a_test.go:9: 1 OOM kill)"},
		{"stopped", booted{failed: []string{"boot"}, stopped: "qemu exited 1"},
			"0 passed, 1 failed (boot); the VM stopped early: qemu exited 1"},
	}
	for _, c := range cases {
		if got := c.b.summary(); got != c.want {
			t.Errorf("%s: summary %q, want %q", c.name, got, c.want)
		}
	}
	logs := []string{"=== RUN TestA", "    a_test.go:5: figures: 40M", "    a_test.go:8: the guest has 763 MiB available",
		"    a_test.go:9: 1 OOM kill", "    guest_test.go:84: backpressure trace (the last 3 lines):"}
	if got := why(logs); got != ": a_test.go:9: 1 OOM kill" {
		t.Errorf("why %q, want the last line (t.Fatal's) when none says what it wanted, the trace excepted", got)
	}
	logs = []string{"    a_test.go:479: the guest has 763 MiB available", "    a_test.go:504: the editor never reached 200 MiB"}
	if got := why(logs); got != ": a_test.go:504: the editor never reached 200 MiB" {
		t.Errorf("why %q, want the line saying what never happened", got)
	}
	logs = []string{"    a_test.go:7: box 0: boxrun -> 0 in 2s", "    a_test.go:9: 3 tasks failed; want none", "    a_test.go:12: 1 OOM kill, want 0"}
	if got := why(logs); got != ": a_test.go:9: 3 tasks failed; want none" {
		t.Errorf("why %q, want the first line saying what it wanted", got)
	}
	if got := why([]string{"panic: x"}); got != "" {
		t.Errorf("why %q for logs with no test line, want empty", got)
	}
}
