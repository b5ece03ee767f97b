package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Env is what resolution needs to know about the machine.
type Env struct {
	// MemoryBytes is the memory of the machine the boxes live in: the RAM,
	// or the limit of a cgroup that holds every box (a container's) when
	// that is smaller; never the limit of the cgroup the run was started
	// from, which holds no box. Percentages are of this. Zero means
	// unknown; resolving a percentage then fails.
	MemoryBytes uint64
}

// Resolved is a policy ready to apply: the extends chain and overrides are
// applied, percentages are bytes and defaults are filled in. Pointer fields
// are nil when the setting is not set anywhere (leave the kernel default).
type Resolved struct {
	// Name is the policy name asked for.
	Name string
	// Description is the resolved description.
	Description string

	// MemoryHigh is memory.high in bytes, Unlimited for "max"; at most
	// MemoryMax when both are limits (see Notes).
	MemoryHigh *uint64
	// MemoryMax is memory.max in bytes, Unlimited for "max".
	MemoryMax *uint64
	// MemorySwapMax is memory.swap.max in bytes, Unlimited for "max".
	MemorySwapMax *uint64
	// MemoryOOMGroup is memory.oom_group (default false).
	MemoryOOMGroup bool
	// MemoryBackpressure is memory.backpressure (default false).
	MemoryBackpressure bool

	// PidsMax is pids.max, Unlimited for "max".
	PidsMax *uint64
	// CPUWeight is cpu.weight, 1 to 10000.
	CPUWeight *uint64
	// CPUQuotaPerSecUSec is cpu.max as microseconds of CPU time per second
	// of wall time ("400%" is 4_000_000), Unlimited for "max".
	CPUQuotaPerSecUSec *uint64
	// IOWeight is io.weight, 1 to 10000.
	IOWeight *uint64
	// OOMScoreAdj is oom_score_adj for the command.
	OOMScoreAdj *int

	// Leftovers is "kill" (the default) or "keep".
	Leftovers string
	// LeftoversGrace is the time between SIGTERM and SIGKILL for
	// leftovers (default 2s).
	LeftoversGrace time.Duration
	// Protect names the protection groups to shield (see
	// Stack.ProtectGroups); every name is defined in the stack.
	Protect []string

	// MaxConcurrent is how many runs of this policy may run at once for
	// the user (max_concurrent); the others wait. 0 means no limit.
	MaxConcurrent int
	// StartWhenAvailable is how many bytes of memory must be available
	// (MemAvailable, or the headroom of the slice of boxes) before the run
	// starts; nil means start at once.
	StartWhenAvailable *uint64

	// Origins maps every key that ended up set ("memory.high") to where
	// its value came from, through extends chains and --set. Keys left at
	// their default are absent. extends itself is not listed.
	Origins map[string]Origin
	// Notes describe adjustments made during resolution, for the user.
	Notes []string
	// Ignored are the settings along the extends chain that were left out
	// because a project file may not make them, or replaced by the
	// baseline's tighter value (see Project), for the user.
	Ignored []Ignored
	// Warnings are the settings along the chain that are valid but
	// probably not what was meant: memory.high above memory.max (which
	// Notes also describe, as adjusted). See Stack.Lint.
	Warnings []Warning
}

// Resolve resolves the policy name: it starts from the root of its extends
// chain, overlays each policy down to name, then applies overrides in order,
// resolves percentages against env and fills in defaults.
//
// Overrides are --set arguments, KEY=VALUE with the keys of a policy table
// (except extends). VALUE is read as a TOML value when it is one (true,
// 4096, "4G", ["editors"]) and as a bare string otherwise (4G, max, 5s);
// protect also takes a comma-separated list (protect=editors,language-servers,
// or protect= for none). A later override of the same key wins.
//
// Settings of project files that would reach outside the box are left out.
// When the chain uses a project file's policy and a Trusted file defines
// name too, no limit comes out looser than in the baseline, name resolved
// from the Trusted files alone without overrides: a looser value, or an
// unset one where the baseline sets it, takes the baseline's value and
// origin (Project lists the keys and which way is tighter). Overrides are
// never replaced. Every setting left out or replaced is listed in Ignored,
// where it was written (in a project file, or in a looser Trusted policy
// that the chain extends), except keys the chain did not set at all, which
// take the baseline's value silently. A name only project files define has
// no baseline; a baseline that does not resolve (the user's policy extends
// one only a project file defines) is an error.
//
// When memory.high comes out above memory.max (both limits), once the
// baseline's values are in, memory.high is lowered to memory.max and a Note
// says so. Errors for an unknown name wrap ErrUnknownPolicy; errors about a
// value are *ParseError at its origin.
func (s *Stack) Resolve(name string, overrides []string, env Env) (*Resolved, error) {
	m, err := s.merge(name)
	if err != nil {
		return nil, err
	}
	setArgs := map[string]string{}
	for _, o := range overrides {
		p, key, err := parseOverride(o)
		if err != nil {
			return nil, err
		}
		copyPolicyKey(m.p, p, key)
		m.from[key] = ""
		setArgs[key] = o
	}
	r, err := s.resolve(m.p, setArgs, env)
	if err != nil {
		return nil, err
	}
	ignored := m.ignored
	if m.project {
		changed, clamped, err := s.tighten(m, r, env)
		if err != nil {
			return nil, err
		}
		if changed {
			if r, err = s.resolve(m.p, setArgs, env); err != nil {
				return nil, err
			}
		}
		ignored = append(ignored, clamped...)
	}
	r.Ignored = ignored
	return r, nil
}

