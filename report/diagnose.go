package report

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Diagnose judges a run: one Diagnosis per bad thing that happened, each a
// plain sentence naming the cause and what to change, errors (something was
// killed or refused) before warnings. It reads every field of r except
// Diagnosis.
func Diagnose(r *Run) []Diagnosis {
	var errs, warns []Diagnosis
	cmd := commandName(r)
	pol := strconv.Quote(r.Policy.Name)
	measured := r.Cgroup != ""
	ev := r.Memory.Events

	var inside, outside []OOMVictim
	commandVictim := false
	for _, v := range r.OOMVictims {
		if v.InsideBox {
			inside = append(inside, v)
			commandVictim = commandVictim || v.PID == r.PID && r.PID != 0
		} else {
			outside = append(outside, v)
		}
	}
	sigkill := r.Signal == "SIGKILL"
	// The command died of an OOM kill unless the kernel log, read and
	// naming victims in the box, or boxrun's samples, naming a victim for
	// every kill without a guess, say it was someone else.
	explained := r.KernelLogRead && len(inside) > 0 || ev.OOMKill > 0 && surelyNamed(inside) >= ev.OOMKill
	commandOOM := sigkill && measured && ev.OOMKill > 0 && (commandVictim || !explained)

	if measured && ev.OOMKill > 0 {
		errs = append(errs, oomInBox(r, cmd, pol, commandOOM, inside))
	}
	// A run whose boxrun died: its guard sent the SIGKILL, and says so.
	if sigkill && !commandOOM && r.BoxrunKilled == nil {
		errs = append(errs, unexplainedSigkill(r, cmd, measured))
	}
	if measured && r.OutsideOOMKills > 0 {
		d := oomOutside(r, pol, outside)
		if d.Severity == SeverityError {
			errs = append(errs, d)
		} else {
			warns = append(warns, d)
		}
	}
	if measured && r.Pids.EventsMax > 0 {
		errs = append(errs, forkFailed(r, pol))
	}
	// With backpressure, memory.high is boxrun's own brake, just under the
	// point where it pauses processes: throttling there is the mechanism
	// working, and the backpressure line says what it did.
	if measured && ev.High > 0 && r.Backpressure == nil {
		warns = append(warns, Diagnosis{Kind: KindMemoryHigh, Severity: SeverityWarning,
			Message: fmt.Sprintf("the box went above %s and was throttled %s — raise memory.high in policy %s if the run was slower than it should be",
				limitName("memory.high", r.Policy.MemoryHigh), times(ev.High), pol)})
	}
	if k := r.BoxrunKilled; k != nil {
		errs = append(errs, boxrunKilled(r, *k))
	}
	if len(r.Leftovers) > 0 && r.BoxrunKilled == nil {
		warns = append(warns, leftovers(r, cmd))
	}
	return withSenders(r, append(errs, warns...))
}

// forkFailed explains forks refused by pids.max, the box's or one above.
func forkFailed(r *Run, pol string) Diagnosis {
	d := Diagnosis{Kind: KindForkFailed, Severity: SeverityError}
	times := times(r.Pids.EventsMax)
	if r.Policy.PidsMax != nil {
		d.Message = fmt.Sprintf("fork failed %s: pids.max=%d reached — raise pids.max in policy %s", times, *r.Policy.PidsMax, pol)
	} else {
		d.Message = fmt.Sprintf("fork failed %s: the process limit of a cgroup around the box was reached — set a larger pids.max there, or fewer processes at once", times)
	}
	return d
}

