package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Choice configures Select.
type Choice struct {
	// Kind is auto, systemd, cgroupfs or none.
	Kind string
	// User selects the systemd user manager; false selects the system manager.
	User bool
	// CgroupParent overrides where the cgroupfs backend makes its boxes
	// (normally from $BOXRUN_CGROUP_PARENT).
	CgroupParent string
}

// Select opens the backend c asks for. With Kind auto it tries systemd, then
// cgroupfs, then falls back to none, and returns why each earlier one was
// not usable (for the user's warning). An explicit kind that is not usable
// is an error.
func Select(ctx context.Context, c Choice) (Backend, []string, error) {
	return openers{systemd: newSystemd, cgroupfs: newCgroupfs}.choose(ctx, c)
}

// openers open the backends Select chooses from: this machine's, or in
// tests ones on fixture machines.
type openers struct {
	systemd  func(ctx context.Context, user bool) (Backend, error)
	cgroupfs func(parentOverride string) (Backend, error)
}

// choose is Select with the backends op opens.
func (op openers) choose(ctx context.Context, c Choice) (Backend, []string, error) {
	switch c.Kind {
	case KindSystemd:
		b, err := op.systemd(ctx, c.User)
		return b, nil, err
	case KindCgroupfs:
		b, err := op.cgroupfs(c.CgroupParent)
		return b, nil, err
	case KindNone:
		return newNone("the none backend was asked for (--backend none)", NoBox{Reason: "--backend none was asked for"}), nil, nil
	case KindAuto, "":
	default:
		return nil, nil, CheckKind(c.Kind)
	}
	var skipped []string
	b, err := op.systemd(ctx, c.User)
	if err == nil {
		return b, nil, nil
	}
	skipped = append(skipped, "systemd: "+trimUnavailable(err))
	b, err = op.cgroupfs(c.CgroupParent)
	if err == nil {
		return b, skipped, nil
	}
	skipped = append(skipped, "cgroupfs: "+trimUnavailable(err))
	return newNone(trimUnavailable(err), noBoxReason(err, c.CgroupParent)), skipped, nil
}

// noBoxReason says in short why neither systemd nor cgroupfs can make a
// box, from the cgroupfs backend's error (systemd's is the same on a host
// without the unified hierarchy, and beside the point on one with it):
// the hierarchy, a cgroup that holds processes, or on a unified host the
// missing manager and delegated cgroup, where $BOXRUN_CGROUP_PARENT can
// help.
func noBoxReason(cgroupfsErr error, parent string) NoBox {
	var he *hierarchyError
	if errors.As(cgroupfsErr, &he) {
		return he.noBox()
	}
	var be *BusyCgroupError
	if errors.As(cgroupfsErr, &be) {
		return be.noBox()
	}
	if parent != "" {
		return NoBox{Reason: fmt.Sprintf("no systemd manager is reachable, and %s=%s cannot be used", ParentEnv, parent), Fix: "boxrun doctor says why"}
	}
	return NoBox{Reason: "no systemd manager is reachable, and no cgroup is delegated to boxrun",
		Fix: fmt.Sprintf("see boxrun doctor, or set %s to a cgroup v2 directory delegated to you", ParentEnv)}
}

// trimUnavailable drops the sentinel's text from an ErrUnavailable message.
func trimUnavailable(err error) string {
	return strings.TrimPrefix(err.Error(), ErrUnavailable.Error()+": ")
}

// DefaultUser reports whether boxrun should use the user manager by default:
// yes, unless it runs as root.
func DefaultUser() bool { return os.Geteuid() != 0 }
