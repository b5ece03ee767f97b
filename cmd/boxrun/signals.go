package main

import (
	"os"
	"syscall"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/report"
	"github.com/boxrun/boxrun/signals"
)

// signalWait bounds how long the report waits for the tracer's record of
// a signal that ended the run: the tracer writes it within milliseconds of
// the kill, but boxrun may see the death first.
const signalWait = time.Second

// addSignals fills the run's Signals from the signal tracer's records for
// this user (signals.Dir): the fatal signals sent to the box's processes
// during the run, but for those boxrun sent itself. When the command died by a signal, or a shell reported
// a child's (an exit status above 128), it waits up to signalWait for the
// record. Without a tracer it leaves them empty; the diagnosis then says
// how to have senders named.
func addSignals(run *report.Run, res *box.Result) {
	dir := signals.Dir(os.Geteuid())
	read := func() ([]signals.Record, bool) {
		recs, traced, _ := signals.ReadDir(dir)
		return signals.InBox(recs, run.Cgroup, run.PID, res.Start, res.End), traced
	}
	recs, traced := read()
	run.SignalTracer = traced
	if !traced {
		return
	}
	wanted := func() bool {
		if res.Signal != 0 {
			_, ok := signals.SenderOf(recs, run.PID, int(res.Signal))
			return ok
		}
		return res.ExitCode <= 128 || len(recs) > 0
	}
	for deadline := time.Now().Add(signalWait); !wanted() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		recs, _ = read()
	}
	type key struct{ target, sig, sender int }
	seen := map[key]bool{}
	for _, r := range recs {
		if r.Sender.PID == os.Getpid() {
			// boxrun's own: a signal it forwarded, leftovers it killed;
			// the report says those already.
			continue
		}
		// kill(0, sig) after kill(pid, sig), as timeout does, signals
		// its child twice.
		k := key{r.Target.PID, r.Signo, r.Sender.PID}
		if seen[k] {
			continue
		}
		seen[k] = true
		run.Signals = append(run.Signals, reportSignal(r))
	}
}

// reportSignal is the report's account of a tracer's record.
func reportSignal(r signals.Record) report.Signal {
	return report.Signal{
		PID: r.Target.PID, Comm: r.Target.Comm, Signal: r.Signal, Code: r.CodeName, Kernel: r.Kernel,
		Sender: report.Sender{PID: r.Sender.PID, Comm: r.Sender.Comm, UID: r.Sender.UID, Cgroup: r.Sender.Cgroup, Unit: r.Sender.Unit},
	}
}

// killerOf is the signal tracer's record of the signal sig that killed
// boxrun (pid) between from and to, waiting up to signalWait for the
// tracer to write it; nil when no tracer records for this user or none
// recorded it.
func killerOf(dir string, pid int, sig syscall.Signal, from, to time.Time) *report.Signal {
	if sig == 0 {
		return nil
	}
	for deadline := time.Now().Add(signalWait); ; time.Sleep(20 * time.Millisecond) {
		recs, traced, _ := signals.ReadDir(dir)
		if !traced {
			return nil
		}
		if r, ok := signals.SenderOf(signals.InBox(recs, "", pid, from, to), pid, int(sig)); ok {
			s := reportSignal(r)
			return &s
		}
		if time.Now().After(deadline) {
			return nil
		}
	}
}
