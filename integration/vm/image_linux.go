package vm

import (
	"bytes"
	"context"
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

// containerImage is a Debian root file system packed as a tar, for a guest's
// `podman import`: the guest has no network, so no registry, and the image comes from
// Debian's packages through the host's apt mirror, like the Debian 13 guest's root.
type containerImage struct {
	name    string // the cache directory's prefix, e.g. distrobox
	suite   string // the Debian suite, e.g. bookworm
	variant string // mmdebstrap's --variant
	// packages are installed on top of the variant's.
	packages []string
	// excludes are dpkg path-exclude patterns: files no scenario needs, kept out of
	// the image because the guest's container storage lives in its RAM.
	excludes []string
	// hooks are mmdebstrap --hook-dir directories.
	hooks []string
}

// distroboxImage is what distrobox-init 1.4.2.1 (Debian 12's distrobox) checks for
// before it would install its dependencies with the image's package manager: find,
// mount, passwd, sudo, useradd, diff, pinentry, wget, curl, less, bc, time, lsof and
// the user's shell (sh). With them all present it installs nothing. The "essential"
// variant has no apt, so nothing could be installed anyway; the merged-usr hook makes
// a merged /usr without the usrmerge package (which pulls the whole of perl). ps and
// pgrep (procps) are for the scenarios. Measured with Debian 12's mmdebstrap 1.3.5:
// built in 23 s, a tar of 68 MB.
var distroboxImage = containerImage{
	name:     "distrobox",
	suite:    "bookworm",
	variant:  "essential",
	packages: []string{"bc", "curl", "less", "lsof", "mount", "passwd", "pinentry-curses", "procps", "sudo", "time", "wget"},
	excludes: []string{"/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*", "/usr/lib/x86_64-linux-gnu/gconv/*"},
	hooks:    []string{"/usr/share/mmdebstrap/hooks/merged-usr"},
}

// key identifies the image's content: everything mmdebstrap is given, the package
// list in any order.
func (c containerImage) key() string {
	pkgs := append([]string(nil), c.packages...)
	sort.Strings(pkgs)
	parts := []string{c.suite, c.variant, strings.Join(pkgs, ","), strings.Join(c.excludes, ","), strings.Join(c.hooks, ",")}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:6])
}

// imageFile is the tar's name in the image's cache directory.
const imageFile = "rootfs.tar"

// PrepareDistroboxImage returns the path of a Debian 12 root packed as a tar that a
// distrobox can be created from offline (see distroboxImage), and its build record,
// e.g. "distrobox bookworm from http://deb.debian.org/debian, 72 MB, built in 20s on
// ...". It is built once per machine under the cache's flock, in
// <cache>/distrobox-<key>/, and never refreshed: remove the directory to rebuild it.
func PrepareDistroboxImage(ctx context.Context) (path, record string, err error) {
	return prepareImage(ctx, distroboxImage, cacheDir())
}

// prepareImage returns c's tar in the cache, building it under the cache's lock when
// it is missing.
func prepareImage(ctx context.Context, c containerImage, cache string) (path, record string, err error) {
	unlock, err := lockCache(ctx, cache)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	dir := filepath.Join(cache, c.name+"-"+c.key())
	if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil {
		if err := buildImage(ctx, c, cache, dir); err != nil {
			return "", "", fmt.Errorf("building the %s container image: %w", c.name, err)
		}
	}
	ready, err := os.ReadFile(filepath.Join(dir, "ready"))
	if err != nil {
		return "", "", fmt.Errorf("reading the %s image's build record (remove %s to rebuild it): %w", c.name, dir, err)
	}
	return filepath.Join(dir, imageFile), strings.TrimSpace(string(ready)), nil
}

// mmdebstrapArgs are the arguments that build c into the tar out from mirror.
func (c containerImage) mmdebstrapArgs(out, mirror string) []string {
	args := []string{"--mode=root", "--variant=" + c.variant, "--include=" + strings.Join(c.packages, ",")}
	for _, h := range c.hooks {
		args = append(args, "--hook-dir="+h)
	}
	for _, e := range c.excludes {
		args = append(args, "--dpkgopt=path-exclude="+e)
	}
	return append(args, c.suite, out, mirror)
}

// buildImage runs mmdebstrap into a tar and publishes it in dir with its record.
func buildImage(ctx context.Context, c containerImage, cache, dir string) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not found: it builds the container image from Debian's packages (apt-get install mmdebstrap)")
	}
	for _, h := range c.hooks {
		if _, err := os.Stat(h); err != nil {
			return fmt.Errorf("mmdebstrap's hook directory %s: %w (a newer mmdebstrap has it; Debian 12's 1.3 does)", h, err)
		}
	}
	start := time.Now()
	work, err := os.MkdirTemp(cache, "build-"+c.name+"-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(work)
	// The guest's unprivileged user imports the tar: the directory (MkdirTemp
	// makes it 0700) becomes the cache's, readable by all.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	mirror := debianMirror()
	out := filepath.Join(work, imageFile)
	var log bytes.Buffer
	mm := exec.CommandContext(ctx, "mmdebstrap", c.mmdebstrapArgs(out, mirror)...)
	mm.Stdout, mm.Stderr = &log, &log
	if err := mm.Run(); err != nil {
		return fmt.Errorf("mmdebstrap %s: %v: %s (check access to %s)", c.suite, err, lastLines(log.String(), 20), mirror)
	}
	st, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("mmdebstrap wrote no %s: %w", out, err)
	}
	ready := fmt.Sprintf("%s %s from %s, %d MB, built in %s on %s\n", c.name, c.suite, mirror, st.Size()>>20,
		time.Since(start).Round(time.Second), start.UTC().Format(time.RFC3339))
	return publish(work, dir, ready)
}