// merged is a policy's extends chain overlaid into one Policy.
type merged struct {
	p *Policy
	// from maps every key set in p to the name of the policy of the chain
	// that set it ("" for --set).
	from map[string]string
	// project is true when the chain uses a policy of a Project file.
	project bool
	// ignored are the settings of project files left out.
	ignored []Ignored
}

// merge overlays the extends chain of name, root first, leaving out what
// project files may not set.
func (s *Stack) merge(name string) (*merged, error) {
	chain, err := s.chain(name)
	if err != nil {
		return nil, err
	}
	m := &merged{p: &Policy{Name: name, Origins: map[string]Origin{}}, from: map[string]string{}}
	for i := len(chain) - 1; i >= 0; i-- {
		src := chain[i].p
		project := s.Files[chain[i].layer].Trust == Project
		m.project = m.project || project
		for _, k := range policyKeys {
			o, ok := src.Origins[k]
			if !ok {
				continue
			}
			if project {
				if value, reason := projectMayNotSet(k, src, m.p); reason != "" {
					m.ignored = append(m.ignored, Ignored{At: o, Key: k, Value: value, Policy: src.Name, Reason: reason})
					continue
				}
			}
			copyPolicyKey(m.p, src, k)
			m.from[k] = src.Name
		}
	}
	return m, nil
}

