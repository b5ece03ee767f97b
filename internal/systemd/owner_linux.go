package systemd

import (
	"strconv"
	"strings"
)

// unitSuffixes are the unit types that appear as cgroups.
var unitSuffixes = []string{".slice", ".scope", ".service", ".socket", ".mount", ".swap"}

// isUnitName reports whether a cgroup directory name is a systemd unit.
func isUnitName(name string) bool {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}

// UnitOwner says who manages the cgroup: the unit (its directory name when
// that is a unit) and the manager, "user" for cgroups below a
// user@UID.service (uid is then that UID), "system" for other units, and
// "" for plain cgroups.
func UnitOwner(cgroup string) (unit, manager string, uid int) {
	comps := strings.Split(strings.Trim(cgroup, "/"), "/")
	base := comps[len(comps)-1]
	if !isUnitName(base) {
		return "", "", -1
	}
	for i, c := range comps[:len(comps)-1] {
		if rest, ok := strings.CutPrefix(c, "user@"); ok && strings.HasSuffix(rest, ".service") && i < len(comps)-1 {
			if n, err := strconv.Atoi(strings.TrimSuffix(rest, ".service")); err == nil {
				return base, "user", n
			}
		}
	}
	return base, "system", -1
}

// UserManagerCgroup is the cgroup of user@UID.service, below the mount:
// from own, the cgroup this process runs in, when that is below it, else
// where systemd puts it.
func UserManagerCgroup(own string, uid int) string {
	svc := "user@" + strconv.Itoa(uid) + ".service"
	parts := strings.Split(own, "/")
	for i, p := range parts {
		if p == svc && i > 0 {
			return strings.Join(parts[:i+1], "/")
		}
	}
	return "/user.slice/user-" + strconv.Itoa(uid) + ".slice/" + svc
}