// leftovers explains the processes that outlived the command: killed at
// its end or on an interrupt, or left running.
func leftovers(r *Run, cmd string) Diagnosis {
	n := uint64(len(r.Leftovers))
	d := Diagnosis{Kind: KindLeftovers, Severity: SeverityWarning}
	verb := "were"
	if n == 1 {
		verb = "was"
	}
	switch {
	case r.LeftoversKilled && r.Interrupted != "":
		they := "they were"
		if n == 1 {
			they = "it was"
		}
		d.Message = fmt.Sprintf("boxrun was interrupted by %s while %s still ran in the box; %s killed", r.Interrupted, plural(n, "process", "processes"), they)
	case r.LeftoversKilled:
		d.Message = fmt.Sprintf("%s outlived %s and %s killed: it did not wait for them", plural(n, "process", "processes"), cmd, verb)
	default:
		where := ""
		if r.Unit != "" {
			where = " in " + r.Unit
		}
		d.Message = fmt.Sprintf("%s outlived %s and %s left running%s (leftovers = \"keep\")", plural(n, "process", "processes"), cmd, verb, where)
	}
	for _, p := range r.Leftovers {
		d.Details = append(d.Details, fmt.Sprintf("pid %d %s: %s", p.PID, p.Comm, p.Cmdline))
	}
	return d
}

// oomInBox explains OOM kills of processes in the box.
func oomInBox(r *Run, cmd, pol string, commandOOM bool, inside []OOMVictim) Diagnosis {
	ev := r.Memory.Events
	maxName := limitName("memory.max", r.Policy.MemoryMax)
	killed := plural(ev.OOMKill, "process", "processes")
	var d Diagnosis
	around := limitAround(inside, r.Cgroup)
	if around == "" && (ev.OOM > 0 || r.Policy.MemoryMax != nil && hasMemcgVictim(inside)) {
		// The box itself reached its limit.
		d.Kind = KindOOMKill
		if commandOOM {
			d.Message = fmt.Sprintf("%s was killed by the kernel's OOM killer, inside this box, at %s", cmd, maxName)
			if ev.OOMKill > 1 {
				d.Message += fmt.Sprintf(" (%s killed in all)", killed)
			}
		} else {
			d.Message = fmt.Sprintf("the kernel's OOM killer killed %s in this box at %s", killed, maxName)
		}
		if ev.OOMGroupKill > 0 {
			d.Message += ", and memory.oom_group took the whole box with it"
		}
		d.Message += fmt.Sprintf(" — raise memory.max in policy %s, or let the command run fewer things at once", pol)
	} else {
		// Killed although the box stayed under its own limit.
		d.Kind = KindOOMKillGlobal
		who := "the OOM killer killed " + killed + " in this box"
		if commandOOM {
			who = cmd + " was killed by the OOM killer"
			if ev.OOMKill > 1 {
				who += fmt.Sprintf(" (%s in this box in all)", killed)
			}
		}
		switch {
		case around != "":
			under := " although the box stayed under its " + maxName
			if r.Policy.MemoryMax == nil {
				under = " (the box has no memory.max)"
			}
			d.Message = fmt.Sprintf("%s%s: %s, around the box, reached its limit — %s", who, under, around, raiseAround(around, pol))
		case r.Policy.MemoryMax != nil:
			d.Message = fmt.Sprintf("%s although the box stayed under its %s: the whole machine, or a cgroup around the box, ran out of memory — lower memory.max in policy %s so that the box reaches its own limit first, or close other programs", who, maxName, pol)
		default:
			d.Message = fmt.Sprintf("%s: the whole machine, or a cgroup around the box, ran out of memory, and the box has no memory.max — set memory.max in policy %s so that the box reaches its own limit first", who, pol)
		}
	}
	d.Severity = SeverityError
	d.Details = victimDetails(inside)
	switch {
	case r.KernelLogRead:
	case len(inside) == 0:
		d.Details = append(d.Details, "the kernel log is not readable here, and boxrun saw no process leave the box at the kill, so it cannot name the victims: sudo dmesg | grep -i 'killed process' does")
	case uint64(len(inside)) < ev.OOMKill:
		d.Details = append(d.Details, fmt.Sprintf("the kernel log is not readable here, and boxrun saw %d of the %d victims leave the box: sudo dmesg | grep -i 'killed process' names them all", len(inside), ev.OOMKill))
	default:
		d.Details = append(d.Details, "the kernel log is not readable here, so boxrun named the victims from its samples of the box's processes: sudo dmesg | grep -i 'killed process' confirms")
	}
	return d
}

