package observe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/internal/procfs"
)

// defaultSampleInterval is how often a Sampler reads memory.current and
// pids.current during the first slowSamplingAfter of a run: two small
// reads of kernel counters four times a second.
const defaultSampleInterval = 250 * time.Millisecond

// slowSamplingAfter is how long a run is sampled at defaultSampleInterval;
// after it, once a second (slowSampleFactor times the interval): enough for
// the memory curve of a long run, whose peaks come from memory.peak and
// pids.peak anyway, at a quarter of the wake-ups.
const slowSamplingAfter = 10 * time.Second

const slowSampleFactor = 4

// minProcSampleGap is the least time between two samples of the box's
// processes that a change of memory.events asks for: at memory.max the file
// changes every 10 ms. A rise of oom or oom_kill is sampled at once.
const minProcSampleGap = 50 * time.Millisecond

// maxKmsgBytes bounds what a Sampler reads of the kernel log at the end of a
// run (an OOM kill logs about 5 KiB).
const maxKmsgBytes = 8 << 20

// Sampler is an Observer that records what the run report shows. Give it to
// Run in Options.Observers and read Stats after Run returns.
//
// While the command runs it samples memory.current and pids.current every
// defaultSampleInterval, and it watches memory.events, pids.events and
// cgroup.events through inotify: the kernel notifies every change, so an OOM
// kill or a refused fork is recorded the moment it happens, and the box's
// last figures are read the moment it empties — systemd removes an empty
// scope's cgroup at once, possibly before Run calls Exited. At Exited it
// reads memory.peak, memory.events, pids.events, pids.peak and cpu.stat a
// last time, the growth of /proc/vmstat oom_kill (OOM kills anywhere), and
// the kernel log written since Started (/dev/kmsg, to name OOM victims).
// With every sample, and with every change of memory.events, it also reads
// the box's processes, so that a process that leaves the box when its
// oom_kill count rises is named as the victim where the kernel log cannot
// be read (see victimTracker).
// When the box was gone before that last reading, an OOM kill the counters
// missed is taken from the parent cgroup's memory.events, which count the
// events of their whole subtree and outlive the box.
//
// A Sampler serves one run. Its methods are safe for concurrent use.
type Sampler struct {
	interval   time.Duration
	vmstatPath string
	kmsgPath   string
	mount      string // cgroup2 mount point; "" finds it at Started

	mu         sync.Mutex
	started    bool
	exited     bool
	start      time.Time
	dir        string // the box's cgroup directory
	box        string // dir below the cgroup2 mount, as the kernel log names it
	pid        int
	buf        sampleBuf
	latest     Sample
	haveLatest bool
	ev         evidence
	lastRead   time.Time // when ev last read the box successfully
	vmStart    uint64
	vmOK       bool
	parent     MemoryEvents // the parent cgroup's events from the box's subtrees
	parentOK   bool
	// shared is set once another box was seen beside this one in its
	// parent (see besideOthers): the parent's counts are then no longer
	// the box's alone.
	shared  bool
	kmsgFD  int // -1 when the kernel log is not open
	kmsgErr string
	watch   *os.File // inotify on the box's event files
	stop    chan struct{}
	wg      sync.WaitGroup
	stats   Stats

	procMu  sync.Mutex // serializes samples of the box's processes
	procsAt time.Time  // when they were last sampled
	victims victimTracker
	profile commandProfile // what each command name used
}

// NewSampler returns a Sampler reading the box every defaultSampleInterval.
func NewSampler() *Sampler {
	return &Sampler{
		interval:   defaultSampleInterval,
		vmstatPath: "/proc/vmstat",
		kmsgPath:   "/dev/kmsg",
		kmsgFD:     -1,
	}
}

// evidence is one reading of the box's counters. Every counter only grows,
// so readings merge by keeping the larger value of each.
type evidence struct {
	mem                   MemoryEvents
	pidsMax               uint64
	cpu                   CPUStats
	memPeak, pidsPeak     uint64
	memOK, pidsOK, cpuOK  bool
	memPeakOK, pidsPeakOK bool
	memPeakMissing        bool // memory.peak does not exist (Linux < 5.19)
}

