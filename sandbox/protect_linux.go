package sandbox

// Protection: shield the editor (and other named process groups) from the
// kernel's OOM killer and from reclaim while boxes run.
//
// Two levers, each used as far as the kernel and systemd allow:
//
//   - oom_score_adj of the group's processes is lowered toward the group's
//     value, but an unprivileged writer can only go down to the process's
//     oom_score_adj_min (its floor, set by whoever last wrote it with
//     CAP_SYS_RESOURCE — for what a user manager starts, user@.service's
//     OOMScoreAdjust=100). The floor cannot be read, so the lowest accepted
//     value is found by binary search (a write below it fails with EACCES).
//   - MemoryLow is set on the systemd unit holding the processes (runtime
//     only). memory.low only protects as much as every ancestor cgroup
//     allows, so the effective protection is computed along the whole chain
//     from the real cgroup files, with the exact command that lifts each
//     ancestor that caps it.
//
// What was changed is remembered (previous oom_score_adj per pid and start
// time, previous MemoryLow per unit) so that Undo can restore it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/rundir"
	"github.com/boxrun/boxrun/internal/systemd"
	"github.com/boxrun/boxrun/policy"
)

// ProtectGroup is one protection group ([protect.NAME] of a policy file)
// with its sizes resolved for this machine.
type ProtectGroup struct {
	// Name is NAME in [protect.NAME].
	Name string
	// Match lists the process names of the group.
	Match []string
	// MemoryLow is the memory.low to give the units holding the group's
	// processes, in bytes; nil leaves memory.low alone.
	MemoryLow *uint64
	// OOMScoreAdj is the oom_score_adj to lower the group's processes
	// toward; nil leaves oom_score_adj alone.
	OOMScoreAdj *int
}

