package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Trust is how far boxrun trusts a policy file.
type Trust int

const (
	// Trusted files are the user's and the system's own: a file named
	// with --policy-file or $BOXRUN_POLICY_FILE, the user's
	// policies.toml, /etc/boxrun/policies.toml and the built-in policies.
	// It is the zero value, so a File made without saying keeps every
	// setting, as all files did before project files were told apart.
	Trusted Trust = iota
	// Project files are the .boxrun.toml files found in the working
	// directory and above it: they come with a cloned repository, so they
	// may only restrict the command they box. Stack ignores what reaches
	// outside the box: [protect.NAME] groups, the [slice], a policy's
	// protect list, an oom_score_adj lower than the one inherited (or
	// below 0), and leftovers = "keep".
	//
	// Nor may a project file loosen a policy of the Trusted files, by
	// defining the same name (which replaces theirs whole) or by extending
	// a looser one. When Stack.Resolve uses a project file's policy for a
	// name that a Trusted file (the built-in one included) defines, it
	// also resolves that name from the Trusted files alone, the baseline,
	// and compares resolved values (bytes, after percentages):
	// memory.high (counted as at most memory.max), memory.max,
	// memory.swap.max, pids.max, cpu.weight, cpu.max and io.weight may
	// only be lower, "max" being the loosest; oom_score_adj and
	// start_when_available only higher; max_concurrent only lower, 0 (no
	// limit) being the loosest; and an empty protect list keeps the
	// baseline's. A value looser than the baseline's, or unset where the
	// baseline sets it, takes the baseline's value and origin. --set
	// overrides are the user's own and are never replaced. description,
	// memory.oom_group, memory.backpressure, leftovers (but "keep") and
	// leftovers_grace concern the box alone and stay the project's. A name
	// that only project files define has no baseline: the user asked for
	// it by name.
	Project
)

// String is "trusted" or "project".
func (t Trust) String() string {
	switch t {
	case Trusted:
		return "trusted"
	case Project:
		return "project"
	}
	return "trust(" + strconv.Itoa(int(t)) + ")"
}

// SearchPath is one file of the policy lookup and how far it is trusted.
type SearchPath struct {
	// Path is the file's path.
	Path string
	// Trust is Project for a .boxrun.toml found from the working
	// directory, Trusted for the others.
	Trust Trust
}

// SearchFiles is SearchPaths with the trust of each file: the .boxrun.toml
// files found from cwd are Project files, unless $BOXRUN_POLICY_FILE names
// the same file; the others are Trusted.
func SearchFiles(cwd string, getenv func(string) string) []SearchPath {
	var files []SearchPath
	seen := map[string]bool{}
	add := func(p string, t Trust) {
		if p != "" && !seen[p] {
			seen[p] = true
			files = append(files, SearchPath{Path: p, Trust: t})
		}
	}
	add(getenv("BOXRUN_POLICY_FILE"), Trusted)
	for _, p := range projectPaths(cwd) {
		add(p, Project)
	}
	for _, p := range userPaths(getenv) {
		add(p, Trusted)
	}
	return files
}

// Ignored is a setting of a project file that boxrun leaves out, because a
// project file may only restrict the command it boxes.
type Ignored struct {
	// At is where the setting is written.
	At Origin
	// Key is the key as written ("oom_score_adj"), or the table
	// ("[protect.editors]", "[slice]").
	Key string
	// Value is the value as boxrun read it, "" for a table.
	Value string
	// Policy is the policy the key is in, "" for a table.
	Policy string
	// Reason says why the setting is ignored and where it may be made.
	Reason string
}

// String formats the setting for a warning: `FILE:LINE: KEY = VALUE in
// policy "NAME" ignored: REASON`.
func (i Ignored) String() string {
	in := ""
	if i.Policy != "" {
		in = fmt.Sprintf("policy %q", i.Policy)
	}
	return settingAt(i.At, i.Key, i.Value, in) + " ignored: " + i.Reason
}

// userConfigHint says where a setting that a project file may not make
// belongs instead.
const userConfigHint = "set it in your own ~/.config/boxrun/policies.toml or with --set"

