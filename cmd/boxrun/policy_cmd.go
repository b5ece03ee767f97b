package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/policy"
)

// runPolicy implements `boxrun policy` without one of its subcommands
// (which lookupCommand finds first): it says which there are.
func runPolicy(_ context.Context, _ options, args []string, _ io.Writer, out *printer) int {
	fs := newSubcommand("policy", "", out)
	fs.SetInterspersed(false)
	var names []string
	for _, c := range subcommands("policy") {
		names = append(names, c.name)
	}
	hint := "use " + strings.Join(names, ", ") + "; their flags go after them (boxrun policy list -f FILE)"
	if code, done := parseSubcommand(fs, "policy", args, hint, out); done {
		return code
	}
	switch meant := mistypedCommand(append([]string{"policy"}, fs.Args()...)); {
	case fs.NArg() == 0:
		out.errorf("policy: missing subcommand")
	case meant != "":
		out.errorf("policy: unknown subcommand %q (did you mean %s?)", fs.Arg(0), meant)
	default:
		out.errorf("policy: unknown subcommand %q", fs.Arg(0))
	}
	out.hintf("%s", hint)
	return exitBoxrunFailed
}

// policyListEntry is one policy in `boxrun policy list --json`.
type policyListEntry struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	DefinedIn   string   `json:"defined_in"`
	Project     bool     `json:"project"`
	Replaces    []string `json:"replaces"`
}

