package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/internal/suggest"
)

// This file says what a user probably meant by a key, a value or a policy
// name boxrun does not know: a typo (memory.mx), systemd's name of a
// setting (MemoryMax), another tool's unit (4GB). How near a typo must be
// is decided in one place, internal/suggest.

// systemdProperty is a resource property of systemd units and the policy
// key that sets the same cgroup v2 file.
type systemdProperty struct {
	name string // "MemoryMax"
	key  string // "memory.max"; "" when boxrun has no equivalent
	// value turns systemd's spelling of a value into boxrun's; nil keeps
	// it as it is.
	value func(string) string
	// none says why there is no key, when key is "".
	none string
}

// infinityToMax spells systemd's "infinity" (and CPUQuota's empty value)
// as "max".
func infinityToMax(v string) string {
	if v == "" || strings.EqualFold(v, "infinity") {
		return "max"
	}
	return v
}

// systemdProperties maps systemd's resource properties onto policy keys:
// the unit setting of each row of keyTable, and the names boxrun has no key
// of its own for. Read-only.
var systemdProperties = append(unitSettings(keyTable),
	systemdProperty{name: "MemoryLimit", key: "memory.max", value: infinityToMax}, // systemd's cgroup v1 name
	systemdProperty{name: "MemoryLow", key: "memory.low", value: infinityToMax},
	systemdProperty{name: "MemoryMin", none: "boxrun has no memory.min; a [protect.NAME] group's memory.low shields the editor instead"},
)

// unitSettings lists the unit settings of rows.
func unitSettings(rows []Limit) []systemdProperty {
	var out []systemdProperty
	for _, l := range rows {
		if l.unit != "" {
			out = append(out, systemdProperty{name: l.unit, key: l.Key, value: l.fromUnit})
		}
	}
	return out
}

// lookupSystemd finds the systemd property named name, in any case.
func lookupSystemd(name string) (systemdProperty, bool) {
	for _, p := range systemdProperties {
		if strings.EqualFold(p.name, name) {
			return p, true
		}
	}
	return systemdProperty{}, false
}

// protectOnlyHint says where memory.low belongs when it is written in a
// policy or the [slice].
const protectOnlyHint = "memory.low is a setting of a [protect.NAME] group, which shields the editor from the boxes; a box is limited with memory.high and memory.max"

// unknownKeyHint says what was probably meant by key, a key not in known
// (the keys of the table it is in): "did you mean memory.max?" for a typo
// or for systemd's name of the setting; where memory.low belongs; "" when
// nothing is near.
func unknownKeyHint(key string, known []string) string {
	if p, ok := lookupSystemd(key); ok {
		switch {
		case p.key == "":
			return p.none
		case slices.Contains(known, p.key):
			return fmt.Sprintf("did you mean %s? boxrun's keys are named after the cgroup v2 files, not systemd's properties", p.key)
		case p.key == "memory.low":
			return protectOnlyHint
		}
	}
	if k, err := strconv.Unquote(key); err == nil && slices.Contains(known, k) {
		return fmt.Sprintf("did you mean %s, without the quotes? a quoted key is one key, not a dotted one", k)
	}
	if key == "memory.low" && !slices.Contains(known, key) {
		return protectOnlyHint
	}
	if slices.Contains(policyKeys, key) || slices.Contains(protectKeys, key) || slices.Contains(sliceKeys, key) {
		return "" // a key of another kind of table, not a typo: the known keys say what this one takes
	}
	if m := suggest.Closest(key, known); len(m) > 0 {
		return "did you mean " + suggest.Or(m) + "?"
	}
	return ""
}

// unknownKeyError is the error for key, not one of known, in where (`in
// policy "tests"`): with what was probably meant, or else the known keys.
func unknownKeyError(key string, known []string, where string) error {
	hint := unknownKeyHint(key, known)
	if hint == "" {
		hint = "known: " + strings.Join(known, ", ")
	}
	return fmt.Errorf("unknown key %s %s (%s)", quote(key), where, hint)
}

// topLevelTables are the tables a policy file may have. Read-only.
var topLevelTables = []string{"policies", "protect", "slice"}

