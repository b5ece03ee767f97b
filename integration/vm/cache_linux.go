package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// kernelMetaPackage is the Debian package whose dependency names the kernel to boot.
const kernelMetaPackage = "linux-image-cloud-amd64"

// cacheDir returns $BOXRUN_VM_CACHE, or /var/tmp/boxrun-vm.
func cacheDir() string {
	if d := os.Getenv("BOXRUN_VM_CACHE"); d != "" {
		return filepath.Clean(d)
	}
	return "/var/tmp/boxrun-vm"
}

// guestKernel is a prepared kernel and initramfs.
type guestKernel struct {
	Version string // e.g. 6.1.0-56-cloud-amd64
	Kernel  string // path of vmlinuz
	Initrd  string // path of the initramfs (uncompressed newc cpio)
}

// prepareKernel returns the cached kernel and initramfs of the host's Debian (the
// Debian12 guest), downloading and unpacking the kernel package and building the
// initramfs first when they are missing. It holds an exclusive flock on <cache>/lock
// meanwhile, so concurrent test processes do not race.
func prepareKernel(ctx context.Context, cache, busyboxPath string) (*guestKernel, error) {
	unlock, err := lockCache(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer unlock()

	pkg, aptErr := cachedKernelPackage(ctx, cache)
	var version string
	switch {
	case aptErr == nil:
		version = strings.TrimPrefix(pkg, "linux-image-")
	default:
		// Offline, or apt lists gone: a kernel already in the cache will do.
		version = newestCachedKernel(cache)
		if version == "" {
			return nil, aptErr
		}
	}
	dir := filepath.Join(cache, "kernel-"+version)
	if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil {
		if aptErr != nil {
			return nil, aptErr
		}
		if err := fetchKernel(ctx, cache, nil, pkg, version, dir); err != nil {
			return nil, err
		}
	}
	return kernelWithInitramfs(dir, version, busyboxPath)
}

// kernelWithInitramfs returns the kernel unpacked in dir (by fetchKernel) with the
// initramfs built from busybox and its modules, writing the initramfs into dir, keyed
// by its content, when it is not there yet. The caller holds the cache's lock.
func kernelWithInitramfs(dir, version, busyboxPath string) (*guestKernel, error) {
	busybox, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("reading busybox: %w", err)
	}
	builtin := map[string]bool{}
	if data, err := os.ReadFile(filepath.Join(dir, "builtin")); err == nil {
		for _, m := range strings.Fields(string(data)) {
			builtin[m] = true
		}
	}
	var order []string
	modules := map[string][]byte{}
	for _, m := range guestModules {
		if builtin[m] {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "modules", m+".ko"))
		if err != nil {
			return nil, fmt.Errorf("reading cached module (remove %s to rebuild the cache): %w", dir, err)
		}
		order = append(order, m)
		modules[m] = data
	}
	entries, err := initramfsEntries(busybox, order, modules)
	if err != nil {
		return nil, err
	}
	var archive bytes.Buffer
	if err := writeCPIO(&archive, entries); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(archive.Bytes())
	initrd := filepath.Join(dir, "initramfs-"+hex.EncodeToString(sum[:8])+".cpio")
	if _, err := os.Stat(initrd); err != nil {
		if err := writeFileAtomic(initrd, archive.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("writing the initramfs: %w", err)
		}
	}
	return &guestKernel{Version: version, Kernel: filepath.Join(dir, "vmlinuz"), Initrd: initrd}, nil
}

// aptLists is where apt-get update stores the package lists.
const aptLists = "/var/lib/apt/lists"

// cachedKernelPackage is kernelPackage, remembered in <cache>/kernel-package until apt's
// lists change (apt-cache takes seconds on a busy host, and every Boot asks).
func cachedKernelPackage(ctx context.Context, cache string) (string, error) {
	record := filepath.Join(cache, "kernel-package")
	if rec, err := os.Stat(record); err == nil {
		if lists, err := os.Stat(aptLists); err == nil && rec.ModTime().After(lists.ModTime()) {
			if data, err := os.ReadFile(record); err == nil && strings.HasPrefix(string(data), "linux-image-") {
				return strings.TrimSpace(string(data)), nil
			}
		}
	}
	pkg, err := kernelPackage(ctx, nil)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(record, []byte(pkg+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("recording the kernel package: %w", err)
	}
	return pkg, nil
}

// kernelPackage asks apt which versioned kernel package the cloud meta-package depends
// on, e.g. linux-image-6.1.0-56-cloud-amd64. apt are options for apt-cache (a scratch
// apt directory, see aptScratch); nil asks the host's apt.
func kernelPackage(ctx context.Context, apt []string) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", fmt.Errorf("apt-cache not found: the VM harness downloads Debian's %s with apt (run on Debian/Ubuntu, or fill BOXRUN_VM_CACHE from such a host)", kernelMetaPackage)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", append(apt, "depends", kernelMetaPackage)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %v: %s: run apt-get update", kernelMetaPackage, err, bytes.TrimSpace(out))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image-* package (output %q): run apt-get update", kernelMetaPackage, bytes.TrimSpace(out))
}

// newestCachedKernel returns the version of the most recently prepared cached kernel,
// or "".
func newestCachedKernel(cache string) string {
	matches, _ := filepath.Glob(filepath.Join(cache, "kernel-*", "ready"))
	var best string
	var bestTime time.Time
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			continue
		}
		if best == "" || st.ModTime().After(bestTime) {
			best, bestTime = m, st.ModTime()
		}
	}
	if best == "" {
		return ""
	}
	return strings.TrimPrefix(filepath.Base(filepath.Dir(best)), "kernel-")
}

