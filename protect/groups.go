package protect

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/boxrun/boxrun/policy"
)

// Group is one protection group ([protect.NAME] of a policy file)
// with its sizes resolved for this machine.
type Group struct {
	// Name is NAME in [protect.NAME].
	Name string
	// Match lists the process names of the group.
	Match []string
	// MemoryLow is the memory.low to give the units holding the group's
	// processes, in bytes; nil leaves memory.low alone.
	MemoryLow *uint64
	// OOMScoreAdj is the oom_score_adj to lower the group's processes
	// toward; nil leaves oom_score_adj alone.
	OOMScoreAdj *int
}

// ResolveGroups looks up the named groups in the stack and resolves
// their sizes for env. It fails on an unknown name, listing the known ones.
func ResolveGroups(st *policy.Stack, names []string, env policy.Env) ([]Group, error) {
	defs := st.ProtectGroups()
	var out []Group
	for _, name := range names {
		g, ok := defs[name]
		if !ok {
			known := make([]string, 0, len(defs))
			for k := range defs {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown protection group %q (known: %s)", name, strings.Join(known, ", "))
		}
		pg := Group{Name: name, Match: slices.Clone(g.Match)}
		if g.MemoryLow != nil {
			b, err := g.MemoryLow.Resolve(env)
			if err != nil {
				return nil, fmt.Errorf("protection group %q: memory.low: %w", name, err)
			}
			pg.MemoryLow = &b
		}
		if g.OOMScoreAdj != nil {
			v := *g.OOMScoreAdj
			pg.OOMScoreAdj = &v
		}
		out = append(out, pg)
	}
	return out, nil
}

// OtherGroupNames lists the process names matched by the stack's groups
// that are not among applied: a helper process of an editor that matches
// one of them (a language server) belongs to that group, not the editor's.
func OtherGroupNames(st *policy.Stack, applied []string) []string {
	var out []string
	for name, g := range st.ProtectGroups() {
		if !slices.Contains(applied, name) {
			out = append(out, g.Match...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