// ResolveProtectGroups looks up the named groups in the stack and resolves
// their sizes for env. It fails on an unknown name, listing the known ones.
func ResolveProtectGroups(st *policy.Stack, names []string, env policy.Env) ([]ProtectGroup, error) {
	defs := st.ProtectGroups()
	var out []ProtectGroup
	for _, name := range names {
		g, ok := defs[name]
		if !ok {
			known := make([]string, 0, len(defs))
			for k := range defs {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown protection group %q (known: %s)", name, strings.Join(known, ", "))
		}
		pg := ProtectGroup{Name: name, Match: slices.Clone(g.Match)}
		if g.MemoryLow != nil {
			b, err := g.MemoryLow.Resolve(env)
			if err != nil {
				return nil, fmt.Errorf("protection group %q: memory.low: %w", name, err)
			}
			pg.MemoryLow = &b
		}
		if g.OOMScoreAdj != nil {
			v := *g.OOMScoreAdj
			pg.OOMScoreAdj = &v
		}
		out = append(out, pg)
	}
	return out, nil
}

// OtherGroupNames lists the process names matched by the stack's groups
// that are not among applied: a helper process of an editor that matches
// one of them (a language server) belongs to that group, not the editor's.
func OtherGroupNames(st *policy.Stack, applied []string) []string {
	var out []string
	for name, g := range st.ProtectGroups() {
		if !slices.Contains(applied, name) {
			out = append(out, g.Match...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// ProcInfo is what protection knows about one process, from /proc.
type ProcInfo struct {
	// PID and PPID are the process and its parent.
	PID, PPID int
	// UID and EUID are the real and effective user ids; -1 when unknown.
	UID, EUID int
	// StartTime is field 22 of /proc/PID/stat (clock ticks since boot):
	// with the pid, it names a process across pid reuse.
	StartTime uint64
	// State is the one-letter state of /proc/PID/stat ('Z' for zombies).
	State byte
	// Comm is /proc/PID/comm, at most 15 bytes.
	Comm string
	// Exe is the target of /proc/PID/exe, "" when it cannot be read.
	Exe string
	// Args is /proc/PID/cmdline split at NULs.
	Args []string
	// Cgroup is the process's cgroup v2 path ("/user.slice/..."), "" on a
	// v1-only system.
	Cgroup string
}

// ProcKey names a process across pid reuse.
type ProcKey struct {
	PID       int
	StartTime uint64
}

// Key returns the process's ProcKey.
func (p ProcInfo) Key() ProcKey { return ProcKey{p.PID, p.StartTime} }

// ReadProcs reads every process of a proc file system. fsys is rooted at
// the proc mount (os.DirFS("/proc")); readlink reads a link below it (nil
// leaves Exe empty). Processes that vanish while being read are left out.
func ReadProcs(fsys fs.FS, readlink func(name string) (string, error)) ([]ProcInfo, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []ProcInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := readProcInfo(fsys, readlink, pid); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// readProcInfo reads one process; ok is false when it is gone or unreadable.
func readProcInfo(fsys fs.FS, readlink func(string) (string, error), pid int) (ProcInfo, bool) {
	dir := strconv.Itoa(pid)
	st, err := procfs.ReadStatFS(fsys, pid)
	if err != nil || st.PID != pid {
		return ProcInfo{}, false
	}
	p := ProcInfo{PID: st.PID, PPID: st.PPID, State: st.State, StartTime: st.StartTime, Comm: st.Comm}
	p.UID, p.EUID = -1, -1
	if p.PID == 2 || p.PPID == 2 {
		// A kernel thread (kthreadd's child): never protected nor walked
		// through, and a third of a desktop's processes; its other files
		// are not worth reading.
		return p, true
	}
	if status, err := fs.ReadFile(fsys, dir+"/status"); err == nil {
		p.UID, p.EUID = parseStatusUIDs(string(status))
	}
	if comm, err := fs.ReadFile(fsys, dir+"/comm"); err == nil {
		p.Comm = strings.TrimSuffix(string(comm), "\n")
	}
	if cmd, err := fs.ReadFile(fsys, dir+"/cmdline"); err == nil {
		p.Args = splitCmdline(cmd)
	}
	if cg, err := fsys.Open(dir + "/cgroup"); err == nil {
		p.Cgroup, _ = cgroupfs.ParseProcCgroup(cg)
		cg.Close()
	}
	if readlink != nil {
		if exe, err := readlink(dir + "/exe"); err == nil {
			p.Exe = exe
		}
	}
	return p, true
}

// parseStatusUIDs reads the real and effective uid from /proc/PID/status.
func parseStatusUIDs(s string) (uid, euid int) {
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				u, err1 := strconv.Atoi(f[0])
				e, err2 := strconv.Atoi(f[1])
				if err1 == nil && err2 == nil {
					return u, e
				}
			}
		}
	}
	return -1, -1
}

// splitCmdline splits /proc/PID/cmdline. Chromium and Electron rewrite
// their command line into one space-separated string (argv[0] holding it
// all); that form is split at spaces.
func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	args := strings.Split(s, "\x00")
	if len(args) == 1 && strings.Contains(args[0], " ") && strings.HasPrefix(args[0], "/") {
		args = strings.Fields(args[0])
	}
	return args
}

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
func MatchProcesses(procs []ProcInfo, groups []ProtectGroup, opt MatchOptions) []Match {
	byPID := make(map[int]ProcInfo, len(procs))
	children := map[int][]int{}
	for _, p := range procs {
		byPID[p.PID] = p
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	for _, c := range children {
		sort.Ints(c)
	}
	eligible := func(p ProcInfo) bool {
		return p.PID > 1 && p.PID != opt.SelfPID && p.UID == opt.UID && p.EUID == opt.UID &&
			p.State != 'Z' && p.PPID != 2 && p.PID != 2 && !inBox(p.Cgroup) &&
			(opt.SelfExe == "" || p.Exe != opt.SelfExe)
	}
	directGroup := func(p ProcInfo) (int, string) {
		for i, g := range groups {
			for _, m := range g.Match {
				if via, ok := p.matchName(m); ok {
					return i, via
				}
			}
		}
		return -1, ""
	}
	isOther := func(p ProcInfo) bool {
		for _, m := range opt.Others {
			if _, ok := p.matchName(m); ok {
				return true
			}
		}
		return false
	}
	picked := map[int]bool{}
	var out []Match
	sorted := slices.Clone(procs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].PID < sorted[j].PID })
	// Direct matches first, so that a helper that matches a group itself
	// is reported under its own name.
	type root struct {
		p     ProcInfo
		group int
	}
	var roots []root
	for _, p := range sorted {
		if !eligible(p) {
			continue
		}
		if gi, via := directGroup(p); gi >= 0 {
			picked[p.PID] = true
			out = append(out, Match{ProcInfo: p, Group: groups[gi].Name, Via: via})
			roots = append(roots, root{p, gi})
		}
	}
	for _, r := range roots {
		queue := slices.Clone(children[r.p.PID])
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			c, ok := byPID[pid]
			if !ok || picked[pid] || c.Cgroup != r.p.Cgroup || inBox(c.Cgroup) ||
				(opt.SelfExe != "" && c.Exe == opt.SelfExe) || pid == opt.SelfPID || c.isShell() || isOther(c) {
				continue
			}
			if gi, _ := directGroup(c); gi >= 0 {
				continue // a root of its own
			}
			queue = append(queue, children[pid]...)
			// A setuid sandbox helper of another user is walked through
			// (its children are the user's again) but never touched.
			if !eligible(c) {
				continue
			}
			picked[pid] = true
			out = append(out, Match{ProcInfo: c, Group: groups[r.group].Name,
				Via: fmt.Sprintf("child of %d (%s)", r.p.PID, r.p.Comm)})
		}
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

// OOMAdjuster reads and writes a process's oom_score_adj.
type OOMAdjuster interface {
	// Get returns the current oom_score_adj of pid.
	Get(pid int) (int, error)
	// Set writes v; a value below the process's floor fails with EACCES
	// unless the writer has CAP_SYS_RESOURCE.
	Set(pid, v int) error
}

// procOOM is the real OOMAdjuster, writing /proc/PID/oom_score_adj.
type procOOM struct{}

func (procOOM) Get(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (procOOM) Set(pid, v int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(v)), 0)
}

// errDenied reports whether err is the kernel refusing a value (EACCES,
// EPERM), as opposed to the process being gone.
func errDenied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// LowerOOMScoreAdj lowers pid's oom_score_adj from current toward target,
// as far as the kernel accepts: target itself when it can, else the lowest
// value above it that is accepted (the process's floor), found by binary
// search over at most 11 writes. It never raises the value. It returns the
// value the process has afterwards; limited is true when that is above
// target because the floor stopped it. When even current cannot be
// written back (another user's process, or one that is not dumpable) it
// returns current and the error.
func LowerOOMScoreAdj(w OOMAdjuster, pid, current, target int) (after int, limited bool, err error) {
	if target >= current {
		return current, false, nil
	}
	err = w.Set(pid, target)
	if err == nil {
		return target, false, nil
	}
	if !errDenied(err) {
		return current, false, err
	}
	// Is it the floor, or no right to write at all?
	if err := w.Set(pid, current); err != nil {
		return current, false, fmt.Errorf("writing oom_score_adj of pid %d: %w", pid, err)
	}
	lo, hi := target+1, current // hi is accepted, everything below lo is not
	for lo < hi {
		mid := lo + (hi-lo)/2
		switch err := w.Set(pid, mid); {
		case err == nil:
			hi = mid
		case errDenied(err):
			lo = mid + 1
		default:
			// The process went away: hi is the last value it had.
			return hi, hi > target, err
		}
	}
	return hi, hi > target, nil
}

// CgroupLevel is one cgroup on the path from the root to a process's
// cgroup, as protection sees it.
type CgroupLevel struct {
	// Path is the cgroup below the mount, e.g. "/user.slice".
	Path string `json:"cgroup"`
	// Low is memory.low as set (0 when unset).
	Low uint64 `json:"memory_low"`
	// Effective is the protection this level can pass on (see
	// EffectiveProtection).
	Effective uint64 `json:"effective"`
}

// Fix is one change that would lift a cap on a unit's protection.
type Fix struct {
	// Cgroup is the cgroup to change.
	Cgroup string `json:"cgroup"`
	// Unit is its systemd unit, "" for a plain cgroup.
	Unit string `json:"unit,omitempty"`
	// Manager is "system", "user" or "" (no systemd: the cgroup file).
	Manager string `json:"manager"`
	// NeedsRoot is true when only root can make the change.
	NeedsRoot bool `json:"needs_root"`
	// Command is the exact shell command that makes it.
	Command string `json:"command"`
	// Applied is true when boxrun made it (protect --system as root).
	Applied bool `json:"applied,omitempty"`
}

// Protection is the memory.low protection a cgroup actually gets.
type Protection struct {
	// Levels are the cgroups from the top (a child of the root) down to
	// the process's own, those with the memory controller only.
	Levels []CgroupLevel `json:"chain"`
	// Recursive says whether cgroup2 is mounted with memory_recursiveprot.
	Recursive bool `json:"recursive_prot"`
	// Effective is the protection the process's cgroup gets, at most.
	Effective uint64 `json:"effective"`
	// Want is the protection asked for.
	Want uint64 `json:"want"`
	// Fixes lift every ancestor that caps Effective below Want (and the
	// cgroup itself when its own memory.low is below Want).
	Fixes []Fix `json:"fixes"`
	// Note explains an empty chain (the root cgroup, no memory controller).
	Note string `json:"note,omitempty"`
}

// levelEffective is the model of the kernel's effective protection for one
// level: a top-level cgroup gets its own memory.low; below, a cgroup gets
// at most what it sets and what its parent gets, and with
// memory_recursiveprot a cgroup that sets nothing is given its parent's.
func levelEffective(first bool, low, parent uint64, recursive bool) uint64 {
	switch {
	case first:
		return low
	case recursive && low == 0:
		return parent
	default:
		return min(low, parent)
	}
}

// computeProtection is the pure part of EffectiveProtection: given the
// levels' memory.low settings (Effective is filled in), it computes the
// protection the last level gets and the fixes, top-down, that would let
// it reach want. The model is an upper bound: the kernel also splits a
// parent's protection among siblings in proportion to their usage.
func computeProtection(levels []CgroupLevel, recursive bool, want uint64, mount string, uid int) Protection {
	p := Protection{Levels: append([]CgroupLevel{}, levels...), Recursive: recursive, Want: want, Fixes: []Fix{}}
	if len(levels) == 0 {
		p.Note = "the process is in the root cgroup, which memory.low never protects"
		return p
	}
	var e, fixed uint64 = math.MaxUint64, math.MaxUint64
	for i := range p.Levels {
		l := &p.Levels[i]
		l.Effective = levelEffective(i == 0, l.Low, e, recursive)
		e = l.Effective
		// What this level would pass on once the fixes above it are made.
		low := l.Low
		f := levelEffective(i == 0, low, fixed, recursive)
		if f < want {
			p.Fixes = append(p.Fixes, fixFor(l.Path, want, mount, uid))
			low = max(low, want)
			f = levelEffective(i == 0, low, fixed, recursive)
		}
		fixed = f
	}
	p.Effective = e
	return p
}

// systemdSize spells a byte count for systemctl set-property.
func systemdSize(b uint64) string {
	return policy.Size{Bytes: b}.String()
}

// fixFor is the command that sets memory.low of one cgroup to want.
func fixFor(cgroup string, want uint64, mount string, uid int) Fix {
	unit, manager, owner := systemd.UnitOwner(cgroup)
	f := Fix{Cgroup: cgroup, Unit: unit, Manager: manager}
	runtime := ""
	if strings.HasSuffix(unit, ".scope") {
		runtime = "--runtime " // a scope's name does not outlive it
	}
	switch manager {
	case "user":
		f.Command = fmt.Sprintf("systemctl --user set-property %s%s MemoryLow=%s", runtime, unit, systemdSize(want))
		if owner != uid && uid >= 0 {
			// Another user's manager: only root (or that user) may.
			name := strconv.Itoa(owner)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			f.NeedsRoot = true
			f.Command = fmt.Sprintf("sudo systemctl --user --machine=%s@ set-property %s%s MemoryLow=%s", name, runtime, unit, systemdSize(want))
		}
	case "system":
		f.NeedsRoot = true
		f.Command = fmt.Sprintf("sudo systemctl set-property %s%s MemoryLow=%s", runtime, unit, systemdSize(want))
	default:
		f.NeedsRoot = true
		f.Command = fmt.Sprintf("echo %d | sudo tee %s", want, path.Join("/", mount, cgroup, "memory.low"))
	}
	return f
}

// readCgroupValue reads a single-value cgroup file ("max" or a number).
func readCgroupValue(fsys fs.FS, name string) (uint64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	return cgroupfs.ParseLimit(string(b))
}

// EffectiveProtection computes the memory.low protection the cgroup
// (below the cgroup2 mount) gets, from the real files of fsys (rooted at
// "/"), and the fixes that would bring it to want. override, when not nil,
// replaces the cgroup's own memory.low (what a dry run would set). uid is
// the user running boxrun, for the fix commands. Levels without the memory
// controller are skipped: their memory is charged to the nearest ancestor
// that has it.
func EffectiveProtection(fsys fs.FS, cgroup string, want uint64, override *uint64, uid int) (Protection, error) {
	m, err := cgroupfs.ReadMount(fsys)
	if err != nil {
		return Protection{}, err
	}
	if m.Path == "" {
		return Protection{Levels: []CgroupLevel{}, Want: want, Fixes: []Fix{}, Note: "no cgroup v2 hierarchy is mounted"}, nil
	}
	var levels []CgroupLevel
	cur := ""
	comps := strings.Split(strings.Trim(cgroup, "/"), "/")
	for i, c := range comps {
		if c == "" {
			continue
		}
		cur += "/" + c
		low, ok := readCgroupValue(fsys, cgroupfs.FSPath(m.Path, cur, "memory.low"))
		if i == len(comps)-1 && override != nil {
			low, ok = max(low, *override), true
		}
		if !ok {
			continue
		}
		levels = append(levels, CgroupLevel{Path: cur, Low: low})
	}
	p := computeProtection(levels, m.Has("memory_recursiveprot"), want, m.Path, uid)
	if len(levels) == 0 && strings.Trim(cgroup, "/") != "" {
		p.Note = "the memory controller is not enabled for " + cgroup + " or its ancestors"
	}
	return p, nil
}

// ProtectOptions configures a Protector.
type ProtectOptions struct {
	// Groups are the groups to protect, in order of precedence.
	Groups []ProtectGroup
	// Others are the names of the groups not applied (OtherGroupNames).
	Others []string
	// UID is whose processes to protect (see ProtectUID).
	UID int
	// DryRun changes nothing: it reports what would be tried.
	DryRun bool
	// System (root only) also sets MemoryLow on the ancestors the system
	// manager owns (user-UID.slice, user.slice) that cap the protection,
	// and memory.low of plain ancestor cgroups.
	System bool
	// StatePath is where the previous values are remembered
	// (DefaultStatePath).
	StatePath string
	// Timeout bounds each D-Bus call; 0 means 10s.
	Timeout time.Duration
}

// ProtectUID is whose processes `boxrun protect` protects: the caller's,
// or as root the user who ran sudo (SUDO_UID).
func ProtectUID(getenv func(string) string) int {
	uid := os.Getuid()
	if uid == 0 {
		if n, err := strconv.Atoi(getenv("SUDO_UID")); err == nil && n > 0 {
			return n
		}
	}
	return uid
}

// DefaultStatePath is where protection remembers what it changed:
// $XDG_RUNTIME_DIR/boxrun/protect.json, /run/boxrun/protect.json for root,
// else /run/user/UID/boxrun/protect.json.
func DefaultStatePath(getenv func(string) string) string {
	return filepath.Join(rundir.Dir(getenv), "protect.json")
}

// ProtectedProcess is what protection did to one process.
type ProtectedProcess struct {
	// PID and StartTime name the process; Comm is its name.
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Comm      string `json:"comm"`
	// Group is the protection group it belongs to.
	Group string `json:"group"`
	// Via says why the process belongs to the group.
	Via string `json:"via"`
	// Cgroup is its cgroup; Unit the systemd unit of that cgroup, "" for
	// a plain cgroup.
	Cgroup string `json:"cgroup"`
	Unit   string `json:"unit"`
	// OOMBefore and OOMAfter are oom_score_adj before and after.
	OOMBefore int `json:"oom_score_adj_before"`
	OOMAfter  int `json:"oom_score_adj_after"`
	// OOMTarget is the group's oom_score_adj, nil when it sets none.
	OOMTarget *int `json:"oom_score_adj_target"`
	// OOMFloor is true when the process's floor stopped the lowering:
	// going further needs CAP_SYS_RESOURCE (root).
	OOMFloor bool `json:"oom_score_adj_floor"`
	// Error says what failed, "" when nothing did.
	Error string `json:"error,omitempty"`
}

// ProtectedUnit is what protection did to one unit (or plain cgroup)
// holding protected processes.
type ProtectedUnit struct {
	// Cgroup is the cgroup; Unit its systemd unit ("" for a plain
	// cgroup) and Manager the manager owning it ("user", "system", "").
	Cgroup  string `json:"cgroup"`
	Unit    string `json:"unit"`
	Manager string `json:"manager"`
	// Group is the group whose memory.low it got (the largest asked).
	Group string `json:"group"`
	// Before is memory.low before boxrun changed it; Set is memory.low now
	// (what a dry run would set).
	Before uint64 `json:"memory_low_before"`
	Set    uint64 `json:"memory_low_set"`
	// Changed is true when this Apply set it.
	Changed bool `json:"changed"`
	// Protection is the effective protection along the cgroup chain.
	Protection Protection `json:"protection"`
	// Error says what failed, "" when nothing did.
	Error string `json:"error,omitempty"`
}

// ProtectReport is the result of one Apply.
type ProtectReport struct {
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dry_run"`
	// UID is the user whose processes were protected.
	UID int `json:"uid"`
	// Processes are the groups' processes, Units their cgroups.
	Processes []ProtectedProcess `json:"processes"`
	Units     []ProtectedUnit    `json:"units"`
	// Problems are things that should have worked and did not.
	Problems []string `json:"problems"`
}

// Protector applies protection groups. It keeps its D-Bus connections
// between Apply calls (protect --watch); Close releases them.
type Protector struct {
	opt   ProtectOptions
	oom   OOMAdjuster
	conns systemd.Conns
	// done remembers processes already brought as low as they go.
	done map[ProcKey]lowered
	// procFS reads processes; rootFS reads cgroup files.
	procFS, rootFS fs.FS
}

// lowered is where a process's oom_score_adj ended up.
type lowered struct {
	after int
	floor bool
}

// NewProtector prepares to apply opt.
func NewProtector(opt ProtectOptions) *Protector {
	if opt.Timeout == 0 {
		opt.Timeout = 10 * time.Second
	}
	return &Protector{opt: opt, oom: procOOM{}, done: map[ProcKey]lowered{},
		procFS: os.DirFS("/proc"), rootFS: os.DirFS("/")}
}

// Close releases the D-Bus connections.
func (p *Protector) Close() error { return p.conns.Close() }

// readlinkProc reads a link below /proc.
func readlinkProc(name string) (string, error) { return os.Readlink(filepath.Join("/proc", name)) }

// Matches scans /proc and returns the processes of the groups.
func (p *Protector) Matches() ([]Match, error) {
	procs, err := ReadProcs(p.procFS, readlinkProc)
	if err != nil {
		return nil, err
	}
	self, _ := os.Executable()
	return MatchProcesses(procs, p.opt.Groups, MatchOptions{UID: p.opt.UID, Others: p.opt.Others, SelfExe: self, SelfPID: os.Getpid()}), nil
}

// conn returns a connection to the manager at sock, dialling once.
func (p *Protector) conn(ctx context.Context, which, sock string) (*sd.Conn, error) {
	return p.conns.Get(ctx, which, sock)
}

// getMemoryLow reads a unit's MemoryLow property.
func getMemoryLow(ctx context.Context, c *sd.Conn, unit string) (uint64, error) {
	prop, err := c.GetUnitTypePropertyContext(ctx, unit, systemd.UnitType(unit), "MemoryLow")
	if err != nil {
		return 0, systemd.ExplainError(err)
	}
	v, ok := prop.Value.Value().(uint64)
	if !ok {
		return 0, fmt.Errorf("MemoryLow of %s is %v, not a number", unit, prop.Value)
	}
	return v, nil
}

// setMemoryLow sets a unit's MemoryLow for this boot only.
func setMemoryLow(ctx context.Context, c *sd.Conn, unit string, v uint64) error {
	err := c.SetUnitPropertiesContext(ctx, unit, true, sd.Property{Name: "MemoryLow", Value: godbus.MakeVariant(v)})
	if err != nil {
		return systemd.ExplainError(err)
	}
	return nil
}

// Apply protects the groups' processes once and reports what it did.
func (p *Protector) Apply(ctx context.Context) (*ProtectReport, error) {
	matches, err := p.Matches()
	if err != nil {
		return nil, err
	}
	return p.apply(ctx, matches)
}

func (p *Protector) apply(ctx context.Context, matches []Match) (*ProtectReport, error) {
	rep := &ProtectReport{DryRun: p.opt.DryRun, UID: p.opt.UID,
		Processes: []ProtectedProcess{}, Units: []ProtectedUnit{}, Problems: []string{}}
	if len(matches) == 0 {
		return rep, nil
	}
	groups := map[string]ProtectGroup{}
	for _, g := range p.opt.Groups {
		groups[g.Name] = g
	}
	var st *protectState
	if !p.opt.DryRun {
		unlock, err := lockState(p.opt.StatePath)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		} else {
			defer unlock()
		}
		if st, err = loadState(p.opt.StatePath); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
			st = &protectState{}
		}
	}
	// oom_score_adj, process by process.
	for _, m := range matches {
		pp := ProtectedProcess{PID: m.PID, StartTime: m.StartTime, Comm: m.Comm, Group: m.Group, Via: m.Via, Cgroup: m.Cgroup}
		pp.Unit, _, _ = systemd.UnitOwner(m.Cgroup)
		pp.OOMTarget = groups[m.Group].OOMScoreAdj
		cur, err := p.oom.Get(m.PID)
		if err != nil {
			continue // gone
		}
		pp.OOMBefore, pp.OOMAfter = cur, cur
		if t := pp.OOMTarget; t != nil && *t < cur && !p.opt.DryRun {
			if last, ok := p.done[m.Key()]; ok && last.after == cur {
				pp.OOMFloor = last.floor // already as low as it goes
			} else if !p.sameProcess(m) {
				continue
			} else {
				after, floor, err := LowerOOMScoreAdj(p.oom, m.PID, cur, *t)
				pp.OOMAfter, pp.OOMFloor = after, floor
				if err != nil && !errors.Is(err, syscall.ESRCH) {
					pp.Error = err.Error()
					rep.Problems = append(rep.Problems, fmt.Sprintf("lowering oom_score_adj of %s (pid %d): %v", m.Comm, m.PID, err))
				}
				if after != cur {
					st.recordProc(m, cur, after)
				}
				p.done[m.Key()] = lowered{after, floor}
			}
		} else if t != nil && *t < cur {
			pp.OOMAfter = *t // what a dry run would try
		}
		rep.Processes = append(rep.Processes, pp)
	}
	// memory.low, unit by unit (the highest want of the groups in it).
	type want struct {
		group string
		bytes uint64
	}
	wants := map[string]want{}
	var cgroups []string
	for _, m := range matches {
		g := groups[m.Group]
		if g.MemoryLow == nil || m.Cgroup == "" {
			continue
		}
		w, seen := wants[m.Cgroup]
		if !seen {
			cgroups = append(cgroups, m.Cgroup)
		}
		if !seen || *g.MemoryLow > w.bytes {
			wants[m.Cgroup] = want{m.Group, *g.MemoryLow}
		}
	}
	mount, _ := cgroupfs.ReadMount(p.rootFS)
	for _, cg := range cgroups {
		w := wants[cg]
		rep.Units = append(rep.Units, p.protectCgroup(ctx, mount, cg, w.group, w.bytes, st, rep))
	}
	if st != nil && st.dirty {
		st.prune(p.procFS)
		if err := saveState(p.opt.StatePath, st); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	return rep, nil
}

