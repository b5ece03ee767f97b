package cgroupfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFlatKeyed(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]uint64
	}{
		{"memory.events", "low 0\nhigh 1204\nmax 31\noom 2\noom_kill 2\noom_group_kill 0\n",
			map[string]uint64{"low": 0, "high": 1204, "max": 31, "oom": 2, "oom_kill": 2, "oom_group_kill": 0}},
		{"cpu.stat without the cpu controller", "usage_usec 663000000\nuser_usec 600000000\nsystem_usec 63000000\n",
			map[string]uint64{"usage_usec": 663000000, "user_usec": 600000000, "system_usec": 63000000}},
		{"pids.events", "max 37\n", map[string]uint64{"max": 37}},
		{"junk is skipped", "max\n\nfoo bar\nmax 1 2\n oom_kill 5 \n", map[string]uint64{"oom_kill": 5}},
		{"empty", "", map[string]uint64{}},
		{"overflow is skipped", "big 18446744073709551616\nok 18446744073709551615\n", map[string]uint64{"ok": 18446744073709551615}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlatKeyed(strings.NewReader(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseCounter(t *testing.T) {
	for in, want := range map[string]uint64{"134217728\n": 134217728, "0": 0, " 7 ": 7} {
		if got, ok := ParseCounter(in); !ok || got != want {
			t.Errorf("ParseCounter(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"max\n", "", "-1", "1.5"} {
		if _, ok := ParseCounter(in); ok {
			t.Errorf("ParseCounter(%q) accepted", in)
		}
	}
}
