package observe

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Stats is what a Sampler learned about one run of a box: the kernel's
// figures for the box's cgroup, a time series of its memory and process
// count, and the OOM kills that happened while the command ran. Every figure
// comes from the kernel; where one could not be read, Notes says so.
type Stats struct {
	// Wall is the time from Started to Exited.
	Wall time.Duration
	// PID is the command's process id.
	PID int
	// Measured is false when there was no cgroup to read (the none backend);
	// then only Wall is set.
	Measured bool
	// Memory holds the peak and the memory.events counters.
	Memory MemoryStats
	// Pids holds the peak number of processes and pids.events.
	Pids PidsStats
	// CPU is the box's cpu.stat.
	CPU CPUStats
	// Samples are memory.current and pids.current over time, oldest first.
	// Long runs keep at most maxSamples points: pairs of neighbours are then
	// merged into one holding their maxima.
	Samples []Sample
	// OOMVictims are the processes the OOM killer killed while the command
	// ran: inside the box or not from the kernel log, and, where the log
	// could not be read (see KernelLogErr) or named fewer, the box's
	// processes that left it when its oom_kill count rose.
	OOMVictims []OOMVictim
	// OutsideOOMKills is how many processes outside the box the OOM killer
	// killed while the command ran: the growth of /proc/vmstat oom_kill (or,
	// when that cannot be read, of the parent cgroup's memory.events
	// oom_kill) minus the box's own kills.
	OutsideOOMKills uint64
	// Commands are the command names of the box's processes, the largest
	// peak first, at most maxCommands of them: which processes needed
	// what, as the samples of the box's processes saw them.
	Commands []CommandUse
	// KernelLogErr says why the kernel log (/dev/kmsg) could not be read,
	// e.g. "permission denied (kernel.dmesg_restrict = 1)"; "" when it was.
	KernelLogErr string
	// Notes say which figures are missing or estimated, and why.
	Notes []string
}

// MemoryStats are the box's memory figures.
type MemoryStats struct {
	// Peak is the highest memory use of the box in bytes.
	Peak uint64
	// PeakSource is "memory.peak" (the kernel's own high-water mark, Linux
	// 5.19+) or "samples" (the highest sample of memory.current).
	PeakSource string
	// Events are the memory.events counters.
	Events MemoryEvents
}

// MemoryEvents are the counters of a cgroup's memory.events file.
type MemoryEvents struct {
	// Low counts reclaims of memory protected by memory.low.
	Low uint64
	// High counts the times the box went above memory.high and was
	// throttled into reclaim.
	High uint64
	// Max counts the times the box reached memory.max.
	Max uint64
	// OOM counts the times the box's own limit left no memory to reclaim.
	OOM uint64
	// OOMKill counts the processes of the box killed by any OOM killer.
	OOMKill uint64
	// OOMGroupKill counts the times memory.oom.group killed the whole box.
	OOMGroupKill uint64
}

// PidsStats are the box's process-count figures.
type PidsStats struct {
	// Peak is the highest number of processes (tasks) in the box.
	Peak uint64
	// PeakSource is "pids.peak" (Linux 6.1+ on some distributions) or
	// "samples" (the highest sample of pids.current).
	PeakSource string
	// EventsMax counts the forks refused because pids.max was reached
	// (pids.events max).
	EventsMax uint64
}

// CPUStats are the fields of cpu.stat the report uses, in microseconds.
type CPUStats struct {
	UsageUSec, UserUSec, SystemUSec uint64
	// NrThrottled and ThrottledUSec say how often and how long cpu.max
	// held the box back; zero without the cpu controller.
	NrThrottled, ThrottledUSec uint64
}

// Sample is one reading of the box.
type Sample struct {
	// At is the time since the command started.
	At time.Duration
	// MemoryBytes is memory.current.
	MemoryBytes uint64
	// Pids is pids.current.
	Pids uint64
}

