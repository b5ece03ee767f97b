package sandbox

import (
	"context"
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
	switch c.Kind {
	case KindSystemd:
		b, err := NewSystemd(ctx, c.User)
		return b, nil, err
	case KindCgroupfs:
		b, err := NewCgroupfs(c.CgroupParent)
		return b, nil, err
	case KindNone:
		return NewNone("the none backend was asked for (--backend none)"), nil, nil
	case KindAuto, "":
	default:
		return nil, nil, CheckKind(c.Kind)
	}
	var skipped []string
	b, err := NewSystemd(ctx, c.User)
	if err == nil {
		return b, nil, nil
	}
	skipped = append(skipped, "systemd: "+trimUnavailable(err))
	b, err = NewCgroupfs(c.CgroupParent)
	if err == nil {
		return b, skipped, nil
	}
	skipped = append(skipped, "cgroupfs: "+trimUnavailable(err))
	return NewNone(trimUnavailable(err)), skipped, nil
}

// trimUnavailable drops the sentinel's text from an ErrUnavailable message.
func trimUnavailable(err error) string {
	return strings.TrimPrefix(err.Error(), ErrUnavailable.Error()+": ")
}

// DefaultUser reports whether boxrun should use the user manager by default:
// yes, unless it runs as root.
func DefaultUser() bool { return os.Geteuid() != 0 }
