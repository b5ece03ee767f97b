//go:build boxrunguest

package guest

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// watchdog is the role the harness starts first in the guest, in the
// background, as root and outside every box (integration's guestScript;
// the host side is integration/watchdog_test.go). The guest has frozen in
// CI with nothing said about why: the heartbeats stopped and the VM timed
// out. The heartbeat loop touches WATCHDOG_STAMP on every beat; when the
// stamp's mtime has not moved for WATCHDOG_STALL (a Go duration), the
// watchdog raises the console log level to 8 and writes w (blocked tasks,
// with their stacks) then m (memory) to /proc/sysrq-trigger, so that the
// kernel prints its view of the freeze to the serial console, where the
// host finds it. It dumps once per stall: it fires again only after the
// stamp moved, and then puts the console log level back (kernel messages
// would otherwise split the scenarios' output lines; see quietConsole).
// A stamp not yet written counts as written when the watchdog started.
//
// It prints its own lines with the prefix "watchdog| " and runs until
// killed (the script kills it at its end). It is marked
// BOXRUN_IT_HEARTBEAT=1 by the harness, so that the sweep knows it for
// the harness's (see heartbeat in sweep_test.go).
func watchdog() int {
	stamp := os.Getenv("WATCHDOG_STAMP")
	stall, err := time.ParseDuration(os.Getenv("WATCHDOG_STALL"))
	if stamp == "" || err != nil || stall <= 0 {
		fmt.Printf("watchdog| not started: WATCHDOG_STAMP=%q WATCHDOG_STALL=%q: want a file and a positive duration\n",
			stamp, os.Getenv("WATCHDOG_STALL"))
		return 2
	}
	// Poll often enough that a dump comes within a quarter of the
	// threshold after it, at most every 10 s: one stat of a tmpfs file.
	poll := min(stall/4, 10*time.Second)
	start := time.Now()
	fmt.Printf("watchdog| started (pid %d): sysrq w and m to the console when %s has not changed for %s; %s\n",
		os.Getpid(), stamp, stall, lockMemory())
	var fired time.Time // the stamp's mtime when the watchdog last fired; zero when armed
	var level string    // the console log level before the watchdog raised it
	for {
		time.Sleep(poll)
		beat := start
		if fi, err := os.Stat(stamp); err == nil && fi.ModTime().After(beat) {
			beat = fi.ModTime()
		}
		quiet := time.Since(beat)
		switch {
		case !fired.IsZero() && beat.After(fired):
			fmt.Printf("watchdog| heartbeat back; console log level %s again\n", level)
			if err := restoreLevel(level); err != nil {
				fmt.Printf("watchdog| %v\n", err)
			}
			fired = time.Time{}
		case fired.IsZero() && quiet >= stall:
			fired = beat
			level = dump(quiet)
		}
	}
}

// mclOnfault is Linux's MCL_ONFAULT (since 4.4), which package syscall
// lacks: lock pages as they are touched instead of all mapped ones at once.
const mclOnfault = 0x4

// lockMemory keeps the watchdog's pages in RAM once touched: the freeze
// the watchdog is for may be the guest thrashing on executables it rereads
// over virtiofs (see guestMemoryMB in integration/), and a watchdog that
// pages its own code back in would be as stuck. On fault, not all at once:
// the Go runtime maps far more than it touches, and the scenarios measure
// the guest's free memory: measured, about 8 MiB stay locked (the
// guest's mlocked:7984kB in sysrq m's report, 1 GiB guest, Go 1.26). It
// returns what it did, for the start line.
func lockMemory() string {
	if err := syscall.Mlockall(syscall.MCL_CURRENT | syscall.MCL_FUTURE | mclOnfault); err != nil {
		return fmt.Sprintf("not locked in memory (mlockall: %v): it may page like the rest", err)
	}
	return "locked in memory as touched (mlockall on fault)"
}

// dump raises the console log level to 8 (everything: sysrq's handlers
// print at KERN_INFO, and only their header line ignores the level), and
// has the kernel show its blocked tasks, then its memory. It returns the
// level before, to restore when the heartbeat comes back ("" if unknown).
func dump(quiet time.Duration) (level string) {
	fmt.Printf("watchdog| no heartbeat for %s: console log level 8, sysrq w (blocked tasks) then m (memory)\n", quiet.Round(time.Second))
	if b, err := os.ReadFile("/proc/sys/kernel/printk"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			level = f[0] // "1	4	1	7": the console's level comes first
		}
	}
	for _, w := range []struct{ path, data string }{
		{"/proc/sys/kernel/printk", "8"},
		{"/proc/sysrq-trigger", "w"},
		{"/proc/sysrq-trigger", "m"},
	} {
		if err := os.WriteFile(w.path, []byte(w.data), 0); err != nil {
			fmt.Printf("watchdog| writing %s to %s: %v\n", w.data, w.path, err)
		}
	}
	return level
}

// restoreLevel puts back the console log level dump raised.
func restoreLevel(level string) error {
	if level == "" {
		return fmt.Errorf("the console log level before the dump is unknown: it stays at 8")
	}
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte(level), 0); err != nil {
		return fmt.Errorf("restoring the console log level %s: %w", level, err)
	}
	return nil
}
