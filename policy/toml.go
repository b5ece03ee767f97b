package policy

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file turns the expressions of go-toml's unstable parser into a tree of
// tables and values that remembers the line of every key, and enforces the
// TOML rules the parser leaves to its caller: no key defined twice, no table
// defined twice, inline tables are closed, and tables made by dotted keys
// and by [headers] do not mix.

// tomlValue is one value of a document. Tables (kind unstable.Table for
// [header] and dotted-key tables, unstable.InlineTable for { } tables) have a
// table; arrays have elems; every other kind has its text.
type tomlValue struct {
	kind  unstable.Kind
	text  string // decoded content of a string; the token as written otherwise
	line  int    // line of the key that set it (or of the element, in arrays)
	elems []*tomlValue
	table *tomlTable
}

// tomlTable is the content of a table, keys in document order.
type tomlTable struct {
	keys    []string
	entries map[string]*tomlValue
	header  bool // defined by a [header]
	dotted  bool // created by a dotted key
	closed  bool // inline table (or a table inside one): cannot be extended
}

func newTableValue(kind unstable.Kind, line int) *tomlValue {
	return &tomlValue{kind: kind, line: line, table: &tomlTable{entries: map[string]*tomlValue{}}}
}

func (t *tomlTable) add(key string, v *tomlValue) {
	t.keys = append(t.keys, key)
	t.entries[key] = v
}

func (v *tomlValue) isTable() bool {
	return v.kind == unstable.Table || v.kind == unstable.InlineTable
}

// describe names the type and value of v for "expected X, got Y" messages.
func (v *tomlValue) describe() string {
	switch v.kind {
	case unstable.String:
		return "string " + quote(v.text)
	case unstable.Integer:
		return "integer " + v.text
	case unstable.Float:
		return "float " + v.text
	case unstable.Bool:
		return "boolean " + v.text
	case unstable.Array:
		return "an array"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "date/time " + v.text
	}
	return v.kind.String()
}

