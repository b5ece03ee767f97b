// Package signals names the sender of the signals that kill processes in
// boxrun's boxes. Its pure part (this file, format.go, record.go, match.go)
// holds the record the tracer writes, the names of signals and of si_code
// values, the parsing of a tracepoint's format file, and the matching of a
// death to a record; the tracer itself — a BPF program on the
// signal:signal_generate tracepoint, built with cilium/ebpf's asm package
// and loaded by `boxrun signal-tracer` (root, boxrun-signals.service) — is
// tracer_linux.go. A run's report reads the records of its user (Dir) and
// names who sent the signal its processes died of.
package signals

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Root is the directory of the records: one directory per user, Root/UID,
// mode 0700 and owned by that user, holding the records of signals sent to
// that user's boxes and boxrun processes.
const Root = "/run/boxrun/signals"

// File is the name of the records' file in a user's directory.
const File = "signals.jsonl"

// Dir is where the records of uid's boxes are.
func Dir(uid int) string { return filepath.Join(Root, strconv.Itoa(uid)) }

// fatal are the signals the tracer records: those whose default action
// ends the process.
var fatal = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
}

// Traced are the signals the tracer records, as a bit mask (bit N for
// signal N): the BPF program drops the others before they reach user space.
// SIGPIPE, SIGALRM, SIGUSR1 and SIGUSR2 are left out: programs send and
// catch them in normal operation.
func Traced() uint32 {
	var m uint32
	for n := range fatal {
		switch n {
		case 10, 12, 13, 14:
			continue
		}
		m |= 1 << n
	}
	return m
}

// SignalName is "SIGKILL" for 9, "signal 40" for what has no name here.
func SignalName(sig int) string {
	if n, ok := fatal[sig]; ok {
		return n
	}
	return "signal " + strconv.Itoa(sig)
}

// si_code values (include/uapi/asm-generic/siginfo.h). A code above zero
// is the kernel's; SI_USER is kill(2), the others at or below zero are
// other calls of processes. SI_KERNEL is what the OOM killer, a process
// group kill by the kernel and rlimits use.
const (
	SIUser    = 0
	SIKernel  = 0x80
	SIQueue   = -1
	SITimer   = -2
	SIMesgq   = -3
	SIAsyncIO = -4
	SISigio   = -5
	SITkill   = -6
)

// CodeName names an si_code for sig: "SI_USER", "SI_KERNEL", "SI_TKILL",
// "SEGV_MAPERR"; "si_code N" for one it does not know.
func CodeName(sig, code int) string {
	switch code {
	case SIUser:
		return "SI_USER"
	case SIKernel:
		return "SI_KERNEL"
	case SIQueue:
		return "SI_QUEUE"
	case SITimer:
		return "SI_TIMER"
	case SIMesgq:
		return "SI_MESGQ"
	case SIAsyncIO:
		return "SI_ASYNCIO"
	case SISigio:
		return "SI_SIGIO"
	case SITkill:
		return "SI_TKILL"
	}
	// Fault codes are numbered per signal.
	perSignal := map[int][]string{
		4:  {"ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC", "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK"},
		7:  {"BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR", "BUS_MCEERR_AO"},
		8:  {"FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND", "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB"},
		11: {"SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR"},
		31: {"SYS_SECCOMP"},
	}
	if names := perSignal[sig]; code >= 1 && code <= len(names) {
		return names[code-1]
	}
	return "si_code " + strconv.Itoa(code)
}

// FromKernel reports whether the kernel generated a signal with this
// si_code (a fault, the OOM killer, an rlimit) rather than a process
// calling kill, tgkill, rt_sigqueueinfo or pidfd_send_signal.
func FromKernel(code int) bool { return code > 0 }

// LiveCgroup is a path from /proc/PID/cgroup without the " (deleted)"
// the kernel appends once the cgroup is removed: systemd removes a scope
// the moment its last process exits, while that process is a zombie
// still, and the path is then still the box's.
func LiveCgroup(path string) string { return strings.TrimSuffix(path, " (deleted)") }

// BoxOf is the path of the box that cgroup path is in (itself or an
// ancestor), "" when it is in none.
func BoxOf(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		name := strings.TrimSuffix(p, ".scope")
		rest, ok := strings.CutPrefix(name, "boxrun-")
		if !ok {
			continue
		}
		dash := strings.LastIndexByte(rest, '-')
		if dash <= 0 || !isHex8(rest[dash+1:]) {
			continue
		}
		return strings.Join(parts[:i+1], "/")
	}
	return ""
}

func isHex8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// UnitOf is the innermost systemd unit a cgroup path names
// ("app-foo.scope", "user@1000.service"), "" when none.
func UnitOf(path string) string {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		for _, suf := range []string{".scope", ".service"} {
			if strings.HasSuffix(p, suf) && len(p) > len(suf) {
				return p
			}
		}
	}
	return ""
}
