package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxFileSize is the largest policy file Parse reads.
const MaxFileSize = 1 << 20

// File is one parsed policy file.
type File struct {
	// Path names the file in messages and origins.
	Path string
	// Policies are the [policies.NAME] tables, by name.
	Policies map[string]*Policy
	// Protect are the [protect.NAME] tables, by name.
	Protect map[string]*ProtectGroup
	// Slice is the [slice] table, nil when the file has none.
	Slice *SliceLimits
	// Trust is how far the file is trusted. Parse leaves it Trusted (the
	// zero value); the caller sets Project for a project's .boxrun.toml
	// (see SearchFiles) before putting the file in a Stack.
	Trust Trust
	// Warnings are the settings of the file that are valid but probably
	// not what was meant, that Parse can tell from one value: a memory size
	// under 1M (memory.max = 4096 is 4K). See Stack.Lint for the others.
	Warnings []Warning
}

// Policy is one [policies.NAME] table as written, before extends and
// overrides are applied. Pointer fields are nil, and strings empty, when the
// key is not set; Origins records exactly which keys are set.
type Policy struct {
	// Name is NAME in [policies.NAME].
	Name string
	// Description is a one-line summary for listings.
	Description string
	// Extends names the policy this one starts from (see Stack.Resolve).
	Extends string

	// MemoryHigh is memory.high, the throttling and reclaim threshold.
	MemoryHigh *Size
	// MemoryMax is memory.max, the hard limit.
	MemoryMax *Size
	// MemorySwapMax is memory.swap.max, the swap the box may use; zero is
	// allowed (no swap).
	MemorySwapMax *Size
	// MemoryOOMGroup is memory.oom_group: on OOM, kill the whole box.
	MemoryOOMGroup *bool
	// MemoryBackpressure is memory.backpressure: pause the newest processes
	// near memory.max instead of letting the OOM killer pick one.
	MemoryBackpressure *bool

	// PidsMax is pids.max, Unlimited for "max".
	PidsMax *uint64
	// CPUWeight is cpu.weight, 1 to 10000.
	CPUWeight *uint64
	// CPUMaxPercent is cpu.max as a share of one CPU in percent ("400%" is
	// 400); nil when cpu.max is unset or "max".
	CPUMaxPercent *float64
	// CPUMaxUnlimited is true when cpu.max is "max".
	CPUMaxUnlimited bool
	// IOWeight is io.weight, 1 to 10000.
	IOWeight *uint64
	// OOMScoreAdj is oom_score_adj, -1000 to 1000.
	OOMScoreAdj *int

	// Leftovers says what happens to processes still in the box when the
	// command exits: "kill", "keep", or "" when unset.
	Leftovers string
	// LeftoversGrace is how long leftovers get between SIGTERM and SIGKILL.
	LeftoversGrace *time.Duration
	// MaxConcurrent is max_concurrent: at most this many runs of the
	// policy at once for the user; 0 is "max" (no limit), nil unset.
	MaxConcurrent *int
	// StartWhenAvailable is start_when_available: wait before starting
	// until this much memory is available.
	StartWhenAvailable *Size
	// Protect names the protection groups to shield while the box runs.
	// An empty, non-nil list (protect = []) clears an inherited one.
	Protect []string

	// Origins maps every key set in this table, as written in TOML
	// ("memory.high", whether written dotted or in a sub-table), to where it
	// was set.
	Origins map[string]Origin
	// Defined is where the [policies.NAME] table starts.
	Defined Origin
}

// ProtectGroup is a [protect.NAME] table: processes to shield from memory
// pressure and the OOM killer while a box that names the group runs.
type ProtectGroup struct {
	// Name is NAME in [protect.NAME].
	Name string
	// Match lists the process names of the group (at least one).
	Match []string
	// MemoryLow is the memory.low protection for the group, nil if unset.
	MemoryLow *Size
	// OOMScoreAdj is the oom_score_adj for the group's processes, nil if
	// unset. Lowering it below the current value needs CAP_SYS_RESOURCE.
	OOMScoreAdj *int
	// Origins maps every key set to where it was set.
	Origins map[string]Origin
	// Defined is where the [protect.NAME] table starts.
	Defined Origin
}

// SliceLimits is the [slice] table: limits of the slice that holds every
// box, so that boxes running at once share one budget.
type SliceLimits struct {
	// MemoryHigh is memory.high of the slice.
	MemoryHigh *Size
	// MemoryMax is memory.max of the slice.
	MemoryMax *Size
	// PidsMax is pids.max of the slice, Unlimited for "max".
	PidsMax *uint64
	// CPUWeight is cpu.weight of the slice.
	CPUWeight *uint64
	// Origins maps every key set to where it was set.
	Origins map[string]Origin
	// Defined is where the [slice] table starts.
	Defined Origin
}