// written returns v as the user wrote it, for ParseError.Value.
func (v *tomlValue) written() string {
	switch v.kind {
	case unstable.Array:
		parts := make([]string, len(v.elems))
		for i, e := range v.elems {
			if e.kind == unstable.String {
				parts[i] = quote(e.text)
			} else {
				parts[i] = e.written()
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case unstable.Table, unstable.InlineTable:
		return "{...}"
	}
	return v.text
}

// docBuilder builds the tree of one document.
type docBuilder struct {
	path     string
	data     []byte
	newlines []int // offsets of the '\n' bytes in data, computed on first use
	// errs are the problems found so far (see fail).
	errs []*ParseError
	// warnings are the settings found so far that are valid but probably
	// not what was meant (see lintSize).
	warnings []Warning
}

// lineAt returns the 1-based line of a byte offset into the document.
func (b *docBuilder) lineAt(offset int) int {
	if b.newlines == nil {
		b.newlines = make([]int, 0, bytes.Count(b.data, []byte{'\n'}))
		for i, c := range b.data {
			if c == '\n' {
				b.newlines = append(b.newlines, i)
			}
		}
	}
	// The number of newlines before offset.
	return 1 + sort.SearchInts(b.newlines, offset)
}

func (b *docBuilder) errorf(line int, format string, args ...any) error {
	return &ParseError{File: b.path, Line: line, Err: fmt.Errorf(format, args...)}
}

// document parses b.data (valid UTF-8, with cap(data) == len(data)) into
// its root table. Problems are recorded (b.fail) and reading goes on: a key
// or table defined twice, or a value that cannot be set, is left out, and
// the keys under a table header that is refused go to a table of their own
// that nothing reads. A syntax error ends the document, which truncated
// then reports.
func (b *docBuilder) document() (root *tomlValue, truncated bool) {
	root = newTableValue(unstable.Table, 1)
	root.table.header = true
	cur, curPath := root, (*keyPrefix)(nil)

	var p unstable.Parser
	p.Reset(b.data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			keys, line := b.key(e.Key())
			t, err := b.defineTable(root, keys, line)
			if err != nil {
				b.fail(err)
				t = newTableValue(unstable.Table, line) // its keys are checked for syntax only
			}
			cur, curPath = t, &keyPrefix{keys: keys}
		case unstable.ArrayTable:
			keys, line := b.key(e.Key())
			b.fail(b.errorf(line, "arrays of tables ([[%s]]) are not supported; use [%s.NAME] tables", shortPath(keys), shortPath(keys)))
			cur, curPath = newTableValue(unstable.Table, line), &keyPrefix{keys: keys}
		case unstable.KeyValue:
			keys, line := b.key(e.Key())
			v, err := b.value(e.Value(), line, curPath.with(keys))
			if err != nil {
				b.fail(err)
				continue
			}
			if err := b.setKey(cur, curPath, keys, v, line); err != nil {
				b.fail(err)
			}
		}
	}
	if err := p.Error(); err != nil {
		line := 0
		var perr *unstable.ParserError
		if errors.As(err, &perr) {
			line = b.lineAt(b.offsetOf(perr.Highlight))
		}
		msg := fmt.Sprintf("TOML syntax error: %v", err)
		if hint := b.syntaxHint(line); hint != "" {
			msg += " (" + hint + ")"
		}
		b.fail(&ParseError{File: b.path, Line: line, Err: errors.New(msg)})
		return root, true
	}
	return root, false
}

// offsetOf returns the offset of a subslice of the document. This is how
// unstable.Parser.Range computes it; doing it here avoids its panic on a
// slice that is not from the document.
func (b *docBuilder) offsetOf(s []byte) int {
	return cap(b.data) - cap(s)
}

// key returns the parts of a key and the line it starts on.
func (b *docBuilder) key(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = b.lineAt(int(n.Raw.Offset))
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

// value converts a value node; line is the line of its key, used when the
// node itself carries no position. path names it in error messages.
func (b *docBuilder) value(n *unstable.Node, line int, path *keyPrefix) (*tomlValue, error) {
	if n.Raw.Length > 0 {
		line = b.lineAt(int(n.Raw.Offset))
	}
	switch n.Kind {
	case unstable.Array:
		v := &tomlValue{kind: unstable.Array, line: line}
		for it := n.Children(); it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			e, err := b.value(c, line, path)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, e)
		}
		return v, nil
	case unstable.InlineTable:
		v := newTableValue(unstable.InlineTable, line)
		for it := n.Children(); it.Next(); {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			keys, kline := b.key(kv.Key())
			e, err := b.value(kv.Value(), kline, path.with(keys))
			if err != nil {
				return nil, err
			}
			if err := b.setKey(v, path, keys, e, kline); err != nil {
				return nil, err
			}
		}
		closeTables(v)
		return v, nil
	default:
		return &tomlValue{kind: n.Kind, text: string(n.Data), line: line}, nil
	}
}

// closeTables marks an inline table and the tables inside it closed.
// Inline tables nested in it are closed already (and so is everything in
// them), which keeps this linear in the size of the document.
func closeTables(v *tomlValue) {
	if !v.isTable() || v.table.closed {
		return
	}
	v.table.closed = true
	for _, e := range v.table.entries {
		closeTables(e)
	}
}

// defineTable handles a [header]: it creates the table (and implicitly its
// parents) or defines a table so far only implied by an earlier header.
func (b *docBuilder) defineTable(root *tomlValue, keys []string, line int) (*tomlValue, error) {
	t := root
	for i, k := range keys {
		last := i == len(keys)-1
		e, ok := t.table.entries[k]
		if !ok {
			e = newTableValue(unstable.Table, line)
			e.table.header = last
			t.table.add(k, e)
			t = e
			continue
		}
		switch here := keys[:i+1]; {
		case !e.isTable():
			return nil, b.errorf(line, "duplicate key %s (first set on line %d)", describeKey(here), e.line)
		case e.table.closed:
			return nil, b.errorf(line, "cannot add to %s: it is an inline table (line %d)", describeKey(here), e.line)
		case last && e.table.header:
			return nil, b.errorf(line, "table [%s] is defined twice (first on line %d)", shortPath(here), e.line)
		case last && e.table.dotted:
			return nil, b.errorf(line, "table [%s] was already made by dotted keys on line %d; use one style", shortPath(here), e.line)
		}
		if last {
			e.table.header = true
			e.line = line
		}
		t = e
	}
	return t, nil
}

