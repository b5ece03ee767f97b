package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Origin names where a value was set: a file and line, OriginBuiltin for the
// policies embedded in boxrun, or OriginSet for a --set override.
type Origin struct {
	File string
	Line int
}

// OriginBuiltin is the File of origins in the embedded built-in policies.
const OriginBuiltin = "built-in"

// OriginSet is the File of origins of --set overrides.
const OriginSet = "--set"

// String returns "file:line", or just the file for built-in values, --set
// overrides and origins without a line.
func (o Origin) String() string {
	if o.File == OriginBuiltin || o.File == OriginSet || o.Line <= 0 {
		return o.File
	}
	return o.File + ":" + strconv.Itoa(o.Line)
}

// ErrUnknownPolicy is wrapped by Stack.Resolve's error when no file in the
// stack defines the requested policy, so that callers can list the names.
var ErrUnknownPolicy = errors.New("unknown policy")

// ParseError is a problem with a policy file or a --set override, reported
// where it was written. Parse returns it for every problem with the content
// of a file; Stack.Resolve returns it for problems that only show once
// policies are combined (a missing extends parent, a cycle, a percentage of
// an unknown memory size).
type ParseError struct {
	// File is the file as named to Parse, OriginBuiltin, or OriginSet for
	// an override.
	File string
	// Line is the 1-based line, or 0 when the problem has no line (a file
	// too large, a --set override).
	Line int
	// Key is the key whose value is wrong, relative to its policy
	// ("memory.max") or from the top of the file for [protect.NAME] and
	// [slice] keys ("slice.memory.max"). It is empty when the problem is not
	// the value of one key: syntax errors, unknown keys and tables,
	// duplicates, extends cycles.
	Key string
	// Value is the offending value as written (for strings, without the
	// quotes), or the unknown key. For OriginSet it is the whole KEY=VALUE
	// argument.
	Value string
	// Err says what is wrong; its message quotes the offending value.
	Err error
}

// Error formats the error as "file:line: key: problem" (leaving out what is
// missing), or for an override as `--set KEY=VALUE: problem`.
func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File == OriginSet {
		b.WriteString("--set ")
		if strings.Contains(e.Value, "=") && plain(e.Value) {
			b.WriteString(e.Value)
		} else {
			b.WriteString(quote(e.Value))
		}
	} else {
		b.WriteString(Origin{e.File, e.Line}.String())
		if e.Key != "" {
			b.WriteString(": ")
			b.WriteString(e.Key)
		}
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid value")
	}
	return b.String()
}

// plain reports whether s can be printed as it is: UTF-8 without control
// characters.
func plain(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// ParseErrors are the problems Parse found in one file when there are more
// than one, in the order of their lines (every element names the same
// file). Error formats the first and counts the others, so that a caller
// that prints one line still says there is more; errors.As finds the first
// *ParseError. boxrun policy check prints each.
type ParseErrors []*ParseError

// Error formats the first problem and says how many more there are.
func (e ParseErrors) Error() string {
	switch len(e) {
	case 0:
		return "no problems"
	case 1:
		return e[0].Error()
	}
	more := "problem"
	if len(e) > 2 {
		more = "problems"
	}
	return fmt.Sprintf("%s (and %d more %s in %s)", e[0].Error(), len(e)-1, more, e[0].File)
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e ParseErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, pe := range e {
		out[i] = pe
	}
	return out
}

// Problems returns every problem err holds: the elements of a ParseErrors
// (anywhere in its chain), or err alone.
func Problems(err error) []error {
	var list ParseErrors
	if errors.As(err, &list) {
		return list.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
