// Package vm boots a real Linux kernel with systemd under QEMU (pure emulation) over a
// read-only share of the host's root, or of a Debian root file system of its own, runs
// one command in it and returns what it printed.
//
// It is the real-kernel harness of boxrun's integration tests: the development and CI
// hosts have a hybrid cgroup layout and no systemd PID 1, so the cgroup v2 controllers
// and the systemd manager boxrun drives exist only in such a guest. See
// ../shared/notes/real-kernel-testing.md (beside the repository) for why it is built this way (no KVM, no UML).
//
// # The guests
//
// Config.Guest selects one of two systems (BOXRUN_IT_GUEST in the integration tests):
//
//   - Debian12 (the default): Debian 12's linux-image-cloud-amd64, 6.1, over the
//     host's own root, so on the project's Debian 12 machines its systemd 252
//     (252.39 when measured). The kernel comes through the host's apt.
//   - Debian13: Debian 13 "trixie"'s linux-image-cloud-amd64, 6.12 (6.12.117), over a
//     root file system of its own with systemd 257 (257.13). Both come from the Debian
//     mirror the host's apt already uses (the first http(s) URI of
//     /etc/apt/sources.list* whose path ends in /debian): the kernel through a scratch
//     apt directory (its own sources.list for trixie, lists, cache and an empty dpkg
//     status, passed to apt-get with -o Dir::...; the host's apt state is untouched),
//     the root through mmdebstrap --mode=root --variant=required with the packages the
//     scenarios use (systemd, dbus, dbus-user-session, libpam-systemd, util-linux,
//     procps, busybox-static). It is built once per machine under the cache's flock,
//     in <cache>/debian13-<key>/ (kernel/, root/, and ready, the build record), keyed
//     by the suite and the package list, and never refreshed: remove the directory
//     to rebuild it. The build writes a machine-id into the root: an empty one makes
//     every boot a first boot, and systemd-firstboot would prompt on the console.
//     Debian 13's kernel has virtio, virtio_pci, fuse and virtiofs built in
//     (modules.builtin); its initramfs loads overlay alone.
//
// A guest with a root of its own sees the host only through Config.Shares: each is
// mounted at its own path under an overlay of its own, read-only below and tmpfs above
// like the root. The integration tests share the directory of the binaries they built,
// the repository, and a rustup toolchain's homes (~/.cargo, ~/.rustup) for the cargo
// scenarios: the crate is built on the host, and the guest's cargo, the same one,
// finds it fresh. The Debian 13 image carries no Rust of its own: Debian 13's cargo
// would rebuild the crate under emulation, inside the boxes the scenarios measure.
// Payload files (Config.Files) are written against the guest's root, so appending to
// /etc/passwd appends to Debian 13's.
//
// # How a boot works
//
//   - The kernel is Debian's linux-image-cloud-amd64 (its versioned dependency, fetched
//     with apt-get download and unpacked with dpkg-deb -x, never installed). It and a
//     generic initramfs (static busybox, the virtio/virtiofs/fuse/overlay modules, /init)
//     are cached under $BOXRUN_VM_CACHE (default /var/tmp/boxrun-vm), keyed by kernel
//     version and by the initramfs's content hash, behind a flock on <cache>/lock.
//   - Each boot gets a payload directory <cache>/runs/run-*/ holding its own virtiofsd
//     socket, a lock file it holds while it runs (so that later boots remove directories
//     of killed test processes, whose QEMU died with them), and root/, the files to put into the guest (Config.Files, the command, the
//     wrapper script, the test unit, unit masks). virtiofsd shares the host's / and the
//     kernel command line names the payload (boxrun.payload=..., boxrun.mode=...) and,
//     for Debian13, the guest's root and shares (boxrun.root=..., boxrun.shares=...).
//   - /init mounts the virtiofs share read-only, puts an overlay with a tmpfs upper layer
//     over it (over its boxrun.root directory, when there is one, and one overlay for
//     each share), copies <payload>/root/. into the overlay, and switch_roots into
//     /lib/systemd/systemd --unit=boxrun-test.service (Systemd) or into a busybox sh
//     PID 1 that mounts cgroup2 itself (NoSystemd).
//   - The command's output comes back on the serial console between two markers that
//     carry a per-boot token; the end marker carries the exit status. The guest then
//     powers off (systemd's poweroff-force, or poweroff -f).
//
// QEMU runs the Debian 12 guest's two CPUs on two host threads (-accel tcg,thread=multi)
// and the Debian 13 guest's on one (thread=single): Debian 13's 6.12 panicked in every
// multi-threaded boot that reached TestSoak ("Oops: int3" on a live-patched static key,
// see tcgThreads), and the single-threaded boot did not.
//
// The guest has no network (-nic none). The kernel runs with quiet (console loglevel 4,
// set explicitly with loglevel=4): KERN_ERR lines such as "Memory cgroup out of memory:
// Killed process 127 (tail) ..." reach the console (and Output, when they happen while
// the command runs); the KERN_WARNING "invoked oom-killer" header and its dump stay in
// dmesg only. Measured in both modes; systemd leaves kernel.printk at "4 4 1 7".
//
// # What the guest differs in from the host
//
//   - systemd would take the host's /.dockerenv for a container and then ignore the
//     kernel command line; /init hides the file in the overlay.
//   - Debian's tmpfiles.d/tmp.conf ("D /tmp") makes systemd-tmpfiles-setup empty /tmp at
//     boot, which would hide the host's /tmp (test binaries built there) from the guest:
//     it is masked. Also masked: serial-getty@ttyS0, getty@tty1, systemd-timesyncd and
//     timers.target (apt-daily and the like would start on Persistent= timers).
//   - boxrun-test.service pulls basic.target (only the --unit is started), so D-Bus is
//     there; logind is bus-activated, as user-runtime-dir@.service needs it.
//   - virtiofsd runs with cache=always: the guest caches the host's files for the whole
//     boot (4 s faster systemd boots than cache=auto); change nothing on the host that a
//     running guest needs to see.
//   - Files on other host mounts under / are visible (measured with BOXRUN_VM_CACHE on a
//     tmpfs): without -o announce_submounts the C virtiofsd crosses mount points and the
//     guest sees one file system. With announce_submounts every host mount point (/proc,
//     /sys, /dev) becomes EREMOTE ("Object is remote") in the overlay, and PID 1 cannot
//     mount anything there.
//   - Files under /run, /proc, /sys and /dev are hidden by the mounts PID 1 makes.
//
// # Measured figures
//
// On a 2-CPU host without KVM (QEMU 7.2 TCG, kernel 6.1.0-56-cloud-amd64, systemd 252,
// 2 vCPUs, 1 GiB), with nothing else running:
//
//   - first use: apt-get download and unpack of the kernel package, about 5 s;
//   - guest clock: /init at 2.1 s, systemd at 3.2 s, its generators until 5.9 s, units
//     loaded at 6.2 s, basic.target and the command at about 12 s with cache=auto;
//   - Result.Boot: NoSystemd 2.9 to 3.3 s; Systemd 8.4 to 11.6 s (12 to 14.7 s with
//     virtiofsd's cache=auto); a whole trivial Boot call 6 s (NoSystemd) and 12 s
//     (Systemd) including power-off;
//   - inside: systemctl start user@1500.service about 5 s; 200M written into a 64M
//     cgroup is OOM-killed within 1.2 s of Result.Run.
//
// The Debian 13 guest (QEMU 7.2 TCG, kernel 6.12.117+deb13-cloud-amd64, systemd 257.13):
//
//   - first build: 1m50s (apt-get update of trixie's lists about 14 s, the kernel
//     package 35 MB, mmdebstrap about 90 s); 169 MB in the cache;
//   - Result.Boot, with no other VM on the host: Systemd 13.2 and 14.4 s, NoSystemd 4.2
//     and 4.3 s; the Debian 12 guest, in the same hour and conditions: 9.1 s and 4.5 s
//     (the Debian 13 systemd boot takes 4 to 5 s longer; not broken down further);
//   - 13 integration scenarios took 46 s as root and user and 22 s in the cgroupfs
//     boot.
//
// With a second CPU-bound test process on the same host the same boots took 5 to 11 s
// (NoSystemd) and 18 to 25 s (Systemd). go test runs at most GOMAXPROCS tests in
// parallel, which here keeps two VMs at a time. Emulation is slow in absolute terms:
// compare ratios measured within one boot, never absolute times.
package vm
