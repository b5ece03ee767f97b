package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/policy"
)

// completeCommand is the hidden command the completion scripts call with
// the words of the command line: the logic is here, once, and the scripts
// only hand words over and the answer to their shell.
const completeCommand = "__complete"

//go:embed completion/boxrun.bash
var bashCompletion string

//go:embed completion/boxrun.zsh
var zshCompletion string

//go:embed completion/boxrun.fish
var fishCompletion string

// completionScripts are the scripts of `boxrun completion SHELL`.
var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

// runCompletion implements `boxrun completion bash|zsh|fish`.
func runCompletion(_ context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("completion", "usage: boxrun completion bash|zsh|fish", out)
	if code, done := parseSubcommand(fs, "completion", args, "", out); done {
		return code
	}
	script, ok := completionScripts[fs.Arg(0)]
	if fs.NArg() != 1 || !ok {
		out.errorf("completion: which shell? bash, zsh or fish, not %q", strings.Join(fs.Args(), " "))
		out.hintf("boxrun completion bash > ~/.local/share/bash-completion/completions/boxrun")
		return exitBoxrunFailed
	}
	fmt.Fprint(stdout, script)
	return 0
}

// runComplete implements `boxrun __complete -- WORD...`: WORDs are the
// words after boxrun up to the one being completed, as the shell split
// them (bash splits --policy=x into --policy, =, x). It prints the
// candidates, one a line, then a line of directives (see completion).
func runComplete(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand(completeCommand, "usage: boxrun __complete -- WORD...", out)
	fs.SetInterspersed(false)
	if code, done := parseSubcommand(fs, completeCommand, args, "", out); done {
		return code
	}
	words := fs.Args()
	if len(words) == 0 {
		words = []string{""}
	}
	c := complete(words, func(policyFile string) *policy.Stack {
		o.policyFile = policyFile
		st, err := loadStack(o, &printer{w: io.Discard, quiet: true})
		if err != nil {
			return nil
		}
		return st
	})
	for _, w := range c.words {
		fmt.Fprintln(stdout, w)
	}
	fmt.Fprintln(stdout, c.directives())
	return 0
}

// completion is what to offer for the word being completed.
type completion struct {
	words   []string
	files   bool // also file names
	dirs    bool // also directory names
	nospace bool // the candidates continue (KEY=): no space after them
	// command, when >= 0, is the index of the word where the wrapped
	// command starts: the shell completes from there as a command line.
	command int
}

// directives is the last line of __complete: ":" and the directives,
// space-separated: files, dirs, nospace, command=N.
func (c completion) directives() string {
	var d []string
	if c.files {
		d = append(d, "files")
	}
	if c.dirs {
		d = append(d, "dirs")
	}
	if c.nospace {
		d = append(d, "nospace")
	}
	if c.command >= 0 {
		d = append(d, fmt.Sprintf("command=%d", c.command))
	}
	return ":" + strings.Join(d, " ")
}

// flagValues are the values of flags that have a fixed set. Read-only.
var flagValues = map[string][]string{
	"backend": {box.KindAuto, box.KindSystemd, box.KindCgroupfs, box.KindNone},
	"format":  policy.ExportFormats,
}

// complete works out the completion of the last of words, given the ones
// before it. stack loads the policy lookup (with -f FILE when given); it
// is only called when policy names or groups are wanted.
func complete(raw []string, stack func(policyFile string) *policy.Stack) completion {
	words, at, split := glueEquals(raw)
	cur := words[len(words)-1]
	l, wrapped := readLine(words[:len(words)-1], at)
	if wrapped >= 0 {
		return completion{command: wrapped}
	}
	c := completion{command: -1}
	policyNames := func() []string {
		var names []string
		if st := stack(l.policyFile); st != nil {
			for _, e := range st.Names() {
				names = append(names, e.Name)
			}
		}
		return names
	}
	prefix := ""
	switch {
	case l.pending != nil:
		c.flagValues(l.pending, policyNames)
	case strings.HasPrefix(cur, "--") && strings.Contains(cur, "=") && !l.dashdash:
		name, value, _ := strings.Cut(cur[2:], "=")
		if f := l.fs.Lookup(name); f != nil {
			c.flagValues(f, policyNames)
			if c.files || c.dirs {
				return c // the shell completes the file after the =
			}
			if !split {
				prefix = "--" + name + "="
			}
			cur = value
		}
	case strings.HasPrefix(cur, "-") && !l.dashdash:
		c.flags(l.fs, !strings.HasPrefix(cur, "--"))
	case l.cmd == nil:
		// boxrun's commands, or a command to run without --.
		for _, s := range subcommands("") {
			c.words = append(c.words, s.name)
		}
		c.command = at[len(words)-1]
	case len(subcommands(l.cmd.name)) > 0:
		for _, s := range subcommands(l.cmd.name) {
			c.words = append(c.words, strings.TrimPrefix(s.name, l.cmd.name+" "))
		}
	default:
		c.operands(l.cmd, l.positional, policyNames, stack(l.policyFile))
	}
	c.words = filterPrefix(c.words, cur, prefix)
	return c
}

