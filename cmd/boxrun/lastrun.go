package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/report"
	"github.com/boxrun/boxrun/signals"
)

// runLog keeps this user's latest run reports for `boxrun last`: the report
// of every run boxrun saw to its end, and the post-mortem a run's guard
// wrote for one whose boxrun died first (a harness's timeout killing its
// whole process group). It is one private directory, stateDir/reports,
// holding for each run NAME.json and NAME.txt (NAME sorts by start time)
// and, while the run lasts, NAME.pending.json: what the guard needs to
// write the report if boxrun dies. The newest keepReports runs are kept.
type runLog struct{ dir string }

// keepReports is how many runs' reports the run log keeps.
const keepReports = 20

// pendingSuffix ends the name of a run's pending file.
const pendingSuffix = ".pending.json"

// openRunLog opens this user's run log, making its directory when missing.
func openRunLog(getenv func(string) string) (runLog, error) {
	base := stateDir(getenv)
	if base == "" {
		return runLog{}, errors.New("there is no state directory to keep reports in (set HOME or XDG_STATE_HOME)")
	}
	dir := filepath.Join(base, "reports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return runLog{}, fmt.Errorf("keeping run reports: %w", err)
	}
	for _, d := range []string{base, dir} {
		if err := checkOwnedDir(d); err != nil {
			return runLog{}, fmt.Errorf("keeping run reports: %w", err)
		}
	}
	return runLog{dir: dir}, nil
}

// runName names a run's files: when it started (UTC, to the nanosecond) and
// boxrun's pid, so that names sort by start time.
func runName(start time.Time, pid int) string {
	return start.UTC().Format("20060102T150405.000000000Z") + "-" + strconv.Itoa(pid)
}

// pendingRun is what a run's guard needs to write the run's report when
// boxrun dies before it does.
type pendingRun struct {
	// Name names the run's files in the log.
	Name    string        `json:"name"`
	Policy  report.Policy `json:"policy"`
	Command []string      `json:"command"`
	Started time.Time     `json:"started"`
	// ReportJSON is --report-json as an absolute path, "" for none (or
	// stdout, which died with boxrun).
	ReportJSON string `json:"report_json"`
}

// begin records a run that is starting, and returns the pending file to
// give its guard (box.Options.PostMortem).
func (l runLog) begin(p pendingRun) (string, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	path := filepath.Join(l.dir, p.Name+pendingSuffix)
	return path, writeReplacing(path, 0o600, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// save keeps the report of run name, drops its pending file and the
// oldest runs beyond keepReports.
func (l runLog) save(name string, run *report.Run) error {
	err := errors.Join(
		writeReplacing(filepath.Join(l.dir, name+".json"), 0o600, func(w io.Writer) error { return report.JSON(w, run) }),
		writeReplacing(filepath.Join(l.dir, name+".txt"), 0o600, func(w io.Writer) error { return report.Text(w, run, false) }))
	os.Remove(filepath.Join(l.dir, name+pendingSuffix))
	l.prune()
	return err
}

// drop forgets a run that never started.
func (l runLog) drop(name string) { os.Remove(filepath.Join(l.dir, name+pendingSuffix)) }

// names lists the runs whose reports the log holds, oldest first.
func (l runLog) names() []string {
	entries, _ := os.ReadDir(l.dir)
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, pendingSuffix) && !strings.HasPrefix(n, ".") {
			names = append(names, strings.TrimSuffix(n, ".json"))
		}
	}
	sort.Strings(names)
	return names
}

// prune removes all but the newest keepReports runs.
func (l runLog) prune() {
	names := l.names()
	for len(names) > keepReports {
		os.Remove(filepath.Join(l.dir, names[0]+".json"))
		os.Remove(filepath.Join(l.dir, names[0]+".txt"))
		names = names[1:]
	}
}