// OOMVictim is one process killed by the OOM killer: named by the kernel
// log, or, where that cannot be read, by the Sampler's samples of the box's
// processes (see Certainty).
type OOMVictim struct {
	PID  int
	Comm string
	// AnonRSSBytes is the victim's anonymous resident memory when it was
	// killed (anon-rss), what the kill freed; for a victim named from the
	// samples, its whole resident size when last sampled.
	AnonRSSBytes uint64
	// InsideBox says the victim was a process of the box.
	InsideBox bool
	// Global says the system-wide OOM killer chose it (the machine ran out
	// of memory), rather than the OOM killer of a cgroup at its limit.
	Global bool
	// Cgroup is the victim's memory cgroup as the kernel printed it, ""
	// when the log did not say.
	Cgroup string
	// LimitCgroup is the cgroup whose limit the kill was for (the
	// kernel's oom_memcg): the box, or a cgroup around it such as the
	// slice of boxes; "" for the system-wide killer or when the log did
	// not say.
	LimitCgroup string
	// Certainty says how the victim was named: CertaintyKernelLog,
	// CertaintyVanished or CertaintyLikely.
	Certainty Certainty
}

// maxSamples bounds the samples a run keeps (5 minutes at 250 ms; longer
// runs keep coarser points).
const maxSamples = 1200

// sampleBuf collects samples, merging neighbours when it fills so that a run
// of any length keeps at most maxSamples points that still show every peak.
type sampleBuf struct {
	samples []Sample
	stride  int    // readings per kept point
	n       int    // readings in pending
	pending Sample // the point being filled
}

func (b *sampleBuf) add(s Sample) {
	if b.stride == 0 {
		b.stride = 1
	}
	if b.n == 0 {
		b.pending = s
	} else {
		b.pending.MemoryBytes = max(b.pending.MemoryBytes, s.MemoryBytes)
		b.pending.Pids = max(b.pending.Pids, s.Pids)
	}
	b.n++
	if b.n < b.stride {
		return
	}
	b.samples = append(b.samples, b.pending)
	b.n = 0
	if len(b.samples) >= maxSamples {
		merged := b.samples[:0]
		for i := 0; i < len(b.samples); i += 2 {
			m := b.samples[i]
			if i+1 < len(b.samples) {
				m.MemoryBytes = max(m.MemoryBytes, b.samples[i+1].MemoryBytes)
				m.Pids = max(m.Pids, b.samples[i+1].Pids)
			}
			merged = append(merged, m)
		}
		b.samples = merged
		b.stride *= 2
	}
}

// all returns the kept samples and the partly filled last point.
func (b *sampleBuf) all() []Sample {
	out := append([]Sample(nil), b.samples...)
	if b.n > 0 {
		out = append(out, b.pending)
	}
	return out
}

func memoryEventsFrom(m map[string]uint64) MemoryEvents {
	return MemoryEvents{
		Low: m["low"], High: m["high"], Max: m["max"],
		OOM: m["oom"], OOMKill: m["oom_kill"], OOMGroupKill: m["oom_group_kill"],
	}
}

func cpuStatsFrom(m map[string]uint64) CPUStats {
	return CPUStats{
		UsageUSec: m["usage_usec"], UserUSec: m["user_usec"], SystemUSec: m["system_usec"],
		NrThrottled: m["nr_throttled"], ThrottledUSec: m["throttled_usec"],
	}
}

// Kernel log lines about OOM kills (mm/oom_kill.c, Linux 4.19 to 6.x).
var (
	// "Memory cgroup out of memory: Killed process 812 (guest.test)
	// total-vm:877320kB, anon-rss:127284kB, file-rss:872kB, ..." and
	// "Out of memory: Killed process ..." for the system-wide killer.
	killedRe = regexp.MustCompile(`(Memory cgroup out of memory|Out of memory(?: \([a-z_]+\))?): Killed process (\d+) \((.*)\) total-vm:\d+kB, anon-rss:(\d+)kB`)
	// The one-line summary printed before each kill:
	// "oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/a,task_memcg=/a/b,task=x,pid=812,uid=0";
	// oom_memcg, the cgroup at its limit, only for a cgroup's OOM killer.
	summaryRe = regexp.MustCompile(`^oom-kill:constraint=(\w+),.*?(?:,oom_memcg=([^,]*))?,task_memcg=(.*),task=.*,pid=(\d+),uid=\d+$`)
	// With memory.oom.group: "Tasks in /a are going to be killed due to
	// memory.oom.group set".
	groupRe = regexp.MustCompile(`^Tasks in (.*) are going to be killed due to memory\.oom\.group set`)
	// Prefixes of the three formats the parser reads: /dev/kmsg records
	// ("6,1234,5678,-;"), dmesg ("[ 4410.123456] ") and journalctl -k
	// ("Feb 16 20:56:46 host kernel: ").
	kmsgPrefixRe    = regexp.MustCompile(`^\d+,\d+,\d+,[^;]*;`)
	dmesgPrefixRe   = regexp.MustCompile(`^\[\s*\d+\.\d+\]\s?`)
	journalPrefixRe = regexp.MustCompile(`^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ kernel: `)
)

