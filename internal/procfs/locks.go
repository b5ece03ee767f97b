package procfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Lock is one line of /proc/locks: a file lock held, or a request blocked
// on the lock listed before it.
type Lock struct {
	// ID numbers the lock; a blocked request carries the ID of the lock it
	// waits for.
	ID int
	// Blocked is true for a request that waits ("->" in the file).
	Blocked bool
	// Class is FLOCK, POSIX, OFDLCK, LEASE, DELEG or another the kernel
	// prints.
	Class string
	// PID is the process that holds or waits, as the reader's pid
	// namespace sees it; 0 or -1 when it has none there (an open file
	// description lock, a process of another namespace).
	PID int
}

// ParseLocks reads a /proc/locks file. A line it cannot read is an error
// that quotes it: the format has been stable since Linux 2.6, so one that
// does not parse means the file is not what it claims to be.
func ParseLocks(r io.Reader) ([]Lock, error) {
	var locks []Lock
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var l Lock
		id, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		if err != nil || !strings.HasSuffix(f[0], ":") {
			return nil, fmt.Errorf("/proc/locks: %q does not start with a lock number", line)
		}
		l.ID, f = id, f[1:]
		if len(f) > 0 && f[0] == "->" {
			l.Blocked, f = true, f[1:]
		}
		// CLASS TYPE MODE PID DEV:INODE START END
		if len(f) < 4 {
			return nil, fmt.Errorf("/proc/locks: %q has too few fields", line)
		}
		if l.PID, err = strconv.Atoi(f[3]); err != nil {
			return nil, fmt.Errorf("/proc/locks: %q has no process id in its fourth field", line)
		}
		l.Class = f[0]
		locks = append(locks, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/locks: %w", err)
	}
	return locks, nil
}

// ReadLocks reads the running system's /proc/locks.
func ReadLocks() ([]Lock, error) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLocks(f)
}

// WaitsFor maps each process with a request blocked on a lock to the
// processes holding that lock: what it waits for. Requests and holders
// without a process in the reader's namespace (PID 0 or -1) name none.
func WaitsFor(locks []Lock) map[int][]int {
	holders := map[int][]int{}
	for _, l := range locks {
		if !l.Blocked && l.PID > 0 {
			holders[l.ID] = append(holders[l.ID], l.PID)
		}
	}
	w := map[int][]int{}
	for _, l := range locks {
		if l.Blocked && l.PID > 0 {
			w[l.PID] = append(w[l.PID], holders[l.ID]...)
			if w[l.PID] == nil {
				w[l.PID] = []int{} // waits, for a holder it cannot name
			}
		}
	}
	return w
}

// Awaited is the set of processes holding a lock that another request is
// blocked on: the processes the waiters wait for. Locks without a process
// in the reader's namespace (PID 0 or -1) name none.
func Awaited(locks []Lock) map[int]bool {
	waited := map[int]bool{}
	for _, l := range locks {
		if l.Blocked {
			waited[l.ID] = true
		}
	}
	holders := map[int]bool{}
	for _, l := range locks {
		if !l.Blocked && waited[l.ID] && l.PID > 0 {
			holders[l.PID] = true
		}
	}
	return holders
}
