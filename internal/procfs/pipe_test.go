package procfs

import (
	"io/fs"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"testing/fstest"
)

// link is a /proc/PID/fd/N entry pointing at target.
func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o700}
}

// sysno is the number of the system call named on this architecture
// ("read" or "writev"), as /proc/PID/syscall starts; 0 on one pipeCalls
// does not know.
func sysno(name string) string {
	nr := map[string]map[string]int{
		"amd64": {"read": 0, "writev": 20},
		"arm64": {"read": 63, "writev": 66},
	}[runtime.GOARCH][name]
	return strconv.Itoa(nr)
}

func pipeProcs() fstest.MapFS {
	read, writev := sysno("read"), sysno("writev")
	return fstest.MapFS{
		// A consumer reading an empty pipe on its stdin.
		"10/wchan":   {Data: []byte("pipe_read")},
		"10/syscall": {Data: []byte(read + " 0x0 0x7ffd1000 0x10000 0x0 0x0 0x0 0x7ffd0ff8 0x7f00aa")},
		"10/fd/0":    link("pipe:[4242]"),
		"10/fd/1":    link("/dev/pts/0"),
		// A producer writing a full pipe on its stdout with writev.
		"20/wchan":   {Data: []byte("pipe_write\n")},
		"20/syscall": {Data: []byte(writev + " 0x1 0x7ffd2000 0x2 0x0 0x0 0x0 0x7ffd1ff8 0x7f00bb")},
		"20/fd/1":    link("pipe:[777]"),
		"20/fd/3":    link("socket:[5]"),
		// A sleeper, a Go program in epoll, a kernel hiding symbols, and
		// a reader whose descriptor is not a pipe (a FIFO shows as a path).
		"30/wchan":   {Data: []byte("hrtimer_nanosleep")},
		"40/wchan":   {Data: []byte("do_epoll_wait")},
		"40/syscall": {Data: []byte("281 0x4 0xc000 0x80 0xffffffffffffffff 0x0 0x0 0x7ffd 0x46")},
		"50/wchan":   {Data: []byte("0")},
		"60/wchan":   {Data: []byte("pipe_read")},
		"60/syscall": {Data: []byte(read + " 0x5 0x7ffd1000 0x10000 0x0 0x0 0x0 0x7ffd0ff8 0x7f00aa")},
		"60/fd/5":    link("/tmp/fifo"),
		// One that woke between the two reads: running now.
		"70/wchan":   {Data: []byte("pipe_read")},
		"70/syscall": {Data: []byte("running")},
	}
}

func TestPipeWaitOf(t *testing.T) {
	fsys := pipeProcs()
	for _, tc := range []struct {
		pid  int
		want PipeWait
		ok   bool
	}{
		{10, PipeWait{Inode: 4242}, true},
		{20, PipeWait{Inode: 777, Write: true}, true},
		{30, PipeWait{}, false},
		{40, PipeWait{}, false},
		{50, PipeWait{}, false},
		{60, PipeWait{}, false},
		{70, PipeWait{}, false},
		{80, PipeWait{}, false}, // gone
	} {
		if _, known := pipeCalls[runtime.GOARCH]; !known {
			// No system call numbers: no process is seen on a pipe.
			tc.want, tc.ok = PipeWait{}, false
		}
		got, ok := PipeWaitOfFS(fsys, tc.pid)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pid %d: PipeWaitOf = %+v, %v; want %+v, %v", tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPipeInodes(t *testing.T) {
	fsys := pipeProcs()
	if got, want := PipeInodesFS(fsys, 20), map[uint64]bool{777: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("PipeInodes(20) = %v, want %v", got, want)
	}
	if got := PipeInodesFS(fsys, 80); got != nil {
		t.Errorf("PipeInodes of a process gone = %v, want nil", got)
	}
}

func TestPipeHolders(t *testing.T) {
	open := map[int]map[uint64]bool{
		2: {4242: true},            // the paused producer of 10's pipe
		3: {4242: true, 777: true}, // holds both
		4: {9: true},
	}
	pipes := func(pid int) map[uint64]bool { return open[pid] }
	waiting := map[int]PipeWait{10: {Inode: 4242}, 20: {Inode: 777, Write: true}, 30: {Inode: 1}}
	got := PipeHolders(waiting, []int{2, 3, 4}, pipes)
	want := map[int][]int{10: {2, 3}, 20: {3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PipeHolders = %v, want %v", got, want)
	}
	if got := PipeHolders(waiting, nil, pipes); got != nil {
		t.Errorf("with no holders: %v, want nil", got)
	}
}
