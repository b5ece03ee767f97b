package vm

import (
	"bytes"
	"fmt"
	"io"
)

// guestModules are the kernel modules the initramfs loads, in insmod order (the
// unpacked kernel package has no modules.dep, so the order is the dependency order).
// A kernel that has one of them built in (Debian 13's has all but overlay) lists it in
// its modules.builtin, and the initramfs leaves it out.
var guestModules = []string{
	"virtio_ring",
	"virtio",
	"virtio_pci_modern_dev",
	"virtio_pci_legacy_dev",
	"virtio_pci",
	"fuse",
	"virtiofs",
	"overlay",
}

// Console markers. The command's markers also carry a per-boot token and are printed
// with printf so that the whole marker never appears literally in a file of the guest.
const (
	markerInitError = "BOXRUN-INIT-ERROR: "
	markerStart     = "BOXRUN-START-"
	markerEnd       = "BOXRUN-END-"
	virtiofsTag     = "root"
	unitName        = "boxrun-test.service"
	guestDir        = "/.boxrun" // harness files in the guest's root
)

// initScript is the initramfs's /init. It is generic: everything that depends on the
// boot comes from the payload directory named by boxrun.payload= on the kernel command
// line, which the guest reads through the virtiofs share of the host's root.
//
// boxrun.root= names a directory of the host (a guest's own root file system, see
// Guest) to boot instead of the host's root; boxrun.shares= then lists, comma
// separated, the host directories the guest sees at their own paths, each under an
// overlay of its own (written files stay in the guest's tmpfs, like everything else).
const initScript = `#!/bin/busybox sh
# boxrun vm initramfs: mount the host's root (virtiofs, read-only) under a tmpfs
# overlay, copy the boot's payload into it and switch_root into it.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
	echo "` + markerInitError + `$*"
	sleep 1
	poweroff -f
}

arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1"=*) echo "${w#*=}" ;; esac
	done
}
payload=$(arg boxrun.payload)
mode=$(arg boxrun.mode)
root=$(arg boxrun.root)
shares=$(arg boxrun.shares)
[ -n "$payload" ] || die "no boxrun.payload= on the kernel command line"

for m in ` + "MODULES" + `; do
	insmod /lib/modules/$m.ko || die "insmod $m.ko failed"
done

n=0
until mount -t virtiofs -o ro ` + virtiofsTag + ` /lower 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 100 ] || die "cannot mount the virtiofs tag ` + virtiofsTag + ` (is vhost-user-fs-pci present?)"
	sleep 0.1
done
mount -t tmpfs -o mode=0755 tmpfs /t || die "cannot mount tmpfs"
mkdir -p /t/upper /t/work
[ -x "/lower$root/lib/systemd/systemd" ] || [ "$mode" = nosystemd ] ||
	die "the guest's root /lower$root has no /lib/systemd/systemd (remove it from BOXRUN_VM_CACHE to rebuild it)"
mount -t overlay -o lowerdir=/lower$root,upperdir=/t/upper,workdir=/t/work overlay /newroot ||
	die "cannot mount the overlay over the virtiofs root"
if [ -n "$root" ]; then
	i=0
	for s in $(echo "$shares" | tr , ' '); do
		i=$((i + 1))
		mkdir -p /t/share$i/upper /t/share$i/work "/newroot$s" || die "cannot make the mount point of the share $s"
		mount -t overlay -o "lowerdir=/lower$s,upperdir=/t/share$i/upper,workdir=/t/share$i/work" overlay "/newroot$s" ||
			die "cannot share the host's $s into the guest"
	done
fi
[ -d "/lower$payload/root" ] ||
	die "payload $payload/root is not visible through the virtiofs share of the host's /: check BOXRUN_VM_CACHE and that virtiofsd shares /"
cp -a "/lower$payload/root/." /newroot/ || die "cannot copy the payload into the overlay"
# systemd takes a host that has /.dockerenv for a container and then ignores the
# kernel command line: the guest is a VM, hide the file in the overlay.
rm -f /newroot/.dockerenv
mkdir -p /newroot` + guestDir + ` && cp /bin/busybox /newroot` + guestDir + `/busybox || die "cannot copy busybox"

umount /proc /sys /dev
case "$mode" in
systemd) exec switch_root /newroot /lib/systemd/systemd --unit=` + unitName + ` ;;
nosystemd) exec switch_root /newroot ` + guestDir + `/busybox sh ` + guestDir + `/pid1.sh ;;
esac
die "unknown boxrun.mode=$mode"
`

