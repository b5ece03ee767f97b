package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/box"
)

// The help of boxrun and of each command, the man page (manpage.go) and the
// completion (completion.go) are all made from commands(), the flag sets
// the runners define, and the tables below: there is no second copy.

// envVar is an environment variable boxrun reads, or sets for the command.
type envVar struct{ name, meaning string }

// environment lists the variables boxrun reads. Read-only.
var environment = []envVar{
	{"BOXRUN_POLICY_FILE", "a policy file read after --policy-file and before the others; it must exist"},
	{box.ParentEnv, "a delegated cgroup v2 directory to make boxes under when systemd cannot (the cgroupfs backend)"},
	{timingEnv, "when set, print on stderr how long each phase of the run took"},
	{"BOXRUN_CARGO_POLICY", "the policy the cargo shim of boxrun install cargo-hook uses (default tests)"},
	{sizesEnv, "off: keep no process sizes between runs; memory.backpressure learns them afresh in each run"},
	{"XDG_CONFIG_HOME", "user policies are in $XDG_CONFIG_HOME/boxrun/policies.toml (default ~/.config)"},
	{"XDG_STATE_HOME", "once-a-day notices, and the process sizes memory.backpressure learned for each project and policy, are kept in $XDG_STATE_HOME/boxrun (default ~/.local/state)"},
	{"XDG_RUNTIME_DIR", "finds the systemd user manager; max_concurrent slots are locks in $XDG_RUNTIME_DIR/boxrun/slots"},
	{"NO_COLOR, TERM", "the run report is coloured only on a terminal, without NO_COLOR and with TERM other than dumb"},
}

// commandEnvironment lists the variables the command gets. Read-only.
var commandEnvironment = []envVar{
	{"BOXRUN_POLICY", "the name of the policy"},
	{"BOXRUN_UNIT", "the systemd scope of the box (empty without systemd)"},
	{"BOXRUN_CGROUP", "the cgroup path of the box"},
}

// exitStatuses are boxrun's exit statuses. Read-only.
var exitStatuses = []envVar{
	{"N", "the command's own exit status"},
	{"128+N", "the command died of signal N. For SIGINT, SIGTERM and SIGHUP boxrun then dies of that signal itself, after its report and the box's removal: a shell reads 128+N and, on Ctrl-C, stops a loop around boxrun. Other signals (SIGQUIT 131, SIGKILL 137, SIGSEGV 139) end boxrun with the exit status: it does not dump core for its command"},
	{"125", "boxrun failed before the command started: a bad flag, a bad or unknown policy, an unusable backend, a --strict refusal"},
	{"126", "the command is not executable"},
	{"127", "the command does not exist"},
	{"0, 1", "of the other commands: success, failure (policy check found errors, or warnings with --strict; doctor cannot enforce the policy); 125 for bad input"},
}

// lookup is where policies are looked up, nearest first. Read-only.
var lookup = []string{
	"--policy-file FILE",
	"$BOXRUN_POLICY_FILE",
	".boxrun.toml in the working directory or its parents (a project file: may only tighten)",
	"$XDG_CONFIG_HOME/boxrun/policies.toml (~/.config/boxrun/policies.toml)",
	"/etc/boxrun/policies.toml",
	"the built-in policies: tests, build, check, strict (boxrun policy list)",
}

// rootExamples are the common invocations. Read-only.
var rootExamples = []string{
	"boxrun -- cargo test                  # the tests policy",
	"boxrun -p build -- make -j16",
	"boxrun --set memory.max=4G -- go test ./...",
	"boxrun --strict --report-json run.json -- pytest -n 8",
	"boxrun policy show tests",
	"boxrun doctor",
	"boxrun -- help                        # a program called help",
}

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// rootSynopsis is the synopsis of a run.
const rootSynopsis = "[flags] [--] COMMAND [ARGS...]"

// rootFlags is the flag set of a run, with its defaults, for help.
func rootFlags() *pflag.FlagSet {
	var o options
	return newFlagSet(&o, io.Discard)
}

// describeFlags returns the flag set c's runner defines, without running
// it: parseSubcommand hands it over and stops.
func describeFlags(c command) *pflag.FlagSet {
	var fs *pflag.FlagSet
	var o options
	newFlagSet(&o, io.Discard) // the defaults of a run
	c.run(context.Background(), o, nil, io.Discard, &printer{w: io.Discard, help: io.Discard, describe: func(f *pflag.FlagSet) { fs = f }})
	return fs
}

// writeRootHelp prints boxrun --help.
func writeRootHelp(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "boxrun - %s\n\n", summary)
	lines := []string{rootSynopsis}
	for _, c := range subcommands("") {
		lines = append(lines, c.synopsis...)
	}
	writeSynopsis(w, lines)
	fmt.Fprintf(w, "\n%s\n\nflags:\n%s\ncommands:\n", wrap(description, helpWidth, ""), flagUsages(fs))
	writeCommandList(w, subcommands(""))
	fmt.Fprintf(w, "  (boxrun help COMMAND, or boxrun COMMAND --help, tells more)\n\nexamples:\n")
	for _, e := range rootExamples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintf(w, "\npolicy lookup, nearest first (a nearer definition replaces a farther one):\n")
	for i, l := range lookup {
		writeColumns(w, fmt.Sprintf("%d.", i+1), l, 2)
	}
	fmt.Fprintf(w, "\nenvironment:\n")
	writeTable(w, environment)
	fmt.Fprintf(w, "\nthe command gets:\n")
	writeTable(w, commandEnvironment)
	fmt.Fprintf(w, "\nexit status:\n")
	writeTable(w, exitStatuses)
}

