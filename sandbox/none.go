package sandbox

import (
	"context"
	"syscall"
)

// noneBackend makes no cgroup. The command still gets the policy's
// oom_score_adj and, as a rough stand-in for pids.max, RLIMIT_NPROC; every
// cgroup limit is reported as not enforced, with Why as the reason.
type noneBackend struct {
	why string
}

// NewNone returns the degraded backend; why says why no cgroup can be had.
func NewNone(why string) Backend { return &noneBackend{why: why} }

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
	checks := expectedLimits(x.req.Policy)
	for i := range checks {
		checks[i].Problem = "no cgroup: " + x.why
	}
	return checks
}

func (x *noneBox) Procs() ([]int, error)                                { return nil, nil }
func (x *noneBox) Signal(ctx context.Context, sig syscall.Signal) error { return nil }
func (x *noneBox) Kill(ctx context.Context) error                       { return nil }
func (x *noneBox) Destroy(ctx context.Context) error                    { return nil }
