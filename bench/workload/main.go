// Command workload is one task of bench/native.sh: a process that takes
// memory as fast as it can, optionally under a shared exclusive lock, and
// exits.
//
//	workload -mb 150 -hold 500ms                  # the burst pattern
//	workload -mb 60 -lock /tmp/l -mb2 60          # the lock pattern
//
// In order, it:
//
//  1. maps -mb MiB of anonymous memory and writes one byte to every page,
//     so that the whole amount is resident and charged to its cgroup; the
//     mapping is made in one step (one mmap, then a tight loop over the
//     pages), which fills a box faster than anything that grows its heap
//     bit by bit;
//  2. with -lock, takes an exclusive flock(2) on that file (created if
//     missing), waiting for it as long as it takes — concurrent `cargo`
//     runs wait on cargo's lock the same way;
//  3. maps and touches -mb2 MiB more, holding the lock;
//  4. sleeps -hold;
//  5. exits 0, which releases the lock.
//
// It exits 1 when a step fails and 2 on bad flags. It prints nothing on
// success, so that a suite of thousands of tasks stays quiet. Its only
// dependencies are the standard library and golang.org/x/sys; build it with
// CGO_ENABLED=0 to get a static binary that runs anywhere (the real-kernel
// guest included).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mb := fs.Int("mb", 0, "MiB to allocate and touch first")
	hold := fs.Duration("hold", 0, "how long to sleep after allocating, before exiting")
	lock := fs.String("lock", "", "file to take an exclusive flock on after the first allocation")
	mb2 := fs.Int("mb2", 0, "MiB to allocate and touch after taking the lock (or after -mb without -lock)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "workload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *mb < 0 || *mb2 < 0 || *hold < 0 {
		fmt.Fprintf(stderr, "workload: -mb %d, -mb2 %d, -hold %v: none may be negative\n", *mb, *mb2, *hold)
		return 2
	}
	if err := work(*mb, *mb2, *lock, *hold); err != nil {
		fmt.Fprintf(stderr, "workload: %v\n", err)
		return 1
	}
	return 0
}

// work does steps 1 to 4. The mappings and the lock's file descriptor are
// left to the process's exit to release.
func work(mb, mb2 int, lock string, hold time.Duration) error {
	if err := touch(mb); err != nil {
		return err
	}
	if lock != "" {
		f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return fmt.Errorf("opening the lock file: %w", err)
		}
		if err := flockEx(int(f.Fd())); err != nil {
			return fmt.Errorf("locking %s: %w", lock, err)
		}
	}
	if err := touch(mb2); err != nil {
		return err
	}
	time.Sleep(hold)
	return nil
}

// touch maps mb MiB of private anonymous memory and writes to every page.
func touch(mb int) error {
	if mb == 0 {
		return nil
	}
	mem, err := unix.Mmap(-1, 0, mb<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mapping %d MiB: %w", mb, err)
	}
	page := os.Getpagesize()
	for i := 0; i < len(mem); i += page {
		mem[i] = 1
	}
	return nil
}

// flockEx takes an exclusive lock on fd, retrying when a signal interrupts
// the wait (a SIGSTOP/SIGCONT pair from a controller pausing the process).
func flockEx(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