// fetchKernel downloads pkg with apt-get download (apt: options naming a scratch apt
// directory, or nil for the host's apt), unpacks it with dpkg-deb -x (the package is
// never installed) and keeps vmlinuz and the initramfs's modules in dir, and in
// dir/builtin the names of those the kernel has built in.
func fetchKernel(ctx context.Context, cache string, apt []string, pkg, version, dir string) error {
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: it is needed to fetch %s (apt-get install apt dpkg)", tool, pkg)
		}
	}
	work, err := os.MkdirTemp(cache, "fetch-")
	if err != nil {
		return fmt.Errorf("creating a download directory: %w", err)
	}
	defer os.RemoveAll(work)

	dl := exec.CommandContext(ctx, "apt-get", append(apt, "download", "-q", "-o", "APT::Sandbox::User=root", pkg)...)
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %v: %s (run apt-get update; check network access to the Debian mirror)", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), work)
	}
	tree := filepath.Join(work, "tree")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], tree).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, bytes.TrimSpace(out))
	}

	stage := filepath.Join(work, "kernel")
	if err := os.MkdirAll(filepath.Join(stage, "modules"), 0o755); err != nil {
		return err
	}
	vmlinuz := filepath.Join(tree, "boot", "vmlinuz-"+version)
	if err := copyFile(vmlinuz, filepath.Join(stage, "vmlinuz")); err != nil {
		return fmt.Errorf("package %s has no kernel image: %w", pkg, err)
	}
	modDir := filepath.Join(tree, "lib", "modules", version)
	found, err := findModules(modDir)
	if err != nil {
		// merged-/usr packages ship /usr/lib/modules
		modDir = filepath.Join(tree, "usr", "lib", "modules", version)
		found, err = findModules(modDir)
	}
	if err != nil {
		return fmt.Errorf("package %s: %w", pkg, err)
	}
	builtin, err := builtinModules(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return fmt.Errorf("package %s: %w", pkg, err)
	}
	var inKernel []string
	for _, m := range guestModules {
		src, ok := found[m]
		if !ok {
			if builtin[m] {
				inKernel = append(inKernel, m)
				continue
			}
			return fmt.Errorf("package %s has %s neither as a module nor built in (modules.builtin): the guest cannot mount its root without it", pkg, m)
		}
		data, err := readModule(ctx, src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(stage, "modules", m+".ko"), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "builtin"), []byte(strings.Join(inKernel, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return publish(stage, dir, pkg+"\n")
}

// publish writes ready (what the directory holds) into stage/ready and puts stage in
// dir's place: a directory of the cache is there whole, with its ready file, or not
// at all.
func publish(stage, dir, ready string) error {
	if err := os.WriteFile(filepath.Join(stage, "ready"), []byte(ready), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("moving %s into the cache: %w", dir, err)
	}
	return nil
}

// findModules maps module names to their files (.ko, or compressed .ko.xz/.ko.zst/.ko.gz)
// under root.
func findModules(root string) (map[string]string, error) {
	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if strings.HasSuffix(name, ext) {
				found[strings.TrimSuffix(name, ext)] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing modules: %w", err)
	}
	return found, nil
}

// builtinModules reads a kernel's modules.builtin (one path such as
// kernel/fs/fuse/virtiofs.ko a line) into the set of module names; a missing file
// means none.
func builtinModules(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading modules.builtin: %w", err)
	}
	return parseBuiltin(string(data)), nil
}

// parseBuiltin parses modules.builtin's lines into module names. The kernel's
// module names use underscores where file names may have dashes.
func parseBuiltin(s string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		names[strings.ReplaceAll(strings.TrimSuffix(filepath.Base(line), ".ko"), "-", "_")] = true
	}
	return names
}

// readModule returns a module's uncompressed content: busybox insmod in the initramfs
// loads plain .ko files only.
func readModule(ctx context.Context, path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompressing %s: %w", path, err)
		}
		return io.ReadAll(z)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith(ctx, path, "xz", "xz-utils")
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith(ctx, path, "zstd", "zstd")
	}
	return nil, fmt.Errorf("module %s: unknown compression", path)
}

func decompressWith(ctx context.Context, path, tool, pkg string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("module %s is compressed and %s is not installed: apt-get install %s", path, tool, pkg)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, "-dc", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc %s: %v: %s", tool, path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// lockCache creates the cache directory if needed and takes its lock, <cache>/lock.
func lockCache(ctx context.Context, cache string) (unlock func(), err error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("creating the VM cache %s (set BOXRUN_VM_CACHE to a writable directory): %w", cache, err)
	}
	return lockFile(ctx, filepath.Join(cache, "lock"))
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the cache lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the cache lock %s (another test process prepares the kernel): %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// writeFileAtomic writes data to a temporary file next to path and renames it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeStaleRuns deletes per-boot directories that no running Boot holds: each Boot
// keeps an flock on its directory's lock file until it returns, so a directory whose
// lock can be taken was left by a test process that was killed (SIGKILL, SIGPIPE) before
// its deferred cleanup ran. Its QEMU and virtiofsd died with it (PR_SET_PDEATHSIG).
func removeStaleRuns(runs string) {
	entries, err := os.ReadDir(runs)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || time.Since(info.ModTime()) < time.Minute {
			continue // a Boot may be between creating the directory and locking it
		}
		dir := filepath.Join(runs, e.Name())
		f, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && time.Since(info.ModTime()) > time.Hour {
				os.RemoveAll(dir)
			}
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