// readEvidence reads the box's counters from its cgroup directory.
func readEvidence(dir string) evidence {
	var e evidence
	if m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "memory.events")); err == nil {
		e.mem, e.memOK = memoryEventsFrom(m), true
	}
	if m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "pids.events")); err == nil {
		e.pidsMax, e.pidsOK = m["max"], true
	}
	if m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "cpu.stat")); err == nil {
		e.cpu, e.cpuOK = cpuStatsFrom(m), true
	}
	var err error
	e.memPeak, e.memPeakOK, err = cgroupfs.ReadCounter(filepath.Join(dir, "memory.peak"))
	e.memPeakMissing = errors.Is(probe.Missing(probe.MemoryPeak, err), probe.ErrNotSupported) && e.memOK
	e.pidsPeak, e.pidsPeakOK, _ = cgroupfs.ReadCounter(filepath.Join(dir, "pids.peak"))
	return e
}

// ok reports whether anything of the box could be read.
func (e evidence) ok() bool { return e.memOK || e.pidsOK || e.cpuOK }

func (e *evidence) merge(o evidence) {
	e.mem = MemoryEvents{
		Low: max(e.mem.Low, o.mem.Low), High: max(e.mem.High, o.mem.High), Max: max(e.mem.Max, o.mem.Max),
		OOM: max(e.mem.OOM, o.mem.OOM), OOMKill: max(e.mem.OOMKill, o.mem.OOMKill),
		OOMGroupKill: max(e.mem.OOMGroupKill, o.mem.OOMGroupKill),
	}
	e.pidsMax = max(e.pidsMax, o.pidsMax)
	e.cpu = CPUStats{
		UsageUSec: max(e.cpu.UsageUSec, o.cpu.UsageUSec), UserUSec: max(e.cpu.UserUSec, o.cpu.UserUSec),
		SystemUSec: max(e.cpu.SystemUSec, o.cpu.SystemUSec), NrThrottled: max(e.cpu.NrThrottled, o.cpu.NrThrottled),
		ThrottledUSec: max(e.cpu.ThrottledUSec, o.cpu.ThrottledUSec),
	}
	e.memPeak, e.pidsPeak = max(e.memPeak, o.memPeak), max(e.pidsPeak, o.pidsPeak)
	e.memOK, e.pidsOK, e.cpuOK = e.memOK || o.memOK, e.pidsOK || o.pidsOK, e.cpuOK || o.cpuOK
	e.memPeakOK, e.pidsPeakOK = e.memPeakOK || o.memPeakOK, e.pidsPeakOK || o.pidsPeakOK
	e.memPeakMissing = e.memPeakMissing || o.memPeakMissing
}

// Started begins sampling the box at dir; with dir "" (no cgroup) it only
// notes the time. It is called once the command runs, so nothing here
// delays it.
func (s *Sampler) Started(dir string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started, s.start, s.dir, s.pid = true, time.Now(), dir, pid
	if dir == "" {
		return
	}
	if m, err := cgroupfs.ReadFlatKeyed(s.vmstatPath); err == nil {
		s.vmStart, s.vmOK = m["oom_kill"], hasKey(m, "oom_kill")
	}
	s.parent, s.parentOK = readChildEvents(filepath.Dir(dir))
	s.shared = besideOthers(dir)
	s.box = s.cgroupPath(dir)
	s.kmsgFD, s.kmsgErr = openKernelLog(s.kmsgPath)
	s.ev = readEvidence(dir)
	if s.ev.ok() {
		s.lastRead = time.Now()
	}
	s.addSampleLocked(readSample(dir, 0))
	s.observeProcs(true, s.ev.mem.OOMKill)

	s.stop = make(chan struct{})
	s.wg.Add(1)
	go s.tick(s.stop)
	if w, err := watchEvents(dir); err == nil {
		s.watch = w
		s.wg.Add(1)
		go s.watchLoop(w)
	}
}

func hasKey(m map[string]uint64, k string) bool {
	_, ok := m[k]
	return ok
}