// policyList implements `boxrun policy list`.
func policyList(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy list", "", out)
	policyFlags(fs, &o, false, false)
	asJSON := fs.Bool("json", false, "print the policies as a JSON array")
	if code, done := parseSubcommand(fs, "policy list", args, "", out); done {
		return code
	}
	if tooManyArguments(fs, "policy list", 0, out) {
		return exitBoxrunFailed
	}
	st, err := loadStack(o, out)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	if *asJSON {
		list := []policyListEntry{}
		for _, e := range st.Names() {
			le := policyListEntry{Name: e.Name, Description: e.Description, DefinedIn: e.Origin.String(), Project: e.Project, Replaces: []string{}}
			for _, s := range e.Shadowed {
				le.Replaces = append(le.Replaces, s.String())
			}
			list = append(list, le)
		}
		if err := writeJSON(stdout, list); err != nil {
			out.errorf("writing the policies: %v", err)
			return exitBoxrunFailed
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEFINED IN\tDESCRIPTION")
	for _, e := range st.Names() {
		where := e.Origin.String()
		if len(e.Shadowed) > 0 {
			var sh []string
			for _, s := range e.Shadowed {
				sh = append(sh, s.String())
			}
			if e.Project {
				where += " (a project file: may only tighten " + strings.Join(sh, ", ") + ")"
			} else {
				where += " (replaces " + strings.Join(sh, ", ") + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, where, e.Description)
	}
	tw.Flush()
	return 0
}

// policyNamed parses the flags of a subcommand that takes one policy
// (NAME, or -p) and sets o.policyName; done and code as parseSubcommand.
func policyNamed(fs *pflag.FlagSet, name string, o *options, args []string, out *printer) (code int, done bool) {
	policyFlags(fs, o, true, true)
	if code, done := parseSubcommand(fs, name, args, "", out); done {
		return code, true
	}
	if fs.NArg() > 1 {
		out.errorf("%s: one policy at a time, not %q", name, strings.Join(fs.Args(), " "))
		return exitBoxrunFailed, true
	}
	if fs.NArg() == 1 {
		o.policyName = fs.Arg(0)
	}
	return 0, false
}

// policyShow prints the resolved values of one policy, in bytes and in a
// readable form, with where each came from.
func policyShow(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy show", "", out)
	asJSON := fs.Bool("json", false, "print the resolved policy as JSON (as policy export --format json)")
	if code, done := policyNamed(fs, "policy show", &o, args, out); done {
		return code
	}
	pol, env, err := resolvePolicy(o, out)
	if err != nil {
		policyError(err, out)
		return exitBoxrunFailed
	}
	if *asJSON {
		if err := pol.Export(stdout, policy.FormatJSON, env); err != nil {
			out.errorf("policy show: %v", err)
			return exitBoxrunFailed
		}
		return 0
	}
	fmt.Fprintf(stdout, "policy %s", pol.Name)
	if pol.Description != "" {
		fmt.Fprintf(stdout, ": %s", pol.Description)
	}
	fmt.Fprintf(stdout, "\n(percentages of %s, the memory of the machine boxes live in)\n", policy.FormatBytes(env.MemoryBytes))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, row := range showRows(pol) {
		origin := ""
		if oo, ok := pol.Origins[row[0]]; ok {
			origin = oo.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", row[0], row[1], origin)
	}
	tw.Flush()
	for _, n := range pol.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, ig := range pol.Ignored {
		fmt.Fprintf(stdout, "note: %s\n", ig)
	}
	return 0
}

// showRows lists key and value of every field the policy sets, sorted.
func showRows(p *policy.Resolved) [][2]string {
	var rows [][2]string
	bytesRow := func(key string, v *uint64) {
		if v == nil {
			return
		}
		if *v == policy.Unlimited {
			rows = append(rows, [2]string{key, "max"})
			return
		}
		rows = append(rows, [2]string{key, fmt.Sprintf("%d (%s)", *v, policy.FormatBytes(*v))})
	}
	num := func(key string, v *uint64) {
		if v == nil {
			return
		}
		if *v == policy.Unlimited {
			rows = append(rows, [2]string{key, "max"})
			return
		}
		rows = append(rows, [2]string{key, strconv.FormatUint(*v, 10)})
	}
	bytesRow("memory.high", p.MemoryHigh)
	bytesRow("memory.max", p.MemoryMax)
	bytesRow("memory.swap.max", p.MemorySwapMax)
	rows = append(rows, [2]string{"memory.oom_group", strconv.FormatBool(p.MemoryOOMGroup)})
	rows = append(rows, [2]string{"memory.backpressure", strconv.FormatBool(p.MemoryBackpressure)})
	num("pids.max", p.PidsMax)
	num("cpu.weight", p.CPUWeight)
	if p.CPUQuotaPerSecUSec != nil {
		v := "max"
		if *p.CPUQuotaPerSecUSec != policy.Unlimited {
			v = fmt.Sprintf("%g%% (%d µs per second)", float64(*p.CPUQuotaPerSecUSec)/1e4, *p.CPUQuotaPerSecUSec)
		}
		rows = append(rows, [2]string{"cpu.max", v})
	}
	num("io.weight", p.IOWeight)
	if p.OOMScoreAdj != nil {
		rows = append(rows, [2]string{"oom_score_adj", strconv.Itoa(*p.OOMScoreAdj)})
	}
	rows = append(rows, [2]string{"leftovers", p.Leftovers})
	rows = append(rows, [2]string{"leftovers_grace", p.LeftoversGrace.Round(time.Millisecond).String()})
	if len(p.Protect) > 0 {
		rows = append(rows, [2]string{"protect", strings.Join(p.Protect, ", ")})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return rows
}

// policyCheck parses the given files (or every file of the lookup) and
// resolves each of their policies, reporting every problem: each error of
// each file (not only the first), then the settings a run would ignore
// (a positional FILE named .boxrun.toml is checked as a project file) and
// those that are probably mistakes (policy.Stack.Lint) as warnings. It
// exits 0 with warnings, 1 with errors, and with --strict 1 with warnings
// too.
func policyCheck(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy check", "", out)
	policyFlags(fs, &o, false, false)
	strict := fs.Bool("strict", false, "fail (exit 1) on warnings too: settings a run would ignore, values that are probably mistakes")
	if code, done := parseSubcommand(fs, "policy check", args, "", out); done {
		return code
	}
	files := fs.Args()
	if len(files) > 0 && o.policyFile != "" {
		files = append([]string{o.policyFile}, files...) // -f is one more file to check
	}
	where := "the policy lookup"
	if len(files) > 0 {
		where = strings.Join(files, ", ")
	}
	c := &checkReport{out: out, seen: map[string]bool{}}
	var st *policy.Stack
	if len(files) > 0 {
		st = &policy.Stack{}
		for i, f := range files {
			pf, err := readPolicyFile(f, out)
			if err != nil {
				c.errors(err)
				continue
			}
			if filepath.Base(f) == ".boxrun.toml" && (i > 0 || o.policyFile == "") {
				pf.Trust = policy.Project // as the lookup reads it; -f is trusted, as in a run
			}
			st.Files = append(st.Files, pf)
		}
		st.Files = append(st.Files, policy.Builtin())
		for _, ig := range st.Ignored() {
			c.warn(ig.String())
		}
	} else {
		var err error
		if st, err = loadStack(o, out); err != nil { // it warns of what is ignored
			c.errors(err)
		}
	}
	if c.nErrors > 0 {
		// A file that does not parse leaves the others' extends and
		// protect names dangling: their errors would be noise.
		return c.finish(stdout, where, 0, *strict)
	}
	env, err := machineEnv(o)
	if err != nil {
		env.MemoryBytes = 16 << 30 // only to check percentages resolve
	}
	n := 0
	for _, e := range st.Names() {
		if len(files) > 0 && e.Origin.File == policy.OriginBuiltin {
			continue // check what the user wrote
		}
		n++
		r, err := st.Resolve(e.Name, nil, env)
		if err != nil {
			c.errors(err)
			continue
		}
		for _, ig := range r.Ignored {
			c.warn(ig.String())
		}
	}
	for _, w := range st.Lint(env) {
		c.warn(w.String())
	}
	return c.finish(stdout, where, n, *strict)
}

// checkReport prints the problems policy check finds, each once (many
// policies extend the same broken one), and counts them.
type checkReport struct {
	out     *printer
	seen    map[string]bool
	nErrors int
}

// errors prints every problem err holds (all of a file's, see
// policy.Problems).
func (c *checkReport) errors(err error) {
	for _, e := range policy.Problems(err) {
		if msg := e.Error(); !c.seen[msg] {
			c.seen[msg] = true
			c.nErrors++
			c.out.errorf("%s", msg)
		}
	}
}

// warn prints a warning.
func (c *checkReport) warn(msg string) {
	if !c.seen[msg] {
		c.seen[msg] = true
		c.out.warnf("%s", msg)
	}
}

// finish says how the check went and returns its exit status: "ok: N
// policies in WHERE" on stdout, or an error line counting the problems.
func (c *checkReport) finish(stdout io.Writer, where string, n int, strict bool) int {
	warnings := c.out.warnings
	switch {
	case c.nErrors > 0:
		found := count(c.nErrors, "error")
		if warnings > 0 {
			found += " and " + count(warnings, "warning")
		}
		c.out.errorf("policy check: %s in %s", found, where)
		return 1
	case warnings > 0 && strict:
		c.out.errorf("policy check: %s in %s, which --strict counts as errors", count(warnings, "warning"), where)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s in %s", count(n, "policy"), where)
	if warnings > 0 {
		fmt.Fprintf(stdout, ", with %s", count(warnings, "warning"))
	}
	fmt.Fprintln(stdout)
	return 0
}

// count spells n things: "1 policy", "2 policies", "0 warnings".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		noun = strings.TrimSuffix(noun, "y") + "ie"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// policyExport implements `boxrun policy export NAME [--format F]`: the
// resolved policy in another tool's terms.
func policyExport(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy export", "", out)
	format := fs.String("format", policy.FormatJSON, "json, oci (runtime-spec linux.resources), systemd (drop-in) or k8s (container resources)")
	if code, done := policyNamed(fs, "policy export", &o, args, out); done {
		return code
	}
	if !slices.Contains(policy.ExportFormats, *format) {
		out.errorf("policy export: unknown format %q", *format)
		out.hintf("--format is one of %s", strings.Join(policy.ExportFormats, ", "))
		return exitBoxrunFailed
	}
	pol, env, err := resolvePolicy(o, out)
	if err != nil {
		policyError(err, out)
		return exitBoxrunFailed
	}
	if err := pol.Export(stdout, *format, env); err != nil {
		out.errorf("policy export: %v", err)
		return exitBoxrunFailed
	}
	if *format == policy.FormatOCI {
		// The systemd and k8s exports say this in a comment; JSON has
		// none, so it goes to stderr, where it does not spoil the output.
		if lost := pol.Unexpressed(*format); len(lost) > 0 {
			out.warnf("not expressible in the oci format: %s", strings.Join(lost, "; "))
		}
	}
	return 0
}

// policyError prints why a policy could not be resolved, with a hint when
// the name is unknown or a file has more problems than the line shows.
func policyError(err error, out *printer) {
	out.errorf("%v", err)
	var list policy.ParseErrors
	switch {
	case errors.Is(err, policy.ErrUnknownPolicy):
		out.hintf("boxrun policy list shows the policies defined here")
	case errors.As(err, &list):
		out.hintf("boxrun policy check %s lists every problem", list[0].File)
	}
}