// writeReplacing writes a file whole or not at all: to a temporary file
// beside it, renamed over it once write succeeded.
func writeReplacing(path string, mode os.FileMode, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// postMortemRun is the report of a run whose boxrun died before its command:
// what the run left for its guard and what the guard saw of the box before
// it killed what was left there.
func postMortemRun(p pendingRun, pm box.PostMortem) *report.Run {
	run := &report.Run{
		Policy: p.Policy, Cgroup: cgroupPath(pm.BoxDir), Backend: pm.Backend, Kernel: pm.Kernel, Enforced: true, Command: p.Command,
		Interrupted:     signalName(pm.BoxrunSignal),
		LeftoversKilled: true,
		Memory: report.Memory{PeakBytes: pm.MemoryPeak, PeakSource: report.PeakMemoryPeak,
			Events: report.MemoryEvents{Low: pm.MemoryEvents["low"], High: pm.MemoryEvents["high"], Max: pm.MemoryEvents["max"],
				OOM: pm.MemoryEvents["oom"], OOMKill: pm.MemoryEvents["oom_kill"]}},
		Pids:         report.Pids{Peak: pm.PidsPeak, PeakSource: report.PeakPidsPeak, EventsMax: pm.PidsEvents["max"]},
		BoxrunKilled: &report.BoxrunKilled{Signal: signalName(pm.BoxrunSignal), ProcessesKilled: len(pm.Procs)},
		Notes: []string{"a post-mortem: boxrun died before the command finished, and its guard wrote this report from what the box showed then; " +
			"samples, OOM victims and backpressure were boxrun's and died with it"},
	}
	if pm.Backend == box.KindSystemd {
		run.Unit = filepath.Base(pm.BoxDir)
	}
	if !p.Started.IsZero() && pm.At.After(p.Started) {
		run.WallSeconds = pm.At.Sub(p.Started).Seconds()
		run.BoxrunKilled.AtSeconds = run.WallSeconds
	}
	if pm.MemoryPeak == 0 {
		run.Memory.PeakSource = report.PeakNone
	}
	if pm.PidsPeak == 0 {
		run.Pids.PeakSource = report.PeakNone
	}
	// A box gone before the guard looked left no counters: unknown, not 0.
	run.Memory.EventsUnknown = pm.MemoryEvents == nil
	run.Pids.EventsUnknown = pm.PidsEvents == nil
	for _, pr := range pm.Procs {
		run.Leftovers = append(run.Leftovers, report.Leftover{PID: pr.PID, Comm: pr.Comm})
	}
	if pm.CPU != nil {
		run.CPU = &report.CPU{UsageUSec: pm.CPU["usage_usec"], UserUSec: pm.CPU["user_usec"], SystemUSec: pm.CPU["system_usec"],
			ThrottledUSec: pm.CPU["throttled_usec"], NrThrottled: pm.CPU["nr_throttled"]}
	}
	if len(pm.Procs) > 0 {
		// The command, if still there, died of the guard's SIGKILL.
		killed := 128 + 9
		run.ExitCode, run.Signal = &killed, "SIGKILL"
	}
	// Else the box was empty: the command ended with boxrun (its process
	// group killed with it, most often) and nobody saw how, so its exit
	// code stays unknown.
	if pm.CleanupErr != nil {
		run.Notes = append(run.Notes, "the guard could not empty or remove the box: "+pm.CleanupErr.Error()+" (boxrun gc removes it)")
	}
	return run
}

// cgroupPath is a box's cgroup path below the cgroup2 mount, from its
// directory.
func cgroupPath(dir string) string {
	if rel, ok := strings.CutPrefix(dir, "/sys/fs/cgroup"); ok && rel != "" {
		return rel
	}
	return dir
}

// writePostMortem is the guard's report function (see box.RunGuard):
// it writes the report of a run whose boxrun died into the run log, and to
// the run's --report-json file. It has no terminal to speak to: what
// fails is left undone.
func writePostMortem(pm box.PostMortem) {
	data, err := os.ReadFile(pm.File)
	if err != nil {
		return
	}
	var p pendingRun
	if json.Unmarshal(data, &p) != nil || p.Name == "" {
		return
	}
	run := postMortemRun(p, pm)
	dir := signals.Dir(os.Geteuid())
	_, err = os.Stat(dir)
	run.SignalTracer = err == nil
	run.BoxrunKilled.By = killerOf(dir, pm.BoxrunPID, deathSignal(pm.BoxrunSignal), p.Started, pm.At)
	run.Diagnosis = report.Diagnose(run)
	_ = runLog{dir: filepath.Dir(pm.File)}.save(p.Name, run)
	if p.ReportJSON != "" {
		_ = writeReplacing(p.ReportJSON, 0o644, func(w io.Writer) error { return report.JSON(w, run) })
	}
}

// deathSignal is the signal to look for in the tracer's records of what
// killed boxrun: the one its exit status names or, when a harness reaped
// boxrun before its guard could read that (the usual case: a timeout
// waits for what it kills), SIGKILL, the one fatal signal boxrun cannot
// catch to write its own report.
func deathSignal(seen syscall.Signal) syscall.Signal {
	if seen == 0 {
		return syscall.SIGKILL
	}
	return seen
}

// runLast implements `boxrun last [--json]`: print the newest report of
// this user's runs, complete or post-mortem.
func runLast(_ context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
	const usage = "usage: boxrun last [--json]"
	fs := newSubcommand("last", usage, out)
	asJSON := fs.Bool("json", false, "print the JSON report (as --report-json writes it)")
	if code, done := parseSubcommand(fs, "last", args, "", out); done {
		return code
	}
	if !noArguments(fs, "last", usage, out) {
		return exitBoxrunFailed
	}
	l, err := openRunLog(os.Getenv)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	names := l.names()
	if len(names) == 0 {
		out.infof("no run report yet in %s: boxrun keeps one for each run", l.dir)
		return 1
	}
	ext := ".txt"
	if *asJSON {
		ext = ".json"
	}
	data, err := os.ReadFile(filepath.Join(l.dir, names[len(names)-1]+ext))
	if err != nil {
		out.errorf("reading the last report: %v", err)
		return exitBoxrunFailed
	}
	if _, err := io.Copy(stdout, bytes.NewReader(data)); err != nil {
		return exitBoxrunFailed
	}
	return 0
}
