package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/sandbox"
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
	if fs.NArg() == 0 {
		out.errorf("policy: missing subcommand")
	} else {
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
	_, pol, err := resolvePolicy(o, out)
	if err != nil {
		policyError(err, out)
		return exitBoxrunFailed
	}
	mem, _ := sandbox.MemoryAvailable()
	if *asJSON {
		if err := pol.Export(stdout, policy.FormatJSON, policy.Env{MemoryBytes: mem}); err != nil {
			out.errorf("policy show: %v", err)
			return exitBoxrunFailed
		}
		return 0
	}
	fmt.Fprintf(stdout, "policy %s", pol.Name)
	if pol.Description != "" {
		fmt.Fprintf(stdout, ": %s", pol.Description)
	}
	fmt.Fprintf(stdout, "\n(percentages of %s available memory)\n", policy.FormatBytes(mem))
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
// resolves each of their policies, reporting every problem.
func policyCheck(_ context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy check", "", out)
	policyFlags(fs, &o, false, false)
	if code, done := parseSubcommand(fs, "policy check", args, "", out); done {
		return code
	}
	files := fs.Args()
	if len(files) > 0 && o.policyFile != "" {
		files = append([]string{o.policyFile}, files...) // -f is one more file to check
	}
	var st *policy.Stack
	if len(files) > 0 {
		st = &policy.Stack{}
		for _, f := range files {
			pf, err := readPolicyFile(f, out)
			if err != nil {
				out.errorf("%v", err)
				return 1
			}
			st.Files = append(st.Files, pf)
		}
		st.Files = append(st.Files, policy.Builtin())
	} else {
		var err error
		if st, err = loadStack(o, out); err != nil {
			out.errorf("%v", err)
			return 1
		}
	}
	mem, err := sandbox.MemoryAvailable()
	if err != nil {
		mem = 16 << 30 // only to check percentages resolve
	}
	bad := 0
	n := 0
	warned := map[string]bool{}
	for _, e := range st.Names() {
		if len(files) > 0 && e.Origin.File == policy.OriginBuiltin {
			continue // check what the user wrote
		}
		n++
		r, err := st.Resolve(e.Name, nil, policy.Env{MemoryBytes: mem})
		if err != nil {
			out.errorf("%v", err)
			bad++
			continue
		}
		for _, ig := range r.Ignored {
			if w := ig.String(); !warned[w] { // once, though many policies extend it
				warned[w] = true
				out.warnf("%s", w)
			}
		}
	}
	if bad > 0 {
		return 1
	}
	where := "the policy lookup"
	if len(files) > 0 {
		where = strings.Join(files, ", ")
	}
	fmt.Fprintf(stdout, "ok: %d policies in %s\n", n, where)
	return 0
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
	_, pol, err := resolvePolicy(o, out)
	if err != nil {
		policyError(err, out)
		return exitBoxrunFailed
	}
	mem, _ := sandbox.MemoryAvailable()
	if err := pol.Export(stdout, *format, policy.Env{MemoryBytes: mem}); err != nil {
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
// the name is unknown.
func policyError(err error, out *printer) {
	out.errorf("%v", err)
	if errors.Is(err, policy.ErrUnknownPolicy) {
		out.hintf("boxrun policy list shows the policies defined here")
	}
}
