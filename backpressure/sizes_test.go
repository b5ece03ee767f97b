package backpressure

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSizesRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var s Sizes
	s.Record("/src/bkt", "tests", map[string]uint64{"bkt": 150 * mib, "cargo": 40 * mib}, now)
	s.Record("/src/other", "tests", map[string]uint64{"other": 1 * mib}, now)
	s.Record("/src/bkt", "build", nil, now) // nothing learned: nothing kept
	var buf bytes.Buffer
	if err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSizes(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, policy string
		at                time.Time
		want              map[string]uint64
	}{
		{"the same suite", "/src/bkt", "tests", now.Add(time.Hour), map[string]uint64{"bkt": 150 * mib, "cargo": 40 * mib}},
		{"another project", "/src/elsewhere", "tests", now, nil},
		{"another policy", "/src/bkt", "build", now, nil},
		{"stale after 30 days", "/src/bkt", "tests", now.Add(31 * 24 * time.Hour), nil},
	}
	for _, tt := range tests {
		if l := got.Lookup(tt.dir, tt.policy, tt.at); !reflect.DeepEqual(l, tt.want) {
			t.Errorf("%s: Lookup = %v, want %v", tt.name, l, tt.want)
		}
	}
}

func TestReadSizesRejects(t *testing.T) {
	for name, text := range map[string]string{
		"not JSON":        "peaks: lots",
		"another version": `{"version": 2, "suites": {}}`,
		"no version":      `{"suites": {}}`,
		"a key that lies": `{"version": 1, "suites": {"tests\u0000/a": {"dir": "/b", "policy": "tests", "peaks": {"x": 1}}}}`,
		"truncated":       `{"version": 1, "suites": {"tests\u0000/a": {"dir": "/a"`,
	} {
		if _, err := ReadSizes(strings.NewReader(text)); err == nil {
			t.Errorf("%s: ReadSizes accepted %q", name, text)
		}
	}
}

func TestSizesForgetsTheOldest(t *testing.T) {
	var s Sizes
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < MaxSuites+5; i++ {
		s.Record(fmt.Sprintf("/p/%d", i), "tests", map[string]uint64{"x": 1}, t0.Add(time.Duration(i)*time.Minute))
	}
	if len(s.Suites) != MaxSuites {
		t.Fatalf("%d suites kept, want %d", len(s.Suites), MaxSuites)
	}
	now := t0.Add(time.Hour * 24)
	if s.Lookup("/p/0", "tests", now) != nil || s.Lookup(fmt.Sprintf("/p/%d", MaxSuites+4), "tests", now) == nil {
		t.Error("the least recently run suites must go first")
	}
}
