package policy

import (
	"fmt"
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
	var b strings.Builder
	b.WriteString(i.At.String())
	b.WriteString(": ")
	b.WriteString(i.Key)
	if i.Value != "" {
		b.WriteString(" = ")
		b.WriteString(i.Value)
	}
	if i.Policy != "" {
		fmt.Fprintf(&b, " in policy %q", i.Policy)
	}
	b.WriteString(" ignored: ")
	b.WriteString(i.Reason)
	return b.String()
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
