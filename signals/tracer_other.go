//go:build !linux

package signals

import (
	"context"
	"errors"
)

// ErrUnsupported: signals are traced only on Linux.
var ErrUnsupported = errors.New("tracing signals needs Linux (a BPF program on signal:signal_generate)")

// Tracer is not available on this system.
type Tracer struct{}

// Open fails with ErrUnsupported.
func Open() (*Tracer, error) { return nil, ErrUnsupported }

// Run fails with ErrUnsupported.
func (*Tracer) Run(context.Context, *Writer, func(string, ...any)) error { return ErrUnsupported }

// Close does nothing.
func (*Tracer) Close() error { return nil }

// Writer is not available on this system.
type Writer struct {
	Root     string
	MaxBytes int64
}

// DefaultMaxBytes bounds a user's file.
const DefaultMaxBytes = 4 << 20

// Prepare fails with ErrUnsupported.
func (*Writer) Prepare() error { return ErrUnsupported }