// sameProcess checks that m's pid still names the process scanned.
func (p *Protector) sameProcess(m Match) bool {
	cur, err := procfs.ReadStatFS(p.procFS, m.PID)
	return err == nil && cur.StartTime == m.StartTime
}

// protectCgroup sets memory.low of one cgroup (through its unit's manager,
// or the file for a plain cgroup), computes the effective protection and,
// with System, lifts the ancestors that cap it.
func (p *Protector) protectCgroup(ctx context.Context, mount cgroupfs.Mount, cg, group string, want uint64, st *protectState, rep *ProtectReport) ProtectedUnit {
	unit, manager, owner := systemd.UnitOwner(cg)
	u := ProtectedUnit{Cgroup: cg, Unit: unit, Manager: manager, Group: group}
	problem := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if u.Error == "" {
			u.Error = msg
		}
		rep.Problems = append(rep.Problems, msg)
	}
	lowFile := cgroupfs.FSPath(mount.Path, cg, "memory.low")
	cur, haveFile := readCgroupValue(p.rootFS, lowFile)
	u.Before, u.Set = cur, cur
	root := os.Geteuid() == 0
	switch {
	case mount.Path == "" || strings.Trim(cg, "/") == "":
		// The root cgroup, or no cgroup v2: nothing to set.
	case p.opt.DryRun:
		u.Set = max(cur, want)
	case haveFile && cur >= want:
		// Already protected (an earlier run, or the user's own setting).
	case manager != "":
		if manager == "system" && !root {
			break // the fix names the command
		}
		ctx, cancel := context.WithTimeout(ctx, p.opt.Timeout)
		defer cancel()
		c, err := p.conn(ctx, manager, systemd.SocketFor(manager, owner))
		if err != nil {
			problem("setting MemoryLow on %s: %v", unit, err)
			break
		}
		prev, err := getMemoryLow(ctx, c, unit)
		if err != nil {
			problem("reading MemoryLow of %s: %v", unit, err)
			break
		}
		if err := setMemoryLow(ctx, c, unit, want); err != nil {
			problem("setting MemoryLow=%s on %s: %v", systemdSize(want), unit, err)
			break
		}
		u.Before, u.Changed = prev, true
		st.recordUnit(stateUnit{Manager: manager, UID: owner, Unit: unit, Cgroup: cg, Before: prev, After: want})
	case haveFile:
		// A plain cgroup (no systemd): write the file when we may.
		full := filepath.Join(mount.Path, cg, "memory.low")
		if unix.Access(full, unix.W_OK) != nil {
			break // the fix names the command
		}
		if err := os.WriteFile(full, []byte(strconv.FormatUint(want, 10)), 0); err != nil {
			problem("writing %s: %v", full, err)
			break
		}
		u.Changed = true
		st.recordUnit(stateUnit{Cgroup: cg, Before: cur, After: want})
	}
	if !p.opt.DryRun {
		if v, ok := readCgroupValue(p.rootFS, lowFile); ok {
			u.Set = v
		}
	}
	var override *uint64
	if p.opt.DryRun {
		override = &want
	}
	prot, err := EffectiveProtection(p.rootFS, cg, want, override, p.opt.UID)
	if err != nil {
		problem("computing the protection of %s: %v", cg, err)
	}
	if p.opt.System && root && !p.opt.DryRun && len(prot.Fixes) > 0 {
		for i := range prot.Fixes {
			f := &prot.Fixes[i]
			if f.Cgroup == cg {
				continue
			}
			if err := p.applyFix(ctx, mount, *f, want, st); err != nil {
				problem("%s: %v", f.Command, err)
				continue
			}
			f.Applied = true
		}
		if again, err := EffectiveProtection(p.rootFS, cg, want, nil, p.opt.UID); err == nil {
			applied := prot.Fixes
			prot = again
			for _, f := range applied {
				if f.Applied {
					prot.Fixes = append(prot.Fixes, f)
				}
			}
		}
	}
	u.Protection = prot
	return u
}

