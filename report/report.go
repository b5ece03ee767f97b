// Package report explains one boxrun run from the kernel's evidence: the
// short block boxrun prints on stderr after the command exits, the JSON
// document of --report-json, and the diagnosis — one plain sentence for each
// bad thing that happened (an OOM kill, a refused fork, throttling, a
// SIGKILL from elsewhere), naming its cause and its fix.
//
// The package is pure: it formats and judges a Run and never reads the
// system. cmd/boxrun fills a Run from observe.Stats, box.Result and the
// resolved policy; report/schema.json describes the JSON, and a test holds
// the two together.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Run is everything the report shows about one run. Byte counts are bytes,
// times are microseconds or seconds as the field names say.
type Run struct {
	// Policy is the policy's name and resolved limits.
	Policy Policy `json:"policy"`
	// Unit is the systemd scope, "" without systemd (JSON null).
	Unit string `json:"unit"`
	// Cgroup is the box's cgroup path, "" without a box (JSON null).
	Cgroup string `json:"cgroup"`
	// Backend is "systemd", "cgroupfs" or "none".
	Backend string `json:"backend"`
	// Kernel is the release of the kernel the run ran on (uname -r), ""
	// when unknown (JSON null).
	Kernel string `json:"kernel"`
	// Systemd is the version of the systemd manager that made the box, as
	// it says it ("252.39-1~deb12u1"); "" without systemd, or when it did
	// not say (a post-mortem: boxrun asks once the command has exited)
	// (JSON null).
	Systemd string `json:"systemd"`
	// Enforced is false when no limit of the policy was in force (backend
	// none): then the memory, pids and cpu figures were not measured.
	Enforced bool `json:"enforced"`
	// Command is the command's argv.
	Command []string `json:"command"`
	// PID is the command's process id.
	PID int `json:"pid"`
	// ExitCode is the command's status as a shell reports it (128+N for
	// death by signal N), also when boxrun then dies of that signal itself
	// (SIGINT, SIGTERM, SIGHUP) rather than exiting with it; nil when
	// nobody saw the command end (JSON null): a post-mortem whose guard
	// found the box empty, the command gone with boxrun.
	ExitCode *int `json:"exit_code"`
	// Signal is the name of the signal that killed the command ("SIGKILL"),
	// "" when it exited (JSON null).
	Signal string `json:"signal"`
	// Interrupted is the name of the signal that interrupted boxrun itself
	// while the command ran ("SIGTERM" from timeout, SIGINT from Ctrl-C),
	// "" when none did (JSON null).
	Interrupted string `json:"interrupted"`
	// WallSeconds is how long the command ran.
	WallSeconds float64 `json:"wall_seconds"`
	// Memory is the box's memory peak and memory.events.
	Memory Memory `json:"memory"`
	// Pids is the box's process peak and pids.events.
	Pids Pids `json:"pids"`
	// CPU is the box's cpu.stat, nil when it could not be read (JSON
	// null): a post-mortem whose box was gone when its guard looked.
	CPU *CPU `json:"cpu"`
	// Samples are memory.current and pids.current over the run.
	Samples []Sample `json:"samples"`
	// OOMVictims are the processes the OOM killer killed during the run:
	// inside the box or not as far as the kernel log said, and, where it
	// could not be read or said less, the box's processes that left it at
	// the kill (see OOMVictim.Certainty).
	OOMVictims []OOMVictim `json:"oom_victims"`
	// OutsideOOMKills counts processes outside the box that the OOM killer
	// killed during the run.
	OutsideOOMKills uint64 `json:"outside_oom_kills"`
	// KernelLogRead says whether the kernel log could be read; without it
	// OOM victims cannot be named, only counted.
	KernelLogRead bool `json:"kernel_log_read"`
	// Leftovers are the processes still in the box when the command exited.
	Leftovers []Leftover `json:"leftovers"`
	// LeftoversKilled says whether boxrun killed them (leftovers = "kill").
	LeftoversKilled bool `json:"leftovers_killed"`
	// Diagnosis is what went wrong, worst first; see Diagnose.
	Diagnosis []Diagnosis `json:"diagnosis"`
	// Backpressure is what pausing processes near memory.max did, nil when
	// backpressure was off.
	Backpressure *Backpressure `json:"backpressure"`
	// Notes say which figures are missing or estimated, and why.
	Notes []string `json:"notes"`
	// BoxrunKilled is set when boxrun itself died before the command
	// finished and its guard wrote this report (a post-mortem); nil for a
	// run boxrun saw to its end.
	BoxrunKilled *BoxrunKilled `json:"boxrun_killed"`
	// Commands are the command names of the box's processes, the largest
	// peak first: which of the suite's processes needed what.
	Commands []CommandUse `json:"commands"`
	// Signals are the fatal signals sent to processes of the box during
	// the run, with their senders, as the signal tracer recorded them (see
	// signals.go); SignalTracer says whether a tracer records for this user.
	Signals      []Signal `json:"signals"`
	SignalTracer bool     `json:"signal_tracer"`
}