// limitAround is the cgroup around the box whose limit the kernel log says
// the kills in the box were for (the slice of boxes, say), or "" when a
// kill was for the box's own limit or the log did not say. The kernel
// prints paths from the root of all cgroups, and the box's path may be
// relative to a cgroup namespace (a container): the box or a cgroup inside
// it is any path that holds the box's path whole.
func limitAround(inside []OOMVictim, box string) string {
	box = strings.TrimSuffix(box, "/")
	around := ""
	for _, v := range inside {
		switch {
		case v.LimitCgroup == "":
		case box != "" && strings.Contains(v.LimitCgroup+"/", box+"/"):
			return "" // at the box's own limit
		case around == "":
			around = v.LimitCgroup
		}
	}
	return around
}

// raiseAround says what to change when a cgroup around the box reached its
// limit: the slice's budget for boxrun's own slice, else that cgroup's.
func raiseAround(cg, pol string) string {
	if path.Base(cg) == "boxrun.slice" {
		return fmt.Sprintf("the boxes running at once shared its budget; raise [slice] memory.max in the policy file, run fewer boxes at once, or lower memory.max in policy %s so that the box reaches its own limit first", pol)
	}
	return fmt.Sprintf("raise that cgroup's memory.max, or lower memory.max in policy %s so that the box reaches its own limit first", pol)
}

// surelyNamed counts the victims named without a guess.
func surelyNamed(vs []OOMVictim) uint64 {
	n := uint64(0)
	for _, v := range vs {
		if v.Certainty != CertaintyLikely {
			n++
		}
	}
	return n
}

func hasMemcgVictim(vs []OOMVictim) bool {
	for _, v := range vs {
		if !v.Global {
			return true
		}
	}
	return false
}

// oomOutside explains OOM kills outside the box during the run.
func oomOutside(r *Run, pol string, outside []OOMVictim) Diagnosis {
	d := Diagnosis{Kind: KindOOMKillOutside, Severity: SeverityError}
	killed := plural(r.OutsideOOMKills, "process", "processes")
	global := !r.KernelLogRead || len(outside) == 0
	for _, v := range outside {
		global = global || v.Global
	}
	if !global {
		// Other cgroups at their own limits: not the machine running out.
		d.Severity = SeverityWarning
		d.Message = fmt.Sprintf("%s outside this box were OOM-killed at their own cgroup's memory limit while it ran — not this box's doing", killed)
		d.Details = victimDetails(outside)
		return d
	}
	fix := fmt.Sprintf("set memory.max in policy %s so that the box reaches its own limit before the machine does", pol)
	if r.Policy.MemoryMax != nil {
		fix = fmt.Sprintf("lower memory.max in policy %s (now %s) so that the box reaches its own limit before the machine does", pol, FormatSize(*r.Policy.MemoryMax))
	}
	perhaps := ""
	if len(outside) == 0 {
		perhaps = " (your editor, perhaps)"
	}
	d.Message = fmt.Sprintf("the OOM killer killed %s outside this box%s while it ran, because the machine ran out of memory — %s", killed, perhaps, fix)
	d.Details = victimDetails(outside)
	if !r.KernelLogRead {
		d.Details = append(d.Details, "the kernel log is not readable here, so boxrun cannot name them: sudo dmesg | grep -i 'killed process' does")
	}
	return d
}

