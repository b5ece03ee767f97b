package sandbox

import (
	"os"
	"strings"
	"testing"

	"github.com/boxrun/boxrun/backpressure"
)

func TestParseStat(t *testing.T) {
	// After the command name: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime vsize rss.
	tail := " 1 1 0 -1 4194304 10 0 0 0 5 2 0 0 20 0 1 0 4242 1000 100 0"
	page := uint64(os.Getpagesize())
	tests := []struct {
		name string
		stat string
		want backpressure.Proc
		ok   bool
	}{
		{"plain", "123 (memcrate) S 45" + tail, backpressure.Proc{PID: 123, PPID: 45, Start: 4242, Comm: "memcrate", RSS: 100 * page}, true},
		{"name with spaces and parentheses", "7 (a (b) c) R 1" + tail, backpressure.Proc{PID: 7, PPID: 1, Start: 4242, Comm: "a (b) c", RSS: 100 * page}, true},
		{"truncated", "7 (x) R 1 2 3", backpressure.Proc{}, false},
		{"no parentheses", "7 x R 1" + tail, backpressure.Proc{}, false},
		{"bad pid", "x (y) R 1" + tail, backpressure.Proc{}, false},
		{"no rss", "7 (x) R 1" + tail[:strings.LastIndex(tail, " 1000")], backpressure.Proc{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStat(tt.stat)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseStat(%q) = %+v, %v; want %+v, %v", tt.stat, got, ok, tt.want, tt.ok)
			}
		})
	}
}