// applyFix makes one fix as root: MemoryLow through the unit's manager, or
// the memory.low file of a plain cgroup.
func (p *Protector) applyFix(ctx context.Context, mount cgroupfs.Mount, f Fix, want uint64, st *protectState) error {
	switch f.Manager {
	case "system", "user":
		ctx, cancel := context.WithTimeout(ctx, p.opt.Timeout)
		defer cancel()
		_, _, owner := systemd.UnitOwner(f.Cgroup)
		c, err := p.conn(ctx, f.Manager, systemd.SocketFor(f.Manager, owner))
		if err != nil {
			return err
		}
		prev, err := getMemoryLow(ctx, c, f.Unit)
		if err != nil {
			return err
		}
		if err := setMemoryLow(ctx, c, f.Unit, want); err != nil {
			return err
		}
		st.recordUnit(stateUnit{Manager: f.Manager, UID: owner, Unit: f.Unit, Cgroup: f.Cgroup, Before: prev, After: want})
		return nil
	case "":
		full := filepath.Join(mount.Path, f.Cgroup, "memory.low")
		prev, _ := readCgroupValue(p.rootFS, cgroupfs.FSPath(mount.Path, f.Cgroup, "memory.low"))
		if err := os.WriteFile(full, []byte(strconv.FormatUint(want, 10)), 0); err != nil {
			return err
		}
		st.recordUnit(stateUnit{Cgroup: f.Cgroup, Before: prev, After: want})
		return nil
	}
	return fmt.Errorf("not a change root can make here")
}

