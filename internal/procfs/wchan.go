package procfs

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// OverHigh is the kernel function a task sleeps in while the kernel
// throttles it for its cgroup's memory.high (mm/memcontrol.c): the task
// was allocating.
const OverHigh = "mem_cgroup_handle_over_high"

// ThreadWaitsIn reports whether a thread of process pid sleeps in the
// kernel function fn, by /proc/PID/task/TID/wchan. The allocating thread of
// a test binary is seldom its main one, so every thread is asked. A
// process that is gone, or whose wchan the kernel will not show (a
// kernel without symbols prints 0), reports false.
func ThreadWaitsIn(pid int, fn string) bool {
	return ThreadWaitsInFS(os.DirFS("/proc"), pid, fn)
}

// ThreadWaitsInFS is ThreadWaitsIn on a proc file system rooted at its
// mount (os.DirFS("/proc"), or a fixture).
func ThreadWaitsInFS(fsys fs.FS, pid int, fn string) bool {
	dir := strconv.Itoa(pid) + "/task"
	tasks, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return false
	}
	for _, t := range tasks {
		if w, err := fs.ReadFile(fsys, dir+"/"+t.Name()+"/wchan"); err == nil && strings.TrimSpace(string(w)) == fn {
			return true
		}
	}
	return false
}
