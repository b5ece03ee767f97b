package policy

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/boxrun/boxrun/internal/suggest"
)

// Stack is the ordered list of policy files in effect, nearest first; the
// built-in file (Builtin) normally comes last.
//
// A nearer definition of a policy name replaces a farther one whole: keys
// are never merged across files. A policy builds on another one only through
// `extends`, which names any policy visible in the stack, looked up from the
// nearest file again. A policy that extends its own name extends the next
// farther definition of that name, so that a project file can write
//
//	[policies.tests]
//	extends = "tests"
//	memory.max = "50%"
//
// to tweak the built-in tests policy. Protection groups and [slice] follow
// the same rule: the nearest definition wins whole.
//
// Files of Trust Project may only restrict the command they box: what they
// set that would reach outside it is ignored, and a policy resolved through
// one of their definitions comes out no looser than the same name resolved
// from the Trusted files alone (see Project), so that shadowing "tests"
// with memory.max = "max" leaves the limit of the user's or the built-in
// tests policy in force. Both are listed by Ignored and Resolved.Ignored so
// that the user can be told.
type Stack struct {
	// Files are the parsed files, nearest first.
	Files []*File
}

// Entry describes one policy name visible in a Stack, for listings.
type Entry struct {
	// Name is the policy name.
	Name string
	// Description is the description the policy resolves to (its own, or
	// the nearest one along its extends chain).
	Description string
	// Origin is where the definition in effect starts.
	Origin Origin
	// Shadowed are the farther definitions it replaces, nearest first.
	Shadowed []Origin
	// Project is true when the definition in effect is a project file's:
	// against a Trusted definition of the same name it may only tighten
	// (see Project), so it does not replace that one whole.
	Project bool
}

// SearchPaths returns the policy files to look for, nearest first:
// $BOXRUN_POLICY_FILE, .boxrun.toml in cwd and in each of its parents up to
// the root, $XDG_CONFIG_HOME/boxrun/policies.toml (or
// $HOME/.config/boxrun/policies.toml when XDG_CONFIG_HOME is unset or not
// absolute, as the XDG spec says) and /etc/boxrun/policies.toml. It only
// computes paths; whether they exist is the caller's business, as is putting
// a --policy-file in front. Empty variables are skipped, duplicates dropped.
// SearchFiles says in addition which of them are project files.
func SearchPaths(cwd string, getenv func(string) string) []string {
	var paths []string
	for _, f := range SearchFiles(cwd, getenv) {
		paths = append(paths, f.Path)
	}
	return paths
}

// projectPaths are the .boxrun.toml files of cwd and its parents, nearest
// first.
func projectPaths(cwd string) []string {
	if cwd == "" {
		return nil
	}
	var paths []string
	for dir := filepath.Clean(cwd); ; {
		paths = append(paths, filepath.Join(dir, ".boxrun.toml"))
		parent := filepath.Dir(dir)
		if parent == dir {
			return paths
		}
		dir = parent
	}
}

// userPaths are the user's and the system's policy files.
func userPaths(getenv func(string) string) []string {
	var paths []string
	config := getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(config) {
		config = ""
		if home := getenv("HOME"); filepath.IsAbs(home) {
			config = filepath.Join(home, ".config")
		}
	}
	if config != "" {
		paths = append(paths, filepath.Join(config, "boxrun", "policies.toml"))
	}
	return append(paths, "/etc/boxrun/policies.toml")
}

// find returns the nearest definition of name in Files[from:] and the index
// of its file, or nil.
func (s *Stack) find(name string, from int) (*Policy, int) {
	for i := from; i < len(s.Files); i++ {
		if f := s.Files[i]; f != nil {
			if p, ok := f.Policies[name]; ok {
				return p, i
			}
		}
	}
	return nil, -1
}

