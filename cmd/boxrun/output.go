package main

import (
	"fmt"
	"io"
)

// Output rules, for every line boxrun itself prints:
//
//   - boxrun's own lines go to stderr, so the command's stdout stays clean;
//   - each starts with "boxrun: ", is lowercase, and has no trailing period;
//   - warnings say "boxrun: warning: ", and a line that tells the user what
//     to do next says "boxrun: hint: ";
//   - with -q, only errors and what the user must know (refusals, and once a
//     day that a run had no box) are printed;
//   - a block (the run report) starts with a "boxrun: " line; the lines under
//     it are indented by two spaces instead of prefixed.
//
// The printer below is the only place that formats them.
type printer struct {
	w     io.Writer
	quiet bool
}

// errorf prints an error; it is shown even with -q.
func (p *printer) errorf(format string, a ...any) {
	fmt.Fprintf(p.w, "boxrun: "+format+"\n", a...)
}

// warnf prints a warning unless quiet.
func (p *printer) warnf(format string, a ...any) {
	if !p.quiet {
		fmt.Fprintf(p.w, "boxrun: warning: "+format+"\n", a...)
	}
}

// noticef prints a warning the user must see even with -q.
func (p *printer) noticef(format string, a ...any) {
	fmt.Fprintf(p.w, "boxrun: warning: "+format+"\n", a...)
}

// hintf prints a hint unless quiet.
func (p *printer) hintf(format string, a ...any) {
	if !p.quiet {
		fmt.Fprintf(p.w, "boxrun: hint: "+format+"\n", a...)
	}
}

// infof prints an informational line unless quiet.
func (p *printer) infof(format string, a ...any) {
	if !p.quiet {
		fmt.Fprintf(p.w, "boxrun: "+format+"\n", a...)
	}
}