// readChildEvents reads the memory.events of cgroup dir that come from
// below it: memory.events counts the events of a cgroup's whole subtree
// (unless cgroup2 is mounted with memory_localevents), memory.events.local
// (Linux 5.7+) those of the cgroup itself. A box's parent outlives the box,
// so its counters still hold the box's kills after systemd removed it.
func readChildEvents(dir string) (MemoryEvents, bool) {
	m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "memory.events"))
	if err != nil {
		return MemoryEvents{}, false
	}
	ev := memoryEventsFrom(m)
	if l, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "memory.events.local")); err == nil {
		own := memoryEventsFrom(l)
		ev.OOM, ev.OOMKill, ev.OOMGroupKill = subOrZero(ev.OOM, own.OOM), subOrZero(ev.OOMKill, own.OOMKill), subOrZero(ev.OOMGroupKill, own.OOMGroupKill)
	}
	return ev, true
}

// cgroupPath turns a cgroup directory into its path below the cgroup2 mount.
func (s *Sampler) cgroupPath(dir string) string {
	mount := s.mount
	if mount == "" {
		mount, _ = cgroupfs.MountPoint()
	}
	if mount != "" {
		if rel, ok := strings.CutPrefix(dir, strings.TrimSuffix(mount, "/")); ok && (rel == "" || rel[0] == '/') {
			if rel == "" {
				rel = "/"
			}
			return rel
		}
	}
	return dir
}

// openKernelLog opens /dev/kmsg positioned at its end, so that only what
// the kernel logs from now on is read at Exited. It returns why it cannot
// be read (unprivileged users often may not: kernel.dmesg_restrict).
func openKernelLog(path string) (int, string) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		why := err.Error()
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			if b, rerr := os.ReadFile("/proc/sys/kernel/dmesg_restrict"); rerr == nil && strings.TrimSpace(string(b)) == "1" {
				why += " (kernel.dmesg_restrict = 1)"
			}
		}
		return -1, fmt.Sprintf("reading %s: %s", path, why)
	}
	if _, err := unix.Seek(fd, 0, 2 /* SEEK_END */); err != nil {
		unix.Close(fd)
		return -1, fmt.Sprintf("seeking to the end of %s: %v", path, err)
	}
	return fd, ""
}

// readKernelLog reads what is left to read of the kernel log. /dev/kmsg
// returns one record per read and EAGAIN at the end; EPIPE means records
// were overwritten before they were read, and reading goes on after them.
func readKernelLog(fd int) []byte {
	var all bytes.Buffer
	buf := make([]byte, 16*1024)
	for tries := 0; all.Len() < maxKmsgBytes && tries < 1<<20; tries++ {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		all.Write(buf[:n])
		if buf[n-1] != '\n' {
			all.WriteByte('\n')
		}
	}
	return all.Bytes()
}

// watchEvents sets up inotify on the box's event files. The kernel signals a
// change of each (at most every 10 ms per file), so reading on every signal
// catches each OOM kill, refused fork and the box emptying as they happen.
func watchEvents(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	added := 0
	for _, name := range []string{"memory.events", "pids.events", "cgroup.events"} {
		if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, name), unix.IN_MODIFY); err == nil {
			added++
		}
	}
	if added == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("no event file to watch in %s", dir)
	}
	// A non-blocking descriptor joins Go's poller: Read waits without a
	// thread, and Close wakes it.
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

func (s *Sampler) watchLoop(w *os.File) {
	defer s.wg.Done()
	buf := make([]byte, 4096)
	var seen MemoryEvents
	for {
		if _, err := w.Read(buf); err != nil {
			return
		}
		e := readEvidence(s.dir)
		s.mu.Lock()
		s.ev.merge(e)
		if e.ok() {
			s.lastRead = time.Now()
		}
		s.mu.Unlock()
		// Near memory.max the box's processes are sampled often, so the
		// one the OOM killer takes is in the last sample before its kill,
		// under the name it has then: each time the box reaches
		// memory.max (the kernel signals it at most every 10 ms) it is
		// sampled at once, and so is the kill itself. A process that
		// started with another name (env, a shell that execs) and filled
		// the box within one sample gap would else be named as it started.
		if e.memOK {
			rose := e.mem.Max > seen.Max || e.mem.OOM > seen.OOM || e.mem.OOMKill > seen.OOMKill
			seen.Max = max(seen.Max, e.mem.Max)
			seen.OOM, seen.OOMKill = max(seen.OOM, e.mem.OOM), max(seen.OOMKill, e.mem.OOMKill)
			s.observeProcs(rose, e.mem.OOMKill)
		}
	}
}

