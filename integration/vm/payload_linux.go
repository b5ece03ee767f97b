package vm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// The payload of a boot is a directory on the host, under the cache, that the guest
// reads through the virtiofs share of the host's root: /init copies <payload>/root/.
// into the overlay before switch_root. The initramfs itself never changes per test.

// defaultFiles are the harness's own guest files for mode; cfg.Files override them.
func defaultFiles(mode Mode, token, command string, env map[string]string) map[string]File {
	files := map[string]File{
		guestDir + "/cmd":    {Data: command, Mode: 0o644},
		guestDir + "/run.sh": {Data: wrapperScript(token, env), Mode: 0o755},
	}
	switch mode {
	case Systemd:
		files["/etc/systemd/system/"+unitName] = File{Data: testUnit, Mode: 0o644}
		// A getty on the serial console would compete with the command for ttyS0.
		// (Masks are symlinks to /dev/null, see writePayload.)
		for _, u := range maskedUnits {
			files["/etc/systemd/system/"+u] = File{Data: maskData}
		}
		// Debian's "D /tmp" makes systemd-tmpfiles-setup empty /tmp at boot: the
		// guest would lose the host's /tmp (test binaries built there, for one).
		files["/etc/tmpfiles.d/tmp.conf"] = File{Data: maskData}
	case NoSystemd:
		files[guestDir+"/pid1.sh"] = File{Data: pid1Script, Mode: 0o755}
	}
	return files
}

// maskData in a File's Data makes writePayload create a symlink to /dev/null (a
// systemd mask) instead of a regular file. Its content cannot be a real unit file.
const maskData = "\x00boxrun-mask\x00"

// maskedUnits are units of the host that the guest's systemd must not start.
var maskedUnits = []string{
	"serial-getty@ttyS0.service",
	"getty@tty1.service",
	"systemd-timesyncd.service", // no network in the guest; it only adds noise
	"timers.target",             // apt-daily & co. would run on a Persistent= timer
}

// testUnit runs the wrapper once and powers the VM off whatever happens.
const testUnit = `[Unit]
Description=boxrun VM harness test command
# Only this unit is started (--unit=): pull basic.target for the sockets (D-Bus)
# that a booted system has, e.g. for user@.service.
Wants=basic.target
After=basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh ` + guestDir + `/run.sh
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
`

// pid1Script is PID 1 in NoSystemd mode (run by the busybox that /init copied).
const pid1Script = `# boxrun VM harness PID 1 without systemd
B=` + guestDir + `/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts devpts /dev/pts
$B mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$B mount -t tmpfs -o mode=0755 tmpfs /run
$B mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	echo "` + markerInitError + `cannot mount cgroup2 on /sys/fs/cgroup"
/bin/sh ` + guestDir + `/run.sh </dev/null
$B sync
$B sleep 0.5
$B poweroff -f
`

// wrapperScript prints the start marker, runs the command with env, and prints the
// end marker with the command's exit status.
func wrapperScript(token string, env map[string]string) string {
	var b strings.Builder
	b.WriteString("# boxrun VM harness wrapper\n")
	b.WriteString("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	b.WriteString("export HOME=/root\n")
	// The command's stdout is the serial console, a tty: no pager, no colours.
	b.WriteString("export SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0\n")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	b.WriteString("cd /root 2>/dev/null || cd /\n")
	fmt.Fprintf(&b, "printf 'BOXRUN-%%s-%%s\\n' START %s\n", token)
	fmt.Fprintf(&b, "/bin/sh -c \"$(cat %s/cmd)\" </dev/null 2>&1\n", guestDir)
	b.WriteString("rc=$?\n")
	fmt.Fprintf(&b, "printf 'BOXRUN-%%s-%%s rc=%%d\\n' END %s \"$rc\"\n", token)
	b.WriteString("exit 0\n")
	return b.String()
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writePayload writes files under root (the payload's root/ directory), resolving each
// guest path against sysroot, the guest's lower layer: the host's root ("/") or the
// guest's own root file system.
func writePayload(root, sysroot string, files map[string]File) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := writePayloadFile(root, sysroot, p, files[p]); err != nil {
			return fmt.Errorf("writing guest file %s: %w", p, err)
		}
	}
	return nil
}

func writePayloadFile(root, sysroot, guestPath string, f File) error {
	if !filepath.IsAbs(guestPath) || filepath.Clean(guestPath) != guestPath || guestPath == "/" {
		return errors.New("the path must be absolute and clean (like /etc/passwd)")
	}
	dir, err := resolveHostDir(sysroot, filepath.Dir(guestPath))
	if err != nil {
		return err
	}
	if err := mkdirLikeHost(root, sysroot, dir); err != nil {
		return err
	}
	dst := filepath.Join(root, dir, filepath.Base(guestPath))
	guest := filepath.Join(sysroot, dir, filepath.Base(guestPath)) // the lower layer's file
	if f.Data == maskData {
		return os.Symlink("/dev/null", dst)
	}
	data := []byte(f.Data)
	mode := f.Mode.Perm() | f.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	uid, gid := 0, 0
	if st, err := os.Stat(guest); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("the lower layer's %s is not a regular file", guest)
		}
		if f.Mode == 0 {
			mode = st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		if f.Append {
			old, err := os.ReadFile(guest)
			if err != nil {
				return fmt.Errorf("reading the lower layer's file to append to: %w", err)
			}
			data = append(old, data...)
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				uid, gid = int(sys.Uid), int(sys.Gid)
			}
		}
	} else if f.Mode == 0 {
		mode = 0o644
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return err
	}
	if err := os.Chown(dst, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// resolveHostDir resolves the symlinks of dir's longest prefix that exists in sysroot
// (the guest's lower layer), so that payload directories never replace a symlink of
// the guest's root. It returns the guest path.
func resolveHostDir(sysroot, dir string) (string, error) {
	base, err := filepath.EvalSymlinks(sysroot)
	if err != nil {
		return "", fmt.Errorf("resolving the guest's root %s: %w", sysroot, err)
	}
	existing, rest := dir, ""
	for {
		if _, err := os.Lstat(filepath.Join(base, existing)); err == nil {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(base, existing))
	if err != nil {
		return "", fmt.Errorf("resolving %s in %s: %w", existing, base, err)
	}
	if st, err := os.Stat(resolved); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s in %s is not a directory", existing, base)
	}
	guest := resolved
	if base != "/" {
		rel, err := filepath.Rel(base, resolved)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%s in the guest's root %s leads out of it (an absolute symlink): write the file by its resolved path", existing, base)
		}
		guest = filepath.Join("/", rel)
	}
	return filepath.Join(guest, rest), nil
}

// mkdirLikeHost creates root+dir, giving each new directory the mode and owner of the
// directory of the same path in sysroot, the guest's lower layer (so copying the
// payload keeps, e.g., /tmp's 1777).
func mkdirLikeHost(root, sysroot, dir string) error {
	if dir == "/" {
		return nil
	}
	if err := mkdirLikeHost(root, sysroot, filepath.Dir(dir)); err != nil {
		return err
	}
	dst := filepath.Join(root, dir)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	mode, uid, gid := fs.FileMode(0o755), 0, 0
	if st, err := os.Stat(filepath.Join(sysroot, dir)); err == nil && st.IsDir() {
		mode = st.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky)
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dst, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
