package observe

import (
	"cmp"
	"slices"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

// Certainty says how sure boxrun is that an OOMVictim is the process the
// OOM killer took.
type Certainty string

// The certainties of an OOMVictim, surest first.
const (
	// CertaintyKernelLog: the kernel log named the victim.
	CertaintyKernelLog Certainty = "kernel log"
	// CertaintyVanished: when the box's oom_kill count rose, exactly as many
	// of its processes left it (or died by SIGKILL) as kills were counted.
	CertaintyVanished Certainty = "vanished at the kill"
	// CertaintyLikely: more processes left the box than kills were
	// counted; the victim is the one that held the most memory when last
	// sampled, the one the OOM killer picks.
	CertaintyLikely Certainty = "likely"
)

// pendingKillsFor is how long a counted OOM kill waits for its victim to
// leave the box: the OOM killer counts the kill before it sends SIGKILL,
// and the victim leaves once it is scheduled and has exited. A kill not
// explained by then is forgotten (its victim was never sampled), rather
// than pinned on a process that exited by itself later.
const pendingKillsFor = 2 * time.Second

// procSample is one process of the box as a sample of its processes saw
// it.
type procSample struct {
	PID int
	// StartTime is field 22 of /proc/PID/stat: with the pid, it names the
	// process across pid reuse.
	StartTime uint64
	// Comm is the command name, as the kernel keeps it (15 characters).
	Comm string
	// RSSBytes is the resident set size when sampled.
	RSSBytes uint64
	// CPU is the CPU time it had used when sampled.
	CPU time.Duration
}

// procExit is how a process that left the box ended, as far as /proc still
// showed it.
type procExit int

// The ways a process may have left the box.
const (
	// exitUnknown: it was reaped before it could be read, or was still
	// exiting without an exit status.
	exitUnknown procExit = iota
	// exitSIGKILL: its exit status (a zombie's, or an exiting process's)
	// says SIGKILL ended it.
	exitSIGKILL
	// exitOther: it exited by itself or died of another signal, so the
	// OOM killer did not take it.
	exitOther
)

// exitFrom judges how the process p that left the box ended, from what
// /proc/PID/stat says now (st, or err when it could not be read). A
// different start time means the pid was reused: p is gone.
func exitFrom(p procSample, st procfs.Stat, err error) procExit {
	switch {
	case err != nil || st.StartTime != p.StartTime:
		return exitUnknown
	case st.Signal() == 9: // SIGKILL
		return exitSIGKILL
	case st.ExitCode != 0:
		return exitOther
	default:
		// Still exiting, or a zombie that exited 0 — or one whose status
		// the kernel hides from this user (another user's process), which
		// reads 0 as well.
		return exitUnknown
	}
}

// departed returns the processes of prev that cur no longer holds, largest
// resident size first.
func departed(prev, cur []procSample) []procSample {
	still := make(map[procKey]bool, len(cur))
	for _, p := range cur {
		still[p.key()] = true
	}
	var out []procSample
	for _, p := range prev {
		if !still[p.key()] {
			out = append(out, p)
		}
	}
	sortLargestFirst(out)
	return out
}

func sortLargestFirst(ps []procSample) {
	slices.SortStableFunc(ps, func(a, b procSample) int {
		if c := cmp.Compare(b.RSSBytes, a.RSSBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
}

// decideVictims names the victims of kills OOM kills from the processes
// that left the box since the last sample (gone) and how each ended
// (exits, by pid; a missing pid is exitUnknown). Processes that died by
// SIGKILL are taken first, then those that vanished without a word; a
// process that exited by itself is never a victim. Where exactly as many
// candidates remain as kills are left to explain, each is a victim with
// CertaintyVanished; where more, the largest by last resident size are,
// with CertaintyLikely. unexplained is how many kills no candidate was
// left for: their victims may still be on their way out.
func decideVictims(gone []procSample, exits map[int]procExit, kills uint64) (victims []OOMVictim, unexplained uint64) {
	var killed, vanished []procSample
	for _, p := range gone {
		switch exits[p.PID] {
		case exitSIGKILL:
			killed = append(killed, p)
		case exitUnknown:
			vanished = append(vanished, p)
		}
	}
	left := kills
	for _, group := range [][]procSample{killed, vanished} {
		if left == 0 {
			break
		}
		sortLargestFirst(group)
		certainty := CertaintyVanished
		if uint64(len(group)) > left {
			certainty, group = CertaintyLikely, group[:left]
		}
		for _, p := range group {
			victims = append(victims, OOMVictim{PID: p.PID, Comm: p.Comm, AnonRSSBytes: p.RSSBytes, InsideBox: true, Certainty: certainty})
		}
		left -= uint64(len(group))
	}
	return victims, left
}

// victimTracker follows the box's processes from one sample to the next
// and names the processes that left the box when its oom_kill count rose.
// It does no I/O: the Sampler reads the processes, how the departed ones
// ended, and then memory.events. In that order, a victim that left the box
// in a sample has its kill counted in the count read after it (the kernel
// counts a kill before it sends SIGKILL); a kill counted before its victim
// has left waits for it, up to pendingKillsFor.
type victimTracker struct {
	prev      []procSample
	kills     uint64        // oom_kill at the last step
	pending   uint64        // kills counted whose victims have not left yet
	pendingAt time.Duration // when the oldest pending kill was counted
	victims   []OOMVictim
}

// renamed gives the process pid, started at start, the command name comm
// in what the tracker saw of it: in its last sample, and in the victims
// already named after it.
func (t *victimTracker) renamed(pid int, start uint64, comm string) {
	for i := range t.prev {
		if t.prev[i].PID == pid && t.prev[i].StartTime == start {
			t.prev[i].Comm = comm
		}
	}
	for i := range t.victims {
		if t.victims[i].PID == pid && t.victims[i].Certainty != CertaintyKernelLog {
			t.victims[i].Comm = comm
		}
	}
}

// step takes one sample of the box's processes (cur, at time at since the
// run started), how the processes that left since the last sample ended,
// and the box's oom_kill count read after the sample.
func (t *victimTracker) step(at time.Duration, cur []procSample, exits map[int]procExit, oomKill uint64) {
	if t.pending > 0 && at-t.pendingAt > pendingKillsFor {
		t.pending = 0
	}
	if oomKill > t.kills {
		if t.pending == 0 {
			t.pendingAt = at
		}
		t.pending += oomKill - t.kills
		t.kills = oomKill
	}
	if t.pending > 0 {
		var named []OOMVictim
		named, t.pending = decideVictims(departed(t.prev, cur), exits, t.pending)
		t.victims = append(t.victims, named...)
	}
	t.prev = keepSizes(t.prev, cur)
}

// keepSizes returns cur, where a process whose resident size fell to
// nothing since prev keeps the size prev saw: it is exiting (the kernel
// frees its memory before it leaves the box), and the OOM killer's victim
// is sampled so while it dies; its size is the one it held.
func keepSizes(prev, cur []procSample) []procSample {
	held := make(map[procKey]uint64, len(prev))
	for _, p := range prev {
		if p.RSSBytes > 0 {
			held[p.key()] = p.RSSBytes
		}
	}
	for i, p := range cur {
		if p.RSSBytes == 0 {
			cur[i].RSSBytes = held[p.key()]
		}
	}
	return cur
}

// key names the sampled process across pid reuse.
func (p procSample) key() procKey { return procKey{p.PID, p.StartTime} }

// mergeVictims puts together the victims the kernel log named (fromLog,
// every one kept, inside the box or not) and those boxrun's samples of the
// box named (sampled), for boxKills kills in the box. The kernel log comes
// first: a sampled victim is added only when the log named fewer victims
// in the box than were killed there, and not when the log named the same
// process.
func mergeVictims(fromLog, sampled []OOMVictim, boxKills uint64) []OOMVictim {
	out := make([]OOMVictim, 0, len(fromLog)+len(sampled))
	named := map[int]bool{}
	inside := uint64(0)
	for _, v := range fromLog {
		v.Certainty = CertaintyKernelLog
		out = append(out, v)
		if v.InsideBox {
			named[v.PID] = true
			inside++
		}
	}
	for _, v := range sampled {
		if inside >= boxKills {
			break
		}
		if named[v.PID] {
			continue
		}
		named[v.PID] = true
		out = append(out, v)
		inside++
	}
	return out
}