// PIDSet lists the pids in /proc, cheaply (names only), for Watch.
func PIDSet(procFS fs.FS) (map[int]struct{}, error) {
	entries, err := fs.ReadDir(procFS, ".")
	if err != nil {
		return nil, err
	}
	set := make(map[int]struct{}, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			set[pid] = struct{}{}
		}
	}
	return set, nil
}

// Watch applies the groups, calls ready, and then re-applies whenever new
// processes have appeared since the last look, polling /proc every
// interval, until ctx is done. Each report goes to onReport.
func (p *Protector) Watch(ctx context.Context, interval time.Duration, ready func(), onReport func(*ProtectReport, error)) error {
	prev, err := PIDSet(p.procFS)
	if err != nil {
		return fmt.Errorf("listing processes: %w", err)
	}
	onReport(p.Apply(ctx))
	if ready != nil {
		ready()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := PIDSet(p.procFS)
		if err != nil {
			onReport(nil, fmt.Errorf("listing processes: %w", err))
			continue
		}
		grown := false
		for pid := range cur {
			if _, ok := prev[pid]; !ok {
				grown = true
				break
			}
		}
		prev = cur
		if grown {
			onReport(p.Apply(ctx))
		}
		// Forget processes that are gone.
		for k := range p.done {
			if _, ok := cur[k.PID]; !ok {
				delete(p.done, k)
			}
		}
	}
}