// utf8BOM is skipped at the start of a file.
const utf8BOM = "\xEF\xBB\xBF"

// Parse reads one policy file from r. path names the file in messages and
// origins only; Parse opens nothing. It reads at most MaxFileSize bytes and
// rejects larger input, input that is not UTF-8, TOML syntax errors, unknown
// tables and keys, values of the wrong type or out of range, and keys or
// tables defined twice. Problems with the content are *ParseError values
// naming the file and line. Parse reports every problem it finds, not just
// the first: when there are several it returns them as ParseErrors, in the
// order of their lines. A TOML syntax error ends the reading (what follows
// it cannot be read reliably), so problems after it are found only once it
// is fixed.
func Parse(path string, r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: path, Err: errors.New("policy file too large (the limit is 1 MiB)")}
	}
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	data = data[:len(data):len(data)] // offsets of subslices are computed from cap
	b := &docBuilder{path: path, data: data}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, b.errorf(b.lineAt(off), "invalid UTF-8 at byte %d (policy files must be UTF-8 text)", off)
	}
	root, truncated := b.document()
	f := b.file(root, truncated)
	if len(b.errs) > 0 {
		return nil, b.problems()
	}
	f.Warnings = b.warnings
	return f, nil
}

// fail records a problem; err is always a *ParseError.
func (b *docBuilder) fail(err error) {
	var pe *ParseError
	if !errors.As(err, &pe) {
		pe = &ParseError{File: b.path, Err: err}
	}
	b.errs = append(b.errs, pe)
}

// problems returns the problems recorded, by line: the one, or
// ParseErrors.
func (b *docBuilder) problems() error {
	sort.SliceStable(b.errs, func(i, j int) bool { return b.errs[i].Line < b.errs[j].Line })
	if len(b.errs) == 1 {
		return b.errs[0]
	}
	return ParseErrors(b.errs)
}

// file interprets the root table of a document, recording every problem.
// truncated says that a syntax error ended the document early, so that
// what may still have followed (a protection group's match) is not
// required.
func (b *docBuilder) file(root *tomlValue, truncated bool) *File {
	f := &File{Path: b.path, Policies: map[string]*Policy{}, Protect: map[string]*ProtectGroup{}}
	for _, k := range root.table.keys {
		v := root.table.entries[k]
		switch k {
		case "policies":
			b.eachNamed(v, k, "policy", func(name string, t *tomlValue) {
				f.Policies[name] = b.policy(name, t)
			})
		case "protect":
			b.eachNamed(v, k, "protection group", func(name string, t *tomlValue) {
				f.Protect[name] = b.protectGroup(name, t, truncated)
			})
		case "slice":
			if !v.isTable() {
				b.fail(&ParseError{File: b.path, Line: v.line, Key: k, Value: v.written(), Err: typeError("a table [slice]", v)})
				continue
			}
			f.Slice = b.slice(v)
		default:
			what := fmt.Sprintf("key %q", shortPath([]string{k}))
			if v.isTable() {
				what = fmt.Sprintf("table [%s]", shortPath([]string{k}))
			}
			b.fail(&ParseError{File: b.path, Line: v.line, Value: k,
				Err: fmt.Errorf("unknown %s (%s)", what, topLevelHint(k, v))})
		}
	}
	return f
}

// eachNamed calls fn for every NAME of a [top.NAME] table, in order,
// recording the names and values that are not valid.
func (b *docBuilder) eachNamed(v *tomlValue, top, kind string, fn func(name string, t *tomlValue)) {
	example := fmt.Sprintf("[%s.NAME]", top)
	if !v.isTable() {
		b.fail(&ParseError{File: b.path, Line: v.line, Key: top, Value: v.written(),
			Err: typeError("tables like "+example, v)})
		return
	}
	for _, name := range v.table.keys {
		t := v.table.entries[name]
		if err := checkName(name); err != nil {
			b.fail(&ParseError{File: b.path, Line: t.line, Value: name, Err: fmt.Errorf("%s name %w", kind, err)})
			continue
		}
		if !t.isTable() {
			b.fail(&ParseError{File: b.path, Line: t.line, Key: top + "." + name, Value: t.written(),
				Err: typeError("a table "+strings.Replace(example, "NAME", name, 1), t)})
			continue
		}
		fn(name, t)
	}
}

func (b *docBuilder) origin(line int) Origin { return Origin{File: b.path, Line: line} }

