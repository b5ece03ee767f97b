package procfs

import (
	"testing"
	"testing/fstest"
)

func TestThreadWaitsIn(t *testing.T) {
	fsys := fstest.MapFS{
		// A test binary whose second thread is throttled.
		"10/task/10/wchan": {Data: []byte("futex_wait_queue")},
		"10/task/11/wchan": {Data: []byte(OverHigh)},
		// A single-threaded sleeper, and a kernel that hides symbols.
		"20/task/20/wchan": {Data: []byte("do_wait\n")},
		"30/task/30/wchan": {Data: []byte("0")},
	}
	for _, tc := range []struct {
		pid  int
		want bool
	}{{10, true}, {20, false}, {30, false}, {40, false}} {
		if got := ThreadWaitsInFS(fsys, tc.pid, OverHigh); got != tc.want {
			t.Errorf("pid %d: ThreadWaitsIn = %v, want %v", tc.pid, got, tc.want)
		}
	}
}
