package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// preparedGuest is what a boot needs of its guest: the kernel with its initramfs, and
// the directory of the host that is the guest's root.
type preparedGuest struct {
	kernel *guestKernel
	root   string // "/" for the host's own root
}

// prepareGuest returns the cached kernel and root of g, building them first when the
// cache lacks them.
func prepareGuest(ctx context.Context, g Guest, cache, busybox string) (*preparedGuest, error) {
	switch g {
	case Debian12:
		k, err := prepareKernel(ctx, cache, busybox)
		if err != nil {
			return nil, err
		}
		return &preparedGuest{kernel: k, root: "/"}, nil
	case Debian13:
		return prepareRootfsGuest(ctx, debian13, cache, busybox)
	}
	return nil, fmt.Errorf("unknown Guest %d: use vm.Debian12 or vm.Debian13", g)
}

// rootfsGuest describes a guest with a root file system of its own, built from a
// Debian suite's packages.
type rootfsGuest struct {
	name  string // the cache directory's prefix, e.g. debian13
	suite string // the Debian suite, e.g. trixie
	// packages are installed with mmdebstrap's "required" variant (dpkg, apt, bash,
	// coreutils, util-linux's essentials, mawk, ...).
	packages []string
}

// debian13 is Debian 13 "trixie". Its packages are what the scenarios use: systemd
// and the D-Bus and PAM pieces a delegated user manager (user@UID.service) needs,
// setpriv and script (util-linux, bsdutils), ps, pgrep and kill (procps), and a
// static busybox. The Go binaries, the test crate and the Rust toolchain come from
// the host through Config.Shares.
var debian13 = rootfsGuest{
	name:     "debian13",
	suite:    "trixie",
	packages: []string{"busybox-static", "dbus", "dbus-user-session", "libpam-systemd", "procps", "systemd", "util-linux"},
}

// key identifies the guest's content: its suite and package list.
func (r rootfsGuest) key() string {
	pkgs := append([]string(nil), r.packages...)
	sort.Strings(pkgs)
	sum := sha256.Sum256([]byte(r.suite + "\n" + strings.Join(pkgs, "\n")))
	return hex.EncodeToString(sum[:6])
}

// prepareRootfsGuest returns the guest's cached kernel and root, <cache>/<name>-<key>/
// (kernel/ and root/), building both under the cache's lock when they are missing:
// the kernel through a scratch apt directory for the suite, the root with mmdebstrap.
// Once built, a guest is never refreshed: remove its directory to rebuild it.
func prepareRootfsGuest(ctx context.Context, r rootfsGuest, cache, busybox string) (*preparedGuest, error) {
	unlock, err := lockCache(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(cache, r.name+"-"+r.key())
	if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil {
		if err := buildRootfsGuest(ctx, r, cache, dir); err != nil {
			return nil, fmt.Errorf("building the %s guest: %w", r.name, err)
		}
	}
	version, err := os.ReadFile(filepath.Join(dir, "kernel", "version"))
	if err != nil {
		return nil, fmt.Errorf("reading the %s guest's kernel version (remove %s to rebuild it): %w", r.name, dir, err)
	}
	k, err := kernelWithInitramfs(filepath.Join(dir, "kernel"), strings.TrimSpace(string(version)), busybox)
	if err != nil {
		return nil, err
	}
	return &preparedGuest{kernel: k, root: filepath.Join(dir, "root")}, nil
}

// buildRootfsGuest fills dir: kernel/ (as fetchKernel leaves it, plus its version),
// root/ (mmdebstrap) and ready, which says how long the build took.
func buildRootfsGuest(ctx context.Context, r rootfsGuest, cache, dir string) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not found: it builds the guest's root file system from Debian's packages (apt-get install mmdebstrap)")
	}
	start := time.Now()
	work, err := os.MkdirTemp(cache, "build-"+r.name+"-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(work)
	mirror := debianMirror()

	apt, err := aptScratch(ctx, filepath.Join(work, "apt"), mirror, r.suite)
	if err != nil {
		return err
	}
	pkg, err := kernelPackage(ctx, apt)
	if err != nil {
		return err
	}
	version := strings.TrimPrefix(pkg, "linux-image-")
	if err := fetchKernel(ctx, work, apt, pkg, version, filepath.Join(work, "kernel")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "kernel", "version"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}

	root := filepath.Join(work, "root")
	var out bytes.Buffer
	mm := exec.CommandContext(ctx, "mmdebstrap", "--mode=root", "--variant=required",
		"--include="+strings.Join(r.packages, ","), r.suite, root, mirror)
	mm.Stdout, mm.Stderr = &out, &out
	if err := mm.Run(); err != nil {
		return fmt.Errorf("mmdebstrap %s: %v: %s (check access to %s)", r.suite, err, lastLines(out.String(), 20), mirror)
	}
	// An empty machine-id makes the boot a first boot, and systemd-firstboot would
	// prompt on the console. Every boot of the guest is the same machine.
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	if err := os.WriteFile(filepath.Join(root, "etc", "machine-id"), []byte(hex.EncodeToString(id)+"\n"), 0o444); err != nil {
		return fmt.Errorf("writing the guest's machine-id: %w", err)
	}
	took := time.Since(start).Round(time.Second)
	ready := fmt.Sprintf("%s %s from %s, kernel %s, built in %s on %s\n", r.name, r.suite, mirror, pkg, took, start.UTC().Format(time.RFC3339))
	if err := os.RemoveAll(filepath.Join(work, "apt")); err != nil {
		return err
	}
	return publish(work, dir, ready)
}