// CommandUse is what the processes of one command name used in the run, as
// boxrun's samples of the box's processes saw them (a process that lived
// between two samples is not counted).
type CommandUse struct {
	Comm string `json:"comm"`
	// Processes counts the processes of that name seen.
	Processes int `json:"processes"`
	// PeakBytes is the largest resident size one of them reached,
	// TypicalBytes the median of their peaks.
	PeakBytes    uint64 `json:"peak_bytes"`
	TypicalBytes uint64 `json:"typical_bytes"`
	// CPUSeconds is the CPU time they used, up to the last sample of each.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// BoxrunKilled is how a run ended whose boxrun died before its command did.
type BoxrunKilled struct {
	// Signal is the signal boxrun died of ("SIGKILL"), "" when its exit
	// status was gone before the guard could read it (JSON null).
	Signal string `json:"-"`
	// ProcessesKilled counts the processes the guard found in the box and
	// killed (they are the report's leftovers).
	ProcessesKilled int `json:"processes_killed"`
	// At is when the guard found boxrun gone, in seconds since the run
	// started.
	AtSeconds float64 `json:"at_seconds"`
	// By is the signal tracer's record of the signal that killed boxrun
	// (who sent it), nil when no tracer recorded one (JSON null).
	By *Signal `json:"by"`
}

// MarshalJSON writes an unknown signal as null.
func (b BoxrunKilled) MarshalJSON() ([]byte, error) {
	var sig *string
	if b.Signal != "" {
		sig = &b.Signal
	}
	return json.Marshal(struct {
		Signal          *string `json:"signal"`
		ProcessesKilled int     `json:"processes_killed"`
		AtSeconds       float64 `json:"at_seconds"`
		By              *Signal `json:"by"`
	}{sig, b.ProcessesKilled, round3(b.AtSeconds), b.By})
}

// Policy is the policy a run used, with limits in bytes; a nil limit means
// none (not set, or "max").
type Policy struct {
	Name          string  `json:"name"`
	MemoryHigh    *uint64 `json:"memory_high"`
	MemoryMax     *uint64 `json:"memory_max"`
	MemorySwapMax *uint64 `json:"memory_swap_max"`
	// MemoryOOMGroup is memory.oom_group: one OOM kill takes the whole box.
	MemoryOOMGroup bool    `json:"memory_oom_group"`
	PidsMax        *uint64 `json:"pids_max"`
	CPUWeight      *uint64 `json:"cpu_weight"`
	// CPUMaxUSecPerSec is cpu.max as CPU time per second of wall time
	// ("400%" is 4000000).
	CPUMaxUSecPerSec *uint64 `json:"cpu_max_usec_per_sec"`
	IOWeight         *uint64 `json:"io_weight"`
	OOMScoreAdj      *int    `json:"oom_score_adj"`
}

// Memory is the box's memory figures.
type Memory struct {
	// PeakBytes is the highest memory use of the box.
	PeakBytes uint64 `json:"peak_bytes"`
	// PeakSource is PeakMemoryPeak, PeakSamples, or PeakNone when nothing
	// was measured (no box).
	PeakSource string `json:"peak_source"`
	// Events are the box's memory.events counters.
	Events MemoryEvents `json:"events"`
	// EventsUnknown says memory.events was never read (no box, or a box
	// gone before its post-mortem): JSON shows null, not zeros.
	EventsUnknown bool `json:"-"`
}

// Values of Memory.PeakSource and Pids.PeakSource.
const (
	PeakMemoryPeak = "memory.peak" // the kernel's high-water mark (Linux 5.19+)
	PeakPidsPeak   = "pids.peak"   // the kernel's high-water mark of pids
	PeakSamples    = "samples"     // the highest sample
	PeakNone       = "none"        // nothing was measured
)

// MemoryEvents are the counters of memory.events.
type MemoryEvents struct {
	Low          uint64 `json:"low"`
	High         uint64 `json:"high"`
	Max          uint64 `json:"max"`
	OOM          uint64 `json:"oom"`
	OOMKill      uint64 `json:"oom_kill"`
	OOMGroupKill uint64 `json:"oom_group_kill"`
}

// Pids is the box's process-count figures.
type Pids struct {
	// Peak is the highest number of processes in the box.
	Peak uint64 `json:"peak"`
	// PeakSource is PeakPidsPeak, PeakSamples or PeakNone.
	PeakSource string `json:"peak_source"`
	// EventsMax counts forks refused at pids.max (pids.events max).
	EventsMax uint64 `json:"events_max"`
	// EventsUnknown says pids.events was never read: JSON shows null.
	EventsUnknown bool `json:"-"`
}

// memoryJSON and pidsJSON are Memory and Pids as written to JSON, with
// null for counters never read.
type memoryJSON struct {
	PeakBytes  uint64        `json:"peak_bytes"`
	PeakSource string        `json:"peak_source"`
	Events     *MemoryEvents `json:"events"`
}

type pidsJSON struct {
	Peak       uint64  `json:"peak"`
	PeakSource string  `json:"peak_source"`
	EventsMax  *uint64 `json:"events_max"`
}

func (m Memory) toJSON() memoryJSON {
	j := memoryJSON{PeakBytes: m.PeakBytes, PeakSource: m.PeakSource}
	if !m.EventsUnknown {
		j.Events = &m.Events
	}
	return j
}

func (p Pids) toJSON() pidsJSON {
	j := pidsJSON{Peak: p.Peak, PeakSource: p.PeakSource}
	if !p.EventsUnknown {
		j.EventsMax = &p.EventsMax
	}
	return j
}

// CPU is the box's cpu.stat, in microseconds.
type CPU struct {
	UsageUSec     uint64 `json:"usage_usec"`
	UserUSec      uint64 `json:"user_usec"`
	SystemUSec    uint64 `json:"system_usec"`
	ThrottledUSec uint64 `json:"throttled_usec"`
	NrThrottled   uint64 `json:"nr_throttled"`
}

// Sample is one reading of the box.
type Sample struct {
	// T is the time since the command started, in seconds.
	T           float64 `json:"t"`
	MemoryBytes uint64  `json:"memory_bytes"`
	Pids        uint64  `json:"pids"`
}

// OOMVictim is one process killed by the OOM killer.
type OOMVictim struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// RSSBytes is the victim's anonymous resident memory (anon-rss) as the
	// kernel log said, or, for a victim named from boxrun's samples, its
	// resident size when last sampled.
	RSSBytes uint64 `json:"rss_bytes"`
	// InsideBox says the victim was a process of the box.
	InsideBox bool `json:"inside_box"`
	// Global says the system-wide OOM killer chose it: the machine ran out
	// of memory, not a cgroup's limit.
	Global bool `json:"global"`
	// Cgroup is the victim's memory cgroup, "" when the log did not say.
	Cgroup string `json:"cgroup"`
	// LimitCgroup is the cgroup whose limit the kill was for: the box, or
	// one around it (the slice of boxes); "" for the system-wide killer or
	// when the log did not say.
	LimitCgroup string `json:"limit_cgroup"`
	// Certainty says how sure the naming is: CertaintyKernelLog,
	// CertaintySignalTracer, CertaintyVanished or CertaintyLikely.
	Certainty string `json:"certainty"`
}

