package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/protect"
)

// watchInterval is how often `protect --watch` looks for new processes.
const watchInterval = 2 * time.Second

// protectRunTimeout bounds the protection applied before a run.
const protectRunTimeout = 3 * time.Second

// protectOptions are the flags of `boxrun protect`.
type protectOptions struct {
	dryRun, asJSON, undo, system, watch bool
}

// runProtect implements `boxrun protect [GROUP...] [--dry-run] [--json]
// [--undo] [--system] [--watch]`: exit 0 when protection was applied
// (fully or partly, with warnings), 1 when it could not be attempted, 125
// on bad input.
func runProtect(ctx context.Context, o options, args []string, stdout io.Writer, out *printer) int {
	var po protectOptions
	fs := protectFlags(&o, &po, out)
	if code, done := parseSubcommand(fs, "protect", args, "run boxrun protect --help for the flags", out); done {
		return code
	}
	if !po.valid(fs.NArg(), out) {
		return exitBoxrunFailed
	}
	statePath := protect.DefaultStatePath(os.Getenv)
	if po.undo {
		return protectUndo(ctx, statePath, po, stdout, out)
	}
	st, env, ok := stackForMachine(o, out)
	if !ok {
		return exitBoxrunFailed
	}
	names, ok := protectNames(o, st, env, fs.Args(), out)
	if !ok {
		return exitBoxrunFailed
	}
	groups, err := protect.ResolveGroups(st, names, env)
	if err != nil {
		out.errorf("protect: %v", err)
		return exitBoxrunFailed
	}
	p := protect.NewProtector(protect.Options{
		Groups:    groups,
		Others:    protect.OtherGroupNames(st, names),
		UID:       protect.ProtectUID(os.Getenv),
		DryRun:    po.dryRun,
		System:    po.system,
		StatePath: statePath,
	})
	defer p.Close()
	if po.watch {
		return protectWatch(ctx, p, groups, po, stdout, out)
	}
	rep, err := p.Apply(ctx)
	if err != nil {
		out.errorf("protect: %v", err)
		return 1
	}
	return printProtect(stdout, rep, groups, po.asJSON, out)
}

// protectFlags is the flag set of `boxrun protect`, which sets po and the
// policy flags of o.
func protectFlags(o *options, po *protectOptions, out *printer) *pflag.FlagSet {
	fs := newSubcommand("protect", "usage: boxrun protect [GROUP...] [--dry-run] [--json] [--system] [--watch]\n"+
		"       boxrun protect --undo\n\nGROUPs default to the protect list of the policy (-p, default tests).", out)
	fs.BoolVar(&po.dryRun, "dry-run", false, "show what would be done; change nothing")
	fs.BoolVar(&po.asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&po.undo, "undo", false, "restore what boxrun protect changed")
	fs.BoolVar(&po.system, "system", o.system, "as root: also set MemoryLow on the slices above (user-UID.slice, user.slice) that cap the protection")
	fs.BoolVar(&po.watch, "watch", false, "stay running and protect new processes as they appear (every 2s)")
	fs.StringVarP(&o.policyName, "policy", "p", o.policyName, "protect the groups this policy names (its protect list)")
	fs.StringVarP(&o.policyFile, "policy-file", "f", o.policyFile, "read policies from this file first")
	fs.BoolVarP(&out.quiet, "quiet", "q", out.quiet, "print nothing of boxrun's own unless something went wrong")
	return fs
}

// valid reports whether the flags go together, given groups named on
// the command line; when not, it says why on out.
func (po protectOptions) valid(groups int, out *printer) bool {
	switch {
	case po.undo && (po.dryRun || po.watch || po.system || groups > 0):
		out.errorf("protect: --undo restores everything boxrun changed; it takes no group, --dry-run, --system or --watch")
		return false
	case po.watch && po.dryRun:
		out.errorf("protect: --watch and --dry-run cannot be used together")
		return false
	case po.system && os.Geteuid() != 0:
		out.errorf("protect: --system changes slices of the system manager and needs root")
		out.hintf("sudo boxrun protect --system")
		return false
	}
	return true
}

// protectNames returns the groups to protect: names, or when none is
// given the protect list of the policy (-p). false when there are none, or
// the policy does not resolve; out says why.
func protectNames(o options, st *policy.Stack, env policy.Env, names []string, out *printer) ([]string, bool) {
	if len(names) > 0 {
		return names, true
	}
	pol, err := st.Resolve(o.policyName, o.sets, env)
	if err != nil {
		policyError(err, out)
		return nil, false
	}
	if len(pol.Protect) == 0 {
		out.errorf("protect: policy %q protects no group (its protect list is empty)", pol.Name)
		out.hintf("name the groups to protect, e.g. boxrun protect %s", strings.Join(groupNames(st), " "))
		return nil, false
	}
	return pol.Protect, true
}

