package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/sandbox"
)

// runPolicy implements `boxrun policy list|show NAME|check [FILE]`.
func runPolicy(o options, args []string, stdout io.Writer, out *printer) int {
	if len(args) == 0 {
		out.errorf("policy: missing subcommand")
		out.hintf("use boxrun policy list, show NAME, check [FILE] or export NAME --format oci|systemd|k8s|json")
		return exitBoxrunFailed
	}
	switch args[0] {
	case "list":
		return policyList(o, stdout, out)
	case "show":
		name := o.policyName
		if len(args) > 1 {
			name = args[1]
		}
		return policyShow(o, name, stdout, out)
	case "check":
		return policyCheck(o, args[1:], stdout, out)
	case "export":
		return policyExport(o, args[1:], stdout, out)
	default:
		out.errorf("policy: unknown subcommand %q", args[0])
		out.hintf("use boxrun policy list, show NAME, check [FILE] or export NAME --format oci|systemd|k8s|json")
		return exitBoxrunFailed
	}
}

func policyList(o options, stdout io.Writer, out *printer) int {
	st, err := loadStack(o, out)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
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

// policyShow prints the resolved values of one policy, in bytes and in a
// readable form, with where each came from.
func policyShow(o options, name string, stdout io.Writer, out *printer) int {
	o.policyName = name
	_, pol, err := resolvePolicy(o, out)
	if err != nil {
		policyError(err, out)
		return exitBoxrunFailed
	}
	mem, _ := sandbox.MemoryAvailable()
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
func policyCheck(o options, files []string, stdout io.Writer, out *printer) int {
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
func policyExport(o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("policy export", "usage: boxrun policy export [NAME] [--format "+strings.Join(policy.ExportFormats, "|")+"]", out)
	format := fs.String("format", policy.FormatJSON, "json, oci (runtime-spec linux.resources), systemd (drop-in) or k8s (container resources)")
	if code, done := parseSubcommand(fs, "policy export", args, "", out); done {
		return code
	}
	if fs.NArg() > 1 {
		out.errorf("policy export: one policy at a time, not %q", strings.Join(fs.Args(), " "))
		return exitBoxrunFailed
	}
	if fs.NArg() == 1 {
		o.policyName = fs.Arg(0)
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