// observeProcs samples the box's processes for the victim tracker: the
// processes, how those that left since the last sample ended, then
// oom_kill, in that order (see victimTracker). Unless force, it does
// nothing when the last sample is less than minProcSampleGap old. floor is
// an oom_kill count known from elsewhere, for when the box's memory.events
// cannot be read any more.
func (s *Sampler) observeProcs(force bool, floor uint64) {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	now := time.Now()
	if !force && now.Sub(s.procsAt) < minProcSampleGap {
		return
	}
	cur, ok := sampleProcs(s.dir)
	if !ok {
		return
	}
	s.procsAt = now
	s.profile.add(cur)
	exits := readExits(departed(s.victims.prev, cur))
	kills, _ := readOOMKill(s.dir)
	s.victims.step(now.Sub(s.start), cur, exits, max(kills, floor))
}

func (s *Sampler) tick(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	slow := time.After(slowSamplingAfter)
	mem := cgroupfs.OpenCounter(filepath.Join(s.dir, "memory.current"))
	defer mem.Close()
	pids := cgroupfs.OpenCounter(filepath.Join(s.dir, "pids.current"))
	defer pids.Close()
	for {
		select {
		case <-stop:
			return
		case <-slow:
			t.Reset(s.interval * slowSampleFactor)
		case <-t.C:
			m, okm := mem.Read()
			p, okp := pids.Read()
			smp, ok := Sample{At: time.Since(s.start), MemoryBytes: m, Pids: p}, okm || okp
			shared := besideOthers(s.dir)
			s.mu.Lock()
			s.addSampleLocked(smp, ok)
			s.shared = s.shared || shared
			floor := s.ev.mem.OOMKill
			s.mu.Unlock()
			s.observeProcs(false, floor)
		}
	}
}

// readSample reads memory.current and pids.current; ok is false when
// neither could be read (the box is gone).
func readSample(dir string, at time.Duration) (Sample, bool) {
	mem, okm, _ := cgroupfs.ReadCounter(filepath.Join(dir, "memory.current"))
	pids, okp, _ := cgroupfs.ReadCounter(filepath.Join(dir, "pids.current"))
	return Sample{At: at, MemoryBytes: mem, Pids: pids}, okm || okp
}

func (s *Sampler) addSampleLocked(smp Sample, ok bool) {
	if !ok {
		return
	}
	s.buf.add(smp)
	s.latest, s.haveLatest = smp, true
}

// Latest returns the most recent sample, for a live status line; ok is
// false before the first one.
func (s *Sampler) Latest() (smp Sample, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest, s.haveLatest
}

// Exited stops sampling and reads the box's final figures and the kernel
// log. It must come after Started (Run guarantees it).
// Ending is called when the command has exited and is not reaped yet (a
// zombie): its /proc/PID/stat still names what it last ran. A command that
// exec'd (env, a shell's exec, a wrapper) after the last sample and was
// killed before the next one would otherwise be named by what it was
// before: "env", 4K, for the hog env exec'd into.
func (s *Sampler) Ending(pid int) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return
	}
	s.procMu.Lock()
	defer s.procMu.Unlock()
	s.victims.renamed(pid, st.StartTime, st.Comm)
}

