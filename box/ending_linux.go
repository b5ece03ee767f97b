package box

import "golang.org/x/sys/unix"

// Ender is an Observer that wants to see the command after it exited and
// before it is reaped: a zombie's /proc/PID/stat still names what it last
// ran (see ending).
type Ender interface {
	Ending(pid int)
}

// ending waits, without reaping, for the command to exit, and tells the
// observers that are Enders. It returns at once when the wait fails (the
// command is then reaped as ever).
func (r *boxRun) ending() {
	var enders []Ender
	for _, ob := range r.o.Observers {
		if e, ok := ob.(Ender); ok {
			enders = append(enders, e)
		}
	}
	if len(enders) == 0 {
		return
	}
	pid := r.helper.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		break
	}
	for _, e := range enders {
		e.Ending(pid)
	}
}
