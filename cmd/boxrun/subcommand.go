package main

import (
	"slices"

	"github.com/spf13/pflag"
)

// newSubcommand is the flag set of `boxrun NAME` ("gc", "policy export"):
// errors go to the printer's stream, and -h/--help prints the command's
// help (see writeHelp; usage is used for a command commands() lacks) to
// stdout.
func newSubcommand(name, usage string, out *printer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("boxrun "+name, pflag.ContinueOnError)
	fs.SetOutput(out.w)
	fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() {
		w := out.help
		if w == nil {
			w = out.w
		}
		writeHelp(w, name, usage, fs)
	}
	return fs
}

// parseSubcommand parses args into fs. When the caller must return at
// once, done is true and code is its exit status: 0 after --help, 125 after
// a bad flag, which is reported as "NAME: ..." with hint (by default, where
// the flags are listed) under it. With out.describe set, fs is handed to it
// and nothing is parsed.
func parseSubcommand(fs *pflag.FlagSet, name string, args []string, hint string, out *printer) (code int, done bool) {
	if out.describe != nil {
		out.describe(fs)
		return 0, true
	}
	err := fs.Parse(args)
	if err == nil {
		if help, _ := fs.GetBool("help"); help {
			fs.Usage()
			return 0, true
		}
		return 0, false
	}
	out.errorf("%s: %v", name, err)
	if hint == "" {
		hint = "boxrun " + name + " --help shows its flags"
	}
	out.hintf("%s", hint)
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

// tooManyArguments fails when a subcommand got more than n arguments.
func tooManyArguments(fs *pflag.FlagSet, name string, n int, out *printer) bool {
	if fs.NArg() <= n {
		return false
	}
	out.errorf("%s: unexpected argument %q", name, fs.Arg(n))
	out.hintf("boxrun %s --help shows what it takes", name)
	return true
}

// policyFlags adds the flags of a run that choose the policies, for a
// subcommand that reads them: -f, and with withName -p, with withSet
// --set. Values given before the subcommand are their defaults; --set adds
// to the --set given there.
func policyFlags(fs *pflag.FlagSet, o *options, withName, withSet bool) {
	fs.StringVarP(&o.policyFile, "policy-file", "f", o.policyFile, "read policies from this file first (adds to / overrides the lookup)")
	if withName {
		fs.StringVarP(&o.policyName, "policy", "p", o.policyName, "the policy, when no NAME is given")
	}
	if withSet {
		fs.Var(appendStrings{&o.sets}, "set", "override one policy field, e.g. --set memory.max=4G (repeatable)")
	}
}

// appendStrings is a repeatable flag that adds to the values it starts
// with (pflag's StringArray replaces them on first use).
type appendStrings struct{ p *[]string }

func (a appendStrings) Set(s string) error { *a.p = append(*a.p, s); return nil }
func (a appendStrings) String() string     { return "" }
func (a appendStrings) Type() string       { return "stringArray" }

// misplacedFlag returns the first flag of a run (fs) given before
// command c that does not apply to it; "" when there is none.
func misplacedFlag(fs *pflag.FlagSet, c command) string {
	bad := ""
	fs.Visit(func(f *pflag.Flag) {
		if bad != "" || f.Name == "quiet" {
			return
		}
		if !slices.Contains(c.globals, f.Name) {
			bad = "--" + f.Name
		}
	})
	return bad
}

// checkGlobals refuses a flag of a run given before a subcommand it does
// not apply to (boxrun --strict status), rather than ignore it.
func checkGlobals(fs *pflag.FlagSet, c command, out *printer) bool {
	if f := misplacedFlag(fs, c); f != "" {
		out.errorf("%s: %s is a flag of a run; it does not apply here", c.name, f)
		out.hintf("boxrun %s --help shows its flags", c.name)
		return false
	}
	return true
}