// aptScratch makes a scratch apt directory at dir for suite (its own sources.list,
// lists, cache and an empty dpkg status), runs apt-get update in it and returns the
// apt options that use it. The host's apt configuration and state stay untouched.
func aptScratch(ctx context.Context, dir, mirror, suite string) ([]string, error) {
	for _, d := range []string{"etc/sources.list.d", "etc/preferences.d", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	sources := fmt.Sprintf("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n", mirror, suite)
	if err := os.WriteFile(filepath.Join(dir, "etc", "sources.list"), []byte(sources), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "status"), nil, 0o644); err != nil {
		return nil, err
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "etc", "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "etc", "sources.list.d"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(dir, "etc", "preferences"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "etc", "preferences.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "APT::Sandbox::User=root",
	}
	out, err := exec.CommandContext(ctx, "apt-get", append(opts, "update", "-q")...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("apt-get update for %s from %s: %v: %s (check network access to the Debian mirror, and that debian-archive-keyring knows %s)", suite, mirror, err, lastLines(string(out), 10), suite)
	}
	return opts, nil
}

// defaultMirror is the Debian archive when the host's apt names none.
const defaultMirror = "http://deb.debian.org/debian"

// debianMirror returns the Debian archive the host's apt uses (see mirrorIn), or
// defaultMirror.
func debianMirror() string {
	paths := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		paths = append(paths, m...)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // an unreadable file names no mirror
		}
		if m := mirrorIn(string(data)); m != "" {
			return m
		}
	}
	return defaultMirror
}

// mirrorIn returns the first URI of a sources.list ("deb URI suite ...") or deb822
// .sources ("URIs: URI ...") text whose path ends in /debian: Debian's main archive
// (not debian-security, nor a third party's repository). "" if there is none.
func mirrorIn(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if !strings.HasPrefix(f, "http://") && !strings.HasPrefix(f, "https://") {
				continue
			}
			if u := strings.TrimSuffix(f, "/"); strings.HasSuffix(u, "/debian") {
				return u
			}
		}
	}
	return ""
}

// Prepare makes guest g's kernel, initramfs and root ready in the cache, building what
// is missing (a Debian13 root takes minutes the first time; see the package's
// measured figures), and says what the cache holds: the guest's build record, e.g.
// "debian13 trixie from http://deb.debian.org/debian, kernel linux-image-..., built in
// 2m45s on ...", or the kernel's version for Debian12. Boot prepares the guest itself;
// calling Prepare first keeps a first build out of the boot's Config.Timeout.
func Prepare(ctx context.Context, g Guest) (string, error) {
	t, err := findTools()
	if err != nil {
		return "", fmt.Errorf("vm: cannot prepare %s: %w", g, err)
	}
	p, err := prepareGuest(ctx, g, cacheDir(), t.busybox)
	if err != nil {
		return "", fmt.Errorf("vm: preparing the %s guest: %w", g, err)
	}
	if p.root == "/" {
		return fmt.Sprintf("%s: kernel %s over the host's root", g, p.kernel.Version), nil
	}
	ready, err := os.ReadFile(filepath.Join(filepath.Dir(p.root), "ready"))
	if err != nil {
		return "", fmt.Errorf("vm: reading the %s guest's build record: %w", g, err)
	}
	return strings.TrimSpace(string(ready)), nil
}
