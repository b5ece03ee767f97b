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
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = defaultMemoryMB
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = defaultCPUs
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
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

	runs := filepath.Join(cache, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return nil, fmt.Errorf("vm: creating %s: %w", runs, err)
	}
	removeStaleRuns(runs)
	run, err := os.MkdirTemp(runs, "run-")
	if err != nil {
		return nil, fmt.Errorf("vm: creating the boot's payload directory: %w", err)
	}
	defer os.RemoveAll(run)
	runLock, err := os.Create(filepath.Join(run, "lock"))
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	defer runLock.Close() // tells removeStaleRuns of other tests that this Boot is alive
	if err := syscall.Flock(int(runLock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("vm: locking %s: %w", runLock.Name(), err)
	}
	run, err = filepath.EvalSymlinks(run) // the guest resolves the path on the host's root
	if err != nil {
		return nil, fmt.Errorf("vm: resolving %s: %w", run, err)
	}

	token := randomToken()
	root := filepath.Join(run, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if err := os.Chmod(root, 0o755); err != nil { // copied onto the guest's / by cp -a
		return nil, fmt.Errorf("vm: %w", err)
	}
	files := defaultFiles(cfg.Mode, token, cfg.Command, cfg.Env)
	for p, f := range cfg.Files {
		files[p] = f
	}
	if err := writePayload(root, guest.root, files); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}

	socket := filepath.Join(run, "virtiofsd.sock")
	if len(socket) >= 108 {
		return nil, fmt.Errorf("vm: virtiofsd socket path %s is longer than a unix socket allows: set BOXRUN_VM_CACHE to a shorter directory", socket)
	}
	vfsArgs := virtiofsdArgs(socket)
	vfs := exec.Command(t.virtiofsd, vfsArgs...)
	vfsLog := &limitedBuffer{max: 8 << 10}
	vfs.Stdout, vfs.Stderr = vfsLog, vfsLog
	vfs.SysProcAttr = childAttr()
	if err := vfs.Start(); err != nil {
		return nil, fmt.Errorf("vm: starting %s: %w", t.virtiofsd, err)
	}
	vfsDone := make(chan struct{})
	go func() { _ = vfs.Wait(); close(vfsDone) }()
	defer func() {
		killGroup(vfs.Process.Pid)
		<-vfsDone
	}()
	if err := waitForSocket(ctx, socket, vfsDone); err != nil {
		return nil, fmt.Errorf("vm: virtiofsd did not come up: %w; its output: %s", err, vfsLog)
	}

	cons := newConsole(token, cfg.Log)
	qemuLog := &limitedBuffer{max: 8 << 10}
	qemu := exec.Command(t.qemu, qemuArgs(cfg, guest, socket, run)...)
	qemu.Stdout = cons
	qemu.Stderr = qemuLog
	qemu.SysProcAttr = childAttr()
	startedAt := time.Now()
	if err := qemu.Start(); err != nil {
		return nil, fmt.Errorf("vm: starting %s: %w", t.qemu, err)
	}
	qemuDone := make(chan error, 1)
	go func() { qemuDone <- qemu.Wait() }()
	qemuExited := false
	defer func() {
		if !qemuExited {
			killGroup(qemu.Process.Pid)
			<-qemuDone
		}
	}()

	fail := func(format string, args ...any) (*Result, error) {
		msg := fmt.Sprintf(format, args...)
		if s := qemuLog.String(); s != "" {
			msg += "; qemu: " + s
		}
		return nil, fmt.Errorf("vm: %s; last console lines:\n%s", msg, lastLines(cons.text(), 40))
	}

	// partial goes with an error of a command that started and never
	// ended: what it printed so far says where it stopped.
	partial := func(_ *Result, err error) (*Result, error) {
		started, _, _ := cons.state()
		text := cons.text()
		return &Result{
			Console:  text,
			Output:   outputSoFar(text, cons.token),
			ExitCode: -1,
			Boot:     started.Sub(startedAt),
			Run:      time.Since(started),
			Partial:  true,
		}, err
	}

	var endGrace <-chan time.Time
wait:
	for {
		select {
		case err := <-qemuDone:
			qemuExited = true
			if _, _, initErr := cons.state(); initErr != "" {
				return fail("the guest's setup failed: %s", initErr)
			}
			if started, ended, _ := cons.state(); ended.IsZero() {
				if started.IsZero() {
					return fail("qemu exited (%v) before the command's start marker", exitStatus(err))
				}
				return partial(fail("qemu exited (%v) before the command's end marker (the guest powered off, rebooted or panicked mid-command)", exitStatus(err)))
			}
			break wait
		case <-cons.changed:
			_, ended, initErr := cons.state()
			if initErr != "" && endGrace == nil {
				endGrace = time.After(5 * time.Second) // let the guest power off, then report
			}
			if !ended.IsZero() && endGrace == nil {
				endGrace = time.After(powerOffGrace)
			}
		case <-endGrace:
			if _, _, initErr := cons.state(); initErr != "" {
				return fail("the guest's setup failed: %s", initErr)
			}
			break wait // the command ended; a guest that does not power off is not its fault
		case <-ctx.Done():
			started, _, _ := cons.state()
			if started.IsZero() {
				return fail("booting: %v after %s", context.Cause(ctx), time.Since(startedAt).Round(time.Millisecond))
			}
			return partial(fail("running the command (it started; no end marker): %v after %s", context.Cause(ctx), time.Since(startedAt).Round(time.Millisecond)))
		}
	}

	started, ended, _ := cons.state()
	text := cons.text()
	output, code, ok := parseOutput(text, token)
	if !ok {
		return fail("cannot find the command's output between the start and end markers")
	}
	return &Result{
		Console:  text,
		Output:   output,
		ExitCode: code,
		Boot:     started.Sub(startedAt),
		Run:      ended.Sub(started),
	}, nil
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
		"-accel", "tcg,thread=multi",
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