// Values of OOMVictim.Certainty, surest first.
const (
	// CertaintyKernelLog: the kernel log named the victim.
	CertaintyKernelLog = "kernel log"
	// CertaintySignalTracer: the signal tracer saw the kernel send it
	// SIGKILL (SI_KERNEL) while the box counted OOM kills.
	CertaintySignalTracer = "signal tracer"
	// CertaintyVanished: when the box's oom_kill count rose, exactly as
	// many of its processes left it (or died by SIGKILL) as were killed.
	CertaintyVanished = "vanished at the kill"
	// CertaintyLikely: more processes left the box than were killed; the
	// victim is the one that held the most memory, as the OOM killer
	// picks.
	CertaintyLikely = "likely"
)

// Leftover is a process still in the box when the command exited.
type Leftover struct {
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Cmdline string `json:"cmdline"`
}

// Backpressure is what boxrun's backpressure did during the run: it pauses
// growing processes of the box whose growth does not fit and resumes them as
// soon as it does.
type Backpressure struct {
	// Paused and Resumed count pauses and resumptions of processes.
	Paused  int
	Resumed int
	// PausedSeconds is the time processes spent paused, summed;
	// MaxPauseSeconds is the longest single pause, and MaxPauseReason why
	// that process was paused.
	PausedSeconds, MaxPauseSeconds float64
	MaxPauseReason                 string
	// MaxRunning is the most processes that ran unpaused at once.
	MaxRunning int
	// ForcedResumes counts resumptions made to keep the run going;
	// Forced says why, most frequent first.
	ForcedResumes int
	Forced        []ForcedResume
	// Reasons are the pauses by reason, most frequent first.
	Reasons []PauseReason
	// BlockedSeconds is how long unpaused processes were held up by
	// paused ones, summed over processes: waiting for a lock a paused one
	// holds, or, when the box stalled with processes paused until one was
	// resumed to keep it going, the stall for each process left running.
	// Zero is the goal.
	BlockedSeconds float64
	// Method is how processes were paused: "freezer" (the cgroup v2
	// freezer) or "SIGSTOP".
	Method string
	// Restopped counts paused processes that job control resumed behind
	// boxrun's back and that were stopped again (SIGSTOP only).
	Restopped int
	// PausedAtEnd counts processes still paused when the command exited or
	// boxrun was interrupted; they were resumed then.
	PausedAtEnd int
	// ThrottleLifted counts the times memory.high was lifted to memory.max
	// because the box was stuck at it: everything running throttled or
	// paused, nothing able to free memory but a kill.
	ThrottleLifted int
	// Sizes says where the expected sizes of the processes came from:
	// "learned in this run", or "from the last run of this project
	// (FILE), then learned in this run"; when sizes are not kept between
	// runs, why, in parentheses.
	Sizes string
}