// renderInitScript returns /init with the module list (in insmod order) filled in.
func renderInitScript(modules []string) string {
	var mods bytes.Buffer
	for i, m := range modules {
		if i > 0 {
			mods.WriteByte(' ')
		}
		mods.WriteString(m)
	}
	return string(bytes.Replace([]byte(initScript), []byte("MODULES"), mods.Bytes(), 1))
}

// cpioEntry is one member of a newc cpio archive.
type cpioEntry struct {
	Name         string // without leading slash
	Mode         uint32 // type and permission bits (e.g. 0o100755, 0o040755)
	Data         []byte // file content or symlink target
	Major, Minor uint32 // device numbers for character devices
}

// cpio mode type bits.
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// writeCPIO writes entries as an uncompressed newc ("070701") archive, the format the
// kernel unpacks into its initial rootfs.
func writeCPIO(w io.Writer, entries []cpioEntry) error {
	pad := func(n int) []byte { return make([]byte, (4-n%4)%4) }
	write := func(ino int, e cpioEntry) error {
		name := e.Name + "\x00"
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.Mode, 0, 0, 1, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(name), 0)
		var b bytes.Buffer
		b.WriteString(hdr)
		b.WriteString(name)
		b.Write(pad(len(hdr) + len(name)))
		b.Write(e.Data)
		b.Write(pad(len(e.Data)))
		_, err := w.Write(b.Bytes())
		return err
	}
	for i, e := range entries {
		if err := write(i+1, e); err != nil {
			return fmt.Errorf("writing cpio entry %q: %w", e.Name, err)
		}
	}
	if err := write(0, cpioEntry{Name: "TRAILER!!!"}); err != nil {
		return fmt.Errorf("writing cpio trailer: %w", err)
	}
	return nil
}

// initramfsEntries lists the initramfs: busybox, /init, the modules and the mount points.
// order lists the modules to load in insmod order; modules maps each name (without
// .ko) to its uncompressed content.
func initramfsEntries(busybox []byte, order []string, modules map[string][]byte) ([]cpioEntry, error) {
	e := []cpioEntry{}
	for _, d := range []string{"bin", "dev", "proc", "sys", "lower", "newroot", "t", "lib", "lib/modules"} {
		e = append(e, cpioEntry{Name: d, Mode: cpioDir | 0o755})
	}
	e = append(e,
		cpioEntry{Name: "dev/console", Mode: cpioCharDev | 0o600, Major: 5, Minor: 1},
		cpioEntry{Name: "dev/null", Mode: cpioCharDev | 0o666, Major: 1, Minor: 3},
		cpioEntry{Name: "bin/busybox", Mode: cpioFile | 0o755, Data: busybox},
		cpioEntry{Name: "bin/sh", Mode: cpioSymlink | 0o777, Data: []byte("busybox")},
		cpioEntry{Name: "init", Mode: cpioFile | 0o755, Data: []byte(renderInitScript(order))},
	)
	for _, m := range order {
		data, ok := modules[m]
		if !ok {
			return nil, fmt.Errorf("building initramfs: module %s missing", m)
		}
		e = append(e, cpioEntry{Name: "lib/modules/" + m + ".ko", Mode: cpioFile | 0o644, Data: data})
	}
	return e, nil
}
