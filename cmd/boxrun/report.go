package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/observe"
	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/report"
)

// reporter makes the run report: its Sampler (and, with --progress on a
// terminal, the status line) watch the box while the command runs; finish
// then prints the report on stderr and writes --report-json.
//
// With -q the report is printed only when something went wrong: a process
// was OOM-killed (in the box or outside it), a fork was refused at pids.max,
// or the command died by SIGKILL — the diagnoses of severity error. Exit
// codes, throttling and leftovers alone stay quiet.
type reporter struct {
	o       options
	pol     *policy.Resolved
	argv    []string
	stderr  *os.File
	out     *printer
	sampler *observe.Sampler
	obs     []box.Observer

	// json is where the JSON report goes: stdout for "-", else a temporary
	// file beside --report-json's, renamed over it once the report is
	// whole, so that a run that never starts, or a boxrun that dies,
	// leaves whatever file was there as it was.
	json     *os.File
	finished bool

	// log keeps the report for `boxrun last` (zero when there is no run
	// log: see openRunLog); name names the run in it, and pending is the
	// file its guard writes the report from if boxrun dies ("" for none).
	log     runLog
	name    string
	pending string
}

// newReporter prepares the report of one run. It opens the --report-json
// file now, so that a path that cannot be written fails before the command
// runs rather than after.
func newReporter(o options, pol *policy.Resolved, argv []string, stdout, stderr *os.File, out *printer) (*reporter, error) {
	r := &reporter{o: o, pol: pol, argv: argv, stderr: stderr, out: out, sampler: observe.NewSampler()}
	r.obs = []box.Observer{r.sampler}
	if o.progress && isTerminal(stderr) {
		r.obs = append(r.obs, &progress{w: stderr, width: func() int { return terminalWidth(stderr) }, pol: pol, latest: r.sampler.Latest})
	}
	switch o.reportJSON {
	case "":
	case "-":
		r.json = stdout
	default:
		f, err := os.CreateTemp(filepath.Dir(o.reportJSON), "."+filepath.Base(o.reportJSON)+".*.tmp")
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = &os.PathError{Op: "open", Path: o.reportJSON, Err: pe.Err} // the user's name, not the temporary one
			}
			return nil, fmt.Errorf("--report-json: %w (give a file in a directory you can write, or - for stdout)", err)
		}
		_ = f.Chmod(0o644) // as an ordinary file; the temporary name is private
		r.json = f
	}
	r.keepInLog()
	return r, nil
}

// keepInLog starts the run's entry in the run log: the pending file its
// guard writes the report from if boxrun dies. Without a run log the run
// still runs; `boxrun last` says why it has nothing.
func (r *reporter) keepInLog() {
	l, err := openRunLog(os.Getenv)
	if err != nil {
		return
	}
	now := time.Now()
	p := pendingRun{Name: runName(now, os.Getpid()), Policy: reportPolicy(r.pol), Command: r.argv, Started: now}
	if r.o.reportJSON != "" && r.o.reportJSON != "-" {
		p.ReportJSON, _ = filepath.Abs(r.o.reportJSON)
	}
	pending, err := l.begin(p)
	if err != nil {
		return
	}
	r.log, r.name, r.pending = l, p.Name, pending
}

// postMortem is the file to give the run's guard (box.Options.PostMortem).
func (r *reporter) postMortem() string { return r.pending }

// observers are the Observers to give Run.
func (r *reporter) observers() []box.Observer { return r.obs }

// close releases the report file: a whole report replaces --report-json's
// file; an unfinished one (the command never ran) is removed.
func (r *reporter) close() {
	if !r.finished && r.log.dir != "" {
		r.log.drop(r.name)
	}
	if r.json == nil || r.o.reportJSON == "-" {
		return
	}
	tmp := r.json.Name()
	err := r.json.Close()
	if !r.finished || err != nil {
		os.Remove(tmp)
		if err != nil {
			r.out.errorf("--report-json %s: %v", r.o.reportJSON, err)
		}
		return
	}
	if err := os.Rename(tmp, r.o.reportJSON); err != nil {
		os.Remove(tmp)
		r.out.errorf("--report-json %s: %v", r.o.reportJSON, err)
	}
}

// finish prints the report of res and writes --report-json; it returns the
// command's exit status, which a failure to write the report never changes.
// sizes is where backpressure's sizes came from (nil when it was off).
func (r *reporter) finish(res *box.Result, bp *observe.Backpressure, sizes *sizeStore) int {
	r.finished = true
	run := buildRun(r.pol, r.argv, res, r.sampler.Stats())
	if st, restopped, ok := bp.Stats(); ok {
		run.Backpressure = reportBackpressure(st, restopped, bp.Method(), sizes.source())
	}
	addSignals(run, res)
	report.ReconcileVictims(run)
	run.Diagnosis = report.Diagnose(run)
	if r.log.dir != "" {
		if err := r.log.save(r.name, run); err != nil {
			r.out.warnf("keeping the report for boxrun last: %v", err)
		}
	}
	if !r.o.quiet || run.Failed() {
		if err := report.Text(r.stderr, run, useColor(r.stderr)); err != nil {
			r.out.errorf("printing the report: %v", err)
		}
	}
	if r.json != nil {
		if err := report.JSON(r.json, run); err != nil {
			r.out.errorf("--report-json %s: %v", r.o.reportJSON, err)
		}
	}
	return res.ExitCode
}

