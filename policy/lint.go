package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Warning is a setting boxrun accepts but that is probably not what was
// meant: a memory limit of a few bytes, memory.high above memory.max. A run
// goes ahead with it; boxrun policy check reports it.
type Warning struct {
	// At is where the setting is written.
	At Origin
	// Key is the key as written in its table ("memory.max").
	Key string
	// Value is the value as written, strings in quotes ("4096", `"8G"`).
	Value string
	// In names the table: `policy "tests"`, `protection group "editors"`,
	// "[slice]".
	In string
	// Problem says what is probably wrong, and what to write instead.
	Problem string
}

// String formats the warning: `FILE:LINE: KEY = VALUE in IN: PROBLEM`.
func (w Warning) String() string {
	return settingAt(w.At, w.Key, w.Value, w.In) + ": " + w.Problem
}

// settingAt formats where a setting is and what it says, for warnings of
// either kind: `FILE:LINE: KEY = VALUE in IN` (the value and table only
// when known).
func settingAt(at Origin, key, value, in string) string {
	var b strings.Builder
	b.WriteString(at.String())
	b.WriteString(": ")
	b.WriteString(key)
	if value != "" {
		b.WriteString(" = ")
		b.WriteString(value)
	}
	if in != "" {
		b.WriteString(" in ")
		b.WriteString(in)
	}
	return b.String()
}

// smallSize is the size below which a memory setting is taken for a
// mistake: no command runs in less than 1M, and a number written without
// a unit counts bytes (memory.max = 4096 meant 4096M).
const smallSize = 1 << 20

// smallSizeProblems says, for each key that takes a memory size, why a size
// under 1M makes no sense there. Keys are as in the [protect.NAME] and
// [slice] tables too.
var smallSizeProblems = map[string]string{
	"memory.high":          "too little memory for any command to run",
	"memory.max":           "too little memory for any command to run",
	"memory.swap.max":      "too little swap to matter (0 means no swap)",
	"memory.low":           "too little to shield anything",
	"start_when_available": "so little that the run never waits",
}

// lintSize records a warning when v, the value of key (a key that takes a
// size) in the table in, is more than zero bytes and less than 1M.
func (b *docBuilder) lintSize(key string, v *tomlValue, in string) {
	problem, ok := smallSizeProblems[key]
	if !ok {
		return
	}
	s, err := sizeValue(v, true)
	if err != nil || s.Max || s.Percent != 0 || s.Bytes == 0 || s.Bytes >= smallSize {
		return
	}
	written := v.text
	if v.kind == unstable.String {
		written = strconv.Quote(v.text)
	}
	amount := FormatBytes(s.Bytes)
	if s.Bytes >= 1<<10 {
		amount = fmt.Sprintf("%d bytes (%s)", s.Bytes, FormatBytes(s.Bytes))
	}
	p := fmt.Sprintf("%s is less than 1M, %s", amount, problem)
	if _, _, ok := splitNumber(strings.TrimSpace(v.text)); ok && strings.TrimLeft(strings.TrimSpace(v.text), "0123456789_") == "" {
		p += fmt.Sprintf(`; a number without a unit counts bytes (did you mean "%sM"?)`, strings.TrimSpace(v.text))
	}
	b.warnings = append(b.warnings, Warning{At: b.origin(v.line), Key: key, Value: written, In: in, Problem: p})
}

// Lint returns the warnings about the stack (see Warning), for boxrun
// policy check: those Parse found in each file (File.Warnings), those of
// resolving each policy (Resolved.Warnings; a policy that does not resolve
// is left out, its error is the caller's to report), the memory.low of a
// protection group above the memory there is (env.MemoryBytes), and a
// [slice] whose memory.high is above its memory.max. Warnings about the
// built-in policies are left out. Each setting is warned about once (for
// the first policy by name, when several extend it), in the order of the
// files and their lines.
func (s *Stack) Lint(env Env) []Warning {
	var out []Warning
	seen := map[string]bool{}
	add := func(w Warning) { // once per setting, though many policies extend it
		if id := w.At.String() + " " + w.Key; w.At.File != OriginBuiltin && !seen[id] {
			seen[id] = true
			out = append(out, w)
		}
	}
	for _, f := range s.Files {
		if f == nil {
			continue
		}
		for _, w := range f.Warnings {
			add(w)
		}
		for _, g := range f.Protect {
			if w, ok := lowAboveMemory(g, env); ok {
				add(w)
			}
		}
		if w, ok := sliceHighAboveMax(f.Slice, env); ok {
			add(w)
		}
	}
	for _, name := range s.names() {
		if r, err := s.Resolve(name, nil, env); err == nil {
			for _, w := range r.Warnings {
				add(w)
			}
		}
	}
	order := map[string]int{}
	for i, f := range s.Files {
		if f != nil {
			if _, ok := order[f.Path]; !ok {
				order[f.Path] = i
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].At, out[j].At
		if order[a.File] != order[b.File] {
			return order[a.File] < order[b.File]
		}
		return a.Line < b.Line
	})
	return out
}

// lowAboveMemory warns when the memory.low of g comes to more than the
// memory there is: it would shield the group's memory entirely, however
// much the boxes need.
func lowAboveMemory(g *ProtectGroup, env Env) (Warning, bool) {
	if g.MemoryLow == nil || g.MemoryLow.Max || env.MemoryBytes == 0 {
		return Warning{}, false
	}
	low, err := g.MemoryLow.Resolve(env)
	if err != nil || low <= env.MemoryBytes {
		return Warning{}, false
	}
	return Warning{At: g.Origins["memory.low"], Key: "memory.low", Value: strconv.Quote(g.MemoryLow.String()),
		In: fmt.Sprintf("protection group %q", g.Name),
		Problem: fmt.Sprintf("%s is more than the %s of memory here (the RAM, or the memory.max of the cgroup boxrun runs in): the group's memory would never be reclaimed, however much the boxes need",
			FormatBytes(low), FormatBytes(env.MemoryBytes))}, true
}

// sliceHighAboveMax warns when the memory.high of the [slice] comes to
// more than its memory.max, where the slice is full before it is ever
// throttled.
func sliceHighAboveMax(sl *SliceLimits, env Env) (Warning, bool) {
	if sl == nil || sl.MemoryHigh == nil || sl.MemoryMax == nil {
		return Warning{}, false
	}
	h, err1 := sl.MemoryHigh.Resolve(env)
	m, err2 := sl.MemoryMax.Resolve(env)
	if err1 != nil || err2 != nil || h == Unlimited || m == Unlimited || h <= m {
		return Warning{}, false
	}
	return Warning{At: sl.Origins["memory.high"], Key: "memory.high", Value: strconv.Quote(sl.MemoryHigh.String()), In: "[slice]",
		Problem: highAboveMaxProblem(sl.MemoryHigh, h, sl.MemoryMax, m, sl.Origins["memory.max"], "the boxes together")}, true
}

// highAboveMaxProblem says why memory.high h above memory.max m makes no
// sense for what (the box, the boxes together).
func highAboveMaxProblem(hs *Size, h uint64, ms *Size, m uint64, maxAt Origin, what string) string {
	return fmt.Sprintf("%s is above memory.max %s (%s): %s would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out",
		describeSize(hs, h), describeSize(ms, m), maxAt, what)
}