func (b *docBuilder) policy(name string, t *tomlValue) *Policy {
	p := &Policy{Name: name, Origins: map[string]Origin{}, Defined: b.origin(t.line)}
	b.walk(t, "", "", policyKeys, fmt.Sprintf("in policy %q", name), func(key string, v *tomlValue) error {
		if err := setPolicyKey(p, key, v); err != nil {
			return err
		}
		p.Origins[key] = b.origin(v.line)
		b.lintSize(key, v, fmt.Sprintf("policy %q", name))
		return nil
	})
	return p
}

func (b *docBuilder) protectGroup(name string, t *tomlValue, truncated bool) *ProtectGroup {
	g := &ProtectGroup{Name: name, Origins: map[string]Origin{}, Defined: b.origin(t.line)}
	prefix := "protect." + name + "."
	matchBad := false
	b.walk(t, "", prefix, protectKeys, fmt.Sprintf("in protection group %q", name), func(key string, v *tomlValue) error {
		if err := setProtectKey(g, key, v); err != nil {
			matchBad = matchBad || key == "match"
			return err
		}
		g.Origins[key] = b.origin(v.line)
		b.lintSize(key, v, fmt.Sprintf("protection group %q", name))
		return nil
	})
	if g.Match == nil && !matchBad && !truncated {
		b.fail(&ParseError{File: b.path, Line: t.line, Key: "protect." + name,
			Err: errors.New(`match is required (list the process names to protect, e.g. match = ["code"])`)})
	}
	return g
}

func (b *docBuilder) slice(t *tomlValue) *SliceLimits {
	s := &SliceLimits{Origins: map[string]Origin{}, Defined: b.origin(t.line)}
	b.walk(t, "", "slice.", sliceKeys, "in [slice]", func(key string, v *tomlValue) error {
		if err := setSliceKey(s, key, v); err != nil {
			return err
		}
		s.Origins[key] = b.origin(v.line)
		b.lintSize(key, v, "[slice]")
		return nil
	})
	return s
}

// walk calls set for every leaf of the table t with its dotted key (rel is
// the key of t itself, "" at the top), recording every problem. Keys not in
// known are problems that say where (`in policy "tests"`) and suggest the
// key meant (see unknownKeyHint), or list the known keys; errKey prefixes
// keys in ParseError.Key.
func (b *docBuilder) walk(t *tomlValue, rel, errKey string, known []string, where string, set func(key string, v *tomlValue) error) {
	for _, k := range t.table.keys {
		v := t.table.entries[k]
		key := keyPath([]string{k})
		if rel != "" {
			key = rel + "." + key
		}
		if slices.Contains(known, key) {
			if err := set(key, v); err != nil {
				line := v.line
				var le *lineError
				if errors.As(err, &le) && le.line > 0 {
					line, err = le.line, le.err
				}
				b.fail(&ParseError{File: b.path, Line: line, Key: errKey + key, Value: v.written(), Err: err})
			}
			continue
		}
		sub := subKeys(known, key)
		switch {
		case len(sub) == 0:
			b.unknownKey(key, v, known, where)
		case !v.isTable():
			b.fail(&ParseError{File: b.path, Line: v.line, Key: errKey + key, Value: v.written(),
				Err: typeError("sub-keys ("+strings.Join(sub, ", ")+")", v)})
		default:
			b.walk(v, key, errKey, known, where, set)
		}
	}
}

// unknownKey records key, not one of known. When key is a table
// ([policies.tests.memroy]) whose leaves are near known keys (memroy.high
// for memory.high), each such leaf is reported where it is set, with the
// key meant; otherwise key itself, once.
func (b *docBuilder) unknownKey(key string, v *tomlValue, known []string, where string) {
	if v.isTable() {
		var hinted []*ParseError
		for _, l := range leaves(v, key) {
			if hint := unknownKeyHint(l.key, known); hint != "" {
				hinted = append(hinted, &ParseError{File: b.path, Line: l.v.line, Value: l.key,
					Err: fmt.Errorf("unknown key %s %s (%s)", quote(l.key), where, hint)})
			}
		}
		if len(hinted) > 0 {
			for _, e := range hinted {
				b.fail(e)
			}
			return
		}
	}
	b.fail(&ParseError{File: b.path, Line: v.line, Value: key, Err: unknownKeyError(key, known, where)})
}

// leaf is a value that is not a table, with its dotted key.
type leaf struct {
	key string
	v   *tomlValue
}

// leaves lists the values under the table v, whose key is rel, in order.
func leaves(v *tomlValue, rel string) []leaf {
	var out []leaf
	for _, k := range v.table.keys {
		e := v.table.entries[k]
		key := rel + "." + keyPath([]string{k})
		if e.isTable() {
			out = append(out, leaves(e, key)...)
		} else {
			out = append(out, leaf{key, e})
		}
	}
	return out
}