// Ignored lists the tables of the stack's project files that are ignored:
// [protect.NAME] groups and [slice], in file order. The keys a project
// file's policies may not set are reported by Resolve, for the policy
// resolved (Resolved.Ignored).
func (s *Stack) Ignored() []Ignored {
	var out []Ignored
	for _, f := range s.Files {
		if f == nil || f.Trust != Project {
			continue
		}
		var names []string
		for name := range f.Protect {
			names = append(names, name)
		}
		sort.Slice(names, func(i, j int) bool { return f.Protect[names[i]].Defined.Line < f.Protect[names[j]].Defined.Line })
		for _, name := range names {
			out = append(out, Ignored{At: f.Protect[name].Defined, Key: "[protect." + name + "]",
				Reason: "a project file may not define protection groups, which change processes outside the box (define them in your own ~/.config/boxrun/policies.toml)"})
		}
		if f.Slice != nil {
			out = append(out, Ignored{At: f.Slice.Defined, Key: "[slice]",
				Reason: "a project file may not set the limits of the slice that holds every box (set them in your own ~/.config/boxrun/policies.toml)"})
		}
	}
	return out
}

// projectMayNotSet returns why a project file's policy src may not set key
// on top of merged (what it inherits), or "" when it may.
func projectMayNotSet(key string, src, merged *Policy) (value, reason string) {
	switch key {
	case "protect":
		return "[" + strings.Join(quoteAll(src.Protect), ", ") + "]",
			"a project file may not name protection groups, which change processes outside the box; " + userConfigHint
	case "oom_score_adj":
		floor := 0
		if merged.OOMScoreAdj != nil && *merged.OOMScoreAdj > floor {
			floor = *merged.OOMScoreAdj
		}
		if v := *src.OOMScoreAdj; v < floor {
			return strconv.Itoa(v), fmt.Sprintf("a project file may only make the command more likely to be OOM-killed (%d or more); %s", floor, userConfigHint)
		}
	case "leftovers":
		if src.Leftovers == leftoversKeep {
			return strconv.Quote(src.Leftovers), "a project file may not keep processes alive after the command exits; " + userConfigHint
		}
	}
	return "", ""
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// tightenKeys are the policy keys whose value a project file may only
// tighten: those whose row in keyTable says how a value is looser, in the
// order of policyKeys. memory.oom_group, memory.backpressure, leftovers and
// leftovers_grace only change how the box treats its own processes, and
// description nothing at all. Read-only.
var tightenKeys = keysOf(slices.DeleteFunc(slices.Clone(keyTable), func(l Limit) bool { return l.looser == nil }))

// looser reports whether r's value of key, one of tightenKeys, is looser
// than base's: base sets the key and r leaves it unset or sets it looser.
func looser(key string, r, base *Resolved) bool {
	l, ok := lookupKey(key)
	return ok && l.looser != nil && l.looser(r, base)
}

// tighten bounds m, a chain that uses a project file's policy and resolves
// to r, by the baseline: the same name resolved from the Trusted files of
// the stack alone. For every key of tightenKeys that r has looser than the
// baseline, and that no --set gave, it copies the baseline's value and
// origin into m.p. It reports whether it copied any, and an Ignored for each
// copied key that m had set. A name no Trusted file defines has no
// baseline: nothing changes.
func (s *Stack) tighten(m *merged, r *Resolved, env Env) (bool, []Ignored, error) {
	trusted := &Stack{}
	for _, f := range s.Files {
		if f != nil && f.Trust == Trusted {
			trusted.Files = append(trusted.Files, f)
		}
	}
	name := m.p.Name
	bm, err := trusted.merge(name)
	if errors.Is(err, ErrUnknownPolicy) {
		return false, nil, nil
	}
	var base *Resolved
	if err == nil {
		base, err = trusted.resolve(bm.p, nil, env)
	}
	if err != nil {
		return false, nil, fmt.Errorf("%w (in resolving policy %q from your own files alone, which bound what a project file may loosen; fix it in your own files)", err, name)
	}
	changed := false
	var ignored []Ignored
	for _, k := range tightenKeys {
		o, set := m.p.Origins[k]
		if o.File == OriginSet || !looser(k, r, base) {
			continue
		}
		if set {
			l, _ := lookupKey(k)
			value, _ := l.show(m.p, env)
			_, baseValue := l.show(bm.p, env)
			ignored = append(ignored, Ignored{At: o, Key: k, Value: value, Policy: m.from[k],
				Reason: fmt.Sprintf("a project file may only tighten policy %q of your own files (%s = %s, %s); %s",
					name, k, baseValue, bm.p.Origins[k], userConfigHint)})
		}
		copyPolicyKey(m.p, bm.p, k)
		m.from[k] = bm.from[k]
		changed = true
	}
	return changed, ignored, nil
}

// effectiveHigh is the memory.high the kernel acts on: memory.high or
// memory.max, whichever is lower (unset is "max").
func effectiveHigh(r *Resolved) uint64 {
	h, m := uint64(Unlimited), uint64(Unlimited)
	if r.MemoryHigh != nil {
		h = *r.MemoryHigh
	}
	if r.MemoryMax != nil {
		m = *r.MemoryMax
	}
	return min(h, m)
}
