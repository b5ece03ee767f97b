//go:build boxrunguest

package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The distrobox scenarios (issue #22) run the first report's setup for
// real: rootless podman as the unprivileged user, a container imported
// from a Debian root the host built offline (BOXRUN_IT_DISTROBOX_IMAGE, a
// tar; see integration/vm's PrepareDistroboxImage), and a distrobox
// created from it. integration/ runs them in the user mode only: the
// user's /etc/subuid and /etc/subgid entries come with the test user
// (testUserFiles), and the report's user runs distrobox rootless.
const (
	distroboxImageEnv = "BOXRUN_IT_DISTROBOX_IMAGE"
	distroboxImageRef = "localhost/boxrun-distrobox:it"
	distroboxName     = "boxit"
)

// containerStorageConf makes the user's podman store images and containers
// with the vfs driver under the home (a tmpfs overlay in the guest: its
// upper layer cannot be the upper layer of another overlay, and the
// guest's 6.1 tmpfs has no user.* xattrs for a rootless native overlay).
// vfs copies the image's one layer into each container: the cost is
// measured and logged.
const containerStorageConf = `[storage]
driver = "vfs"
`

// containersConf keeps podman off the journal: the guest's journal is
// volatile, so a rootless user cannot read its own entries, and distrobox
// enter waits for "container_setup_done" in podman logs. k8s-file logs are
// files in the container's directory; events go to a file likewise.
const containersConf = `[containers]
log_driver = "k8s-file"

[engine]
events_logger = "file"
`

// TestDistrobox imports the image, creates a distrobox and enters it: the
// foundation of the report's chain, rootless podman in the user's session.
func TestDistrobox(t *testing.T) {
	pd := newPodman(t)
	pd.create(t, distroboxName)
	pd.logPlaces(t, distroboxName, "after enter")
}

// TestDistroboxEnterIsBoxed is the report's chain under boxrun: boxrun --
// distrobox enter -- a process that allocates more than the box's
// memory.max, with the container running already (as after a first cargo
// test), stopped (the run starts it), and created with podman's
// --cgroups=split (the container's cgroup under its starter's), stopped or
// started beforehand from a scope of the user manager (as from a
// terminal).
func TestDistroboxEnterIsBoxed(t *testing.T) {
	pd := newPodman(t)
	pd.create(t, distroboxName)
	scope := []string{"systemd-run", "--user", "--scope", "--quiet", "--"}
	for _, c := range []struct {
		name      string
		container string
		// stopped: the container is stopped before boxrun runs, so that
		// distrobox enter under boxrun starts it; otherwise it runs
		// already, started by distrobox enter under starter.
		stopped bool
		starter []string
		// create: distrobox create the container with these
		// --additional-flags first.
		create string
	}{
		{"running", distroboxName, false, nil, ""},
		{"stopped", distroboxName, true, nil, ""},
		{"split-stopped", "boxsplit", true, nil, "--cgroups=split"},
		{"split-running", "boxsplit", false, scope, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.create != "" {
				// One container at a time: with vfs each is a copy of
				// the image in the guest's RAM.
				pd.run(t, 2*time.Minute, "podman", "rm", "--force", "--time", "2", distroboxName)
				pd.createOnly(t, c.container, c.create)
			}
			pd.testBoxed(t, c.container, c.stopped, c.starter)
		})
	}
}

// podman runs the user's rootless podman and distrobox in one scenario.
type podman struct {
	env   []string
	image string // the host's tar
	self  string // this test binary, seen in the container under /run/host
}