// setKey sets a (possibly dotted) key in the table cur, whose own path is
// curPath.
func (b *docBuilder) setKey(cur *tomlValue, curPath *keyPrefix, keys []string, v *tomlValue, line int) error {
	t := cur
	for i, k := range keys {
		here := func() []string { return curPath.with(keys[:i+1]).parts() }
		e, ok := t.table.entries[k]
		if i == len(keys)-1 {
			if ok {
				return b.errorf(line, "duplicate key %s (first set on line %d)", describeKey(here()), e.line)
			}
			t.table.add(k, v)
			return nil
		}
		if !ok {
			e = newTableValue(unstable.Table, line)
			e.table.dotted = true
			t.table.add(k, e)
			t = e
			continue
		}
		switch {
		case !e.isTable():
			return b.errorf(line, "duplicate key %s (first set on line %d)", describeKey(here()), e.line)
		case e.table.closed:
			return b.errorf(line, "cannot add to %s: it is an inline table (line %d)", describeKey(here()), e.line)
		case !e.table.dotted:
			return b.errorf(line, "cannot set %s with a dotted key: [%s] is a table of its own (line %d); set it there",
				describeKey(curPath.with(keys).parts()), shortPath(here()), e.line)
		}
		t = e
	}
	return nil
}

// keyPrefix is the path of keys to a table, as a chain of parts so that
// nested values share it instead of copying it; parts() is only needed for
// error messages.
type keyPrefix struct {
	parent *keyPrefix
	keys   []string
}

// with returns p extended by keys.
func (p *keyPrefix) with(keys []string) *keyPrefix {
	return &keyPrefix{parent: p, keys: keys}
}

// parts returns the key parts of p, from the top of the document.
func (p *keyPrefix) parts() []string {
	if p == nil {
		return nil
	}
	return append(p.parent.parts(), p.keys...)
}

// describeKey names a key for messages, relative to the policy, protection
// group or slice it is in: `"memory.high" in policy "tests"`.
func describeKey(full []string) string {
	switch {
	case len(full) >= 3 && full[0] == "policies":
		return fmt.Sprintf("%q in policy %q", shortPath(full[2:]), full[1])
	case len(full) >= 3 && full[0] == "protect":
		return fmt.Sprintf("%q in protection group %q", shortPath(full[2:]), full[1])
	case len(full) >= 2 && full[0] == "slice":
		return fmt.Sprintf("%q in [slice]", shortPath(full[1:]))
	}
	return strconv.Quote(shortPath(full))
}

// shortPath is keyPath for messages: absurdly long keys are cut short.
func shortPath(parts []string) string {
	const limit = 80
	if len(parts) > limit {
		parts = parts[:limit]
	}
	p := keyPath(parts)
	if len(p) > limit {
		cut := limit
		for cut > 0 && !isRuneStart(p[cut]) {
			cut--
		}
		p = p[:cut] + "..."
	}
	return p
}

// keyPath joins key parts with dots, quoting parts that are not bare keys.
func keyPath(parts []string) string {
	var sb strings.Builder
	for i, p := range parts {
		if i > 0 {
			sb.WriteByte('.')
		}
		if isBareKey(p) {
			sb.WriteString(p)
		} else {
			sb.WriteString(quote(p))
		}
	}
	return sb.String()
}

// isBareKey reports whether s can be written as a TOML bare key.
func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
