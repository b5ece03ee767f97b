package vm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMirrorIn(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"deb822", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n", "http://deb.debian.org/debian"},
		{"one-line", "deb http://ftp.de.debian.org/debian/ bookworm main\n", "http://ftp.de.debian.org/debian"},
		{"security only", "URIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n", ""},
		{"third party first", "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\ndeb [arch=amd64] https://mirror.example/debian bookworm main\n", "https://mirror.example/debian"},
		{"commented out", "# deb http://old.example/debian bookworm main\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mirrorIn(tc.text); got != tc.want {
				t.Errorf("mirrorIn = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseBuiltin(t *testing.T) {
	got := parseBuiltin("kernel/drivers/virtio/virtio.ko\nkernel/fs/fuse/virtiofs.ko\nkernel/drivers/virtio/virtio_pci-modern-dev.ko\n\n")
	want := map[string]bool{"virtio": true, "virtiofs": true, "virtio_pci_modern_dev": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseBuiltin = %v, want %v", got, want)
	}
}

// TestRootfsGuestKey: the cache key follows the package list, not its order.
func TestRootfsGuestKey(t *testing.T) {
	a := rootfsGuest{name: "x", suite: "trixie", packages: []string{"systemd", "dbus"}}
	b := rootfsGuest{name: "x", suite: "trixie", packages: []string{"dbus", "systemd"}}
	c := rootfsGuest{name: "x", suite: "trixie", packages: []string{"dbus", "systemd", "procps"}}
	if a.key() != b.key() || a.key() == c.key() {
		t.Errorf("keys %s %s %s: want the first two equal, the third different", a.key(), b.key(), c.key())
	}
}

// TestWritePayloadSysroot: with a guest root of its own, files append to that root's
// files and follow its (relative) symlinks, never the host's.
func TestWritePayloadSysroot(t *testing.T) {
	sysroot := t.TempDir()
	for _, d := range []string{"etc", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(sysroot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/lib", filepath.Join(sysroot, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysroot, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := t.TempDir()
	err := writePayload(payload, sysroot, map[string]File{
		"/etc/passwd":          {Data: "boxtest:x:1500:1500::/home/boxtest:/bin/sh\n", Append: true},
		"/lib/systemd/x.conf":  {Data: "x\n"},
		"/var/tmp/new/file.sh": {Data: "#!/bin/sh\n", Mode: 0o755},
	})
	if err != nil {
		t.Fatal(err)
	}
	passwd, err := os.ReadFile(filepath.Join(payload, "etc", "passwd"))
	if err != nil || string(passwd) != "root:x:0:0::/root:/bin/sh\nboxtest:x:1500:1500::/home/boxtest:/bin/sh\n" {
		t.Errorf("appended /etc/passwd = %q, %v; want the guest root's line and the new one", passwd, err)
	}
	if _, err := os.Stat(filepath.Join(payload, "usr", "lib", "systemd", "x.conf")); err != nil {
		t.Errorf("/lib/systemd/x.conf did not land in usr/lib through the guest root's symlink: %v", err)
	}
	if st, err := os.Stat(filepath.Join(payload, "var", "tmp", "new", "file.sh")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("new file under directories the guest root lacks: %v, %v", st, err)
	}
}

// TestResolveHostDirEscapes: an absolute symlink in a guest root would lead to the
// host's directory; the payload must not follow it.
func TestResolveHostDirEscapes(t *testing.T) {
	sysroot := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(sysroot, "etc")); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveHostDir(sysroot, "/etc/systemd"); err == nil || !strings.Contains(err.Error(), "leads out of it") {
		t.Errorf("resolveHostDir through an absolute symlink: %v, want an error saying it leads out", err)
	}
}
