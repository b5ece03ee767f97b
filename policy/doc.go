// Package policy reads boxrun's resource policies and turns a named policy
// into the limits a box runs under.
//
// A policy file is TOML. Each [policies.NAME] table describes one policy
// (memory, pids, cpu and io limits, what to do with processes left behind,
// which protection groups to shield while the box runs); [protect.NAME]
// tables describe protection groups and [slice] the limits of the slice that
// holds every box. Parse reads one file; Builtin returns the policies that
// ship with boxrun. A Stack layers several files, nearest first (see
// SearchPaths for where they come from): a nearer definition of a name
// replaces a farther one whole, and `extends` builds a policy on top of
// another one, possibly of the same name in a farther file. A project's
// .boxrun.toml comes with the repository it is in, so it is trusted less
// (Trust): it may only restrict the command it boxes.
//
// Stack.Resolve applies the extends chain and any --set overrides, turns
// percentages into bytes for a given Env and returns a Resolved policy, the
// one type the box backends consume (Resolved.LinuxResources maps it onto
// the OCI runtime-spec types).
//
// The package is pure: it reads from io.Readers and strings, never opens
// files, reads /proc or makes system calls. Every error about the content of
// a file is a *ParseError that names the file and line (Parse returns all
// of a file's at once, as ParseErrors, when there are several), and says
// what was probably meant when a key, name or unit is near a known one
// (internal/suggest decides how near). Settings that are valid but probably
// mistakes are Warnings (Stack.Lint), for boxrun policy check.
package policy
