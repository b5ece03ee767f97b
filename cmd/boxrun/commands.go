package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/boxrun/boxrun/internal/suggest"
	"github.com/boxrun/boxrun/policy"
)

// summary is what boxrun does, in one line: the first line of --help and
// the NAME of the man page.
const summary = "run a command in a cgroup v2 box with limits from a named policy"

// description is the longer account, for --help and the man page.
const description = "boxrun runs COMMAND — a test suite, a build — and every process it starts " +
	"inside a cgroup v2 box (a transient systemd scope, or a directory of a delegated cgroup) " +
	"whose memory, process, CPU and I/O limits come from a named policy, so that a runaway " +
	"suite is throttled or killed inside its box instead of taking the editor and the desktop " +
	"with it. The command runs as before: same output, exit status and Ctrl-C."

// command is a subcommand of boxrun: what its help, the man page and the
// shell completion say of it. Its flags are the ones its runner defines;
// describeFlags gets them without running it.
type command struct {
	name     string   // "gc", "policy list"
	synopsis []string // each line after "boxrun "
	summary  string   // one line, lowercase
	examples []string // command lines, without "$ "
	// globals are the flags of a run that may come before the name and
	// apply to it (-q applies to all).
	globals []string
	// operands is what its arguments are, for completion: one of the
	// operand* kinds, or the words themselves.
	operands []string
	hidden   bool // left out of the lists (still has --help)
	run      func(ctx context.Context, o options, args []string, stdout io.Writer, out *printer) int
}

// Kinds of operands, for completion.
const (
	operandPolicy  = "<policy>"
	operandFile    = "<file>"
	operandGroup   = "<group>"
	operandCommand = "<command>" // a boxrun command name, for help
)

// policyGlobals are the flags of a run that choose and change a policy.
var policyGlobals = []string{"policy", "policy-file", "set"}

