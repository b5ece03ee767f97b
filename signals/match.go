package signals

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Slack widens a run's time window when records are matched to it: the
// tracer's clock conversion and a record written just after the run ended.
const Slack = 2 * time.Second

// InBox returns the records of signals sent, between from and to (widened
// by Slack), to processes of the box at cgroup path box (a process in it
// or below it) or to the process pid, in the order they were sent. Signals
// the target ignored are left out.
func InBox(recs []Record, box string, pid int, from, to time.Time) []Record {
	var out []Record
	for _, r := range recs {
		if r.Time.Before(from.Add(-Slack)) || r.Time.After(to.Add(Slack)) || r.Result == "ignored" {
			continue
		}
		inBox := box != "" && (r.Target.Cgroup == box || strings.HasPrefix(r.Target.Cgroup, box+"/"))
		if inBox || pid > 0 && r.Target.PID == pid {
			out = append(out, r)
		}
	}
	return out
}

// SenderOf is the record of the signal sig that killed pid: the last one
// of recs sent to it (the first of several SIGKILLs kills; a later one
// finds it dying and is "already_pending" — the first delivered one is
// preferred). ok is false when no record names it.
func SenderOf(recs []Record, pid, sig int) (Record, bool) {
	var found Record
	ok := false
	for _, r := range recs {
		if r.Target.PID != pid || r.Signo != sig {
			continue
		}
		if !ok || found.Result != "delivered" && r.Result == "delivered" {
			found, ok = r, true
		}
	}
	return found, ok
}

// ReadDir reads the records kept in dir (Dir(uid)): the older file first.
// traced is false when dir does not exist: no tracer has written for this
// user since boot.
func ReadDir(dir string) (recs []Record, traced bool, err error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	for _, name := range []string{File + ".1", File} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return recs, true, err
		}
		rs, _, err := ParseRecords(f)
		f.Close()
		recs = append(recs, rs...)
		if err != nil {
			return recs, true, fmt.Errorf("reading %s: %w", f.Name(), err)
		}
	}
	return recs, true, nil
}