// protectState is what protection changed, for Undo.
type protectState struct {
	Version   int         `json:"version"`
	Processes []stateProc `json:"processes"`
	Units     []stateUnit `json:"units"`
	dirty     bool
}

// stateProc is one process whose oom_score_adj was lowered.
type stateProc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Comm      string `json:"comm"`
	Before    int    `json:"before"`
	After     int    `json:"after"`
}

// stateUnit is one unit (or plain cgroup, Manager "") whose memory.low was
// set.
type stateUnit struct {
	Manager string `json:"manager"`
	UID     int    `json:"uid"`
	Unit    string `json:"unit"`
	Cgroup  string `json:"cgroup"`
	Before  uint64 `json:"before"`
	After   uint64 `json:"after"`
}

// stateVersion is the format of protect.json.
const stateVersion = 1

// recordProc remembers a change, keeping the first value seen before
// boxrun changed anything.
func (s *protectState) recordProc(m Match, before, after int) {
	if s == nil {
		return
	}
	s.dirty = true
	for i := range s.Processes {
		e := &s.Processes[i]
		if e.PID == m.PID && e.StartTime == m.StartTime {
			e.After = after
			return
		}
	}
	s.Processes = append(s.Processes, stateProc{PID: m.PID, StartTime: m.StartTime, Comm: m.Comm, Before: before, After: after})
}