// commands lists boxrun's subcommands, groups ("policy") before their
// members. A function, not a variable: the runners refer back to it.
func commands() []command {
	installCmd := func(install bool, verb string) command {
		return command{
			name:     verb,
			synopsis: []string{verb + " user-unit", verb + " cargo-hook [--shim DIR | --config [--global]]", verb + " signal-tracer"},
			summary:  verb + " the editor-protecting user unit, the hook that boxes cargo, or (as root) the service that names signal senders",
			operands: []string{"user-unit", "cargo-hook", "signal-tracer"},
			examples: []string{"boxrun " + verb + " user-unit", "boxrun " + verb + " cargo-hook --config"},
			run: func(ctx context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
				return runInstall(ctx, install, args, stdout, out)
			},
		}
	}
	return []command{
		{
			name:     "policy",
			synopsis: []string{"policy list|show|check|export [FLAGS] [ARGS]"},
			summary:  "list, show, check and export policies",
			globals:  policyGlobals,
			run:      runPolicy,
		},
		{
			name:     "policy list",
			synopsis: []string{"policy list [-f FILE] [--json]"},
			summary:  "list the policies of the lookup, with where each is defined",
			globals:  []string{"policy-file"},
			examples: []string{"boxrun policy list", "boxrun policy list -f ci.toml --json"},
			run:      policyList,
		},
		{
			name:     "policy show",
			synopsis: []string{"policy show [NAME] [-f FILE] [--set KEY=VALUE]... [--json]"},
			summary:  "show the resolved values of a policy (default tests) and where each came from",
			globals:  policyGlobals,
			operands: []string{operandPolicy},
			examples: []string{"boxrun policy show build", "boxrun policy show tests --set memory.max=4G"},
			run:      policyShow,
		},
		{
			name:     "policy check",
			synopsis: []string{"policy check [FILE...] [-f FILE] [--strict]"},
			summary:  "parse policy files (default: the lookup) and resolve each policy, reporting every error, and as warnings what a run would ignore or is probably a mistake",
			globals:  []string{"policy-file"},
			operands: []string{operandFile},
			examples: []string{"boxrun policy check .boxrun.toml", "boxrun policy check --strict ~/.config/boxrun/policies.toml"},
			run:      policyCheck,
		},
		{
			name:     "policy export",
			synopsis: []string{"policy export [NAME] [--format " + strings.Join(policy.ExportFormats, "|") + "] [-f FILE] [--set KEY=VALUE]..."},
			summary:  "print a resolved policy in another tool's terms",
			globals:  policyGlobals,
			operands: []string{operandPolicy},
			examples: []string{"boxrun policy export tests --format systemd", "boxrun policy export tests --format k8s"},
			run:      policyExport,
		},
		{
			name:     "status",
			synopsis: []string{"status [--json]"},
			summary:  "list the boxes running now, with the boxrun that owns each",
			examples: []string{"boxrun status --json"},
			run: func(ctx context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
				return runStatus(ctx, args, stdout, out)
			},
		},
		{
			name:     "last",
			synopsis: []string{"last [--json]"},
			summary:  "print the report of your newest run, also when boxrun was killed before it finished (its guard wrote it)",
			examples: []string{"boxrun last", "boxrun last --json"},
			run:      runLast,
		},
		{
			name:     "gc",
			synopsis: []string{"gc [--dry-run] [--kept]"},
			summary:  "remove the boxes whose boxrun is gone",
			examples: []string{"boxrun gc --dry-run"},
			run: func(ctx context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
				return runGC(ctx, args, stdout, out)
			},
		},
		{
			name:     "protect",
			synopsis: []string{"protect [GROUP...] [--dry-run] [--json] [--system] [--watch]", "protect --undo"},
			summary:  "shield the editor (the policy's protect groups) from the OOM killer and reclaim",
			globals:  slices.Concat(policyGlobals, []string{"system"}),
			operands: []string{operandGroup},
			examples: []string{"boxrun protect --dry-run", "boxrun protect --undo"},
			run:      runProtect,
		},
		{
			name:     "doctor",
			synopsis: []string{"doctor [--json] [-p POLICY]"},
			summary:  "check whether a policy can be enforced here, and say how to fix what is missing",
			globals:  policyGlobals,
			examples: []string{"boxrun doctor", "boxrun doctor -p strict --json"},
			run:      runDoctor,
		},
		installCmd(true, "install"),
		installCmd(false, "uninstall"),
		{
			name:     "signal-tracer",
			synopsis: []string{"signal-tracer"},
			summary:  "record who sends the fatal signals to processes in boxes, for the reports (root; the service boxrun install signal-tracer sets up runs it)",
			examples: []string{"sudo boxrun install signal-tracer"},
			run:      runSignalTracer,
		},
		{
			name:     "help",
			synopsis: []string{"help [COMMAND]"},
			summary:  "show the help of boxrun or of one of its commands",
			operands: []string{operandCommand},
			examples: []string{"boxrun help policy show"},
			run:      runHelp,
		},
		{
			name:     "version",
			synopsis: []string{"version"},
			summary:  "print boxrun's version and the revision it was built from",
			run:      runVersion,
		},
		{
			name:     "completion",
			synopsis: []string{"completion bash|zsh|fish"},
			summary:  "print the shell completion script",
			operands: []string{"bash", "zsh", "fish"},
			examples: []string{"boxrun completion bash > ~/.local/share/bash-completion/completions/boxrun"},
			run:      runCompletion,
		},
		{
			name:     completeCommand,
			synopsis: []string{completeCommand + " WORD..."},
			summary:  "print the completions of a command line (used by the completion scripts)",
			hidden:   true,
			run:      runComplete,
		},
	}
}

// lookupCommand finds the command that args start with, the longest name
// first ("policy list" before "policy"), and how many words it took.
func lookupCommand(args []string) (command, int, bool) {
	var best command
	n := 0
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(words) > n && len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			best, n = c, len(words)
		}
	}
	return best, n, n > 0
}

// mistypedCommand returns the name of the command args probably meant,
// when their first words are not one but near one (internal/suggest):
// "policy list" for "polcy list", for "policy lsit" and for "polcy". It
// returns "" when args name a command already, or nothing is near. Only
// visible commands are suggested, and only one: two equally near are no
// suggestion.
func mistypedCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	nearest := func(word, parent string) (string, bool) {
		var names []string
		for _, c := range subcommands(parent) {
			names = append(names, c.name[strings.LastIndex(c.name, " ")+1:])
		}
		if slices.Contains(names, word) {
			return word, true
		}
		m := suggest.Closest(word, names)
		if len(m) != 1 {
			return "", false
		}
		return m[0], true
	}
	top, ok := nearest(args[0], "")
	if !ok {
		return ""
	}
	words := []string{top}
	if len(args) > 1 && len(subcommands(top)) > 0 {
		if sub, ok := nearest(args[1], top); ok {
			words = append(words, sub)
		}
	}
	if slices.Equal(words, args[:len(words)]) {
		return "" // nothing was mistyped
	}
	return strings.Join(words, " ")
}

// subcommands lists the visible commands directly under parent ("" for
// the top level).
func subcommands(parent string) []command {
	var out []command
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		if before, _, found := strings.Cut(c.name, " "); parent == "" && !found || found && before == parent {
			out = append(out, c)
		}
	}
	return out
}
