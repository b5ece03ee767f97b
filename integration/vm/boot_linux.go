package vm

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	defaultMemoryMB = 1024
	defaultCPUs     = 2
	defaultTimeout  = 10 * time.Minute
	// powerOffGrace is how long Boot waits for QEMU to exit after the end marker.
	powerOffGrace = 60 * time.Second
	qemuBinary    = "qemu-system-x86_64"
)

// virtiofsdPaths are where Debian puts the C virtiofsd (qemu-system-x86 7.x) and
// where other distributions put it.
var virtiofsdPaths = []string{"/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd", "/usr/libexec/qemu/virtiofsd"}

// tools are the host programs Boot needs.
type tools struct {
	qemu, virtiofsd, busybox string
}

func findTools() (tools, error) {
	var t tools
	var errs []error
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		errs = append(errs, fmt.Errorf("the VM harness boots Debian's amd64 kernel and shares this host's root: it needs a linux/amd64 host, not %s/%s", runtime.GOOS, runtime.GOARCH))
	}
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("the VM harness must run as root: virtiofsd shares / with -o sandbox=chroot, and the guest must read every file of the host (run the tests with sudo)"))
	}
	var err error
	if t.qemu, err = exec.LookPath(qemuBinary); err != nil {
		errs = append(errs, fmt.Errorf("%s not found: apt-get install qemu-system-x86", qemuBinary))
	}
	for _, p := range virtiofsdPaths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			t.virtiofsd = p
			break
		}
	}
	if t.virtiofsd == "" {
		errs = append(errs, fmt.Errorf("virtiofsd not found in %s: apt-get install qemu-system-x86 (Debian 12 ships the C virtiofsd the harness uses in /usr/lib/qemu)", strings.Join(virtiofsdPaths, ", ")))
	}
	t.busybox, err = findStaticBusybox()
	if err != nil {
		errs = append(errs, err)
	}
	return t, errors.Join(errs...)
}

// findStaticBusybox returns a statically linked busybox (the initramfs has no libc).
func findStaticBusybox() (string, error) {
	candidates := []string{"/bin/busybox", "/usr/bin/busybox"}
	if p, err := exec.LookPath("busybox"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, p := range candidates {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		dynamic := false
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				dynamic = true
			}
		}
		f.Close()
		if !dynamic {
			return p, nil
		}
	}
	return "", errors.New("static busybox not found (looked for busybox in $PATH, /bin, /usr/bin): apt-get install busybox-static")
}

// Available reports whether Boot can run guest g on this host: nil, or an error naming
// what is missing and how to install it. It checks the host tools, root, and that a
// kernel is cached or apt can name and fetch one; for Debian13, that its root is
// cached or mmdebstrap can build it.
func Available(g Guest) error {
	_, err := findTools()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	switch g {
	case Debian12:
	case Debian13:
		ready := filepath.Join(cacheDir(), debian13.name+"-"+debian13.key(), "ready")
		if _, err := os.Stat(ready); err != nil {
			for _, tool := range []string{"mmdebstrap", "apt-get", "dpkg-deb"} {
				if _, err := exec.LookPath(tool); err != nil {
					errs = append(errs, fmt.Errorf("the Debian 13 guest is not built in %s and %s, which builds it, is not installed: apt-get install mmdebstrap", cacheDir(), tool))
				}
			}
		}
		return errors.Join(errs...)
	default:
		return fmt.Errorf("unknown Guest %d: use vm.Debian12 or vm.Debian13", g)
	}
	if newestCachedKernel(cacheDir()) == "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := kernelPackage(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("no kernel cached in %s and none to fetch: %w", cacheDir(), err))
		}
		for _, tool := range []string{"apt-get", "dpkg-deb"} {
			if _, err := exec.LookPath(tool); err != nil {
				errs = append(errs, fmt.Errorf("no kernel cached in %s and %s not found to fetch one: apt-get install apt dpkg", cacheDir(), tool))
			}
		}
	}
	return errors.Join(errs...)
}