// printProtect prints what protection did to rep's processes of groups: as
// JSON, or as a table with what stands in its way.
func printProtect(stdout io.Writer, rep *protect.Report, groups []protect.Group, asJSON bool, out *printer) int {
	if asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			out.errorf("writing the result: %v", err)
			return 1
		}
		return 0
	}
	if len(rep.Processes) == 0 {
		out.infof("no process of yours belongs to %s", describeGroups(groups))
		return 0
	}
	printProtectTable(stdout, rep)
	explainProtect(rep, groups, out)
	return 0
}

// groupNames lists the groups defined in the stack.
func groupNames(st *policy.Stack) []string {
	var names []string
	for n := range st.ProtectGroups() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// describeGroups names groups with their process names, for messages.
func describeGroups(groups []protect.Group) string {
	var parts []string
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("group %s (%s)", g.Name, strings.Join(g.Match, ", ")))
	}
	return strings.Join(parts, " or ")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// oomColumn renders "300 → 100 (floor)".
func oomColumn(p protect.ProtectedProcess, dryRun bool) string {
	switch {
	case p.OOMTarget == nil:
		return fmt.Sprint(p.OOMBefore)
	case dryRun && p.OOMAfter != p.OOMBefore:
		return fmt.Sprintf("%d → %d?", p.OOMBefore, p.OOMAfter)
	case p.OOMAfter == p.OOMBefore && p.OOMFloor:
		return fmt.Sprintf("%d (floor)", p.OOMAfter)
	case p.OOMAfter == p.OOMBefore:
		return fmt.Sprint(p.OOMAfter)
	case p.OOMFloor:
		return fmt.Sprintf("%d → %d (floor)", p.OOMBefore, p.OOMAfter)
	}
	return fmt.Sprintf("%d → %d", p.OOMBefore, p.OOMAfter)
}

