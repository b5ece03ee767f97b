package main

import (
	"context"
	"fmt"
	"io"

	"github.com/boxrun/boxrun/boxes"
)

// runGC implements `boxrun gc [--dry-run] [--kept]`: remove the boxes whose
// boxrun is gone.
func runGC(ctx context.Context, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("gc", "usage: boxrun gc [--dry-run] [--kept]", out)
	dryRun := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	kept := fs.Bool("kept", false, `also remove boxes whose leftovers were kept on purpose (leftovers = "keep")`)
	if code, done := parseSubcommand(fs, "gc", args, "", out); done {
		return code
	}
	if !noArguments(fs, "gc", "usage: boxrun gc [--dry-run] [--kept]", out) {
		return exitBoxrunFailed
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	done, errs := boxes.Collect(ctx, *kept, *dryRun)
	for _, err := range errs {
		out.warnf("%v", err)
	}
	failed := 0
	verb := "removed"
	if *dryRun {
		verb = "would remove"
	}
	for _, c := range done {
		name := c.Box.Unit
		if name == "" {
			name = c.Box.Cgroup
		}
		if c.Err != nil {
			failed++
			out.errorf("gc: %s: %v", name, c.Err)
			continue
		}
		fmt.Fprintf(stdout, "%s %s (%s, policy %s: %s)\n", verb, name, c.Box.Owner, c.Box.Policy, c.Box.Command)
	}
	if len(done) == 0 {
		out.infof("no box to remove")
	}
	if failed > 0 {
		return 1
	}
	return 0
}
