package observe

import (
	"path/filepath"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
)

// maxSampledProcs bounds the processes one sample reads: a box of more
// than that many processes is sampled in part, and a victim outside the
// part goes unnamed.
const maxSampledProcs = 4096

// sampleProcs reads the processes of the box's cgroup dir and of its
// descendants (the paused ones live in a child): pid, start time, command
// and resident size. A box that is gone holds none; ok is false when the
// processes could not be listed for another reason.
func sampleProcs(dir string) (procs []procSample, ok bool) {
	err := cgroupfs.EachProc(dir, func(_ string, pid int) {
		if len(procs) >= maxSampledProcs {
			return
		}
		if st, err := procfs.ReadStat(pid); err == nil {
			procs = append(procs, procSample{PID: pid, StartTime: st.StartTime, Comm: st.Comm, RSSBytes: st.RSS(), CPU: st.CPU()})
		}
	})
	return procs, err == nil
}

// readExits reads how each process in gone ended, from its /proc/PID/stat
// while it is a zombie or exiting.
func readExits(gone []procSample) map[int]procExit {
	exits := make(map[int]procExit, len(gone))
	for _, p := range gone {
		st, err := procfs.ReadStat(p.PID)
		exits[p.PID] = exitFrom(p, st, err)
	}
	return exits
}

// readOOMKill reads oom_kill of the box's memory.events; ok is false when
// it cannot be read (the box is gone).
func readOOMKill(dir string) (uint64, bool) {
	m, err := cgroupfs.ReadFlatKeyed(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0, false
	}
	return m["oom_kill"], hasKey(m, "oom_kill")
}
