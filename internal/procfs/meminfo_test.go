package procfs

import (
	"strings"
	"testing"
)

func TestParseMeminfo(t *testing.T) {
	const meminfo = "MemTotal:       16314372 kB\nMemFree:         1024 kB\nMemAvailable:    8000000 kB\n"
	tests := []struct {
		name, text, key string
		want            uint64
		err             string
	}{
		{"MemTotal, in bytes", meminfo, "MemTotal", 16314372 * 1024, ""},
		{"MemAvailable", meminfo, "MemAvailable", 8000000 * 1024, ""},
		{"a key is matched whole, not as a prefix", "MemTotalX: 1 kB\nMemTotal: 2 kB\n", "MemTotal", 2048, ""},
		{"a bad number is passed over", "MemTotal: lots kB\nMemTotal: 3 kB\n", "MemTotal", 3072, ""},
		{"no line for the key", "nothing\n", "MemTotal", 0, "no MemTotal line in /proc/meminfo"},
		{"a key without a number", "MemAvailable:\n", "MemAvailable", 0, "no MemAvailable line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMeminfo(strings.NewReader(tt.text), tt.key)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseMeminfo(%q) error %v, want one saying %q", tt.key, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseMeminfo(%q) = %d, %v; want %d", tt.key, got, err, tt.want)
			}
		})
	}
}

func TestReadMeminfo(t *testing.T) {
	total, err := ReadMeminfo("MemTotal")
	if err != nil || total == 0 {
		t.Fatalf("ReadMeminfo(MemTotal) of this machine = %d, %v; want its memory size", total, err)
	}
}
