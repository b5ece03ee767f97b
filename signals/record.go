package signals

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// The event the BPF program writes to the ring buffer for each traced
// signal, in the kernel's byte order; EventSize bytes.
const (
	evTime       = 0  // u64: bpf_ktime_get_ns, CLOCK_MONOTONIC
	evPidTgid    = 8  // u64: the sender's tgid<<32 | tid
	evUidGid     = 16 // u64: the sender's gid<<32 | uid
	evCgroup     = 24 // u64: the sender's cgroup id
	evSig        = 32 // s32: the signal
	evCode       = 36 // s32: si_code
	evPID        = 40 // s32: the target's pid (a thread id)
	evGroup      = 44 // s32: sent to the whole thread group
	evResult     = 48 // s32: TRACE_SIGNAL_*
	evTargetComm = 56 // [16]: the target's command
	evSenderComm = 72 // [16]: the sender's command
	EventSize    = 88
)

// Event is one signal as the BPF program saw it.
type Event struct {
	Monotonic time.Duration // when, on CLOCK_MONOTONIC
	Sig, Code int
	Group     bool
	Result    int
	Target    struct {
		PID  int
		Comm string
	}
	Sender struct {
		PID, TID int
		UID      int
		CgroupID uint64
		Comm     string
	}
}

// DecodeEvent reads one event of the ring buffer.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) < EventSize {
		return e, fmt.Errorf("an event of %d bytes, want %d", len(b), EventSize)
	}
	bo := binary.NativeEndian
	u64 := func(off int) uint64 { return bo.Uint64(b[off:]) }
	i32 := func(off int) int { return int(int32(bo.Uint32(b[off:]))) }
	comm := func(off int) string {
		c := b[off : off+16]
		if i := bytes.IndexByte(c, 0); i >= 0 {
			c = c[:i]
		}
		return string(c)
	}
	e.Monotonic = time.Duration(u64(evTime))
	e.Sig, e.Code, e.Group, e.Result = i32(evSig), i32(evCode), i32(evGroup) != 0, i32(evResult)
	e.Target.PID, e.Target.Comm = i32(evPID), comm(evTargetComm)
	pt := u64(evPidTgid)
	e.Sender.PID, e.Sender.TID = int(pt>>32), int(uint32(pt))
	e.Sender.UID = int(uint32(u64(evUidGid)))
	e.Sender.CgroupID = u64(evCgroup)
	e.Sender.Comm = comm(evSenderComm)
	return e, nil
}

// Results of signal generation (TRACE_SIGNAL_* in the kernel).
var results = []string{"delivered", "ignored", "already_pending", "overflow_fail", "lose_info"}

// ResultName names a TRACE_SIGNAL_* result.
func ResultName(r int) string {
	if r >= 0 && r < len(results) {
		return results[r]
	}
	return fmt.Sprintf("result %d", r)
}

// Process is the target or the sender of a signal.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// UID is the real uid, -1 when unknown.
	UID int `json:"uid"`
	// Cgroup is its cgroup below the cgroup2 mount, "" when unknown.
	Cgroup string `json:"cgroup"`
	// Unit is the systemd unit that cgroup is, or is in, "" when none.
	Unit string `json:"unit"`
}

// Record is one traced signal, as the tracer writes it: one JSON object a
// line in Dir(uid)/signals.jsonl.
type Record struct {
	Time   time.Time `json:"time"`
	Signal string    `json:"signal"` // "SIGKILL"
	Signo  int       `json:"signo"`
	// Code is si_code, CodeName its name; Kernel says the kernel generated
	// the signal (Code > 0) rather than a process.
	Code     int    `json:"si_code"`
	CodeName string `json:"code"`
	Kernel   bool   `json:"kernel"`
	// Group says it went to the whole thread group (kill) rather than one
	// thread (tgkill); Result is "delivered", "ignored", "already_pending".
	Group  bool    `json:"group"`
	Result string  `json:"result"`
	Target Process `json:"target"`
	// Sender is the process in whose context the signal was generated: the
	// one that called kill, or for a signal of the kernel's the task that
	// was running (the OOM killer runs in the allocating task).
	Sender Process `json:"sender"`
}

// NewRecord is the record of e at wall time t.
func NewRecord(e Event, t time.Time) Record {
	return Record{
		Time: t.UTC(), Signal: SignalName(e.Sig), Signo: e.Sig,
		Code: e.Code, CodeName: CodeName(e.Sig, e.Code), Kernel: FromKernel(e.Code),
		Group: e.Group, Result: ResultName(e.Result),
		Target: Process{PID: e.Target.PID, Comm: e.Target.Comm, UID: -1},
		Sender: Process{PID: e.Sender.PID, Comm: e.Sender.Comm, UID: e.Sender.UID},
	}
}

// ParseRecords reads records, one JSON object a line. A line that is not
// a record (cut short when the disk was full, or written by a newer
// tracer in a shape this boxrun cannot read) is skipped and counted.
func ParseRecords(r io.Reader) (recs []Record, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec Record
		if json.Unmarshal(line, &rec) != nil || rec.Signo == 0 {
			bad++
			continue
		}
		recs = append(recs, rec)
	}
	return recs, bad, sc.Err()
}