// cmdLine is what the words before the one being completed say.
type cmdLine struct {
	fs         *pflag.FlagSet // the flags of cmd, boxrun's before it
	cmd        *command       // the boxrun command, nil before one
	policyFile string         // the value of -f, "" when not given
	positional int            // the operands of cmd before the word
	dashdash   bool           // the word is after "--"
	pending    *pflag.Flag    // a flag whose value is the word
}

// readLine reads prev, the words before the one being completed (at gives
// the index of each among the shell's words). wrapped is the index of the
// shell's word where a wrapped command starts when the word is in one,
// else -1.
func readLine(prev []string, at []int) (l cmdLine, wrapped int) {
	l.fs = rootFlags()
	for i := 0; i < len(prev); i++ {
		w := prev[i]
		switch {
		case w == "--" && !l.dashdash:
			if l.cmd == nil {
				return l, at[i+1]
			}
			l.dashdash = true
		case strings.HasPrefix(w, "-") && len(w) > 1 && !l.dashdash:
			f, value, hasValue := lookupFlag(l.fs, w)
			if f == nil || !takesValue(f) {
				continue
			}
			if !hasValue {
				if i+1 == len(prev) {
					l.pending = f
					continue
				}
				i++
				value = prev[i]
			}
			if f.Name == "policy-file" {
				l.policyFile = value
			}
		case l.cmd == nil:
			c, n, ok := lookupCommand(prev[i:])
			if !ok {
				return l, at[i]
			}
			l.cmd, l.fs = &c, describeFlags(c)
			i += n - 1
		default:
			if sub, _, ok := lookupCommand(slices.Concat(strings.Fields(l.cmd.name), prev[i:i+1])); ok && sub.name != l.cmd.name {
				l.cmd, l.fs = &sub, describeFlags(sub) // policy list
				continue
			}
			l.positional++
		}
	}
	return l, -1
}

// flagValues fills c with the candidates for the value of flag f.
func (c *completion) flagValues(f *pflag.Flag, policyNames func() []string) {
	switch f.Name {
	case "policy":
		c.words = policyNames()
	case "policy-file", "report-json":
		c.files = true
	case "shim":
		c.dirs = true
	case "set":
		for _, k := range policy.Keys() {
			c.words = append(c.words, k+"=")
		}
		c.nospace = true
	default:
		c.words = flagValues[f.Name]
	}
}

// flags fills c with the flags of fs, and their shorthands when short.
func (c *completion) flags(fs *pflag.FlagSet, short bool) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		c.words = append(c.words, "--"+f.Name)
		if f.Shorthand != "" && short {
			c.words = append(c.words, "-"+f.Shorthand)
		}
	})
}

// operands fills c with the candidates for operand n of cmd.
func (c *completion) operands(cmd *command, n int, policyNames func() []string, st *policy.Stack) {
	if len(cmd.operands) == 0 {
		return
	}
	switch cmd.operands[0] {
	case operandPolicy:
		if n == 0 {
			c.words = policyNames()
		}
	case operandFile:
		c.files = true
	case operandGroup:
		if st != nil {
			c.words = slices.Sorted(maps.Keys(st.ProtectGroups()))
		}
	case operandCommand:
		for _, s := range subcommands("") {
			c.words = append(c.words, s.name)
		}
	default:
		if n == 0 {
			c.words = cmd.operands
		}
	}
}

// filterPrefix keeps the words that start with cur, each with prefix put
// before it.
func filterPrefix(words []string, cur, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, cur) {
			out = append(out, prefix+w)
		}
	}
	return out
}

// lookupFlag finds the flag of a word that starts with "-": --name,
// --name=value, -x, -xVALUE or a group of shorthands (-qp), whose last
// flag is the one that may take a value.
func lookupFlag(fs *pflag.FlagSet, w string) (f *pflag.Flag, value string, hasValue bool) {
	if name, ok := strings.CutPrefix(w, "--"); ok {
		name, value, hasValue = strings.Cut(name, "=")
		return fs.Lookup(name), value, hasValue
	}
	for i := 1; i < len(w); i++ {
		f = fs.ShorthandLookup(w[i : i+1])
		if f != nil && takesValue(f) {
			return f, w[i+1:], i+1 < len(w)
		}
	}
	return f, "", false
}

// glueEquals undoes bash's split of --flag=value into --flag, = and value:
// it returns the words glued back, the index in raw of each, and whether
// the last word was glued from pieces (bash then inserts only what follows
// the "=").
func glueEquals(raw []string) (words []string, at []int, split bool) {
	for i := 0; i < len(raw); i++ {
		w := raw[i]
		if w == "=" && len(words) > 0 && strings.HasPrefix(words[len(words)-1], "--") && !strings.Contains(words[len(words)-1], "=") {
			words[len(words)-1] += "="
			split = i == len(raw)-1
			if i+1 < len(raw) {
				i++
				words[len(words)-1] += raw[i]
				split = i == len(raw)-1
			}
			continue
		}
		words = append(words, w)
		at = append(at, i)
		split = false
	}
	return words, at, split
}