// needsRoot lists the cgroups only root can change to make protection
// effective.
func needsRoot(u protect.ProtectedUnit) string {
	var names []string
	for _, f := range u.Protection.Fixes {
		if f.NeedsRoot && !f.Applied {
			name := f.Unit
			if name == "" {
				name = f.Cgroup
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

// printProtectTable prints one row per process.
func printProtectTable(w io.Writer, rep *protect.Report) {
	units := map[string]protect.ProtectedUnit{}
	for _, u := range rep.Units {
		units[u.Cgroup] = u
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tGROUP\tUNIT\tOOM_SCORE_ADJ\tMEMORY.LOW\tEFFECTIVE\tNEEDS ROOT")
	for _, p := range rep.Processes {
		unit := p.Unit
		if unit == "" {
			unit = p.Cgroup
		}
		low, eff, root := "-", "-", "-"
		if u, ok := units[p.Cgroup]; ok {
			low = protect.FormatLow(u.Set)
			if rep.DryRun && u.Set != u.Before {
				low += "?"
			}
			eff = protect.FormatLow(u.Protection.Effective)
			root = needsRoot(u)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Comm, p.PID, p.Group, unit, oomColumn(p, rep.DryRun), low, eff, root)
	}
	tw.Flush()
}

// explainProtect says, on stderr, what limited the protection and how to
// lift it.
func explainProtect(rep *protect.Report, groups []protect.Group, out *printer) {
	if rep.DryRun {
		out.infof("dry run: nothing was changed; values marked ? are what boxrun would set (the kernel may stop oom_score_adj at a process's floor)")
	}
	for _, p := range rep.Problems {
		out.warnf("%s", p)
	}
	floors := map[string]int{}
	for _, p := range rep.Processes {
		if p.OOMFloor && p.OOMTarget != nil {
			floors[p.Group] = *p.OOMTarget
		}
	}
	for g, target := range floors {
		if os.Geteuid() == 0 {
			out.hintf("oom_score_adj of group %s stopped at the processes' floor; going lower (to %d) needs CAP_SYS_RESOURCE, which this root lacks (a container?)", g, target)
		} else {
			out.hintf("oom_score_adj of group %s stopped at the processes' floor; going lower (to %d) needs CAP_SYS_RESOURCE: sudo boxrun protect %s", g, target, g)
		}
	}
	for _, u := range rep.Units {
		name := u.Unit
		if name == "" {
			name = u.Cgroup
		}
		var applied, todo []string
		for _, f := range u.Protection.Fixes {
			if f.Applied {
				applied = append(applied, f.Command)
			} else {
				todo = append(todo, f.Command)
			}
		}
		for _, a := range applied {
			out.infof("done as root: %s", strings.TrimPrefix(a, "sudo "))
		}
		switch {
		case u.Protection.Note != "":
			out.infof("memory.low of %s: %s", name, u.Protection.Note)
		case len(todo) > 0:
			out.hintf("memory.low of %s is effective at %s of %s; to make it effective: %s", name,
				protect.FormatLow(u.Protection.Effective), protect.FormatLow(u.Protection.Want), strings.Join(todo, " && "))
		}
	}
}

// protectWatch re-applies protection as new processes appear, until
// SIGTERM or SIGINT; it tells systemd it is ready (Type=notify).
func protectWatch(ctx context.Context, p *protect.Protector, groups []protect.Group, po protectOptions, stdout io.Writer, out *printer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out.infof("watching for processes of %s every %v", describeGroups(groups), watchInterval)
	shown := map[string]bool{}
	once := func(key string) bool {
		if shown[key] {
			return false
		}
		shown[key] = true
		return true
	}
	ready := func() {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
			out.warnf("telling systemd boxrun is ready: %v", err)
		}
	}
	err := p.Watch(ctx, watchInterval, ready, func(rep *protect.Report, err error) {
		if err != nil {
			if once("error " + err.Error()) {
				out.warnf("%v", err)
			}
			return
		}
		if po.asJSON {
			enc := json.NewEncoder(stdout)
			enc.Encode(rep)
			return
		}
		for _, pr := range rep.Processes {
			// Each process once, and again only if its value changes.
			if !once(fmt.Sprintf("process %d/%d at %d", pr.PID, pr.StartTime, pr.OOMAfter)) {
				continue
			}
			out.infof("protected %s (pid %d, group %s, %s): oom_score_adj %s", pr.Comm, pr.PID, pr.Group, pr.Via, oomColumn(pr, false))
		}
		for _, u := range rep.Units {
			if !u.Changed {
				continue
			}
			out.infof("set MemoryLow=%s on %s (effective %s)", protect.FormatLow(u.Set), orCgroup(u), protect.FormatLow(u.Protection.Effective))
		}
		for _, pr := range rep.Problems {
			if once("problem " + pr) {
				out.warnf("%s", pr)
			}
		}
	})
	if err != nil {
		out.errorf("protect --watch: %v", err)
		return 1
	}
	return 0
}

func orCgroup(u protect.ProtectedUnit) string {
	if u.Unit != "" {
		return u.Unit
	}
	return u.Cgroup
}

// protectUndo restores what protection changed.
func protectUndo(ctx context.Context, statePath string, po protectOptions, stdout io.Writer, out *printer) int {
	restored, err := protect.Undo(ctx, statePath, 0)
	if err != nil {
		out.errorf("protect --undo: %v", err)
		return 1
	}
	if po.asJSON {
		if restored == nil {
			restored = []protect.Restored{}
		}
		if err := writeJSON(stdout, restored); err != nil {
			out.errorf("writing the result: %v", err)
			return 1
		}
		return 0
	}
	if len(restored) == 0 {
		out.infof("nothing to undo (%s records no change)", statePath)
		return 0
	}
	for _, r := range restored {
		if r.Skipped == "" {
			fmt.Fprintf(stdout, "restored %s %s → %s\n", r.What, r.From, r.To)
		} else {
			fmt.Fprintf(stdout, "left %s alone: %s\n", r.What, r.Skipped)
		}
	}
	return 0
}

// protectDuringStart applies the policy's protection groups in the
// background while the box is being made (the scan of /proc and the
// editor's manager overlap the scope's start), and returns the function
// that waits for it and prints what went wrong. Run calls that function
// before the command is released, so protection is in place when the
// command starts; calling it again does nothing.
func protectDuringStart(ctx context.Context, st *policy.Stack, pol *policy.Resolved, env policy.Env) func(*printer) {
	done := make(chan []string, 1)
	go func() { done <- protectForRun(ctx, st, pol, env) }()
	var once sync.Once
	return func(out *printer) {
		once.Do(func() {
			for _, w := range <-done {
				out.warnf("%s", w)
			}
		})
	}
}

// protectForRun protects the policy's groups, their sizes resolved
// against env, once and returns the warnings to print.
func protectForRun(ctx context.Context, st *policy.Stack, pol *policy.Resolved, env policy.Env) []string {
	ctx, cancel := context.WithTimeout(ctx, protectRunTimeout)
	defer cancel()
	what := strings.Join(pol.Protect, ", ")
	groups, err := protect.ResolveGroups(st, pol.Protect, env)
	if err != nil {
		return []string{fmt.Sprintf("protecting %s: %v", what, err)}
	}
	p := protect.NewProtector(protect.Options{
		Groups:    groups,
		Others:    protect.OtherGroupNames(st, pol.Protect),
		UID:       protect.ProtectUID(os.Getenv),
		StatePath: protect.DefaultStatePath(os.Getenv),
		Timeout:   protectRunTimeout,
	})
	defer p.Close()
	rep, err := p.Apply(ctx)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("protecting %s: %v (boxrun protect shows the details)", what, err)}
	case len(rep.Problems) == 1:
		return []string{fmt.Sprintf("protecting %s: %s (boxrun protect shows the details)", what, rep.Problems[0])}
	case len(rep.Problems) > 1:
		return []string{fmt.Sprintf("protecting %s: %s, and %d more problems (boxrun protect shows the details)", what, rep.Problems[0], len(rep.Problems)-1)}
	}
	return nil
}