// parseOverride parses one --set KEY=VALUE into a Policy with just that key
// set.
func parseOverride(o string) (*Policy, string, error) {
	fail := func(key string, err error) error {
		return &ParseError{File: OriginSet, Key: key, Value: o, Err: err}
	}
	if !utf8.ValidString(o) {
		return nil, "", fail("", errors.New("is not valid UTF-8 text"))
	}
	key, val, ok := strings.Cut(o, "=")
	if !ok {
		return nil, "", fail("", errors.New(`missing "=" (use KEY=VALUE, e.g. memory.max=4G)`))
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	switch {
	case key == "":
		return nil, "", fail("", errors.New(`missing key (use KEY=VALUE, e.g. memory.max=4G)`))
	case !slices.Contains(policyKeys, key):
		hint := overrideKeyHint(o, key)
		if hint == "" {
			hint = "known: " + strings.Join(policyKeys, ", ")
		}
		return nil, "", fail(key, fmt.Errorf("unknown key %s (%s)", quote(key), hint))
	case key == "extends":
		return nil, "", fail(key, errors.New("cannot be changed with --set (write a policy that extends this one instead)"))
	}
	p := &Policy{Origins: map[string]Origin{}}
	if err := setPolicyKey(p, key, overrideValue(key, val)); err != nil {
		return nil, "", fail(key, err)
	}
	p.Origins[key] = Origin{File: OriginSet}
	return p, key, nil
}

// overrideValue reads the VALUE of a --set: a TOML value if it parses as
// exactly one, else a bare string.
func overrideValue(key, val string) *tomlValue {
	doc := []byte("v = " + val)
	var p unstable.Parser
	p.Reset(doc)
	var v *tomlValue
	if p.NextExpression() {
		if e := p.Expression(); e.Kind == unstable.KeyValue {
			b := &docBuilder{path: OriginSet, data: doc}
			if tv, err := b.value(e.Value(), 0, &keyPrefix{keys: []string{key}}); err == nil {
				v = tv
			}
		}
		if p.NextExpression() || p.Error() != nil {
			v = nil
		}
	}
	switch {
	case v != nil && (key != "description" || v.kind == unstable.String):
		return v
	case key == "protect":
		list := &tomlValue{kind: unstable.Array}
		for _, name := range strings.Split(val, ",") {
			if name = strings.TrimSpace(name); name != "" {
				list.elems = append(list.elems, &tomlValue{kind: unstable.String, text: name})
			}
		}
		return list
	}
	return &tomlValue{kind: unstable.String, text: val}
}

// resolve turns a merged policy into a Resolved one.
func (s *Stack) resolve(p *Policy, setArgs map[string]string, env Env) (*Resolved, error) {
	r := &Resolved{Name: p.Name, Origins: maps.Clone(p.Origins)}
	delete(r.Origins, "extends")
	for _, l := range keyTable {
		if l.resolve == nil {
			continue
		}
		if value, err := l.resolve(s, r, p, env); err != nil {
			o := p.Origins[l.Key]
			if o.File == OriginSet {
				return nil, &ParseError{File: OriginSet, Key: l.Key, Value: setArgs[l.Key], Err: err}
			}
			return nil, &ParseError{File: o.File, Line: o.Line, Key: l.Key, Value: value, Err: err}
		}
	}

	if h, m := r.MemoryHigh, r.MemoryMax; h != nil && m != nil && *h != Unlimited && *m != Unlimited && *h > *m {
		r.Notes = append(r.Notes, fmt.Sprintf("memory.high %s (%s) is above memory.max %s (%s); using %s for memory.high",
			describeSize(p.MemoryHigh, *h), p.Origins["memory.high"], describeSize(p.MemoryMax, *m), p.Origins["memory.max"], FormatBytes(*m)))
		r.Warnings = append(r.Warnings, Warning{At: p.Origins["memory.high"], Key: "memory.high", Value: strconv.Quote(p.MemoryHigh.String()),
			In: fmt.Sprintf("policy %q", p.Name), Problem: highAboveMaxProblem(p.MemoryHigh, *h, p.MemoryMax, *m, p.Origins["memory.max"], "the box")})
		capped := *m
		r.MemoryHigh = &capped
	}
	return r, nil
}

// describeSize shows a resolved size, with the percentage it came from.
func describeSize(s *Size, b uint64) string {
	if s != nil && s.Percent != 0 {
		return fmt.Sprintf("%s = %s", s, FormatBytes(b))
	}
	return FormatBytes(b)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ResolvedSlice is the [slice] table ready to apply to the slice that holds
// every box: sizes in bytes, nil when not set.
type ResolvedSlice struct {
	// MemoryHigh and MemoryMax are in bytes, Unlimited for "max".
	MemoryHigh, MemoryMax *uint64
	// PidsMax is pids.max, Unlimited for "max".
	PidsMax *uint64
	// CPUWeight is cpu.weight, 1 to 10000.
	CPUWeight *uint64
	// Origins maps every key set ("memory.max") to where it was set.
	Origins map[string]Origin
}

// Empty reports whether the slice sets no limit at all.
func (r *ResolvedSlice) Empty() bool {
	return r == nil || (r.MemoryHigh == nil && r.MemoryMax == nil && r.PidsMax == nil && r.CPUWeight == nil)
}

// ResolveSlice resolves the nearest [slice] table of the stack against env;
// nil when no file has one. Errors are *ParseError at the key's origin.
func (s *Stack) ResolveSlice(env Env) (*ResolvedSlice, error) {
	sl := s.Slice()
	if sl == nil {
		return nil, nil
	}
	r := &ResolvedSlice{PidsMax: clonePtr(sl.PidsMax), CPUWeight: clonePtr(sl.CPUWeight), Origins: maps.Clone(sl.Origins)}
	for _, f := range []struct {
		key string
		sz  *Size
		dst **uint64
	}{{"memory.high", sl.MemoryHigh, &r.MemoryHigh}, {"memory.max", sl.MemoryMax, &r.MemoryMax}} {
		if f.sz == nil {
			continue
		}
		b, err := f.sz.Resolve(env)
		if err != nil {
			o := sl.Origins[f.key]
			return nil, &ParseError{File: o.File, Line: o.Line, Key: "slice." + f.key, Value: f.sz.String(), Err: err}
		}
		*f.dst = &b
	}
	return r, nil
}
