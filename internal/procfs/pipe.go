package procfs

import (
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// PipeWait is a process asleep on a pipe: the pipe, by the inode of its
// "pipe:[N]" descriptor, and whether the process waits to write (the pipe
// is full) or to read (it is empty).
type PipeWait struct {
	Inode uint64
	Write bool
}

// pipeCalls are, by GOARCH, the system calls a process sleeping in
// pipe_read or pipe_write can be in (/proc/PID/syscall's first field,
// numbered as the architecture numbers them) and whether each writes.
var pipeCalls = map[string]map[int]bool{
	"amd64": {
		0: false, 1: true, // read, write
		19: false, 20: true, // readv, writev
		295: false, 296: true, // preadv, pwritev
		327: false, 328: true, // preadv2, pwritev2
	},
	"arm64": {
		63: false, 64: true,
		65: false, 66: true,
		69: false, 70: true,
		286: false, 287: true,
	},
}

// PipeWaitOf reports the pipe process pid sleeps on, from its main
// thread's wchan (pipe_read or pipe_write), the system call it is in
// (/proc/PID/syscall) and the descriptor that call was given
// (/proc/PID/fd/N). ok is false when the process does not sleep on a pipe
// or the kernel will not say (a kernel without symbols, a process boxrun
// may not inspect, one that just woke up). A process that waits on a pipe
// through poll or epoll (a Go program) is not seen: the call names no
// descriptor of its own; nor is any on an architecture not in pipeCalls.
func PipeWaitOf(pid int) (PipeWait, bool) {
	return PipeWaitOfFS(os.DirFS("/proc"), pid)
}

// PipeWaitOfFS is PipeWaitOf on a proc file system rooted at its mount.
func PipeWaitOfFS(fsys fs.FS, pid int) (PipeWait, bool) {
	dir := strconv.Itoa(pid)
	w, err := fs.ReadFile(fsys, dir+"/wchan")
	if err != nil {
		return PipeWait{}, false
	}
	switch strings.TrimSpace(string(w)) {
	case "pipe_read", "pipe_write":
	default:
		return PipeWait{}, false
	}
	sc, err := fs.ReadFile(fsys, dir+"/syscall")
	if err != nil {
		return PipeWait{}, false
	}
	// "NR ARG1 ARG2 ... SP PC", ARG1 in hex: the descriptor.
	f := strings.Fields(string(sc))
	if len(f) < 2 {
		return PipeWait{}, false
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil {
		return PipeWait{}, false
	}
	write, known := pipeCalls[runtime.GOARCH][nr]
	if !known {
		return PipeWait{}, false
	}
	fd, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 31)
	if err != nil {
		return PipeWait{}, false
	}
	inode, ok := pipeInode(fsys, dir+"/fd/"+strconv.FormatUint(fd, 10))
	if !ok {
		return PipeWait{}, false
	}
	return PipeWait{Inode: inode, Write: write}, true
}

// PipeInodes returns the inodes of the pipes process pid has open, nil
// when its descriptors cannot be read.
func PipeInodes(pid int) map[uint64]bool {
	return PipeInodesFS(os.DirFS("/proc"), pid)
}

// PipeInodesFS is PipeInodes on a proc file system rooted at its mount.
func PipeInodesFS(fsys fs.FS, pid int) map[uint64]bool {
	dir := strconv.Itoa(pid) + "/fd"
	fds, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	out := map[uint64]bool{}
	for _, fd := range fds {
		if inode, ok := pipeInode(fsys, dir+"/"+fd.Name()); ok {
			out[inode] = true
		}
	}
	return out
}

// pipeInode reads a /proc/PID/fd/N link: the inode of "pipe:[N]", ok false
// for anything else.
func pipeInode(fsys fs.FS, name string) (uint64, bool) {
	target, err := fs.ReadLink(fsys, name)
	if err != nil || !strings.HasPrefix(target, "pipe:[") || !strings.HasSuffix(target, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(target[len("pipe:["):len(target)-1], 10, 64)
	return n, err == nil
}

// PipeHolders returns, for each process of waiting that sleeps on a pipe,
// the processes of holders that have that pipe open: those it may wait
// for. pipes gives a process's open pipes (PipeInodes).
func PipeHolders(waiting map[int]PipeWait, holders []int, pipes func(pid int) map[uint64]bool) map[int][]int {
	if len(waiting) == 0 || len(holders) == 0 {
		return nil
	}
	open := make(map[int]map[uint64]bool, len(holders))
	for _, h := range holders {
		open[h] = pipes(h)
	}
	out := map[int][]int{}
	for pid, w := range waiting {
		for _, h := range holders {
			if h != pid && open[h][w.Inode] {
				out[pid] = append(out[pid], h)
			}
		}
	}
	return out
}
