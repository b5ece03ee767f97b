package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
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
// Help that was asked for (--help, boxrun help) is not one of these lines:
// it goes to stdout, unprefixed, so that it can be paged or searched.
//
// The printer below is the only place that formats them.
type printer struct {
	w     io.Writer
	quiet bool
	// help is where help that was asked for goes (stdout).
	help io.Writer
	// describe, when set, is given each subcommand's flag set instead of
	// parsing its arguments (see describeFlags): help, the man page and
	// completion learn the flags from the runners themselves.
	describe func(*pflag.FlagSet)
	// warnings counts the warnings given to warnf and noticef, printed
	// or not (-q), for policy check --strict.
	warnings int
}

// errorf prints an error; it is shown even with -q.
func (p *printer) errorf(format string, a ...any) {
	fmt.Fprintf(p.w, "boxrun: "+format+"\n", a...)
}

// warnf prints a warning unless quiet.
func (p *printer) warnf(format string, a ...any) {
	p.warnings++
	if !p.quiet {
		fmt.Fprintf(p.w, "boxrun: warning: "+format+"\n", a...)
	}
}

// noticef prints a warning the user must see even with -q.
func (p *printer) noticef(format string, a ...any) {
	p.warnings++
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
