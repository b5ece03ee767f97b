package cgroupfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// Watch returns a channel that receives when path is modified (inotify),
// and a function to stop watching. Without inotify the channel never fires
// and the caller's timer does the work.
func Watch(path string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	// Non-blocking, so the descriptor joins Go's poller: Read parks no
	// thread, and the stop function's Close ends the reader at once
	// (a blocking inotify read would hold its instance until exit).
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return ch, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return ch, func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() { f.Close() }
}
