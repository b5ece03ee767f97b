// Package procfs reads the files of /proc that boxrun needs, one parser per
// file: /proc/PID/stat (stat.go), /proc/PID/status (status.go),
// /proc/PID/oom_score_adj (oom.go) and /proc/meminfo (meminfo.go).
// Everything that looks at a process — the backpressure observer, editor
// protection, status, the owner records, the guest scenarios — reads it
// through this package, so that a process is named the same way
// everywhere (pid and start time); the machine's memory size and what is
// available are read here too.
package procfs

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Stat is what boxrun reads of /proc/PID/stat.
type Stat struct {
	// PID and PPID are the process and its parent.
	PID, PPID int
	// Comm is the command name (field 2, without its parentheses).
	Comm string
	// State is the one-letter state: R, S, D, T, t, Z, I, ...
	State byte
	// UTime and STime are fields 14 and 15, the user and system CPU time
	// used so far, in clock ticks (USER_HZ, 100 a second on Linux).
	UTime, STime uint64
	// StartTime is field 22, in clock ticks since boot: with the pid, it
	// names a process across pid reuse.
	StartTime uint64
	// RSSPages is field 24, the resident set in pages; Stat.RSS gives
	// bytes.
	RSSPages uint64
	// ExitCode is field 52 (Linux 3.5+), the exit status as waitpid(2)
	// reports it, once the process is exiting or a zombie; 0 before, when
	// the kernel is older, or when the reader may not see it. Stat.Signal
	// gives the signal that killed it.
	ExitCode int
}

// Signal is the number of the signal that killed the process, from its
// exit status (field 52); 0 while it runs, or when it exited by itself.
func (s Stat) Signal() int { return s.ExitCode & 0x7f }

// CPU is the CPU time the process has used so far.
func (s Stat) CPU() time.Duration { return time.Duration(s.UTime+s.STime) * time.Second / userHZ }

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, 100 on every
// Linux architecture boxrun runs on.
const userHZ = 100

// RSS is the resident set in bytes.
func (s Stat) RSS() uint64 { return s.RSSPages * uint64(os.Getpagesize()) }

// ParseStat parses the text of /proc/PID/stat. The command name may hold
// spaces and parentheses: it ends at the last ')'.
func ParseStat(s string) (Stat, error) {
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("no command name in parentheses in %q", trim(s))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, fmt.Errorf("bad pid in %q", trim(s))
	}
	// After ")": state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice threads
	// itrealvalue starttime vsize rss ... and, 52nd of the line (Linux
	// 3.5+), exit_code.
	f := strings.Fields(s[end+1:])
	if len(f) < 22 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%d fields after the command name in %q, want 22 or more", len(f), trim(s))
	}
	st := Stat{PID: pid, Comm: s[open+1 : end], State: f[0][0]}
	var errs [5]error
	st.PPID, errs[0] = strconv.Atoi(f[1])
	st.UTime, errs[1] = strconv.ParseUint(f[11], 10, 64)
	st.STime, errs[2] = strconv.ParseUint(f[12], 10, 64)
	st.StartTime, errs[3] = strconv.ParseUint(f[19], 10, 64)
	st.RSSPages, errs[4] = strconv.ParseUint(f[21], 10, 64)
	for _, err := range errs {
		if err != nil {
			return Stat{}, fmt.Errorf("bad ppid, utime, stime, starttime or rss in %q", trim(s))
		}
	}
	if len(f) >= exitCodeField {
		code, err := strconv.Atoi(f[exitCodeField-1])
		if err != nil {
			return Stat{}, fmt.Errorf("bad exit_code %q in %q", f[exitCodeField-1], trim(s))
		}
		st.ExitCode = code
	}
	return st, nil
}

// exitCodeField is how many fields after the command name reach exit_code,
// field 52 of the line.
const exitCodeField = 52 - 2

// ReadStat reads /proc/PID/stat of the running system.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(b))
}

// ReadStatFS reads PID/stat from a proc file system rooted at its mount
// (os.DirFS("/proc"), or a fixture).
func ReadStatFS(fsys fs.FS, pid int) (Stat, error) {
	b, err := fs.ReadFile(fsys, strconv.Itoa(pid)+"/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(b))
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