// recordUnit remembers a MemoryLow change, keeping the first previous
// value.
func (s *protectState) recordUnit(u stateUnit) {
	if s == nil {
		return
	}
	s.dirty = true
	for i := range s.Units {
		e := &s.Units[i]
		if e.Manager == u.Manager && e.Unit == u.Unit && e.Cgroup == u.Cgroup {
			e.After = u.After
			return
		}
	}
	s.Units = append(s.Units, u)
}

// prune forgets processes that have exited (there is nothing to restore
// on them), so that the state of a long --watch stays small.
func (s *protectState) prune(procFS fs.FS) {
	kept := s.Processes[:0]
	for _, e := range s.Processes {
		if cur, err := procfs.ReadStatFS(procFS, e.PID); err == nil && cur.StartTime == e.StartTime && cur.State != 'Z' {
			kept = append(kept, e)
		}
	}
	s.Processes = kept
}

// loadState reads protect.json; a missing file is an empty state.
func loadState(file string) (*protectState, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &protectState{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading what protection changed from %s: %w", file, err)
	}
	var s protectState
	if err := json.Unmarshal(b, &s); err != nil || s.Version != stateVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", s.Version, stateVersion)
		}
		return nil, fmt.Errorf("%s is not boxrun's protection state (%v): remove it, then restore oom_score_adj and MemoryLow by hand if needed", file, err)
	}
	return &s, nil
}

