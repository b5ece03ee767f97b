package procfs

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Status is what boxrun reads of /proc/PID/status.
type Status struct {
	// UID and EUID are the real and effective user ids (the Uid line);
	// -1 when the line is missing or does not parse.
	UID, EUID int
	// CapEff is the effective capability set (the CapEff line, a bit per
	// capability); 0 when missing.
	CapEff uint64
	// Threads is the number of threads (the Threads line); 0 when
	// missing.
	Threads int
	// RSS is the resident set in bytes (the VmRSS line, in kB there); 0
	// when missing, as for a kernel thread or a zombie.
	RSS uint64
	// HWM is the peak resident set in bytes (the VmHWM line); 0 when
	// missing.
	HWM uint64
}

// ParseStatus parses the text of /proc/PID/status: "Key:\tvalue" lines.
// A field whose line is missing or does not parse keeps the value its doc
// gives for missing; the first good line of a key counts.
func ParseStatus(s string) Status {
	st := Status{UID: -1, EUID: -1}
	var seenUID, seenCap, seenThreads, seenRSS, seenHWM bool
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch key {
		case "Uid":
			if seenUID || len(f) < 2 {
				continue
			}
			u, err1 := strconv.Atoi(f[0])
			e, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				st.UID, st.EUID, seenUID = u, e, true
			}
		case "CapEff":
			if n, err := strconv.ParseUint(f[0], 16, 64); err == nil && !seenCap {
				st.CapEff, seenCap = n, true
			}
		case "Threads":
			if n, err := strconv.Atoi(f[0]); err == nil && !seenThreads {
				st.Threads, seenThreads = n, true
			}
		case "VmRSS":
			if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil && !seenRSS {
				st.RSS, seenRSS = kb*1024, true
			}
		case "VmHWM":
			if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil && !seenHWM {
				st.HWM, seenHWM = kb*1024, true
			}
		}
	}
	return st
}

// ReadStatus reads /proc/PID/status of the running system.
func ReadStatus(pid int) (Status, error) { return ReadStatusFS(os.DirFS("/proc"), pid) }

// ReadStatusFS reads PID/status from a proc file system rooted at its
// mount (os.DirFS("/proc"), or a fixture).
func ReadStatusFS(fsys fs.FS, pid int) (Status, error) {
	b, err := fs.ReadFile(fsys, strconv.Itoa(pid)+"/status")
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(string(b)), nil
}