// kernelMessage strips the record prefix of a kernel log line. Records
// that programs wrote to /dev/kmsg (a facility other than the kernel's)
// become "".
func kernelMessage(line string) string {
	if loc := kmsgPrefixRe.FindStringIndex(line); loc != nil {
		prio, _, _ := strings.Cut(line, ",")
		if p, err := strconv.Atoi(prio); err != nil || p>>3 != 0 {
			return ""
		}
		return line[loc[1]:]
	}
	for _, re := range []*regexp.Regexp{dmesgPrefixRe, journalPrefixRe} {
		if loc := re.FindStringIndex(line); loc != nil {
			return line[loc[1]:]
		}
	}
	return line
}

// parseOOMKills reads kernel log text (/dev/kmsg records, dmesg or
// journalctl -k output) and returns every process the OOM killer killed, in
// order. box is the box's cgroup path as /proc/PID/cgroup shows it (e.g.
// "/system.slice/boxrun.slice/boxrun-tests-1a2b3c4d.scope"); a victim is
// inside the box when the kernel names its memory cgroup as box or below it.
// "" means no box: every victim is outside.
//
// When the kernel did not print a victim's cgroup (its summary lines are
// rate-limited), the victim counts as inside the box when it was killed by
// a cgroup's OOM killer while memory.oom.group named the box, or when
// boxKills says the box lost processes and the kill was a cgroup's, not the
// system's.
func parseOOMKills(r io.Reader, box string, boxKills uint64) ([]OOMVictim, error) {
	var out []OOMVictim
	memcgOf := map[int]string{} // pid -> task_memcg from the summary line
	limitOf := map[int]string{} // pid -> oom_memcg from the summary line
	globalOf := map[int]bool{}
	group := "" // the cgroup memory.oom.group is emptying, if any
	seen := map[int]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		msg := strings.TrimRight(kernelMessage(sc.Text()), "\r")
		if strings.Contains(msg, "invoked oom-killer:") {
			group, seen = "", map[int]bool{}
			continue
		}
		if m := summaryRe.FindStringSubmatch(msg); m != nil {
			pid, _ := strconv.Atoi(m[4])
			memcgOf[pid], limitOf[pid] = m[3], m[2]
			globalOf[pid] = strings.Contains(msg, ",global_oom,") || m[1] == "CONSTRAINT_NONE"
			continue
		}
		if m := groupRe.FindStringSubmatch(msg); m != nil {
			group = m[1]
			continue
		}
		m := killedRe.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || seen[pid] {
			continue // memory.oom.group may name this OOM's first victim again
		}
		seen[pid] = true
		kb, _ := strconv.ParseUint(m[4], 10, 64)
		v := OOMVictim{PID: pid, Comm: m[3], AnonRSSBytes: kb * 1024, Global: !strings.HasPrefix(m[1], "Memory cgroup")}
		if cg, ok := memcgOf[pid]; ok {
			v.Cgroup, v.LimitCgroup = cg, limitOf[pid]
			v.Global = globalOf[pid]
			delete(memcgOf, pid)
		} else if group != "" {
			v.Cgroup = group
		}
		switch {
		case box == "":
		case v.Cgroup != "":
			v.InsideBox = underCgroup(v.Cgroup, box)
		default:
			v.InsideBox = !v.Global && boxKills > 0
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// underCgroup reports whether the cgroup path cg (as the kernel prints it,
// from the root of the hierarchy) is box or below it. box may be relative to
// a cgroup namespace, so it may match the end of a longer path; a box's name
// carries a random id, so it cannot match some other cgroup by accident.
func underCgroup(cg, box string) bool {
	box = strings.TrimSuffix(box, "/")
	if !strings.HasPrefix(box, "/") || box == "" {
		return false
	}
	return strings.Contains(cg+"/", box+"/")
}

// maxCommands is how many command names a run's Stats keep.
const maxCommands = 50
