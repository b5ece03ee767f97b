package box

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/machinetest"
)

// TestSignalsReachOnlyTheBox: a signal to every process of the box goes by
// a list of pids read a moment ago; a pid that names a process outside the
// box by then (it exited, its pid went to another) gets nothing.
func TestSignalsReachOnlyTheBox(t *testing.T) {
	dir, inside, outside, stale := machinetest.StaleBox(t)
	box := cgroupDir{mount: dir, rel: "/"}
	if err := box.signalPids(stale, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); machinetest.ProcState(inside.Process.Pid) != "Z" && machinetest.ProcState(inside.Process.Pid) != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the box's process did not get SIGTERM")
		}
	}
	if got := machinetest.ProcState(outside.Process.Pid); got == "" || got == "Z" {
		t.Errorf("a process outside the box got SIGTERM")
	}
}

// TestCommandHandleIsAPidfd checks what forwardSignals relies on: os/exec
// gives the command an os.Process that holds a pidfd (Go 1.23), so that a
// signal after Wait fails with os.ErrProcessDone instead of reaching the
// pid's next owner.
func TestCommandHandleIsAPidfd(t *testing.T) {
	c := machinetest.StartSleep(t)
	fds, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fd := range fds {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err == nil && strings.Contains(string(b), "\nPid:\t"+strconv.Itoa(c.Process.Pid)+"\n") {
			found = true
		}
	}
	if !found {
		if pidfdMissing() {
			t.Skip("no pidfd_open here (Linux 5.3): os.Process signals by pid")
		}
		t.Errorf("no pidfd for the command (pid %d) among this process's descriptors", c.Process.Pid)
	}
	_ = c.Process.Kill()
	for machinetest.ProcState(c.Process.Pid) != "" && machinetest.ProcState(c.Process.Pid) != "Z" {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // reaped by startSleep's Wait
	if err := c.Process.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("a signal to the reaped command: %v, want os.ErrProcessDone", err)
	}
}

// pidfdMissing reports whether this kernel lacks pidfd_open.
func pidfdMissing() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err == nil {
		unix.Close(fd)
	}
	return errors.Is(err, unix.ENOSYS)
}

// tempCgroup makes a cgroup v2 directory for the test below this process's
// own cgroup, killed and removed when the test ends; the test skips, saying
// why, where it cannot make one (not root, no delegated cgroup).
func tempCgroup(t *testing.T) cgroupDir {
	t.Helper()
	mount, err := cgroupfs.MountPoint()
	if err != nil || mount == "" {
		t.Skipf("no cgroup2 mounted (%v)", err)
	}
	own, err := cgroupfs.OwnCgroup()
	if err != nil {
		t.Skipf("no cgroup v2 of our own: %v", err)
	}
	dir, err := os.MkdirTemp(filepath.Join(mount, own), "boxrun-test-")
	if err != nil {
		t.Skipf("cannot make a cgroup to test in (root, or a delegated cgroup, can): %v", err)
	}
	c := cgroupDir{mount: mount, rel: strings.TrimPrefix(dir, mount)}
	t.Cleanup(func() {
		_ = os.WriteFile(c.file("cgroup.kill"), []byte("1"), 0)
		_ = os.WriteFile(c.file("cgroup.freeze"), []byte("0"), 0)
		c.waitEmpty(context.Background(), 5*time.Second)
		if err := c.remove(); err != nil {
			t.Errorf("removing the test's cgroup: %v", err)
		}
	})
	return c
}

// TestKillEachFreezesFirst kills, process by process as on kernels without
// cgroup.kill, a box of processes that each start the next and exit at
// once, whose listed pids go stale unless the box is frozen between listing
// and killing: all die, and the box is frozen for it, then thawed. (The
// race itself is too narrow to lose on purpose: a fork here takes about
// 1 ms, listing and pinning 8 pids some 50 us.)
func TestKillEachFreezesFirst(t *testing.T) {
	box := tempCgroup(t)
	if _, err := os.Stat(box.file("cgroup.freeze")); err != nil {
		t.Skipf("no cgroup.freeze (Linux 5.2): %v", err)
	}
	hop := filepath.Join(t.TempDir(), "hop")
	if err := os.WriteFile(hop, []byte("#!/bin/sh\nh() { h & }\nh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(box.dir())
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	for i := 0; i < 8; i++ {
		c := exec.Command(hop)
		c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if pids, _ := box.procs(); len(pids) == 0 {
		t.Fatal("no process hops in the box")
	}
	// The kernel can kill frozen processes; whether it did shows only in
	// the writes to cgroup.freeze.
	written, stop := cgroupfs.Watch(box.file("cgroup.freeze"))
	defer stop()
	start := time.Now()
	if err := box.killEach(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pop, _ := box.populated(); pop {
		pids, _ := box.procs()
		t.Fatalf("processes %v still hop in the box after killEach (%v)", pids, time.Since(start))
	}
	select {
	case <-written:
	case <-time.After(time.Second):
		t.Error("killEach never wrote cgroup.freeze: the box ran on between listing and killing")
	}
	if v, _ := box.event("frozen"); v != "0" {
		t.Errorf("the box is left frozen (%q)", v)
	}
}
