package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A command that dies of Ctrl-C must look that way to whoever ran boxrun:
// a shell stops `for t in a b; do boxrun -- cargo test $t; done` only when
// its child died of SIGINT, not when it exited 130. So when the command
// died of SIGINT, SIGHUP or SIGTERM, boxrun finishes everything it has to
// do (the report, removing the box), then dies of the same signal.
//
// Only those three. The default action of SIGQUIT, SIGSEGV, SIGABRT and
// the like dumps core: boxrun dying of them would leave a core file (or a
// crash report) of boxrun, which did not crash; and SIGKILL, mostly the
// OOM killer's, is explained by the report, not passed on (a shell would
// print "Killed" for boxrun). They end boxrun with 128+N, as does a signal
// boxrun cannot die of because it was started with it ignored (a
// background job of a script ignores SIGINT): signal.Reset restores that,
// and the raise does nothing.

// deathKey carries where runCommand puts the signal to die of.
type deathKey struct{}

// withDeath returns a context through which runCommand reports the signal
// boxrun should die of; *sig stays 0 when it should exit normally.
func withDeath(ctx context.Context, sig *syscall.Signal) context.Context {
	return context.WithValue(ctx, deathKey{}, sig)
}

// dieOf records, for main, that the command died of sig, when sig is one
// to pass on.
func dieOf(ctx context.Context, sig syscall.Signal) {
	p, ok := ctx.Value(deathKey{}).(*syscall.Signal)
	if !ok {
		return
	}
	switch sig {
	case syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM:
		*p = sig
	}
}

// die ends boxrun by sig, its default action restored; it returns only if
// that did not end the process. The signal goes to this very thread, so it
// is delivered before die returns (sent to the process, another thread
// could take it while this one goes on to exit normally).
func die(sig syscall.Signal) {
	signal.Reset(sig)
	runtime.LockOSThread()
	_ = unix.Tgkill(os.Getpid(), unix.Gettid(), sig)
	// Delivered on the way back from the system call; should the runtime
	// still be busy with it, give it a moment.
	time.Sleep(100 * time.Millisecond)
}
