package box

import (
	"regexp"
	"strings"
)

// How boxes are named, read back by `boxrun status` and `boxrun gc`
// (package boxes): a box is boxrun-POLICY-ID (see unitName), ".scope" for
// systemd, its guard's cgroup the same with "-guard" (see guardName), and a
// scope's description "boxrun POLICY: COMMAND" (see describe).

// describeRe matches the scope description describe() writes.
var describeRe = regexp.MustCompile(`^boxrun ([^:]*): (.*)$`)

// ParseDescription splits the description of a box's scope, "boxrun tests:
// cargo test", into policy and command; a description boxrun did not write
// is all command.
func ParseDescription(desc string) (pol, command string) {
	if m := describeRe.FindStringSubmatch(desc); m != nil {
		return m[1], m[2]
	}
	return "", desc
}

// boxNameRe matches the name of a box: boxrun-POLICY-ID, ".scope" for
// systemd (see unitName).
var boxNameRe = regexp.MustCompile(`^boxrun-(.+)-[0-9a-f]{8}(\.scope)?$`)

// PolicyOfName is the policy part of a box's name, "" when name is not a
// box's. Characters a unit name may not hold were replaced by "_", so this
// is a best effort.
func PolicyOfName(name string) string {
	if m := boxNameRe.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

// GuardPolicy reports whether name is the cgroup of a box's guard (see
// guardName), and the policy part of the box's name.
func GuardPolicy(name string) (policy string, ok bool) {
	if !guardNameRe.MatchString(name) {
		return "", false
	}
	return PolicyOfName(strings.TrimSuffix(strings.TrimSuffix(name, ".scope"), guardSuffix)), true
}
