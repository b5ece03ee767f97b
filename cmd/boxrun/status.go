package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/boxes"
	"github.com/boxrun/boxrun/report"
)

// statusTimeout bounds the questions `boxrun status` asks systemd.
const statusTimeout = 10 * time.Second

// statusBox is one box in `boxrun status --json`.
type statusBox struct {
	Backend    string       `json:"backend"`
	Manager    *string      `json:"manager"`
	Unit       *string      `json:"unit"`
	Cgroup     string       `json:"cgroup"`
	Policy     string       `json:"policy"`
	Command    string       `json:"command"`
	Started    *time.Time   `json:"started"`
	AgeSeconds *float64     `json:"age_seconds"`
	Memory     statusMemory `json:"memory"`
	Pids       statusPids   `json:"pids"`
	CPU        statusCPU    `json:"cpu"`
	// Owner is running, orphaned, kept or unknown (see box.Ownership).
	Owner    string `json:"owner"`
	OwnerPID *int   `json:"owner_pid"`
}

type statusMemory struct {
	CurrentBytes uint64  `json:"current_bytes"`
	PeakBytes    *uint64 `json:"peak_bytes"`
	HighBytes    *uint64 `json:"high_bytes"`
	MaxBytes     *uint64 `json:"max_bytes"`
}

type statusPids struct {
	Current uint64  `json:"current"`
	Max     *uint64 `json:"max"`
}

type statusCPU struct {
	UsageUSec uint64 `json:"usage_usec"`
}

// runStatus implements `boxrun status [--json]`: the boxes running now.
func runStatus(ctx context.Context, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("status", "usage: boxrun status [--json]", out)
	asJSON := fs.Bool("json", false, "print the boxes as a JSON array")
	if code, done := parseSubcommand(fs, "status", args, "", out); done {
		return code
	}
	if !noArguments(fs, "status", "usage: boxrun status [--json]", out) {
		return exitBoxrunFailed
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	boxes, errs := boxes.List(ctx)
	for _, err := range errs {
		out.warnf("%v", err)
	}
	now := time.Now()
	if *asJSON {
		list := make([]statusBox, 0, len(boxes))
		for _, b := range boxes {
			list = append(list, toStatusBox(b, now))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			out.errorf("writing the status: %v", err)
			return exitBoxrunFailed
		}
		return 0
	}
	if len(boxes) == 0 {
		out.infof("no box is running")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOX\tPOLICY\tAGE\tMEMORY\tPIDS\tCPU\tOWNER\tCOMMAND")
	orphans := 0
	for _, b := range boxes {
		name := b.Unit
		if name == "" {
			name = b.Cgroup
		}
		age := "?"
		if !b.Started.IsZero() {
			age = report.FormatDuration(now.Sub(b.Started).Round(time.Second))
		}
		mem := report.FormatSize(b.MemoryCurrent)
		if b.MemoryMax != nil {
			mem += "/" + report.FormatSize(*b.MemoryMax)
		}
		if b.MemoryPeak != nil {
			mem += " (peak " + report.FormatSize(*b.MemoryPeak) + ")"
		}
		pids := fmt.Sprint(b.PidsCurrent)
		if b.PidsMax != nil {
			pids += fmt.Sprintf("/%d", *b.PidsMax)
		}
		cpu := report.FormatDuration(time.Duration(b.CPUUsageUSec) * time.Microsecond)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, b.Policy, age, mem, pids, cpu, ownerText(b), b.Command)
		if b.Owner == box.OwnerOrphaned {
			orphans++
		}
	}
	tw.Flush()
	if orphans > 0 {
		out.warnf("%d box(es) outlived the boxrun that made them", orphans)
		out.hintf("boxrun gc removes them (boxrun gc --dry-run lists what it would remove)")
	}
	return 0
}

// ownerText says who runs a box, for the status table.
func ownerText(b boxes.LiveBox) string {
	switch b.Owner {
	case box.OwnerRunning:
		return fmt.Sprintf("boxrun %d", b.OwnerPID)
	case box.OwnerOrphaned:
		return fmt.Sprintf("orphaned (boxrun %d gone)", b.OwnerPID)
	case box.OwnerKept:
		return "kept (leftovers)"
	}
	return "?"
}

func toStatusBox(b boxes.LiveBox, now time.Time) statusBox {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	s := statusBox{
		Backend: b.Backend, Manager: opt(b.Manager), Unit: opt(b.Unit), Cgroup: b.Cgroup, Policy: b.Policy, Command: b.Command,
		Memory: statusMemory{CurrentBytes: b.MemoryCurrent, PeakBytes: b.MemoryPeak, HighBytes: b.MemoryHigh, MaxBytes: b.MemoryMax},
		Pids:   statusPids{Current: b.PidsCurrent, Max: b.PidsMax},
		CPU:    statusCPU{UsageUSec: b.CPUUsageUSec},
		Owner:  string(b.Owner),
	}
	if b.Owner == "" {
		s.Owner = string(box.OwnerUnknown)
	}
	if b.OwnerPID != 0 {
		pid := b.OwnerPID
		s.OwnerPID = &pid
	}
	if !b.Started.IsZero() {
		started := b.Started.UTC().Truncate(time.Second)
		age := now.Sub(b.Started).Seconds()
		age = float64(int64(age*10)) / 10
		s.Started, s.AgeSeconds = &started, &age
	}
	return s
}