func (s *Sampler) Exited() {
	s.mu.Lock()
	if !s.started || s.exited {
		s.mu.Unlock()
		return
	}
	s.exited = true
	end := time.Now()
	wall := end.Sub(s.start)
	if s.dir == "" {
		s.stats = Stats{Wall: wall, PID: s.pid}
		s.mu.Unlock()
		return
	}
	stop, watch := s.stop, s.watch
	s.mu.Unlock()

	close(stop)
	if watch != nil {
		watch.Close() // an inotify descriptor: closing it loses nothing
	}
	s.wg.Wait()

	out := s.readOutside()
	final := readEvidence(s.dir)
	smp, smpOK := readSample(s.dir, wall)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.addSampleLocked(smp, smpOK)
	s.ev.merge(final)
	st := s.figuresLocked(final, wall, end)
	fromLog := s.kernelLogLocked(&st)
	// The box vanished before its last reading (systemd removes an empty
	// scope at once, and the kernel signals a change of memory.events at
	// most every 10 ms): a kill that emptied it may be missing from its
	// counters, but not from its parent's, unless other boxes ran beside
	// it there: the parent's then count their kills too (four runs in one
	// slice would each report the kills of all four). Those keep the
	// box's own last reading, raised to the victims the kernel log names
	// in the box.
	if ev := &st.Memory.Events; !final.ok() && out.parentOK &&
		(out.parentDelta.OOM > ev.OOM || out.parentDelta.OOMKill > ev.OOMKill || out.parentDelta.OOMGroupKill > ev.OOMGroupKill) {
		if s.shared {
			if n := insideBox(fromLog); n > ev.OOMKill {
				ev.OOMKill, ev.OOM = n, max(ev.OOM, 1)
			}
			st.Notes = append(st.Notes, fmt.Sprintf("the box was gone before its last reading and other boxes ran beside it in %s: its OOM counts are the last it showed and the kernel log's victims in it (the parent counted %d kills in all)", filepath.Dir(s.dir), out.parentDelta.OOMKill))
		} else {
			ev.OOM, ev.OOMKill, ev.OOMGroupKill = max(ev.OOM, out.parentDelta.OOM), max(ev.OOMKill, out.parentDelta.OOMKill), max(ev.OOMGroupKill, out.parentDelta.OOMGroupKill)
			st.Notes = append(st.Notes, fmt.Sprintf("the box's OOM counts come from its parent cgroup %s, which no other box shared during the run", filepath.Dir(s.dir)))
		}
	}
	// A last sample of the box's processes, with every kill counted: the
	// victim of a kill that emptied the box left with the box.
	s.observeProcs(true, st.Memory.Events.OOMKill)
	sampled := append([]OOMVictim(nil), s.victims.victims...)
	for i := range sampled {
		// Without an OOM of its own, the box lost them to the machine's
		// OOM killer or an enclosing cgroup's.
		sampled[i].Global = st.Memory.Events.OOM == 0
	}
	st.OOMVictims = mergeVictims(fromLog, sampled, st.Memory.Events.OOMKill)
	s.procMu.Lock()
	st.Commands = s.profile.uses(maxCommands)
	s.procMu.Unlock()

	boxKills := st.Memory.Events.OOMKill
	switch {
	case out.vmOK:
		st.OutsideOOMKills = subOrZero(out.vmEnd-min(out.vmEnd, s.vmStart), boxKills)
	case out.parentOK:
		st.OutsideOOMKills = subOrZero(out.parentDelta.OOMKill, boxKills)
	default:
		st.Notes = append(st.Notes, "OOM kills outside the box could not be counted: neither /proc/vmstat oom_kill nor the parent cgroup's memory.events was readable")
	}
	s.stats = st
}

// outside is what the counters outside the box say at its end: the
// machine's oom_kill count (/proc/vmstat), and the OOM events of the
// parent cgroup's subtree since the box started.
type outside struct {
	vmEnd       uint64
	vmOK        bool
	parentDelta MemoryEvents
	parentOK    bool
}

// readOutside reads the counters outside the box, before the box's own:
// a kill landing between the two reads is then counted in the box and not
// outside it, never the other way.
func (s *Sampler) readOutside() outside {
	var out outside
	if m, err := cgroupfs.ReadFlatKeyed(s.vmstatPath); err == nil {
		out.vmEnd, out.vmOK = m["oom_kill"], hasKey(m, "oom_kill") && s.vmOK
	}
	parentEnd, parentOK := readChildEvents(filepath.Dir(s.dir))
	out.parentOK = parentOK && s.parentOK
	out.parentDelta = MemoryEvents{
		OOM:          subOrZero(parentEnd.OOM, s.parent.OOM),
		OOMKill:      subOrZero(parentEnd.OOMKill, s.parent.OOMKill),
		OOMGroupKill: subOrZero(parentEnd.OOMGroupKill, s.parent.OOMGroupKill),
	}
	if out.vmOK {
		out.parentDelta.OOMKill = min(out.parentDelta.OOMKill, subOrZero(out.vmEnd, s.vmStart))
	}
	return out
}