// Boot boots Debian's cloud kernel under QEMU (TCG emulation, no KVM) over a read-only
// virtiofs share of this host's root (Debian12), or of the guest's own root file
// system in the cache (Debian13), with a tmpfs overlay on top, runs cfg.Command as
// root (under systemd or a plain PID 1, see Mode) and returns the console and what the
// command printed.
//
// Boot fails when the VM cannot boot, the timeout or ctx ends it first (the error
// includes the last console lines), or the command's end marker never comes. When
// a command that started never ends (the timeout, or QEMU exiting first),
// Boot returns a Partial Result with the error: what the command printed until
// then says where it stopped. A command that
// exits non-zero is not an error: see Result.ExitCode. QEMU and virtiofsd
// are killed on every return path.
func Boot(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := validate(cfg); err != nil {
		return nil, err
	}
	t, err := findTools()
	if err != nil {
		return nil, fmt.Errorf("vm: cannot boot: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("Config.Timeout of %s reached", cfg.Timeout))
	defer cancel()

	cache := cacheDir()
	if strings.ContainsAny(cache, " \t\n") {
		return nil, fmt.Errorf("vm: BOXRUN_VM_CACHE=%q contains white space: it is passed on the kernel command line; choose another directory", cache)
	}
	guest, err := prepareGuest(ctx, cfg.Guest, cache, t.busybox)
	if err != nil {
		return nil, fmt.Errorf("vm: preparing the %s guest: %w", cfg.Guest, err)
	}
	run, release, err := newRun(cache)
	if err != nil {
		return nil, err
	}
	defer release()
	token := randomToken()
	if err := stagePayload(run, guest, cfg, token); err != nil {
		return nil, err
	}
	socket := filepath.Join(run, "virtiofsd.sock")
	stop, err := startVirtiofsd(ctx, t.virtiofsd, socket)
	if err != nil {
		return nil, err
	}
	defer stop()
	return runQEMU(ctx, t.qemu, cfg, guest, socket, run, token)
}

// withDefaults fills in the zero fields of a Config.
func (cfg Config) withDefaults() Config {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = defaultMemoryMB
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = defaultCPUs
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	return cfg
}

// newRun makes this boot's payload directory under cache/runs, locked for
// as long as the boot lives (removeStaleRuns of other boots leaves a
// locked one alone), and returns its resolved path (the guest resolves it
// on the host's root) and what removes it.
func newRun(cache string) (run string, release func(), err error) {
	runs := filepath.Join(cache, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", nil, fmt.Errorf("vm: creating %s: %w", runs, err)
	}
	removeStaleRuns(runs)
	dir, err := os.MkdirTemp(runs, "run-")
	if err != nil {
		return "", nil, fmt.Errorf("vm: creating the boot's payload directory: %w", err)
	}
	lock, err := os.Create(filepath.Join(dir, "lock"))
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	if err == nil {
		run, err = filepath.EvalSymlinks(dir)
	}
	release = func() {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		release()
		return "", nil, fmt.Errorf("vm: preparing the boot's payload directory %s: %w", dir, err)
	}
	return run, release, nil
}

// stagePayload writes the files the guest copies onto its root (the
// default ones for cfg.Mode, then cfg.Files) under run/root.
func stagePayload(run string, guest *preparedGuest, cfg Config, token string) error {
	root := filepath.Join(run, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	if err := os.Chmod(root, 0o755); err != nil { // copied onto the guest's / by cp -a
		return fmt.Errorf("vm: %w", err)
	}
	files := defaultFiles(cfg.Mode, token, cfg.Command, cfg.Env)
	for p, f := range cfg.Files {
		files[p] = f
	}
	if err := writePayload(root, guest.root, files); err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	return nil
}

// startVirtiofsd starts virtiofsd serving the guest's root on socket and
// waits until it listens. stop kills it and waits for it to exit.
func startVirtiofsd(ctx context.Context, bin, socket string) (stop func(), err error) {
	if len(socket) >= 108 {
		return nil, fmt.Errorf("vm: virtiofsd socket path %s is longer than a unix socket allows: set BOXRUN_VM_CACHE to a shorter directory", socket)
	}
	vfs := exec.Command(bin, virtiofsdArgs(socket)...)
	vfsLog := &limitedBuffer{max: 8 << 10}
	vfs.Stdout, vfs.Stderr = vfsLog, vfsLog
	vfs.SysProcAttr = childAttr()
	if err := vfs.Start(); err != nil {
		return nil, fmt.Errorf("vm: starting %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = vfs.Wait(); close(done) }()
	stop = func() {
		killGroup(vfs.Process.Pid)
		<-done
	}
	if err := waitForSocket(ctx, socket, done); err != nil {
		stop()
		return nil, fmt.Errorf("vm: virtiofsd did not come up: %w; its output: %s", err, vfsLog)
	}
	return stop, nil
}

// booted is one QEMU run: its console, its own output and when it started.
type booted struct {
	cons      *console
	qemuLog   *limitedBuffer
	startedAt time.Time
}

// runQEMU boots the guest, waits for the command's end marker (and for the
// guest to power off, within powerOffGrace) and returns the command's
// Result. QEMU is killed on every return path.
func runQEMU(ctx context.Context, bin string, cfg Config, guest *preparedGuest, socket, run, token string) (*Result, error) {
	b := &booted{cons: newConsole(token, cfg.Log), qemuLog: &limitedBuffer{max: 8 << 10}}
	qemu := exec.Command(bin, qemuArgs(cfg, guest, socket, run)...)
	qemu.Stdout = b.cons
	qemu.Stderr = b.qemuLog
	qemu.SysProcAttr = childAttr()
	b.startedAt = time.Now()
	if err := qemu.Start(); err != nil {
		return nil, fmt.Errorf("vm: starting %s: %w", bin, err)
	}
	qemuDone := make(chan error, 1)
	go func() { qemuDone <- qemu.Wait() }()
	exited, partial, err := b.wait(ctx, qemuDone)
	if !exited {
		killGroup(qemu.Process.Pid)
		<-qemuDone
	}
	if partial {
		return b.partial(), err
	}
	if err != nil {
		return nil, err
	}
	started, ended, _ := b.cons.state()
	text := b.cons.text()
	output, code, ok := parseOutput(text, token)
	if !ok {
		return nil, b.fail("cannot find the command's output between the start and end markers")
	}
	return &Result{
		Console:  text,
		Output:   output,
		ExitCode: code,
		Boot:     started.Sub(b.startedAt),
		Run:      ended.Sub(started),
	}, nil
}

// wait follows the console until the command ended and the guest powered
// off (or powerOffGrace passed), QEMU exited, the guest's setup failed or
// ctx ended. exited says whether QEMU exited, partial whether the error is
// of a command that started and never ended.
func (b *booted) wait(ctx context.Context, qemuDone <-chan error) (exited, partial bool, err error) {
	var endGrace <-chan time.Time
	for {
		select {
		case err := <-qemuDone:
			if _, _, initErr := b.cons.state(); initErr != "" {
				return true, false, b.fail("the guest's setup failed: %s", initErr)
			}
			if started, ended, _ := b.cons.state(); ended.IsZero() {
				if started.IsZero() {
					return true, false, b.fail("qemu exited (%v) before the command's start marker", exitStatus(err))
				}
				return true, true, b.fail("qemu exited (%v) before the command's end marker (the guest powered off, rebooted or panicked mid-command)", exitStatus(err))
			}
			return true, false, nil
		case <-b.cons.changed:
			_, ended, initErr := b.cons.state()
			if initErr != "" && endGrace == nil {
				endGrace = time.After(5 * time.Second) // let the guest power off, then report
			}
			if !ended.IsZero() && endGrace == nil {
				endGrace = time.After(powerOffGrace)
			}
		case <-endGrace:
			if _, _, initErr := b.cons.state(); initErr != "" {
				return false, false, b.fail("the guest's setup failed: %s", initErr)
			}
			return false, false, nil // the command ended; a guest that does not power off is not its fault
		case <-ctx.Done():
			if started, _, _ := b.cons.state(); started.IsZero() {
				return false, false, b.fail("booting: %v after %s", context.Cause(ctx), time.Since(b.startedAt).Round(time.Millisecond))
			}
			return false, true, b.fail("running the command (it started; no end marker): %v after %s", context.Cause(ctx), time.Since(b.startedAt).Round(time.Millisecond))
		}
	}
}

// fail is an error saying what went wrong, with QEMU's own output and the
// last console lines.
func (b *booted) fail(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if s := b.qemuLog.String(); s != "" {
		msg += "; qemu: " + s
	}
	return fmt.Errorf("vm: %s; last console lines:\n%s", msg, lastLines(b.cons.text(), 40))
}

// partial is the Result that goes with the error of a command that
// started and never ended: what it printed so far says where it stopped.
func (b *booted) partial() *Result {
	started, _, _ := b.cons.state()
	text := b.cons.text()
	return &Result{
		Console:  text,
		Output:   outputSoFar(text, b.cons.token),
		ExitCode: -1,
		Boot:     started.Sub(b.startedAt),
		Run:      time.Since(started),
		Partial:  true,
	}
}

func validate(cfg Config) error {
	if cfg.Mode != Systemd && cfg.Mode != NoSystemd {
		return fmt.Errorf("vm: unknown Mode %d: use vm.Systemd or vm.NoSystemd", cfg.Mode)
	}
	if strings.TrimSpace(cfg.Command) == "" {
		return errors.New("vm: Config.Command is empty: give the shell command to run in the guest")
	}
	if cfg.MemoryMB < 128 {
		return fmt.Errorf("vm: MemoryMB=%d is too small to boot systemd: use at least 128 (default %d)", cfg.MemoryMB, defaultMemoryMB)
	}
	if cfg.CPUs < 1 || cfg.CPUs > 64 {
		return fmt.Errorf("vm: CPUs=%d out of range 1..64", cfg.CPUs)
	}
	for k := range cfg.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("vm: Env key %q is not a shell variable name", k)
		}
	}
	for _, p := range cfg.Shares {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || strings.ContainsAny(p, ", \t\n") {
			return fmt.Errorf("vm: Shares entry %q must be an absolute, clean directory other than / without commas or white space (it goes on the kernel command line)", p)
		}
	}
	for p := range cfg.Files {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return fmt.Errorf("vm: Files key %q must be an absolute, clean guest path such as /etc/passwd", p)
		}
		if p == guestDir || strings.HasPrefix(p, guestDir+"/") {
			return fmt.Errorf("vm: Files key %q is in %s, which the harness owns: choose another path", p, guestDir)
		}
	}
	return nil
}

// virtiofsdArgs shares the host's root through socket. The guest mounts it read-only.
func virtiofsdArgs(socket string) []string {
	return []string{
		"--socket-path=" + socket,
		"-o", "source=/",
		"-o", "sandbox=chroot",
		"-o", "cache=always",
		"-o", "log_level=warn",
	}
}

// qemuArgs is the QEMU command line: TCG only, no network, serial console on stdout.
// tcgThreads is how QEMU runs the guest's CPUs: each on a host thread of
// its own (multi), or all of them on one (single). Debian 13's kernel
// panics under multi-threaded TCG: it patches its own code live (a static
// key flipped as boxes come and go, text_poke_bp: an int3 first, the new
// instruction after), and another CPU later traps on the int3 as if the
// patch had never been synchronised, "Oops: int3" in
// get_page_from_freelist, then "Kernel panic - not syncing: Fatal exception
// in interrupt" (TestSoak as root: both boots at multi panicked within 10 s
// of the soak; the boot at single finished it). Real CPUs keep that code coherent; QEMU 7.2's
// translated blocks, run in parallel, did not. Debian 12's 6.1 has never
// shown it in this suite, and keeps its CPUs in parallel.
func tcgThreads(g Guest) string {
	if g == Debian13 {
		return "single"
	}
	return "multi"
}

func qemuArgs(cfg Config, g *preparedGuest, socket, payload string) []string {
	mem := strconv.Itoa(cfg.MemoryMB) + "M"
	k := g.kernel
	kernelArgs := []string{
		"console=ttyS0",
		"quiet",
		"loglevel=4", // what quiet sets; OOM kills are KERN_ERR (3) and still print
		"panic=-1",
		"mitigations=off",
		"systemd.show_status=0",
		"boxrun.mode=" + cfg.Mode.String(),
		"boxrun.payload=" + payload,
	}
	if g.root != "/" {
		kernelArgs = append(kernelArgs, "boxrun.root="+g.root)
		if len(cfg.Shares) > 0 {
			kernelArgs = append(kernelArgs, "boxrun.shares="+strings.Join(cfg.Shares, ","))
		}
	}
	appendLine := strings.Join(kernelArgs, " ")
	return []string{
		"-name", "boxrun-vm",
		"-nodefaults", "-no-user-config",
		"-accel", "tcg,thread=" + tcgThreads(cfg.Guest),
		"-smp", strconv.Itoa(cfg.CPUs),
		"-m", mem,
		"-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on",
		"-numa", "node,memdev=mem",
		"-chardev", "socket,id=fs,path=" + socket,
		"-device", "vhost-user-fs-pci,chardev=fs,tag=" + virtiofsTag,
		"-kernel", k.Kernel,
		"-initrd", k.Initrd,
		"-append", appendLine,
		"-display", "none",
		"-serial", "stdio",
		"-nic", "none",
		"-no-reboot",
	}
}

// childAttr puts a helper in its own process group (so it and its children can be
// killed together) and kills it if this process dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group pgid (a helper started with childAttr).
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func waitForSocket(ctx context.Context, path string, exited <-chan struct{}) error {
	deadline := time.After(30 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-exited:
			return errors.New("virtiofsd exited")
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline:
			return fmt.Errorf("no socket at %s after 30s", path)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