// reportBackpressure is the report's account of what backpressure did;
// method is how it paused (observe.MethodFreezer or MethodSIGSTOP), sizes
// where the sizes of its processes came from.
func reportBackpressure(st backpressure.Stats, restopped int, method, sizes string) *report.Backpressure {
	bp := &report.Backpressure{
		Paused:          st.Paused,
		Resumed:         st.Resumed,
		PausedSeconds:   st.PausedTotal.Seconds(),
		MaxPauseSeconds: st.LongestPause.Seconds(),
		MaxPauseReason:  st.LongestReason,
		BlockedSeconds:  st.Blocked.Seconds(),
		MaxRunning:      st.MaxRunning,
		ForcedResumes:   st.ForcedResumes,
		Method:          method,
		Restopped:       restopped,
		PausedAtEnd:     st.PausedAtEnd,
		ThrottleLifted:  st.Lifted,
		Sizes:           sizes,
	}
	for why, n := range st.Forced {
		bp.Forced = append(bp.Forced, report.ForcedResume{Reason: why, Count: n})
	}
	sort.Slice(bp.Forced, func(i, j int) bool {
		if bp.Forced[i].Count != bp.Forced[j].Count {
			return bp.Forced[i].Count > bp.Forced[j].Count
		}
		return bp.Forced[i].Reason < bp.Forced[j].Reason
	})
	for _, r := range st.Reasons {
		bp.Reasons = append(bp.Reasons, report.PauseReason{Reason: r.Reason, Count: r.Count, Seconds: r.Total.Seconds(), MaxSeconds: r.Longest.Seconds()})
	}
	return bp
}

// buildRun assembles the report of one run.
func buildRun(pol *policy.Resolved, argv []string, res *box.Result, st observe.Stats) *report.Run {
	run := &report.Run{
		Policy:   reportPolicy(pol),
		Unit:     res.Unit,
		Cgroup:   res.Cgroup,
		Backend:  res.Backend,
		Kernel:   res.Kernel,
		Systemd:  res.Systemd,
		Enforced: res.Backend != box.KindNone,
		Command:  argv,
		PID:      st.PID,
		// ExitCode is 128+N for death by signal N, as the shell says.
		ExitCode:        &res.ExitCode,
		Signal:          signalName(res.Signal),
		Interrupted:     signalName(res.Interrupted),
		WallSeconds:     res.End.Sub(res.Start).Seconds(),
		LeftoversKilled: res.LeftoversKilled,
		Notes:           st.Notes,
	}
	if !st.Measured {
		run.Cgroup = ""
	}
	for _, p := range res.Leftovers {
		run.Leftovers = append(run.Leftovers, report.Leftover{PID: p.PID, Comm: p.Comm, Cmdline: p.Cmdline})
	}
	if !st.Measured {
		run.Notes = append(run.Notes, "nothing was limited or measured: there was no cgroup (backend "+res.Backend+"); memory, pids and cpu read 0 because they were not measured")
		run.CPU = &report.CPU{}                                       // as the note says; enforced false tells
		run.Memory.EventsUnknown, run.Pids.EventsUnknown = true, true // no counter exists to read
		return run
	}
	run.Memory = report.Memory{PeakBytes: st.Memory.Peak, PeakSource: st.Memory.PeakSource, Events: report.MemoryEvents(st.Memory.Events)}
	run.Pids = report.Pids{Peak: st.Pids.Peak, PeakSource: st.Pids.PeakSource, EventsMax: st.Pids.EventsMax}
	run.CPU = &report.CPU{UsageUSec: st.CPU.UsageUSec, UserUSec: st.CPU.UserUSec, SystemUSec: st.CPU.SystemUSec,
		ThrottledUSec: st.CPU.ThrottledUSec, NrThrottled: st.CPU.NrThrottled}
	for _, s := range st.Samples {
		run.Samples = append(run.Samples, report.Sample{T: s.At.Seconds(), MemoryBytes: s.MemoryBytes, Pids: s.Pids})
	}
	for _, v := range st.OOMVictims {
		run.OOMVictims = append(run.OOMVictims, report.OOMVictim{PID: v.PID, Comm: v.Comm, RSSBytes: v.AnonRSSBytes,
			InsideBox: v.InsideBox, Global: v.Global, Cgroup: v.Cgroup, LimitCgroup: v.LimitCgroup, Certainty: string(v.Certainty)})
	}
	for _, c := range st.Commands {
		run.Commands = append(run.Commands, report.CommandUse{Comm: c.Comm, Processes: c.Processes, PeakBytes: c.PeakBytes,
			TypicalBytes: c.TypicalBytes, CPUSeconds: c.CPU.Seconds()})
	}
	run.OutsideOOMKills = st.OutsideOOMKills
	run.KernelLogRead = st.KernelLogErr == ""
	switch {
	case run.KernelLogRead:
	case len(st.OOMVictims) > 0:
		run.Notes = append(run.Notes, "OOM victims are named from boxrun's samples of the box's processes, not from the kernel log: "+st.KernelLogErr)
	default:
		run.Notes = append(run.Notes, "OOM victims are counted, not named: "+st.KernelLogErr)
	}
	return run
}

// reportPolicy is the policy's name and limits in bytes; "max" is no limit.
func reportPolicy(p *policy.Resolved) report.Policy {
	limit := func(v *uint64) *uint64 {
		if v == nil || *v == policy.Unlimited {
			return nil
		}
		x := *v
		return &x
	}
	rp := report.Policy{
		Name: p.Name, MemoryHigh: limit(p.MemoryHigh), MemoryMax: limit(p.MemoryMax), MemorySwapMax: limit(p.MemorySwapMax),
		MemoryOOMGroup: p.MemoryOOMGroup, PidsMax: limit(p.PidsMax), CPUWeight: limit(p.CPUWeight),
		CPUMaxUSecPerSec: limit(p.CPUQuotaPerSecUSec), IOWeight: limit(p.IOWeight),
	}
	if p.OOMScoreAdj != nil {
		adj := *p.OOMScoreAdj
		rp.OOMScoreAdj = &adj
	}
	return rp
}
