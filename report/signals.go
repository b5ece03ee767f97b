package report

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Signal is a fatal signal sent to a process of the box during the run,
// with who sent it, as boxrun's signal tracer (boxrun-signals.service)
// recorded it.
type Signal struct {
	// PID and Comm are the process the signal was sent to.
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Signal is its name ("SIGKILL"); Code the si_code's name ("SI_USER",
	// "SI_KERNEL", "SI_TKILL"); Kernel says the kernel generated it (the
	// OOM killer, a fault, an rlimit) rather than a process.
	Signal string `json:"signal"`
	Code   string `json:"code"`
	Kernel bool   `json:"kernel"`
	// Sender is the process that sent it, or for a signal of the kernel's
	// the task it was generated in.
	Sender Sender `json:"sender"`
}

// Sender is the process that sent a signal.
type Sender struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// UID is its real uid.
	UID int `json:"uid"`
	// Cgroup is its cgroup, Unit the systemd unit that cgroup is in; ""
	// when unknown or none (JSON null).
	Cgroup string `json:"cgroup"`
	Unit   string `json:"unit"`
}

// KindSignal: a process of the box was sent a fatal signal; the message
// names the sender.
const KindSignal = "signal"

// TracerHint is what the report says when a signal killed the command and
// no tracer recorded who sent it.
const TracerHint = "to name who sends such signals, run sudo boxrun install signal-tracer once"

// describeSender says who sent s: "from pid 1234 (timeout), uid 1000, in
// app-foo.scope", or "from the kernel (the OOM killer, or another kernel
// kill), in the context of pid 77 (cc1plus)". oomVictim says the report
// names s's target among the box's OOM victims: a kernel SIGKILL to it is
// the OOM killer's ("from the kernel's OOM killer (SI_KERNEL), in the
// context of …").
func describeSender(s Signal, oomVictim bool) string {
	var b strings.Builder
	who := "pid " + strconv.Itoa(s.Sender.PID)
	if s.Sender.Comm != "" {
		who += " (" + s.Sender.Comm + ")"
	}
	if s.Kernel {
		b.WriteString("from the kernel")
		switch {
		case s.Signal == "SIGKILL" && s.Code == "SI_KERNEL" && oomVictim:
			b.WriteString("'s OOM killer (SI_KERNEL)")
		case s.Signal == "SIGKILL" && s.Code == "SI_KERNEL":
			b.WriteString(" (the OOM killer, or another kernel kill)")
		case s.Code != "SI_KERNEL":
			b.WriteString(" (" + s.Code + ")")
		}
		b.WriteString(", in the context of " + who)
		return b.String()
	}
	b.WriteString("from " + who)
	b.WriteString(", uid " + strconv.Itoa(s.Sender.UID))
	switch {
	case s.Sender.Unit != "":
		b.WriteString(", in " + s.Sender.Unit)
	case s.Sender.Cgroup != "":
		b.WriteString(", in cgroup " + s.Sender.Cgroup)
	}
	switch s.Code {
	case "SI_USER":
		b.WriteString(" (kill)")
	case "SI_TKILL":
		b.WriteString(" (tgkill)")
	case "SI_QUEUE":
		b.WriteString(" (sigqueue)")
	}
	return b.String()
}

// withSenders names senders in the diagnosis ds of r: the sigkill line
// names the process that sent the command its SIGKILL, or says how to
// have it named; a signal line lists the fatal signals other processes of
// the box were sent, and the command's death by another signal.
func withSenders(r *Run, ds []Diagnosis) []Diagnosis {
	cmd := commandName(r)
	// A kernel SIGKILL to a process the report names as the box's OOM
	// victim is the OOM killer's.
	victims := map[int]bool{}
	for _, v := range r.OOMVictims {
		if v.InsideBox {
			victims[v.PID] = true
		}
	}
	var own *Signal
	for i := range r.Signals {
		s := &r.Signals[i]
		if s.PID == r.PID && r.PID != 0 && s.Signal == r.Signal {
			// The first delivered one killed it.
			if own == nil {
				own = s
			}
		}
	}
	for i := range ds {
		if ds[i].Kind != KindSigkill {
			continue
		}
		switch {
		case own != nil:
			ds[i].Message = fmt.Sprintf("%s was killed by SIGKILL %s — not by the box's OOM killer", cmd, describeSender(*own, victims[own.PID]))
		case !r.SignalTracer:
			ds[i].Details = append(ds[i].Details, TracerHint)
		default:
			ds[i].Details = append(ds[i].Details, fmt.Sprintf("the signal tracer recorded no SIGKILL to pid %d", r.PID))
		}
	}
	var lines []string
	for _, s := range r.Signals {
		if s.PID == r.PID && s.Signal == "SIGKILL" && hasKind(ds, KindSigkill) {
			continue // said above
		}
		verb := "was sent " + s.Signal
		if s.Signal == "SIGKILL" {
			verb = "was killed by SIGKILL"
		}
		lines = append(lines, fmt.Sprintf("pid %d %s %s %s", s.PID, s.Comm, verb, describeSender(s, victims[s.PID])))
	}
	if len(lines) == 0 {
		return ds
	}
	d := Diagnosis{Kind: KindSignal, Severity: SeverityWarning}
	if len(lines) == 1 {
		d.Message = lines[0]
	} else {
		d.Message = fmt.Sprintf("%d fatal signals were sent to processes of the box", len(lines))
		d.Details = lines
	}
	return append(ds, d)
}

func hasKind(ds []Diagnosis, kind string) bool {
	for _, d := range ds {
		if d.Kind == kind {
			return true
		}
	}
	return false
}

// senderJSON is Sender with null for an unknown cgroup or unit.
type senderJSON struct {
	PID    int     `json:"pid"`
	Comm   string  `json:"comm"`
	UID    int     `json:"uid"`
	Cgroup *string `json:"cgroup"`
	Unit   *string `json:"unit"`
}

// MarshalJSON writes null for an unknown cgroup or unit.
func (s Sender) MarshalJSON() ([]byte, error) {
	orNull := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return json.Marshal(senderJSON{PID: s.PID, Comm: s.Comm, UID: s.UID, Cgroup: orNull(s.Cgroup), Unit: orNull(s.Unit)})
}
