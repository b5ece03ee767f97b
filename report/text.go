package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SparkWidth is the number of characters of the memory sparkline.
const SparkWidth = 20

// maxDetails bounds the detail lines printed under one diagnosis.
const maxDetails = 8

// Text writes the report block boxrun prints on stderr after the command:
//
//	boxrun: tests · 3m12s · exit 101
//	  memory  peak 7.9G of max 12G · throttled above high 8G: 1,204 times ▁▂▃▅▇▇█▆▃▁
//	  pids    peak 412 of 4096
//	  cpu     11m03s user+sys (3.4 cores avg)
//	  ✗ the kernel's OOM killer killed 2 processes in this box at memory.max=12G — ...
//	      pid 48211 bkt (6.1G, from the kernel log)
//
// The first line carries boxrun's "boxrun: " prefix; the lines under it are
// indented. Without a box (backend none) only the header and the diagnosis
// are written. color adds ANSI colours (bold header, red ✗, yellow !).
func Text(w io.Writer, r *Run, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	var b strings.Builder
	wall := time.Duration(r.WallSeconds * float64(time.Second))
	status := "exit unknown" // nobody saw the command end (see Run.ExitCode)
	switch {
	case r.Signal != "":
		status = "killed by " + r.Signal
	case r.ExitCode != nil:
		status = fmt.Sprintf("exit %d", *r.ExitCode)
	}
	name := r.Policy.Name
	if name == "" {
		name = "(no policy)"
	}
	b.WriteString("boxrun: " + paint("1", name+" · "+FormatDuration(wall)+" · "+status) + "\n")

	if r.Cgroup != "" {
		b.WriteString("  memory  " + memoryLine(r) + "\n")
		b.WriteString("  pids    " + pidsLine(r) + "\n")
		b.WriteString("  cpu     " + cpuLine(r, wall) + "\n")
		if line := commandsLine(r.Commands); line != "" {
			b.WriteString("  largest " + line + "\n")
		}
	}
	if r.Backpressure != nil {
		b.WriteString("  " + backpressureLine(r.Backpressure, r.Memory.Events.OOMKill, r.Interrupted) + "\n")
	}
	for _, d := range r.Diagnosis {
		mark := paint("33", "!")
		if d.Severity == SeverityError {
			mark = paint("31", "✗")
		}
		b.WriteString("  " + mark + " " + d.Message + "\n")
		for i, det := range d.Details {
			if i == maxDetails && len(d.Details) > maxDetails+1 {
				fmt.Fprintf(&b, "      … and %d more\n", len(d.Details)-maxDetails)
				break
			}
			b.WriteString("      " + det + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func memoryLine(r *Run) string {
	m := r.Memory
	s := "peak " + FormatSize(m.PeakBytes)
	if m.PeakSource == PeakNone {
		s = "peak unknown"
	}
	if m.PeakSource == PeakSamples {
		s += " (sampled)"
	}
	if r.Policy.MemoryMax != nil {
		s += " of max " + FormatSize(*r.Policy.MemoryMax)
	} else {
		s += " (no memory.max)"
	}
	if h := r.Policy.MemoryHigh; h != nil {
		if m.Events.High > 0 {
			s += fmt.Sprintf(" · throttled above high %s: %s", FormatSize(*h), times(m.Events.High))
		} else {
			s += " · high " + FormatSize(*h)
		}
	}
	if m.Events.OOMKill > 0 {
		s += " · " + plural(m.Events.OOMKill, "OOM kill", "OOM kills")
	}
	values := make([]uint64, len(r.Samples))
	for i, x := range r.Samples {
		values[i] = x.MemoryBytes
	}
	if sp := Sparkline(values, SparkWidth); sp != "" {
		s += " " + sp
	}
	return s
}

func pidsLine(r *Run) string {
	s := "peak " + strconv.FormatUint(r.Pids.Peak, 10)
	if r.Pids.PeakSource == PeakNone {
		s = "peak unknown"
	}
	if r.Pids.PeakSource == PeakSamples {
		s += " (sampled)"
	}
	if r.Policy.PidsMax != nil {
		s += " of " + strconv.FormatUint(*r.Policy.PidsMax, 10)
	}
	if r.Pids.EventsMax > 0 {
		s += " · " + plural(r.Pids.EventsMax, "fork refused", "forks refused")
	}
	return s
}

func cpuLine(r *Run, wall time.Duration) string {
	if r.CPU == nil {
		return "unknown"
	}
	usage := time.Duration(r.CPU.UsageUSec) * time.Microsecond
	s := FormatDuration(usage) + " user+sys"
	if wall > 0 {
		s += fmt.Sprintf(" (%.1f cores avg)", usage.Seconds()/wall.Seconds())
	}
	if r.CPU.ThrottledUSec > 0 {
		s += " · held back " + FormatDuration(time.Duration(r.CPU.ThrottledUSec)*time.Microsecond) + " by cpu.max"
	}
	return s
}

// backpressureLine says what pausing did, why, what it cost others, and
// whether it spared the box an OOM kill.
func backpressureLine(bp *Backpressure, oomKills uint64, interrupted string) string {
	secs := func(f float64) string { return FormatDuration(time.Duration(f * float64(time.Second))) }
	var s string
	if bp.Paused == 0 {
		s = "backpressure paused nothing"
	} else {
		s = fmt.Sprintf("backpressure paused %s (longest %s because %s; %s in total), at most %d ran at once",
			plural(uint64(bp.Paused), "process", "processes"), secs(bp.MaxPauseSeconds), bp.MaxPauseReason, secs(bp.PausedSeconds), bp.MaxRunning)
	}
	if bp.ForcedResumes > 0 {
		var why []string
		for _, f := range bp.Forced {
			why = append(why, fmt.Sprintf("%d because %s", f.Count, f.Reason))
		}
		s += fmt.Sprintf(", %d resumed to keep the run going (%s)", bp.ForcedResumes, strings.Join(why, ", "))
	}
	if bp.BlockedSeconds >= 0.05 {
		s += fmt.Sprintf("; others waited %s on paused ones", secs(bp.BlockedSeconds))
	}
	if bp.Method == "SIGSTOP" && bp.Paused > 0 {
		s += "; paused with SIGSTOP"
		if bp.Restopped > 0 {
			s += fmt.Sprintf(", %d stopped again after job control resumed them", bp.Restopped)
		}
	}
	if bp.PausedAtEnd > 0 && interrupted != "" {
		s += fmt.Sprintf("; %s paused when boxrun was interrupted by %s, and resumed", plural(uint64(bp.PausedAtEnd), "process was", "processes were"), interrupted)
	}
	if bp.ThrottleLifted > 0 {
		s += fmt.Sprintf("; memory.high raised toward memory.max %s: the box was stuck at it with nothing exiting, the running processes throttled and the paused ones holding their memory", times(uint64(bp.ThrottleLifted)))
	}
	if bp.Sizes != "" && bp.Paused > 0 {
		s += "; sizes " + bp.Sizes
	}
	if oomKills == 0 {
		return s + "; no OOM kill was needed"
	}
	return s + fmt.Sprintf("; %s happened anyway", plural(oomKills, "OOM kill", "OOM kills"))
}

// textCommands is how many command names the text report shows.
const textCommands = 3

// commandsLine names the command names whose processes held the most, with
// their peak (and, for several processes, how many and their typical
// peak); "" when none were seen.
func commandsLine(cs []CommandUse) string {
	var parts []string
	for i, c := range cs {
		if i == textCommands {
			break
		}
		p := c.Comm + " " + FormatSize(c.PeakBytes)
		if c.Processes > 1 {
			p += fmt.Sprintf(" (%d, typical %s)", c.Processes, FormatSize(c.TypicalBytes))
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " · ")
}
