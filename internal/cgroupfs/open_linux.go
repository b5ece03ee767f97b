package cgroupfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Counter is a single-value file (memory.current, pids.current) kept open
// for a run: each read is one pread at offset 0, which the kernel answers
// with the present value, instead of the five system calls of opening,
// reading and closing it again; read four times a second for a whole run,
// that is most of what sampling costs.
type Counter struct {
	fd  int // -1 when the file could not be opened
	buf [32]byte
}

// OpenCounter opens path; a Counter that cannot be opened reads nothing.
func OpenCounter(path string) *Counter { return &Counter{fd: openRead(path)} }

// Read returns the present value; ok is false when it cannot be read (the
// file is missing, or the cgroup is gone).
func (c *Counter) Read() (uint64, bool) {
	if c.fd < 0 {
		return 0, false
	}
	n, err := unix.Pread(c.fd, c.buf[:], 0)
	if err != nil || n <= 0 {
		return 0, false
	}
	return ParseCounter(string(c.buf[:n]))
}

// Close releases the file.
func (c *Counter) Close() { closeFD(&c.fd) }

// StatFile is a flat-keyed file (cpu.stat) kept open for a run and read
// with one pread.
type StatFile struct {
	fd  int
	buf [1024]byte
}

// OpenStatFile opens path; a StatFile that cannot be opened reads nothing.
func OpenStatFile(path string) *StatFile { return &StatFile{fd: openRead(path)} }

// Value reads the file and returns key's value.
func (f *StatFile) Value(key string) (uint64, bool) {
	if f.fd < 0 {
		return 0, false
	}
	n, err := unix.Pread(f.fd, f.buf[:], 0)
	if err != nil || n <= 0 {
		return 0, false
	}
	m, err := ParseFlatKeyed(strings.NewReader(string(f.buf[:n])))
	if err != nil {
		return 0, false
	}
	v, ok := m[key]
	return v, ok
}

// Close releases the file.
func (f *StatFile) Close() { closeFD(&f.fd) }

func openRead(path string) int {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func closeFD(fd *int) {
	if *fd >= 0 {
		unix.Close(*fd)
		*fd = -1
	}
}
