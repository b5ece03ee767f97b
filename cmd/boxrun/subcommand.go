package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// newSubcommand is the flag set of `boxrun NAME` ("gc", "policy export"):
// errors go to the printer's stream, and --help prints usage (its first
// lines) followed by the flags.
func newSubcommand(name, usage string, out *printer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("boxrun "+name, pflag.ContinueOnError)
	fs.SetOutput(out.w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nflags:\n%s", usage, fs.FlagUsages())
	}
	return fs
}

// parseSubcommand parses args into fs. When the caller must return at
// once, done is true and code is its exit status: 0 after --help, 125 after
// a bad flag, which is reported as "NAME: ..." with hint, if any, under it.
func parseSubcommand(fs *pflag.FlagSet, name string, args []string, hint string, out *printer) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, pflag.ErrHelp):
		return 0, true
	}
	out.errorf("%s: %v", name, err)
	if hint != "" {
		out.hintf("%s", hint)
	}
	return exitBoxrunFailed, true
}

// noArguments fails, with hint, when a subcommand that takes only flags
// was given an argument.
func noArguments(fs *pflag.FlagSet, name, hint string, out *printer) bool {
	if fs.NArg() == 0 {
		return true
	}
	out.errorf("%s: unexpected argument %q", name, fs.Arg(0))
	out.hintf("%s", hint)
	return false
}