// names returns every policy name in the stack, sorted.
func (s *Stack) names() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range s.Files {
		if f == nil {
			continue
		}
		for name := range f.Policies {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Names lists every policy name visible in the stack, sorted by name.
func (s *Stack) Names() []Entry {
	var entries []Entry
	describe := s.describer()
	for _, name := range s.names() {
		p, i := s.find(name, 0)
		e := Entry{Name: name, Description: describe(link{p, i}), Origin: p.Defined, Project: s.Files[i].Trust == Project}
		for j := i + 1; j < len(s.Files); j++ {
			if f := s.Files[j]; f != nil {
				if q, ok := f.Policies[name]; ok {
					e.Shadowed = append(e.Shadowed, q.Defined)
				}
			}
		}
		entries = append(entries, e)
	}
	return entries
}

// ProtectGroups returns the protection groups visible in the stack, by
// name; the nearest definition of a name wins. Groups of project files are
// left out (see Ignored).
func (s *Stack) ProtectGroups() map[string]*ProtectGroup {
	groups := map[string]*ProtectGroup{}
	for i := len(s.Files) - 1; i >= 0; i-- {
		if f := s.Files[i]; f != nil && f.Trust != Project {
			for name, g := range f.Protect {
				groups[name] = g
			}
		}
	}
	return groups
}

// Slice returns the nearest [slice] table in the stack, or nil. The [slice]
// of a project file is left out (see Ignored).
func (s *Stack) Slice() *SliceLimits {
	for _, f := range s.Files {
		if f != nil && f.Slice != nil && f.Trust != Project {
			return f.Slice
		}
	}
	return nil
}

// link is one policy of an extends chain and the index of its file.
type link struct {
	p     *Policy
	layer int
}

// describer returns a function giving the description a policy resolves
// to: its own, or the nearest one along its extends chain ("" when there is
// none, or the chain is broken). It remembers what it found, so that
// describing every policy of a stack takes linear time.
func (s *Stack) describer() func(link) string {
	memo := map[link]string{}
	return func(start link) string {
		var path []link
		seen := map[link]bool{}
		desc := ""
		for l, ok := start, true; ok; l, ok = s.parent(l) {
			if d, done := memo[l]; done {
				desc = d
				break
			}
			if seen[l] {
				break
			}
			seen[l] = true
			path = append(path, l)
			if l.p.Description != "" {
				desc = l.p.Description
				break
			}
		}
		for _, l := range path {
			memo[l] = desc
		}
		return desc
	}
}

// parent returns the policy l extends, if it has one that is defined.
func (s *Stack) parent(l link) (link, bool) {
	name := l.p.Extends
	if name == "" {
		return link{}, false
	}
	from := 0
	if name == l.p.Name {
		from = l.layer + 1
	}
	q, j := s.find(name, from)
	return link{q, j}, q != nil
}

// nameHint says which of names was probably meant by name, for an error
// message ("did you mean tests?"), or lists them ("known: ...") when none
// is near.
func nameHint(name string, names []string) string {
	if m := suggest.Closest(name, names); len(m) > 0 {
		return "did you mean " + suggest.Or(m) + "?"
	}
	return "known: " + knownNames(names)
}

// knownNames lists names for an error message, at most 30 of them.
func knownNames(names []string) string {
	const limit = 30
	if len(names) > limit {
		return fmt.Sprintf("%s, and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
	}
	return strings.Join(names, ", ")
}

// chain returns the policy name and the policies it extends, nearest
// (name itself) first.
func (s *Stack) chain(name string) ([]link, error) {
	p, i := s.find(name, 0)
	if p == nil {
		hint := nameHint(name, s.names())
		if set, ok := SuggestOverride(name); ok {
			hint = "did you mean --set " + set + "? a policy is named, a setting is changed with --set"
		}
		return nil, fmt.Errorf("%w %q (%s)", ErrUnknownPolicy, name, hint)
	}
	chain := []link{{p, i}}
	seen := map[link]bool{chain[0]: true}
	for cur := chain[0]; cur.p.Extends != ""; cur = chain[len(chain)-1] {
		parent := cur.p.Extends
		next, ok := s.parent(cur)
		o := cur.p.Origins["extends"]
		if !ok {
			err := fmt.Errorf("policy %q extends %q, which is not defined (%s)", cur.p.Name, parent, nameHint(parent, s.names()))
			if parent == cur.p.Name {
				err = fmt.Errorf("policy %q extends itself, but no farther file defines %q to build on", parent, parent)
			}
			return nil, &ParseError{File: o.File, Line: o.Line, Key: "extends", Value: parent, Err: err}
		}
		if seen[next] {
			names := make([]string, 0, len(chain)+1)
			for _, l := range chain {
				names = append(names, l.p.Name)
			}
			names = append(names, parent)
			if len(names) > 30 {
				names = append(append(names[:15:15], fmt.Sprintf("(%d more)", len(names)-30)), names[len(names)-15:]...)
			}
			return nil, &ParseError{File: o.File, Line: o.Line, Value: parent,
				Err: fmt.Errorf("extends cycle: %s", strings.Join(names, " -> "))}
		}
		seen[next] = true
		chain = append(chain, next)
	}
	return chain, nil
}
