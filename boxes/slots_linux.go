package boxes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/rundir"
)

// ErrNoSlot is returned (wrapped) by AcquireSlot with NoWait when every
// slot of the policy is taken.
var ErrNoSlot = errors.New("no free slot")

// SlotRequest asks for one of N slots of a policy: at most N runs of the
// policy hold one at once, for this user.
type SlotRequest struct {
	// Dir holds the lock files (DefaultSlotDir).
	Dir string
	// Policy names the slots; N is how many there are (at least 1).
	Policy string
	N      int
	// Holder describes this run to the ones that wait ("cargo test").
	Holder string
	// NoWait fails at once with ErrNoSlot instead of waiting.
	NoWait bool
	// Waiting, when set, is called once if the run has to wait, with what
	// holds the slots now.
	Waiting func(holders []string)
	// Poll is how often a waiter looks again; 0 means 50 ms.
	Poll time.Duration
}

// DefaultSlotDir is where slot lock files live: $XDG_RUNTIME_DIR/boxrun/slots,
// /run/boxrun/slots for root, else /run/user/UID/boxrun/slots — a tmpfs
// that is the user's own and emptied at logout or boot.
func DefaultSlotDir(getenv func(string) string) string {
	return filepath.Join(rundir.Dir(getenv), "slots")
}

// AcquireSlot waits for a free slot and returns the function that frees it.
//
// Slots are files locked with flock(2): the kernel drops the lock when the
// holder exits in any way, SIGKILL included, so a dead run never keeps a
// slot. Waiters queue in arrival order: each holds a lock on a ticket file
// named by its arrival time, and only the oldest live ticket may take a
// free slot; tickets of dead waiters are unlocked, and removed by the next
// waiter that sees them.
func AcquireSlot(ctx context.Context, req SlotRequest) (release func(), err error) {
	if req.N < 1 {
		return nil, fmt.Errorf("max_concurrent must be at least 1, not %d", req.N)
	}
	if req.Poll == 0 {
		req.Poll = 50 * time.Millisecond
	}
	if err := rundir.Make(req.Dir); err != nil {
		return nil, fmt.Errorf("making the slot directory: %w", err)
	}
	prefix := slotPrefix(req.Policy)
	ticket, err := takeTicket(req.Dir, prefix)
	if err != nil {
		return nil, err
	}
	defer ticket.drop()
	told := false
	for {
		if ticket.first(req.Dir, prefix) {
			for i := 0; i < req.N; i++ {
				if f, ok := tryLock(filepath.Join(req.Dir, fmt.Sprintf("%sslot.%d", prefix, i))); ok {
					// Who holds it is only shown to waiters: a failed write
					// costs nothing but that.
					_ = f.Truncate(0)
					_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + " " + req.Holder)
					return func() { unlockRemove(f) }, nil
				}
			}
		}
		holders := slotHolders(req.Dir, prefix, req.N)
		if req.NoWait {
			return nil, fmt.Errorf("%w for policy %q (%d of %d running: %s)", ErrNoSlot, req.Policy, len(holders), req.N, strings.Join(holders, "; "))
		}
		if !told && req.Waiting != nil {
			told = true
			req.Waiting(holders)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a slot of policy %q: %w", req.Policy, ctx.Err())
		case <-time.After(req.Poll):
		}
	}
}

// slotPrefix names a policy's files; policy names are free text, so they
// are escaped into one safe path element.
func slotPrefix(policy string) string {
	var b strings.Builder
	for _, r := range policy {
		if r < 128 && (r == '-' || r == '_' || r == '.' && b.Len() > 0 || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "%%%x", r)
		}
	}
	return b.String() + ".."
}

// tryLock opens (creating) path and takes its lock without waiting. The
// lock only counts when path still names the locked file: a releaser
// removes the file while holding the lock, and a waiter that had opened it
// before must not believe it holds the new one.
func tryLock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	var st1, st2 unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st1) != nil || unix.Stat(path, &st2) != nil || st1.Ino != st2.Ino || st1.Dev != st2.Dev {
		f.Close()
		return nil, false
	}
	return f, true
}

// unlockRemove removes a locked file and then drops the lock, so that no
// lock file outlives its holder.
func unlockRemove(f *os.File) {
	_ = os.Remove(f.Name()) // a file left unlocked is taken (a slot) or removed (a ticket) by the next run
	f.Close()
}

// slotHolders lists what holds the slots now, from the files' contents.
func slotHolders(dir, prefix string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%sslot.%d", prefix, i)))
		if err != nil {
			continue
		}
		if len(data) == 0 {
			// Locked a moment ago; the holder has not written its name yet.
			out = append(out, "a run starting")
			continue
		}
		pid, cmd, _ := strings.Cut(string(data), " ")
		out = append(out, fmt.Sprintf("pid %s %s", pid, cmd))
	}
	return out
}

// ticket is a waiter's place in the queue.
type ticket struct {
	f    *os.File
	name string
}

// takeTicket queues this run: a ticket file named by the arrival time,
// locked for as long as the run waits.
func takeTicket(dir, prefix string) (*ticket, error) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%sq.%020d.%d", prefix, time.Now().UnixNano(), os.Getpid())
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
		if errors.Is(err, os.ErrExist) && i < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("queueing for a slot: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("queueing for a slot: locking %s: %w", path, err)
		}
		return &ticket{f: f, name: name}, nil
	}
}

// first reports whether no live waiter arrived before this one, removing
// the tickets of dead ones.
func (t *ticket) first(dir, prefix string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	var older []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, prefix+"q.") && n < t.name {
			older = append(older, n)
		}
	}
	sort.Strings(older)
	for _, n := range older {
		f, ok := tryLock(filepath.Join(dir, n))
		if !ok {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return false // a live waiter came first
			}
			continue // it took its slot and went
		}
		unlockRemove(f) // its waiter died
	}
	return true
}

func (t *ticket) drop() { unlockRemove(t.f) }