// topLevelHint says what was probably meant by k, an unknown key or table
// at the top of a file whose value is v: another table's name, or a
// [policies.NAME] header forgotten above the keys of a policy.
func topLevelHint(k string, v *tomlValue) string {
	if m := suggest.Closest(k, topLevelTables); len(m) == 1 {
		switch m[0] {
		case "slice":
			return "did you mean [slice]?"
		default:
			return fmt.Sprintf("did you mean [%s.NAME]?", m[0])
		}
	}
	keys := []string{k}
	if v.isTable() {
		keys = nil
		for _, l := range leaves(v, k) {
			keys = append(keys, l.key)
		}
	}
	for _, key := range keys {
		if _, ok := lookupSystemd(key); ok || slices.Contains(policyKeys, key) {
			return "the keys of a policy go under a [policies.NAME] header"
		}
	}
	return "known: [policies.NAME], [protect.NAME], [slice]"
}

// SuggestOverride returns the --set argument that arg, a KEY=VALUE with a
// key --set does not take, probably meant: the key it is near, or that
// systemd calls so, with the value in boxrun's spelling ("MemoryMax=4G"
// gives "memory.max=4G", "TasksMax=infinity" gives "pids.max=max"). It also
// returns arg itself (trimmed) when it is a valid override already, for a
// KEY=VALUE given where a policy name belongs. It reports false when no
// single key is near or the value would not be valid for it.
func SuggestOverride(arg string) (string, bool) {
	key, val, ok := strings.Cut(arg, "=")
	if !ok {
		return "", false
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	var keys []string
	if p, ok := lookupSystemd(key); ok && p.key != "" {
		keys = []string{p.key}
		if p.value != nil {
			val = p.value(val)
		}
	} else if slices.Contains(policyKeys, key) {
		keys = []string{key}
	} else {
		keys = suggest.Closest(key, policyKeys)
	}
	if len(keys) != 1 || keys[0] == "extends" || !slices.Contains(policyKeys, keys[0]) {
		return "", false
	}
	p := &Policy{Origins: map[string]Origin{}}
	if setPolicyKey(p, keys[0], overrideValue(keys[0], val)) != nil {
		return "", false
	}
	return keys[0] + "=" + val, true
}

// overrideKeyHint says what was probably meant by o, a --set argument
// whose key is unknown: the whole argument when its value fits the key
// meant, else the key.
func overrideKeyHint(o, key string) string {
	if s, ok := SuggestOverride(o); ok {
		return "did you mean --set " + s + "?"
	}
	known := slices.DeleteFunc(slices.Clone(policyKeys), func(k string) bool { return k == "extends" })
	return unknownKeyHint(key, known)
}

// syntaxHint says what was probably meant on line, where the TOML parser
// found a syntax error: a size, percentage or word left unquoted
// (memory.max = 4G) gives `did you mean memory.max = "4G"?`, with the unit
// fixed when it is another tool's (4GB). "" when the line is not like
// that.
func (b *docBuilder) syntaxHint(line int) string {
	text := b.lineText(line)
	if i := strings.Index(text, "#"); i >= 0 {
		text = text[:i]
	}
	key, val, ok := strings.Cut(text, "=")
	if !ok {
		return ""
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if key == "" || val == "" || !strings.ContainsFunc(val, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '%' }) {
		return ""
	}
	for _, part := range strings.Split(key, ".") {
		if !isBareKey(strings.TrimSpace(part)) {
			return ""
		}
	}
	for _, r := range val {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-%+ ", r)) {
			return ""
		}
	}
	if fixed, _, ok := suggestSize(val); ok {
		val = fixed
	}
	return fmt.Sprintf("did you mean %s = %q? sizes, shares and max are strings in TOML", key, val)
}

// lineText returns the text of the 1-based line, "" when there is none.
func (b *docBuilder) lineText(line int) string {
	if line < 1 {
		return ""
	}
	b.lineAt(0) // computes b.newlines
	start := 0
	if line > 1 {
		if line-2 >= len(b.newlines) {
			return ""
		}
		start = b.newlines[line-2] + 1
	}
	end := len(b.data)
	if line-1 < len(b.newlines) {
		end = b.newlines[line-1]
	}
	return strings.TrimSuffix(string(b.data[start:end]), "\r")
}
