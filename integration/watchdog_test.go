package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The guest's watchdog: the guest has frozen in CI with nothing said about
// why (the heartbeats stop, the VM times out at vmTimeout). The heartbeat
// loop of guestScript touches heartbeatStamp on every beat; the watchdog
// (the guest binary's "watchdog" role, integration/guest/watchdog_test.go)
// polls the stamp and, when it has not moved for options.stall, raises
// the console log level and has the kernel dump its blocked tasks and its
// memory to the console (sysrq w, then m), once per stall. When the VM
// then stops early, boot shows that dump (watchdogDump).
//
// It runs as root, started by guestScript before the heartbeat and the
// scenarios: never in a box, never one of the unprivileged user's
// processes, and marked BOXRUN_IT_HEARTBEAT=1 like the heartbeat, so that
// the root-mode sweep (TestNothingLeftBehind) knows it for the harness's.
// The stamp lives in /run: a tmpfs in both boot modes, empty at boot.
const heartbeatStamp = "/run/boxrun-it-heartbeat"

// watchdogStart is the guest script line that starts the watchdog in the
// background ($wd is its pid, for the script's end).
func watchdogStart(guest string, stall time.Duration) string {
	return fmt.Sprintf("BOXRUN_IT_HEARTBEAT=1 BOXRUN_IT_ROLE=watchdog WATCHDOG_STAMP=%s WATCHDOG_STALL=%s %s & wd=$!",
		heartbeatStamp, stall, guest)
}

// watchdogStarted returns the watchdog's start line from a guest's
// output, "" when there is none.
func watchdogStarted(output string) string {
	for _, l := range strings.Split(output, "\n") {
		if strings.HasPrefix(l, "watchdog| started") {
			return l
		}
	}
	return ""
}

// sysrqBlockedMarker is the line the kernel prints first for sysrq w
// ("sysrq: " and the key's action message; the header itself always
// reaches the console, whatever the log level).
const sysrqBlockedMarker = "sysrq: Show Blocked State"

// watchdogDumpLines bounds the dump a failure message shows: the blocked
// tasks' stacks and the memory report of one stall fit (about 60 lines of
// memory, 15 to 25 a blocked task); the whole console is in the VM's
// Result (and live with BOXRUN_VM_LOG=1).
const watchdogDumpLines = 500

// watchdogDump returns the console from the line of the watchdog's first
// sysrq dump on (the first stall is the one that left the VM silent: a
// guest that recovered from it would have gone on beating), at most
// watchdogDumpLines lines of it, or "" when the watchdog never fired.
// console is a Result.Console (lines end in \n).
func watchdogDump(console string) string {
	i := strings.Index(console, sysrqBlockedMarker)
	if i < 0 {
		return ""
	}
	from := strings.LastIndexByte(console[:i], '\n') + 1 // the start of its line (the kernel's timestamp)
	lines := strings.Split(strings.TrimRight(console[from:], "\n"), "\n")
	if len(lines) > watchdogDumpLines {
		more := len(lines) - watchdogDumpLines
		lines = append(lines[:watchdogDumpLines:watchdogDumpLines], fmt.Sprintf("(%d more console lines)", more))
	}
	return strings.Join(lines, "\n")
}

func TestWatchdogDump(t *testing.T) {
	long := "[  300.000000] sysrq: Show Blocked State\n" + strings.Repeat("[  300.1] task:x state:D\n", watchdogDumpLines+10)
	for _, c := range []struct {
		name, console, want string
	}{
		{"no stall", "[    1.0] Linux version 6.1\nheartbeat| up 30s\nroot| --- PASS: TestA (1.00s)\n", ""},
		{"empty console", "", ""},
		{
			"dump after the scenarios' output",
			"root| === RUN   TestA\nheartbeat| up 30.1s\nwatchdog| no heartbeat for 2m0s\n" +
				"[  250.123456] sysrq: Show Blocked State\n[  250.2] task:guest.test state:D stack:0\n[  250.3] Call Trace:\n" +
				"[  250.4] sysrq: Show Memory\n[  250.5] Mem-Info:\n",
			"[  250.123456] sysrq: Show Blocked State\n[  250.2] task:guest.test state:D stack:0\n[  250.3] Call Trace:\n" +
				"[  250.4] sysrq: Show Memory\n[  250.5] Mem-Info:",
		},
		{
			// A line of the guest's output the kernel's line broke into:
			// the dump starts at that line's start, nothing of it is lost.
			"marker mid-line",
			"root| half a li[  250.1] sysrq: Show Blocked State\nne\n",
			"root| half a li[  250.1] sysrq: Show Blocked State\nne",
		},
		{
			"two stalls: from the first",
			"[  100.0] sysrq: Show Blocked State\nfirst\nheartbeat| up 200s\n[  400.0] sysrq: Show Blocked State\nsecond\n",
			"[  100.0] sysrq: Show Blocked State\nfirst\nheartbeat| up 200s\n[  400.0] sysrq: Show Blocked State\nsecond",
		},
		{
			"long dump: cut, with the count left out",
			long,
			strings.Join(strings.Split(long, "\n")[:watchdogDumpLines], "\n") + "\n(11 more console lines)",
		},
	} {
		if got := watchdogDump(c.console); got != c.want {
			t.Errorf("%s: watchdogDump =\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}
