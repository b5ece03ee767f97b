package policy

import (
	_ "embed"
	"fmt"
	"strings"
)

// builtinTOML is the policy file built into boxrun.
//
//go:embed builtin.toml
var builtinTOML string

// Builtin returns the policies built into boxrun (builtin.toml), parsed
// afresh on every call so that callers may modify the result. Their origins
// have File OriginBuiltin. It panics only if the embedded file does not
// parse, which a test rules out.
func Builtin() *File {
	return mustParseBuiltin(builtinTOML)
}

// mustParseBuiltin parses the built-in policy file src, panicking if it is
// broken: that is a bug in boxrun, not something a user can fix.
func mustParseBuiltin(src string) *File {
	f, err := Parse(OriginBuiltin, strings.NewReader(src))
	if err != nil {
		panic(fmt.Sprintf("policy: the built-in policy file is broken: %v", err))
	}
	return f
}