// PauseReason is how often processes were paused for one reason, and for
// how long.
type PauseReason struct {
	Reason     string  `json:"reason"`
	Count      int     `json:"count"`
	Seconds    float64 `json:"seconds"`
	MaxSeconds float64 `json:"max_seconds"`
}

// ForcedResume is how often a paused process was resumed for one reason
// to keep the run going.
type ForcedResume struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// backpressureJSON gives Backpressure's fields their JSON names.
type backpressureJSON struct {
	Paused          int            `json:"paused"`
	Resumed         int            `json:"resumed"`
	PausedSeconds   float64        `json:"paused_seconds"`
	MaxPauseSeconds float64        `json:"max_pause_seconds"`
	MaxPauseReason  *string        `json:"max_pause_reason"`
	MaxRunning      int            `json:"max_running"`
	ForcedResumes   int            `json:"forced_resumes"`
	Forced          []ForcedResume `json:"forced"`
	Reasons         []PauseReason  `json:"reasons"`
	BlockedSeconds  float64        `json:"blocked_seconds"`
	Method          string         `json:"method"`
	Restopped       int            `json:"restopped"`
	PausedAtEnd     int            `json:"paused_at_end"`
	ThrottleLifted  int            `json:"throttle_lifted"`
	Sizes           string         `json:"sizes"`
}