// writeHelp prints the help of command name: from commands() when it is
// there, else usage; then the flags of fs.
func writeHelp(w io.Writer, name, usage string, fs *pflag.FlagSet) {
	c, n, ok := lookupCommand(strings.Fields(name))
	if !ok || n != len(strings.Fields(name)) {
		fmt.Fprintf(w, "%s\n\nflags:\n%s", usage, flagUsages(fs))
		return
	}
	writeSynopsis(w, c.synopsis)
	fmt.Fprintf(w, "\n%s\n", wrap(capitalize(c.summary)+".", helpWidth, ""))
	if subs := subcommands(c.name); len(subs) > 0 {
		fmt.Fprintf(w, "\ncommands:\n")
		writeCommandList(w, subs)
	}
	fmt.Fprintf(w, "\nflags:\n%s", flagUsages(fs))
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func writeSynopsis(w io.Writer, lines []string) {
	for i, l := range lines {
		lead := "usage: "
		if i > 0 {
			lead = "       "
		}
		fmt.Fprintf(w, "%sboxrun %s\n", lead, l)
	}
}

func writeCommandList(w io.Writer, cs []command) {
	rows := make([]envVar, len(cs))
	for i, c := range cs {
		rows[i] = envVar{c.name, c.summary}
	}
	writeTable(w, rows)
}

// writeTable prints two columns, the second wrapped under itself.
func writeTable(w io.Writer, rows []envVar) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	for _, r := range rows {
		writeColumns(w, r.name, r.meaning, width)
	}
}

// writeColumns prints "  left   right", right wrapped to helpWidth and
// indented under itself; a left wider than width gets right on its own line.
func writeColumns(w io.Writer, left, right string, width int) {
	indent := strings.Repeat(" ", 2+width+3)
	if len(left) > width {
		fmt.Fprintf(w, "  %s\n%s\n", left, wrap(right, helpWidth, indent))
		return
	}
	text := wrap(right, helpWidth, indent)
	fmt.Fprintf(w, "  %-*s   %s\n", width, left, strings.TrimPrefix(text, indent))
}

// wrap breaks text into lines of at most width columns, each starting with
// indent.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// flagDoc is one flag as help and the man page show it.
type flagDoc struct {
	names string // "-p, --policy NAME"
	usage string // with "(default tests)" when it has one
}

// metavars name the value of flags whose usage gives it no name in
// backquotes. Read-only.
var metavars = map[string]string{
	"policy":      "NAME",
	"policy-file": "FILE",
	"set":         "KEY=VALUE",
	"backend":     "BACKEND",
	"report-json": "PATH",
	"shim":        "DIR",
	"format":      "FORMAT",
}

// flagDocs lists the flags of fs, sorted, without the hidden ones. A
// boolean shows no value: --quiet, not --quiet[=true|false].
func flagDocs(fs *pflag.FlagSet) []flagDoc {
	var docs []flagDoc
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		name, usage := pflag.UnquoteUsage(f)
		if m, ok := metavars[f.Name]; ok && !strings.Contains(f.Usage, "`") {
			name = m
		}
		names := "    --" + f.Name
		if f.Shorthand != "" {
			names = "-" + f.Shorthand + ", --" + f.Name
		}
		if !takesValue(f) {
			name = ""
		}
		if name != "" {
			names += " " + strings.ToUpper(name)
		}
		switch f.DefValue {
		case "", "false", "[]", "0":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		docs = append(docs, flagDoc{names, usage})
	})
	return docs
}

// takesValue reports whether f needs a value: every flag but a boolean.
func takesValue(f *pflag.Flag) bool {
	return f.Value.Type() != "bool" && f.NoOptDefVal == ""
}

// flagUsages formats the flags of fs in two columns.
func flagUsages(fs *pflag.FlagSet) string {
	var b strings.Builder
	docs := flagDocs(fs)
	width := 0
	for _, d := range docs {
		if len(d.names) <= 26 {
			width = max(width, len(d.names))
		}
	}
	for _, d := range docs {
		writeColumns(&b, d.names, d.usage, width)
	}
	return b.String()
}

// runHelp implements `boxrun help [COMMAND]` and `boxrun help --man`.
func runHelp(_ context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("help", "usage: boxrun help [COMMAND]", out)
	man := fs.Bool("man", false, "print the manual page boxrun(1) as roff (man -l - shows it)")
	if code, done := parseSubcommand(fs, "help", args, "", out); done {
		return code
	}
	if *man {
		if !noArguments(fs, "help --man", "boxrun help --man | man -l -", out) {
			return exitBoxrunFailed
		}
		writeMan(stdout)
		return 0
	}
	if fs.NArg() == 0 {
		writeRootHelp(stdout, rootFlags())
		return 0
	}
	c, n, ok := lookupCommand(fs.Args())
	if !ok || n != fs.NArg() {
		if meant := mistypedCommand(fs.Args()); meant != "" && len(strings.Fields(meant)) == fs.NArg() {
			out.errorf("help: unknown command %q (did you mean %s?)", strings.Join(fs.Args(), " "), meant)
		} else {
			out.errorf("help: unknown command %q", strings.Join(fs.Args(), " "))
		}
		out.hintf("boxrun help lists the commands")
		return exitBoxrunFailed
	}
	writeHelp(stdout, c.name, "", describeFlags(c))
	return 0
}
