// Command boxrun runs a command — a test suite, a build — inside a cgroup v2
// box whose memory, process and CPU limits come from a named policy, so that a
// runaway suite is throttled or killed inside its own box instead of taking
// the editor and the desktop with it.
//
//	boxrun [flags] [--] COMMAND [ARGS...]
//	boxrun policy list|show NAME|check [FILE]
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/boxrun/boxrun/box"
)

func main() {
	if box.IsGuard(os.Args) {
		// A run's guard: if boxrun dies first, it writes the run's
		// report from what it saw (see lastrun.go).
		os.Exit(box.RunGuard(os.Args, writePostMortem))
	}
	if box.IsHelper(os.Args) {
		// The helper runs any command it is given: never with privileges
		// from a setuid or setgid bit.
		if err := checkUnprivileged(); err != nil {
			(&printer{w: os.Stderr}).errorf("%v", err)
			os.Exit(exitBoxrunFailed)
		}
		os.Exit(box.RunHelper(os.Args))
	}
	var sig syscall.Signal
	code := run(withDeath(context.Background(), &sig), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if sig != 0 {
		die(sig) // the command's death, passed on (see reraise.go)
	}
	os.Exit(code)
}
