package sandbox

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/backpressure"
)

func TestParseStat(t *testing.T) {
	// After the command name: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime vsize rss.
	tail := " 1 1 0 -1 4194304 10 0 0 0 5 2 0 0 20 0 1 0 4242 1000 100 0"
	page := uint64(os.Getpagesize())
	tests := []struct {
		name  string
		stat  string
		want  backpressure.Proc
		state byte
		ok    bool
	}{
		{"plain", "123 (memcrate) S 45" + tail, backpressure.Proc{PID: 123, PPID: 45, Start: 4242, Comm: "memcrate", RSS: 100 * page}, 'S', true},
		{"name with spaces and parentheses", "7 (a (b) c) R 1" + tail, backpressure.Proc{PID: 7, PPID: 1, Start: 4242, Comm: "a (b) c", RSS: 100 * page}, 'R', true},
		{"truncated", "7 (x) R 1 2 3", backpressure.Proc{}, 0, false},
		{"no parentheses", "7 x R 1" + tail, backpressure.Proc{}, 0, false},
		{"bad pid", "x (y) R 1" + tail, backpressure.Proc{}, 0, false},
		{"bad state", "7 (x) RS 1" + tail, backpressure.Proc{}, 0, false},
		{"no rss", "7 (x) R 1" + tail[:strings.LastIndex(tail, " 1000")], backpressure.Proc{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, state, ok := parseStat(tt.stat)
			if ok != tt.ok || (ok && (got != tt.want || state != tt.state)) {
				t.Errorf("parseStat(%q) = %+v, %c, %v; want %+v, %c, %v", tt.stat, got, state, ok, tt.want, tt.state, tt.ok)
			}
		})
	}
}

func TestWaitOf(t *testing.T) {
	tests := []struct {
		wchan string
		want  backpressure.Wait
	}{
		{"locks_lock_inode_wait", backpressure.OnLock},
		{"flock_lock_inode_wait", backpressure.OnLock},
		{"fcntl_setlk", backpressure.OnLock},
		{"pipe_read", backpressure.OnPipe},
		{"pipe_write", backpressure.OnPipe},
		{"wait_for_partner", backpressure.OnPipe},
		{"do_wait", backpressure.Asleep},
		{"hrtimer_nanosleep", backpressure.Asleep},
		{"futex_wait_queue", backpressure.Asleep},
		{"0", backpressure.Asleep},
	}
	for _, tt := range tests {
		if got := waitOf(tt.wchan + "\n"); got != tt.want {
			t.Errorf("waitOf(%q) = %v, want %v", tt.wchan, got, tt.want)
		}
	}
	for state, want := range map[byte]backpressure.Wait{'R': backpressure.Running, 'S': backpressure.Asleep, 'D': backpressure.Asleep, 'T': backpressure.Stopped, 't': backpressure.Stopped, 'Z': backpressure.Running} {
		if got := waitOfState(state); got != want {
			t.Errorf("waitOfState(%c) = %v, want %v", state, got, want)
		}
	}
}

func TestParseLocks(t *testing.T) {
	const locks = `1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4243 00:2d:1234 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4244 00:2d:1234 0 EOF
2: POSIX  ADVISORY  WRITE 900 08:01:77 0 EOF
3: OFDLCK ADVISORY  READ  -1 08:01:78 0 EOF
3: -> OFDLCK ADVISORY  WRITE -1 08:01:78 0 EOF
`
	got := parseLocks(strings.NewReader(locks))
	if want := map[int]bool{4242: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("parseLocks = %v, want %v (only a lock others wait for, with a pid)", got, want)
	}
}