// unexplainedSigkill explains a SIGKILL that the box's OOM killer did not
// send: the second user report's open question.
func unexplainedSigkill(r *Run, cmd string, measured bool) Diagnosis {
	d := Diagnosis{Kind: KindSigkill, Severity: SeverityError}
	if !measured {
		d.Message = fmt.Sprintf("%s was killed by SIGKILL; without a box boxrun cannot tell whether the OOM killer sent it — run boxrun where cgroup v2 is available to find out", cmd)
		return d
	}
	why := "memory.events of this box counts no OOM kill"
	switch {
	case r.Memory.Events.OOMKill > 0 && r.KernelLogRead:
		why = "the kernel log names other OOM victims, not it"
	case r.Memory.Events.OOMKill > 0:
		why = "the OOM victims boxrun saw leave the box are others, not it"
	}
	d.Message = fmt.Sprintf("%s was killed by SIGKILL, and not by the OOM killer (%s): the SIGKILL came from outside the box's OOM killer — another process or the system, such as a timeout, a watchdog, systemd-oomd (journalctl -u systemd-oomd) or a kill -9", cmd, why)
	return d
}

// victimDetails names victims and says how surely: "pid 48211 bkt (6.1G,
// from the kernel log)".
func victimDetails(vs []OOMVictim) []string {
	var out []string
	for _, v := range vs {
		how := ", from the kernel log"
		switch v.Certainty {
		case CertaintySignalTracer:
			how = " when last seen; the signal tracer saw the kernel's SIGKILL"
		case CertaintyVanished:
			how = " when last seen; it left the box at the kill"
		case CertaintyLikely:
			how = " when last seen; likely: the largest of the processes that left the box at the kill"
		}
		size := FormatSize(v.RSSBytes)
		if v.RSSBytes == 0 && v.Certainty != CertaintyKernelLog {
			// Sampled only as it died: the kernel had freed its memory
			// already (a process that filled the box between two samples).
			size = "size unknown: sampled only as it died;"
			how = strings.TrimPrefix(how, " when last seen;")
		}
		out = append(out, fmt.Sprintf("pid %d %s (%s%s)", v.PID, v.Comm, size, how))
	}
	return out
}

// limitName renders "memory.max=12G", or "memory.max" when unlimited.
func limitName(key string, v *uint64) string {
	if v == nil {
		return key
	}
	return key + "=" + FormatSize(*v)
}

// times renders a count of occurrences: "once", "37 times".
func times(n uint64) string {
	if n == 1 {
		return "once"
	}
	return formatCount(n) + " times"
}

// commandName is the command's program name, e.g. "cargo".
func commandName(r *Run) string {
	if len(r.Command) == 0 || strings.TrimSpace(r.Command[0]) == "" {
		return "the command"
	}
	return path.Base(r.Command[0])
}

// boxrunKilled explains a run whose boxrun died before its command: what
// killed it, when that is known, and what its guard did.
func boxrunKilled(r *Run, k BoxrunKilled) Diagnosis {
	d := Diagnosis{Kind: KindBoxrunKilled, Severity: SeverityError}
	how := "died"
	switch {
	case k.Signal != "":
		how = "was killed by " + k.Signal
	case k.By != nil:
		// Its exit status was reaped first; the tracer saw the signal.
		how = "was killed by " + k.By.Signal
	}
	if k.By != nil {
		how += " " + describeSender(*k.By, false) + ","
	}
	d.Message = fmt.Sprintf("boxrun itself %s %s into the run, before %s finished", how, FormatDuration(time.Duration(k.AtSeconds*float64(time.Second))), commandName(r))
	if k.Signal == "SIGKILL" || k.Signal == "" {
		d.Message += " — a harness's or agent's timeout that kills the whole process group does this; give boxrun SIGTERM first (timeout -k 10 …) and it reports and cleans up itself"
	}
	switch k.ProcessesKilled {
	case 0:
		d.Details = append(d.Details, "its guard found the box empty, and wrote this report")
	default:
		d.Details = append(d.Details, fmt.Sprintf("its guard killed the %s left in the box, and wrote this report", plural(uint64(k.ProcessesKilled), "process", "processes")))
	}
	return d
}
