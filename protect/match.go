package protect

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// commLen is the longest name the kernel keeps in comm (TASK_COMM_LEN-1).
const commLen = 15

// interpreters run a script named by their first non-option argument; a
// node-based language server shows as "node" in comm and exe.
var interpreters = map[string]bool{
	"node": true, "nodejs": true, "bun": true, "deno": true, "electron": true,
	"python": true, "python3": true, "java": true,
}

// shells end the search for an editor's helpers: what runs in the editor's
// integrated terminal or its tasks is the user's work (often the very test
// suite to box), not the editor.
var shells = map[string]bool{
	"sh": true, "bash": true, "zsh": true, "fish": true, "dash": true, "ksh": true,
	"mksh": true, "tcsh": true, "csh": true, "nu": true, "pwsh": true, "elvish": true, "xonsh": true,
}

// procName is one name a process goes by, and where it came from.
type procName struct{ name, via string }

// names lists the names p goes by: comm, the base names of exe and
// argv[0], and for an interpreter the script it runs (with and without
// its extension).
func (p ProcInfo) names() []procName {
	out := []procName{{p.Comm, "comm"}}
	if p.Exe != "" {
		out = append(out, procName{path.Base(strings.TrimSuffix(p.Exe, " (deleted)")), "exe"})
	}
	if len(p.Args) > 0 && p.Args[0] != "" {
		out = append(out, procName{path.Base(p.Args[0]), "argv[0]"})
	}
	interp := false
	for _, n := range out {
		interp = interp || interpreters[n.name] || strings.HasPrefix(n.name, "python3.")
	}
	if interp {
		for _, a := range p.Args[min(1, len(p.Args)):] {
			if strings.HasPrefix(a, "-") {
				continue
			}
			base := path.Base(a)
			out = append(out, procName{base, "script"})
			if ext := path.Ext(base); ext != "" {
				out = append(out, procName{strings.TrimSuffix(base, ext), "script"})
			}
			break
		}
	}
	return out
}

// matchName reports whether the process goes by pattern, and how. comm is
// compared with the pattern cut to 15 bytes, as the kernel cuts it.
func (p ProcInfo) matchName(pattern string) (string, bool) {
	if pattern == "" {
		return "", false
	}
	for _, n := range p.names() {
		if n.name == pattern || (n.via == "comm" && len(pattern) > commLen && n.name == pattern[:commLen]) {
			return n.via, true
		}
	}
	return "", false
}

// isShell reports whether the process is a shell.
func (p ProcInfo) isShell() bool {
	for _, n := range p.names() {
		if shells[n.name] || (n.name != "" && n.name[0] == '-' && shells[n.name[1:]]) {
			return true
		}
	}
	return false
}

// inBox reports whether a cgroup path lies in a boxrun box: a
// boxrun-POLICY-ID scope or cgroup. Protection never touches boxes.
func inBox(cgroup string) bool {
	for _, c := range strings.Split(cgroup, "/") {
		if strings.HasPrefix(c, "boxrun-") && c != "boxrun-protect.service" {
			return true
		}
	}
	return false
}

// MatchOptions says whose processes MatchProcesses may pick.
type MatchOptions struct {
	// UID is the user whose processes are protected; processes of any
	// other user are never picked.
	UID int
	// Others are the names of groups not being applied (see
	// OtherGroupNames).
	Others []string
	// SelfExe is boxrun's own executable: boxrun and what it runs are
	// never an editor's helpers.
	SelfExe string
	// SelfPID is boxrun's own pid, never picked.
	SelfPID int
}

// Match is one process picked for a group.
type Match struct {
	ProcInfo
	// Group is the group's name.
	Group string
	// Via says why: "comm", "exe", "argv[0]", "script", or "child of PID
	// (NAME)" for a helper of a matched process.
	Via string
}