// MarshalJSON writes the snake_case field names of the JSON schema.
func (b Backpressure) MarshalJSON() ([]byte, error) {
	reasons := orEmpty(b.Reasons)
	for i := range reasons {
		reasons[i].Seconds, reasons[i].MaxSeconds = round3(reasons[i].Seconds), round3(reasons[i].MaxSeconds)
	}
	var why *string
	if b.MaxPauseReason != "" {
		why = &b.MaxPauseReason
	}
	return json.Marshal(backpressureJSON{
		Paused: b.Paused, Resumed: b.Resumed,
		PausedSeconds: round3(b.PausedSeconds), MaxPauseSeconds: round3(b.MaxPauseSeconds), MaxPauseReason: why,
		MaxRunning: b.MaxRunning, ForcedResumes: b.ForcedResumes, Forced: orEmpty(b.Forced), Reasons: reasons,
		BlockedSeconds: round3(b.BlockedSeconds), Method: b.Method, Restopped: b.Restopped, PausedAtEnd: b.PausedAtEnd,
		ThrottleLifted: b.ThrottleLifted, Sizes: b.Sizes,
	})
}

// Diagnosis is one bad thing that happened, as one plain sentence.
type Diagnosis struct {
	// Kind names the finding for programs; see the Kind constants.
	Kind string `json:"kind"`
	// Severity is SeverityError (something was killed or refused) or
	// SeverityWarning.
	Severity string `json:"severity"`
	// Message names the cause and the fix, lowercase, without a final
	// period.
	Message string `json:"message"`
	// Details are items the message refers to (victims, leftovers), one
	// line each.
	Details []string `json:"details"`
}

// Diagnosis severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Diagnosis kinds.
const (
	// KindOOMKill: the box reached its memory.max and the OOM killer killed
	// processes in it.
	KindOOMKill = "oom_kill"
	// KindOOMKillGlobal: processes of the box were OOM-killed although the
	// box stayed under its own limit: the machine (or an enclosing cgroup)
	// ran out of memory.
	KindOOMKillGlobal = "oom_kill_global"
	// KindOOMKillOutside: the OOM killer killed processes outside the box
	// during the run (the editor, often).
	KindOOMKillOutside = "oom_kill_outside"
	// KindSigkill: the command died by SIGKILL and the OOM killer did not
	// send it.
	KindSigkill = "sigkill"
	// KindForkFailed: forks were refused at pids.max.
	KindForkFailed = "fork_failed"
	// KindMemoryHigh: the box went above memory.high and was throttled.
	KindMemoryHigh = "memory_high"
	// KindLeftovers: processes outlived the command.
	KindLeftovers = "leftovers"
	// KindBoxrunKilled: boxrun itself died before the command finished;
	// its guard killed what was left in the box and wrote the report.
	KindBoxrunKilled = "boxrun_killed"
)

