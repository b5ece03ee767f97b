//go:build !linux

package vm

import (
	"context"
	"fmt"
	"runtime"
)

// Available reports that the VM harness needs Linux.
func Available(Guest) error {
	return fmt.Errorf("the VM harness needs a linux/amd64 host with QEMU, not %s", runtime.GOOS)
}

// Boot fails: the VM harness needs Linux.
func Boot(ctx context.Context, cfg Config) (*Result, error) {
	return nil, Available(cfg.Guest)
}

// Prepare fails: the VM harness needs Linux.
func Prepare(ctx context.Context, g Guest) (string, error) {
	return "", Available(g)
}
