package box

import (
	"context"
	"syscall"
)

// NoBox says why a run gets no box, for the one line a run without a box
// prints; boxrun doctor gives the details.
type NoBox struct {
	// Reason is why, in a few words: "this host has a hybrid cgroup
	// hierarchy, where cgroup v1 holds the controllers".
	Reason string
	// Fix is what helps on this host, in a few words ("boxrun doctor says
	// how to switch to cgroup v2"); "" when nothing needs doing (--backend
	// none was asked for). It suggests $BOXRUN_CGROUP_PARENT only where a
	// delegated cgroup could help: on a unified cgroup v2 host.
	Fix string
}

// noneBackend makes no cgroup. The command still gets the policy's
// oom_score_adj and, as a rough stand-in for pids.max, RLIMIT_NPROC; every
// cgroup limit is reported as not enforced, with Why as the reason.
type noneBackend struct {
	why   string
	noBox NoBox
}

// NewNone returns the degraded backend; why says why no cgroup can be had
// (NoBoxOf gives it as the Reason, with no Fix).
func NewNone(why string) Backend { return newNone(why, NoBox{Reason: why}) }

// newNone is NewNone with the short account of why there is no box.
func newNone(why string, nb NoBox) Backend { return &noneBackend{why: why, noBox: nb} }

// NoBoxOf returns why b makes no boxes, when b is the none backend.
func NoBoxOf(b Backend) (NoBox, bool) {
	if n, ok := b.(*noneBackend); ok {
		return n.noBox, true
	}
	return NoBox{}, false
}

func (b *noneBackend) Name() string { return KindNone }

func (b *noneBackend) Close() error { return nil }

func (b *noneBackend) Create(ctx context.Context, req Request) (Box, error) {
	return &noneBox{req: req, why: b.why}, nil
}

type noneBox struct {
	req Request
	why string
}

func (x *noneBox) Unit() string   { return "" }
func (x *noneBox) Cgroup() string { return "" }
func (x *noneBox) Dir() string    { return "" }

func (x *noneBox) Place(ctx context.Context, pid int) error { return nil }

// Check reports every cgroup limit of the policy as not enforced.
func (x *noneBox) Check(ctx context.Context) []LimitCheck {
	checks := expectedLimits(x.req.Policy.Settings())
	for i := range checks {
		checks[i].Problem = "no cgroup: " + x.why
	}
	return checks
}

func (x *noneBox) Procs() ([]int, error)                                { return nil, nil }
func (x *noneBox) Signal(ctx context.Context, sig syscall.Signal) error { return nil }
func (x *noneBox) Kill(ctx context.Context) error                       { return nil }
func (x *noneBox) Destroy(ctx context.Context) error                    { return nil }