// newPodman checks what rootless podman needs, writes the user's
// container configuration and registers the cleanup that removes the
// container, the image, the storage and podman's pause process.
func newPodman(t *testing.T) *podman {
	t.Helper()
	if m := mode(t); m != "user" {
		t.Fatalf("the distrobox scenarios run as the unprivileged user (rootless podman), not in the %s mode: integration/ leaves them out there", m)
	}
	image := os.Getenv(distroboxImageEnv)
	if image == "" {
		t.Fatalf("%s is not set: integration/ builds the container image on the host (mmdebstrap) and passes its path", distroboxImageEnv)
	}
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("the container image: %v", err)
	}
	for _, tool := range []string{"podman", "distrobox", "newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: .ci/run installs podman, distrobox and uidmap on the host, which the Debian 12 guest boots from (the Debian 13 guest's own root has none of them)", tool)
		}
	}
	for _, f := range []string{"/usr/bin/newuidmap", "/usr/bin/newgidmap"} {
		if st, err := os.Stat(f); err != nil || st.Mode()&os.ModeSetuid == 0 {
			t.Fatalf("%s is not setuid root in the guest (%v): rootless podman cannot map the user's subordinate ids", f, err)
		}
	}
	name := userName(t)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, _ := os.ReadFile(f)
		if !strings.Contains(string(data), name+":") {
			t.Fatalf("%s has no entry for %s: integration/'s testUserFiles adds it", f, name)
		}
	}
	home := os.Getenv("HOME")
	conf := filepath.Join(home, ".config", "containers")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, body := range map[string]string{"storage.conf": containerStorageConf, "containers.conf": containersConf} {
		if err := os.WriteFile(filepath.Join(conf, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// distrobox names the container's user after $USER, and podman's
	// systemd cgroup manager reaches the user manager through the session
	// bus, as in a login session; the harness's environment (env -i) has
	// neither.
	bus := "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "bus")
	pd := &podman{env: append(os.Environ(), "USER="+name, bus), image: image, self: self}
	t.Cleanup(func() { pd.cleanup(t, conf) })
	return pd
}

// userName is the name of the user the test runs as.
func userName(t *testing.T) string {
	t.Helper()
	data, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(os.Getuid()) {
			return f[0]
		}
	}
	t.Fatalf("uid %d has no /etc/passwd entry", os.Getuid())
	return ""
}

// run runs a command with the user's environment; it logs what the
// command printed only when it failed (the callers log the figures), so
// that a failed scenario's first line says why.
func (pd *podman) run(t *testing.T, timeout time.Duration, name string, args ...string) (string, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = pd.env
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	if err != nil {
		t.Logf("%s %s -> %v in %s\n%s", name, strings.Join(args, " "), err, took.Round(time.Millisecond), tail(out.String(), 40))
	}
	return out.String(), took, err
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// create imports the image, creates the distrobox name and enters it
// twice, failing the test when any of it does not work.
func (pd *podman) create(t *testing.T, name string) {
	t.Helper()
	before := memAvailableMB(t)
	if out, took, err := pd.run(t, 5*time.Minute, "podman", "import", pd.image, distroboxImageRef); err != nil {
		t.Fatalf("podman import %s: %v\n%s", pd.image, err, out)
	} else {
		t.Logf("figures: podman import took %s", took.Round(time.Millisecond))
	}
	info, _, _ := pd.run(t, time.Minute, "podman", "info", "--format",
		"driver={{.Store.GraphDriverName}} graphroot={{.Store.GraphRoot}} runroot={{.Store.RunRoot}} cgroupManager={{.Host.CgroupManager}} cgroupVersion={{.Host.CgroupsVersion}} runtime={{.Host.OCIRuntime.Name}}")
	t.Logf("figures: podman %s", strings.TrimSpace(info))
	pd.createOnly(t, name, "")
	// The first enter starts the container and waits for distrobox-init
	// (it adds the user, mounts the host's directories) to finish.
	out, first, err := pd.run(t, 8*time.Minute, "distrobox", "enter", name, "--", "sh", "-c", "echo inside uid=$(id -u)")
	if err != nil || !strings.Contains(out, "inside uid="+strconv.Itoa(os.Getuid())) {
		logs, _, _ := pd.run(t, time.Minute, "podman", "logs", name)
		t.Fatalf("distrobox enter: %v; want \"inside uid=%d\" in its output:\n%s\npodman logs:\n%s", err, os.Getuid(), out, tail(logs, 40))
	}
	out, second, err := pd.run(t, 2*time.Minute, "distrobox", "enter", name, "--", "true")
	if err != nil {
		t.Fatalf("a second distrobox enter: %v\n%s", err, out)
	}
	direct := time.Now()
	if err := pd.command("true").Run(); err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: distrobox enter: first (starts the container) %s, second %s; true without it %s",
		first.Round(time.Millisecond), second.Round(time.Millisecond), time.Since(direct).Round(time.Microsecond))
	t.Logf("figures: storage %s MiB under %s; MemAvailable %d MiB before the import, %d MiB now",
		pd.du(filepath.Join(os.Getenv("HOME"), ".local", "share", "containers")), os.Getenv("HOME"), before, memAvailableMB(t))
}

// createOnly runs distrobox create for name with podman's extra flags.
func (pd *podman) createOnly(t *testing.T, name, flags string) {
	t.Helper()
	args := []string{"create", "--yes", "--no-entry", "--image", distroboxImageRef, "--name", name}
	if flags != "" {
		args = append(args, "--additional-flags", flags)
	}
	out, took, err := pd.run(t, 5*time.Minute, "distrobox", args...)
	if err != nil {
		t.Fatalf("distrobox %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("figures: distrobox create %s took %s", flags, took.Round(time.Millisecond))
}

// command is a command with the user's environment for podman and distrobox.
func (pd *podman) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = pd.env
	return cmd
}

// du is the size in MiB of a directory (as du -sm in podman's user
// namespace says: the container's files belong to subordinate ids), or "?".
func (pd *podman) du(dir string) string {
	out, err := pd.command("podman", "unshare", "du", "-sm", dir).Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// containerPIDs are the container's init and its conmon, as podman says;
// zero for a container that does not run.
func (pd *podman) containerPIDs(t *testing.T, name string) (pid, conmon int) {
	t.Helper()
	out, err := pd.command("podman", "inspect", "--type", "container", "--format", "{{.State.Pid}} {{.State.ConmonPid}}", name).Output()
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, 0
	}
	pid, _ = strconv.Atoi(f[0])
	conmon, _ = strconv.Atoi(f[1])
	return pid, conmon
}

// podmanProcs are the processes of podman's machinery (podman, conmon,
// catatonit, crun, the container's entrypoint), each with its cgroup. The
// container's root is a subordinate id of the user's, so all users'
// processes are looked at.
func podmanProcs() map[int]string {
	procs := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm := readTrim(fmt.Sprintf("/proc/%d/comm", pid))
		switch comm {
		case "podman", "conmon", "catatonit", "crun", "entrypoint":
			procs[pid] = comm + " " + cgroupOf(pid)
		}
	}
	return procs
}

// logPlaces logs where podman's processes and the container are.
func (pd *podman) logPlaces(t *testing.T, name, when string) {
	t.Helper()
	pid, conmon := pd.containerPIDs(t, name)
	var lines []string
	for p, what := range podmanProcs() {
		lines = append(lines, fmt.Sprintf("%d %s", p, what))
	}
	sort.Strings(lines)
	t.Logf("figures: %s: container init %d in %s, its conmon %d in %s; podman's processes: %s",
		when, pid, cgroupOf(pid), conmon, cgroupOf(conmon), strings.Join(lines, "; "))
}

// testBoxed runs the report's chain under boxrun: distrobox enter, and in
// the container a process that allocates more than the box's memory.max.
// It asserts from /proc/PID/cgroup (read from outside the container:
// distrobox shares the host's PID namespace, so the container's PIDs are
// the guest's) where that process ran, that the box's limit held (the OOM
// killer took it), and that boxrun left nothing behind.
func (pd *podman) testBoxed(t *testing.T, name string, stopped bool, starter []string) {
	if pid, _ := pd.containerPIDs(t, name); stopped && pid != 0 {
		if out, _, err := pd.run(t, 2*time.Minute, "podman", "stop", "-t", "2", name); err != nil {
			t.Fatalf("podman stop: %v\n%s", err, out)
		}
	} else if !stopped && pid == 0 {
		start := append(append([]string(nil), starter...), "distrobox", "enter", name, "--", "true")
		if out, _, err := pd.run(t, 3*time.Minute, start[0], start[1:]...); err != nil {
			t.Fatalf("starting the container: %v\n%s", err, out)
		}
	}
	runningBefore, _ := pd.containerPIDs(t, name)
	procsBefore := podmanProcs()
	const hogMB = 192 // over the policy's memory.max of 128M
	// Room for the hog unboxed (what happens when the box does not
	// hold), with 128 MiB to spare: a guest out of memory thrashes.
	if avail := memAvailableMB(t); avail < hogMB+128 {
		t.Fatalf("the guest has %d MiB available, too little for a hog of %d MiB that the box might not hold", avail, hogMB)
	}

	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	pidFile := filepath.Join(dir, "pid")
	// /tmp is the guest's own in the container (distrobox mounts it); the
	// guest's root is /run/host there.
	// The shell sleeps a second after saying its PID, so that its cgroup
	// (the hog's: exec keeps it) is read before the hog can be killed.
	script := fmt.Sprintf(`echo $$ > %s.tmp && mv %s.tmp %s; sleep 1; exec env %s=hog HOG_MB=%d HOG_HOLD=4s /run/host%s`,
		pidFile, pidFile, pidFile, roleEnv, hogMB, pd.self)
	pf := itPolicy(t, "")
	args := append(backendArgs(t), "-f", pf, "-p", "it", "--set", "memory.high=max", "--set", "pids.max=512",
		"--", "distrobox", "enter", name, "--", "sh", "-c", script)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, boxrunBin(t), args...)
	cmd.Env = pd.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// While the hog holds: where is it, and where is the box?
	var hogPID int
	var hogCg string
	var box []string
	var during map[int]string
	deadline := time.After(5 * time.Minute)
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-deadline:
			t.Fatalf("the hog never started in the container within 5 minutes; boxrun's stderr:\n%s", errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if hogPID != 0 {
			continue
		}
		data, rerr := os.ReadFile(pidFile)
		if rerr != nil {
			continue
		}
		hogPID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		hogCg = cgroupOf(hogPID)
		box = boxes(t)
		during = podmanProcs()
	}
	took := time.Since(start)
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	// boxrun's output, after the failures (a cleanup runs after the
	// test's own lines), so that the first line of a failure says why.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("boxrun %s -> %d in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, took.Round(time.Millisecond), out.String(), tail(errb.String(), 40))
		}
	})
	t.Logf("figures: boxrun -- distrobox enter (%s) exit %d in %s", name, code, took.Round(time.Millisecond))
	var duringLines []string
	for p, what := range during {
		duringLines = append(duringLines, fmt.Sprintf("%d %s", p, what))
	}
	sort.Strings(duringLines)
	state := "running"
	if stopped {
		state = "stopped"
	}
	t.Logf("figures: %s, %s before the run: hog %d ran in %s; boxes then %v; podman's processes then: %s",
		name, state, hogPID, hogCg, box, strings.Join(duringLines, "; "))
	pd.logPlaces(t, name, "after boxrun")

	if hogPID == 0 {
		t.Fatalf("the command in the container never wrote its PID to %s", pidFile)
	}
	if len(box) != 1 {
		t.Errorf("boxes while the hog ran: %v, want one", box)
	} else if hogCg == "" {
		t.Errorf("the command in the container (PID %d) was gone before its cgroup could be read", hogPID)
	} else if boxCg := strings.TrimPrefix(box[0], "/sys/fs/cgroup"); hogCg != boxCg && !strings.HasPrefix(hogCg, boxCg+"/") {
		t.Errorf("the process in the container ran in %s, outside the box %s: podman put it there, and the box's limits do not apply to it", hogCg, boxCg)
	}
	if strings.Contains(out.String(), fmt.Sprintf("hog held %d MB", hogMB)) {
		t.Errorf("the hog held %d MiB in the container: the box's memory.max of 128M did not hold", hogMB)
	} else if code != 137 {
		t.Errorf("boxrun exited %d, want 137: the OOM killer should have taken the hog at the box's memory.max", code)
	}
	// Nothing left behind: no box, no process of podman's that was not
	// there before, no container running that was not running before.
	if b := boxes(t); len(b) > 0 {
		t.Errorf("boxes left behind: %v", b)
	}
	var stray []string
	for p, what := range podmanProcs() {
		if _, ok := procsBefore[p]; !ok {
			stray = append(stray, fmt.Sprintf("%d %s", p, what))
		}
	}
	if len(stray) > 0 {
		t.Errorf("podman's processes left behind by boxrun's run: %v", stray)
	}
	if after, _ := pd.containerPIDs(t, name); runningBefore == 0 && after != 0 {
		t.Errorf("the container runs after boxrun returned (init %d in %s), started by the run and left behind", after, cgroupOf(after))
	}
}

// cleanup removes the container, the image and the storage, and ends
// podman's pause process (it keeps the user namespace for later podman
// runs), so that the sweep and the scenarios after this one find the
// user's processes and the guest's memory as before.
func (pd *podman) cleanup(t *testing.T, conf string) {
	pd.run(t, 2*time.Minute, "podman", "rm", "--all", "--force", "--time", "2")
	pd.run(t, 2*time.Minute, "podman", "system", "reset", "--force")
	pause := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "libpod", "tmp", "pause.pid")
	if data, err := os.ReadFile(pause); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for p, what := range podmanProcs() {
		t.Logf("ending %d %s left after podman system reset", p, what)
		syscall.Kill(p, syscall.SIGKILL)
	}
	os.RemoveAll(conf)
	t.Logf("figures: MemAvailable %d MiB after removing the containers, the image and the storage", memAvailableMB(t))
}