// MatchProcesses picks, from a snapshot of processes, those of the groups:
// every process of opt.UID going by one of a group's names, and its
// helpers — descendants in the same cgroup, up to (not including) a shell,
// a process of another group, boxrun itself or a box. Processes of other
// users, zombies, kernel threads and processes in boxrun boxes are never
// picked. A process matched by several groups goes to the first.
func MatchProcesses(procs []ProcInfo, groups []Group, opt MatchOptions) []Match {
	byPID := make(map[int]ProcInfo, len(procs))
	children := map[int][]int{}
	for _, p := range procs {
		byPID[p.PID] = p
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	for _, c := range children {
		sort.Ints(c)
	}
	picked := map[int]bool{}
	var out []Match
	sorted := slices.Clone(procs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].PID < sorted[j].PID })
	// Direct matches first, so that a helper that matches a group itself
	// is reported under its own name.
	var roots []Match
	for _, p := range sorted {
		if !opt.eligible(p) {
			continue
		}
		if gi, via := groupOf(p, groups); gi >= 0 {
			picked[p.PID] = true
			roots = append(roots, Match{ProcInfo: p, Group: groups[gi].Name, Via: via})
		}
	}
	out = append(out, roots...)
	for _, r := range roots {
		out = append(out, helpersOf(r, byPID, children, picked, groups, opt)...)
	}
	order := map[string]int{}
	for i, g := range groups {
		order[g.Name] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].Group] != order[out[j].Group] {
			return order[out[i].Group] < order[out[j].Group]
		}
		return out[i].PID < out[j].PID
	})
	return out
}

// helpersOf walks the descendants of the matched process r in its cgroup
// (children lists each pid's, byPID the processes) and returns those
// picked as its helpers, marking them in picked. The walk stops at a
// shell, a process of another group, boxrun or a box, and at one that
// matches a group itself (a root of its own).
func helpersOf(r Match, byPID map[int]ProcInfo, children map[int][]int, picked map[int]bool, groups []Group, opt MatchOptions) []Match {
	var out []Match
	queue := slices.Clone(children[r.PID])
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		c, ok := byPID[pid]
		if !ok || picked[pid] || c.Cgroup != r.Cgroup || inBox(c.Cgroup) ||
			(opt.SelfExe != "" && c.Exe == opt.SelfExe) || pid == opt.SelfPID || c.isShell() || opt.isOther(c) {
			continue
		}
		if gi, _ := groupOf(c, groups); gi >= 0 {
			continue // a root of its own
		}
		queue = append(queue, children[pid]...)
		// A setuid sandbox helper of another user is walked through
		// (its children are the user's again) but never touched.
		if !opt.eligible(c) {
			continue
		}
		picked[pid] = true
		out = append(out, Match{ProcInfo: c, Group: r.Group, Via: fmt.Sprintf("child of %d (%s)", r.PID, r.Comm)})
	}
	return out
}

// eligible reports whether p may be picked at all: a live process of
// opt.UID, not a kernel thread, init, boxrun or in a box.
func (opt MatchOptions) eligible(p ProcInfo) bool {
	return p.PID > 1 && p.PID != opt.SelfPID && p.UID == opt.UID && p.EUID == opt.UID &&
		p.State != 'Z' && p.PPID != 2 && p.PID != 2 && !inBox(p.Cgroup) &&
		(opt.SelfExe == "" || p.Exe != opt.SelfExe)
}

// isOther reports whether p goes by a name of a group not being applied.
func (opt MatchOptions) isOther(p ProcInfo) bool {
	for _, m := range opt.Others {
		if _, ok := p.matchName(m); ok {
			return true
		}
	}
	return false
}

// groupOf returns the index of the first of groups p goes by a name of,
// and how it matched; -1 when none.
func groupOf(p ProcInfo, groups []Group) (int, string) {
	for i, g := range groups {
		for _, m := range g.Match {
			if via, ok := p.matchName(m); ok {
				return i, via
			}
		}
	}
	return -1, ""
}