// saveState writes protect.json atomically, or removes it when empty.
func saveState(file string, s *protectState) error {
	if len(s.Processes) == 0 && len(s.Units) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", file, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("remembering what protection changed: %w", err)
	}
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("remembering what protection changed in %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("remembering what protection changed in %s: %w", file, err)
	}
	return nil
}

// lockState takes an exclusive lock beside the state file, so that runs
// starting at once do not lose each other's records.
func lockState(file string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("locking the protection state: %w", err)
	}
	f, err := os.OpenFile(file+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the protection state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// Restored is one value Undo restored or left alone.
type Restored struct {
	// What names it: "code (pid 1234) oom_score_adj" or "app.slice MemoryLow".
	What string `json:"what"`
	// From and To are the values before and after the undo.
	From string `json:"from"`
	To   string `json:"to"`
	// Skipped says why it was left alone ("" when restored).
	Skipped string `json:"skipped,omitempty"`
}

// UndoProtection restores what protection changed, as remembered in the
// state file: a value is put back only where it is still what boxrun set
// (someone else's later change wins). What could not be restored for a
// passing reason (a manager that does not answer) stays in the state file.
func UndoProtection(ctx context.Context, statePath string, timeout time.Duration) ([]Restored, error) {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	unlock, err := lockState(statePath)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := loadState(statePath)
	if err != nil {
		return nil, err
	}
	p := NewProtector(ProtectOptions{Timeout: timeout})
	defer p.Close()
	var out []Restored
	keep := &protectState{Version: stateVersion}
	for _, e := range st.Processes {
		r := Restored{What: fmt.Sprintf("%s (pid %d) oom_score_adj", e.Comm, e.PID), From: strconv.Itoa(e.After), To: strconv.Itoa(e.Before)}
		cur, err := procfs.ReadStat(e.PID)
		switch {
		case err != nil || cur.StartTime != e.StartTime:
			r.Skipped = "the process has exited"
		default:
			v, err := p.oom.Get(e.PID)
			switch {
			case err != nil:
				r.Skipped = "the process has exited"
			case v != e.After:
				r.Skipped = fmt.Sprintf("changed since to %d", v)
				r.From = strconv.Itoa(v)
			default:
				if err := p.oom.Set(e.PID, e.Before); err != nil {
					r.Skipped = err.Error()
					keep.Processes = append(keep.Processes, e)
				}
			}
		}
		out = append(out, r)
	}
	mount, _ := cgroupfs.ReadMount(os.DirFS("/"))
	for _, e := range st.Units {
		name := e.Unit
		if name == "" {
			name = e.Cgroup
		}
		r := Restored{What: name + " MemoryLow", From: systemdSize(e.After), To: systemdSize(e.Before)}
		if e.Manager == "" {
			r.What = name + " memory.low"
			full := filepath.Join(mount.Path, e.Cgroup, "memory.low")
			v, ok := readCgroupValue(os.DirFS("/"), cgroupfs.FSPath(mount.Path, e.Cgroup, "memory.low"))
			switch {
			case mount.Path == "" || !ok:
				r.Skipped = "the cgroup is gone"
			case v != e.After:
				r.Skipped = "changed since to " + systemdSize(v)
			default:
				if err := os.WriteFile(full, []byte(strconv.FormatUint(e.Before, 10)), 0); err != nil {
					r.Skipped = err.Error()
					keep.Units = append(keep.Units, e)
				}
			}
			out = append(out, r)
			continue
		}
		r.Skipped = p.undoUnit(ctx, e, timeout)
		if r.Skipped != "" && !strings.HasPrefix(r.Skipped, "changed since") && !strings.HasPrefix(r.Skipped, "the unit") {
			keep.Units = append(keep.Units, e)
		}
		out = append(out, r)
	}
	return out, saveState(statePath, keep)
}

// undoUnit puts a unit's MemoryLow back; it returns why not, or "".
func (p *Protector) undoUnit(ctx context.Context, e stateUnit, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := p.conn(ctx, e.Manager, systemd.SocketFor(e.Manager, e.UID))
	if err != nil {
		return err.Error()
	}
	prop, err := c.GetUnitPropertyContext(ctx, e.Unit, "ActiveState")
	if err != nil {
		return "the unit is gone"
	}
	if s, _ := prop.Value.Value().(string); s != "active" && s != "activating" && s != "reloading" {
		return "the unit is no longer running (" + s + ")"
	}
	v, err := getMemoryLow(ctx, c, e.Unit)
	if err != nil {
		return err.Error()
	}
	if v != e.After {
		return "changed since to " + systemdSize(v)
	}
	if err := setMemoryLow(ctx, c, e.Unit, e.Before); err != nil {
		return err.Error()
	}
	return ""
}

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// HasCapSysResource reports whether this process may lower oom_score_adj
// below a process's floor (CAP_SYS_RESOURCE in its effective set). Root in
// a container often lacks it.
func HasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	return parseCapEff(string(b))&(1<<capSysResource) != 0
}

// parseCapEff reads the CapEff mask of /proc/PID/status.
func parseCapEff(status string) uint64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}
