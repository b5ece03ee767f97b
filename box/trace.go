package box

import "context"

// traceKey is the context key of a run's Trace.
type traceKey struct{}

// Trace receives the name of each phase of a run as the phase ends (the
// helper started, the scope started, its job done, the limits read back,
// the command exited, the box removed), so that a caller can time them.
// It is called from the goroutine running the run, never concurrently.
type Trace func(phase string)

// WithTrace returns a context whose runs report their phases to t.
func WithTrace(ctx context.Context, t Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// tracePhase reports the end of a phase to the context's Trace, if any.
func tracePhase(ctx context.Context, phase string) {
	if t, ok := ctx.Value(traceKey{}).(Trace); ok && t != nil {
		t(phase)
	}
}