// figuresLocked makes the Stats of the box's figures from its samples and
// the evidence merged, with notes on what could not be measured; final is
// the last reading, at end.
func (s *Sampler) figuresLocked(final evidence, wall time.Duration, end time.Time) Stats {
	st := Stats{Wall: wall, PID: s.pid, Measured: true, Samples: s.buf.all()}
	if !final.ok() {
		if s.lastRead.IsZero() {
			st.Notes = append(st.Notes, fmt.Sprintf("the box's cgroup files in %s could not be read", s.dir))
		} else {
			st.Notes = append(st.Notes, fmt.Sprintf("the box's cgroup was gone when the command exited (systemd removes an empty scope at once): its figures are from boxrun's last reading, %s before", roundDuration(end.Sub(s.lastRead))))
		}
	} else if !final.memOK {
		st.Notes = append(st.Notes, "the box has no memory controller (memory.events is missing): memory was not measured")
	}

	var sampleMem, samplePids uint64
	for _, x := range st.Samples {
		sampleMem, samplePids = max(sampleMem, x.MemoryBytes), max(samplePids, x.Pids)
	}
	st.Memory = MemoryStats{Peak: sampleMem, PeakSource: "samples", Events: s.ev.mem}
	switch {
	case s.ev.memPeakOK:
		st.Memory.Peak, st.Memory.PeakSource = max(s.ev.memPeak, sampleMem), "memory.peak"
	case s.ev.memPeakMissing:
		st.Notes = append(st.Notes, fmt.Sprintf("%s needs %s or later: the memory peak is the highest of the samples taken every %v (every %v after %v), and can miss a short spike", probe.MemoryPeak, probe.MemoryPeak.Requires(), s.interval, s.interval*slowSampleFactor, slowSamplingAfter))
	}
	st.Pids = PidsStats{Peak: samplePids, PeakSource: "samples", EventsMax: s.ev.pidsMax}
	if s.ev.pidsPeakOK {
		st.Pids.Peak, st.Pids.PeakSource = max(s.ev.pidsPeak, samplePids), "pids.peak"
	}
	st.CPU = s.ev.cpu
	return st
}

// kernelLogLocked reads and closes the kernel log opened at Started and
// returns the OOM victims it names; kills of the box the counters missed
// (the box vanished first) are added to st's, and why the log could not
// be read goes to st.KernelLogErr.
func (s *Sampler) kernelLogLocked(st *Stats) []OOMVictim {
	if s.kmsgFD < 0 {
		st.KernelLogErr = s.kmsgErr
		return nil
	}
	log := readKernelLog(s.kmsgFD)
	unix.Close(s.kmsgFD) // read-only: a failed close loses nothing
	s.kmsgFD = -1
	victims, err := parseOOMKills(bytes.NewReader(log), s.box, st.Memory.Events.OOMKill)
	if err != nil {
		st.KernelLogErr = fmt.Sprintf("parsing the kernel log: %v", err)
	}
	inside := uint64(0)
	for _, v := range victims {
		if v.InsideBox {
			inside++
		}
	}
	st.Memory.Events.OOMKill = max(st.Memory.Events.OOMKill, inside)
	return victims
}

func subOrZero(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// roundDuration rounds d for a note: milliseconds below a second.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// Stats returns what the Sampler learned; it is complete once Exited
// returned, and zero before Started.
func (s *Sampler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Samples = append([]Sample(nil), st.Samples...)
	st.OOMVictims = append([]OOMVictim(nil), st.OOMVictims...)
	st.Commands = append([]CommandUse(nil), st.Commands...)
	st.Notes = append([]string(nil), st.Notes...)
	return st
}

// besideOthers reports whether another box's cgroup is in the parent of
// the box's cgroup dir: a directory other than the box's own and its
// guard's (named after the box). An unreadable parent says no.
func besideOthers(dir string) bool {
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		return false
	}
	own := strings.TrimSuffix(filepath.Base(dir), ".scope")
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), own) {
			return true
		}
	}
	return false
}

// insideBox counts the victims that were processes of the box.
func insideBox(victims []OOMVictim) uint64 {
	n := uint64(0)
	for _, v := range victims {
		if v.InsideBox {
			n++
		}
	}
	return n
}
