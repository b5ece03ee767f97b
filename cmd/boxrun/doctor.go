package main

import (
	"context"
	"fmt"
	"io"

	"github.com/boxrun/boxrun/doctor"
	"github.com/boxrun/boxrun/protect"
)

// doctorReport is `boxrun doctor --json`.
type doctorReport struct {
	// OK is true when the policy can be enforced fully (no ✗).
	OK     bool           `json:"ok"`
	Policy string         `json:"policy"`
	Checks []doctor.Check `json:"checks"`
}

// runDoctor implements `boxrun doctor [--json]`: one line per check, the
// fix under each ✗ and !; exit 0 when the policy (-p, default tests) can be
// enforced fully here, 1 when it cannot, 125 on bad input.
func runDoctor(ctx context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("doctor", "usage: boxrun doctor [--json] [-p POLICY]", out)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	fs.StringVarP(&o.policyName, "policy", "p", o.policyName, "judge the machine against this policy")
	fs.StringVarP(&o.policyFile, "policy-file", "f", o.policyFile, "read policies from this file first")
	if code, done := parseSubcommand(fs, "doctor", args, "", out); done {
		return code
	}
	if !noArguments(fs, "doctor", "usage: boxrun doctor [--json]", out) {
		return exitBoxrunFailed
	}
	st, env, loaded := stackForMachine(o, out)
	if !loaded {
		return exitBoxrunFailed
	}
	pol, err := st.Resolve(o.policyName, o.sets, env)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	for _, ig := range pol.Ignored {
		out.warnf("%s", ig)
	}
	groups, err := protect.ResolveGroups(st, pol.Protect, env)
	if err != nil {
		out.errorf("%v", err)
		return exitBoxrunFailed
	}
	m := doctor.LiveMachine()
	defer m.Close()
	checks := doctor.Run(ctx, m, doctor.Options{Policy: pol, Groups: groups, Others: protect.OtherGroupNames(st, pol.Protect)})
	ok := doctor.OK(checks)
	if *asJSON {
		if err := writeJSON(stdout, doctorReport{OK: ok, Policy: pol.Name, Checks: checks}); err != nil {
			out.errorf("writing the checks: %v", err)
			return 1
		}
	} else {
		printChecks(stdout, checks)
		if ok {
			out.infof("policy %q can be enforced here", pol.Name)
		} else {
			out.errorf("policy %q cannot be enforced fully here: see the ✗ lines", pol.Name)
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// printChecks prints "✓ summary", with "  fix: ..." and details indented.
func printChecks(w io.Writer, checks []doctor.Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%s %s\n", c.Status.Symbol(), c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
		if c.Fix != "" && c.Status != doctor.CheckOK {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
	}
}
