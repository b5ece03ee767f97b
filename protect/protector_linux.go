package protect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/systemd"
)

// Options configures a Protector.
type Options struct {
	// Groups are the groups to protect, in order of precedence.
	Groups []Group
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

// Report is the result of one Apply.
type Report struct {
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
	opt   Options
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
func NewProtector(opt Options) *Protector {
	if opt.Timeout == 0 {
		opt.Timeout = 10 * time.Second
	}
	return &Protector{opt: opt, oom: procOOM{}, done: map[ProcKey]lowered{},
		procFS: os.DirFS("/proc"), rootFS: os.DirFS("/")}
}

// Close releases the D-Bus connections.
func (p *Protector) Close() error { return p.conns.Close() }

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

// Apply protects the groups' processes once and reports what it did.
func (p *Protector) Apply(ctx context.Context) (*Report, error) {
	matches, err := p.Matches()
	if err != nil {
		return nil, err
	}
	return p.apply(ctx, matches)
}

func (p *Protector) apply(ctx context.Context, matches []Match) (*Report, error) {
	rep := &Report{DryRun: p.opt.DryRun, UID: p.opt.UID,
		Processes: []ProtectedProcess{}, Units: []ProtectedUnit{}, Problems: []string{}}
	if len(matches) == 0 {
		return rep, nil
	}
	groups := map[string]Group{}
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
		if pp, ok := p.lowerOOM(m, groups[m.Group].OOMScoreAdj, st, rep); ok {
			rep.Processes = append(rep.Processes, pp)
		}
	}
	// memory.low, unit by unit (the highest want of the groups in it).
	mount, _ := cgroupfs.ReadMount(p.rootFS)
	for _, w := range memoryLowWants(matches, groups) {
		rep.Units = append(rep.Units, p.protectCgroup(ctx, mount, w.cgroup, w.group, w.bytes, st, rep))
	}
	if st != nil && st.dirty {
		st.prune(p.procFS)
		if err := saveState(p.opt.StatePath, st); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	return rep, nil
}

// lowerOOM brings the oom_score_adj of m down to target (nil: the group
// sets none) and returns what it did, false when the process is gone. A
// dry run reports the target and changes nothing; st records the value
// before, rep the problems.
func (p *Protector) lowerOOM(m Match, target *int, st *protectState, rep *Report) (ProtectedProcess, bool) {
	pp := ProtectedProcess{PID: m.PID, StartTime: m.StartTime, Comm: m.Comm, Group: m.Group, Via: m.Via, Cgroup: m.Cgroup}
	pp.Unit, _, _ = systemd.UnitOwner(m.Cgroup)
	pp.OOMTarget = target
	cur, err := p.oom.Get(m.PID)
	if err != nil {
		return pp, false // gone
	}
	pp.OOMBefore, pp.OOMAfter = cur, cur
	switch t := target; {
	case t == nil || *t >= cur:
	case p.opt.DryRun:
		pp.OOMAfter = *t // what a dry run would try
	default:
		if last, ok := p.done[m.Key()]; ok && last.after == cur {
			pp.OOMFloor = last.floor // already as low as it goes
			break
		}
		if !p.sameProcess(m) {
			return pp, false
		}
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
	return pp, true
}

// lowWant is the memory.low a cgroup is to have, and the group that wants
// it.
type lowWant struct {
	cgroup, group string
	bytes         uint64
}

// memoryLowWants returns, for each cgroup of matches in the order first
// met, the highest memory.low the groups of its matches want; a group
// with no memory.low wants none.
func memoryLowWants(matches []Match, groups map[string]Group) []lowWant {
	var wants []lowWant
	at := map[string]int{}
	for _, m := range matches {
		g := groups[m.Group]
		if g.MemoryLow == nil || m.Cgroup == "" {
			continue
		}
		i, seen := at[m.Cgroup]
		if !seen {
			at[m.Cgroup], i = len(wants), len(wants)
			wants = append(wants, lowWant{cgroup: m.Cgroup, group: m.Group, bytes: *g.MemoryLow})
		}
		if *g.MemoryLow > wants[i].bytes {
			wants[i].group, wants[i].bytes = m.Group, *g.MemoryLow
		}
	}
	return wants
}

// sameProcess checks that m's pid still names the process scanned.
func (p *Protector) sameProcess(m Match) bool {
	cur, err := procfs.ReadStatFS(p.procFS, m.PID)
	return err == nil && cur.StartTime == m.StartTime
}
