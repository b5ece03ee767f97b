package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/boxrun/boxrun/box"
)

// timingEnv, when set to anything, makes boxrun print how long each phase of
// a run took on standard error when it ends: where launch time goes
// (bench/ breaks it down this way).
const timingEnv = "BOXRUN_TIMING"

// timing records the phases of one run as they end.
type timing struct {
	start, last time.Time
	phases      []phase
}

// phase is one named step and how long it took.
type phase struct {
	name string
	d    time.Duration
}

func newTiming(start time.Time) *timing {
	return &timing{start: start, last: start}
}

// mark ends the phase called name at the present moment. A nil timing
// records nothing.
func (t *timing) mark(name string) {
	if t == nil {
		return
	}
	now := time.Now()
	t.phases = append(t.phases, phase{name, now.Sub(t.last)})
	t.last = now
}

// String is "policy=0.41ms backend=2.10ms ... total=12.3ms", in the order
// the phases ended.
func (t *timing) String() string {
	var b strings.Builder
	for _, p := range t.phases {
		fmt.Fprintf(&b, "%s=%.2fms ", p.name, float64(p.d)/1e6)
	}
	fmt.Fprintf(&b, "total=%.2fms", float64(t.last.Sub(t.start))/1e6)
	return b.String()
}

// startTiming starts timing a run when BOXRUN_TIMING asks for it: the
// context returned traces the run's phases (box.WithTrace) into the timing
// too, and done marks the end and prints it on out, even with -q (it was
// asked for).
// Otherwise the timing is nil, ctx is returned as it is and done does
// nothing.
func startTiming(ctx context.Context, out *printer) (_ context.Context, _ *timing, done func()) {
	if os.Getenv(timingEnv) == "" {
		return ctx, nil, func() {}
	}
	tm := newTiming(time.Now())
	return box.WithTrace(ctx, tm.mark), tm, func() {
		tm.mark("exit")
		fmt.Fprintf(out.w, "boxrun: timing: %s\n", tm)
	}
}
