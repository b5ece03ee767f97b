package sandbox

import (
	"reflect"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/backpressure"
)

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