// Failed reports whether the run needs the user's attention even with -q:
// something was killed or refused.
func (r *Run) Failed() bool {
	for _, d := range r.Diagnosis {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// runJSON is Run as written to JSON: the same fields in the same order
// (a test holds them together), with null for empty optional strings.
type runJSON struct {
	Policy          Policy        `json:"policy"`
	Unit            *string       `json:"unit"`
	Cgroup          *string       `json:"cgroup"`
	Backend         string        `json:"backend"`
	Kernel          *string       `json:"kernel"`
	Systemd         *string       `json:"systemd"`
	Enforced        bool          `json:"enforced"`
	Command         []string      `json:"command"`
	PID             *int          `json:"pid"`
	ExitCode        *int          `json:"exit_code"`
	Signal          *string       `json:"signal"`
	Interrupted     *string       `json:"interrupted"`
	WallSeconds     float64       `json:"wall_seconds"`
	Memory          memoryJSON    `json:"memory"`
	Pids            pidsJSON      `json:"pids"`
	CPU             *CPU          `json:"cpu"`
	Samples         []Sample      `json:"samples"`
	OOMVictims      []OOMVictim   `json:"oom_victims"`
	OutsideOOMKills uint64        `json:"outside_oom_kills"`
	KernelLogRead   bool          `json:"kernel_log_read"`
	Leftovers       []Leftover    `json:"leftovers"`
	LeftoversKilled bool          `json:"leftovers_killed"`
	Diagnosis       []Diagnosis   `json:"diagnosis"`
	Backpressure    *Backpressure `json:"backpressure"`
	Notes           []string      `json:"notes"`
	BoxrunKilled    *BoxrunKilled `json:"boxrun_killed"`
	Commands        []CommandUse  `json:"commands"`
	Signals         []Signal      `json:"signals"`
	SignalTracer    bool          `json:"signal_tracer"`
}

// JSON writes r as one JSON object (see report/schema.json and the README):
// empty unit, cgroup, kernel, systemd and signal become null, an unknown
// pid (0), exit code, cpu.stat and events counters too, missing lists [].
func JSON(w io.Writer, r *Run) error {
	nullable := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	j := runJSON{
		Policy: r.Policy, Unit: nullable(r.Unit), Cgroup: nullable(r.Cgroup), Backend: r.Backend,
		Kernel: nullable(r.Kernel), Systemd: nullable(r.Systemd), Enforced: r.Enforced,
		Command: orEmpty(r.Command), PID: nullableInt(r.PID), ExitCode: r.ExitCode, Signal: nullable(r.Signal), Interrupted: nullable(r.Interrupted),
		WallSeconds: round3(r.WallSeconds), Memory: r.Memory.toJSON(), Pids: r.Pids.toJSON(), CPU: r.CPU,
		Samples: orEmpty(r.Samples), OOMVictims: orEmpty(r.OOMVictims), OutsideOOMKills: r.OutsideOOMKills,
		KernelLogRead: r.KernelLogRead, Leftovers: orEmpty(r.Leftovers), LeftoversKilled: r.LeftoversKilled,
		Diagnosis: orEmpty(r.Diagnosis), Backpressure: r.Backpressure, Notes: orEmpty(r.Notes), BoxrunKilled: r.BoxrunKilled,
		Commands: orEmpty(r.Commands),
	}
	for i := range j.Commands {
		j.Commands[i].CPUSeconds = round3(j.Commands[i].CPUSeconds)
	}
	j.Signals, j.SignalTracer = orEmpty(r.Signals), r.SignalTracer
	for i := range j.Samples {
		j.Samples[i].T = round3(j.Samples[i].T)
	}
	for i := range j.Diagnosis {
		j.Diagnosis[i].Details = orEmpty(j.Diagnosis[i].Details)
	}
	for _, s := range []*string{&j.Memory.PeakSource, &j.Pids.PeakSource} {
		if *s == "" {
			*s = PeakNone
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}

// nullableInt is nil for 0 (a pid never known), else a pointer to v.
func nullableInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

// orEmpty returns a copy of s that is never nil, so JSON shows [].
func orEmpty[T any](s []T) []T {
	return append(make([]T, 0, len(s)), s...)
}

// round3 rounds to milliseconds, and maps values JSON cannot hold to 0.
func round3(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*1000) / 1000
}
