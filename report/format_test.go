package report

import (
	"testing"
	"time"
)

func TestFormatSize(t *testing.T) {
	const (
		K = 1 << 10
		M = 1 << 20
		G = 1 << 30
	)
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{900, "900B"},
		{1023, "1023B"},
		{K, "1K"},
		{1536, "1.5K"},
		{128 * M, "128M"},
		{96 * M, "96M"},
		{8 * G, "8G"},
		{12 * G, "12G"},
		{79 * G / 10, "7.9G"},
		{61 * G / 10, "6.1G"},
		{G - 1, "1G"},            // 1023.999M rounds up to the next unit
		{1023*M + M/2, "1G"},     // 1023.5M: whole units from 100 on
		{9996 * M / 100, "100M"}, // one decimal below 100, rounding up
		{127284 * K, "124M"},     // 124.3M: whole units from 100 on
		{1 << 62, "4E"},
		{^uint64(0), "16E"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0ms"},
		{-time.Second, "0ms"},
		{850 * time.Millisecond, "850ms"},
		{999 * time.Millisecond, "999ms"},
		{time.Second, "1.0s"},
		{3200 * time.Millisecond, "3.2s"},
		{14100 * time.Millisecond, "14.1s"},
		{59940 * time.Millisecond, "59.9s"},
		{59960 * time.Millisecond, "1m00s"}, // would round to 60.0s
		{3*time.Minute + 12*time.Second, "3m12s"},
		{11*time.Minute + 3*time.Second, "11m03s"},
		{59*time.Minute + 59*time.Second + 600*time.Millisecond, "1h00m"},
		{time.Hour + 2*time.Minute, "1h02m"},
		{26*time.Hour + 30*time.Second, "26h01m"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for in, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1204: "1,204", 1234567: "1,234,567"} {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", in, got, want)
		}
	}
	if got := plural(1, "process", "processes"); got != "1 process" {
		t.Errorf("plural(1) = %q", got)
	}
	if got := plural(2048, "process", "processes"); got != "2,048 processes" {
		t.Errorf("plural(2048) = %q", got)
	}
}

func TestSparkline(t *testing.T) {
	ramp := make([]uint64, 100)
	for i := range ramp {
		ramp[i] = uint64(i)
	}
	spike := make([]uint64, 1000)
	spike[437] = 50
	tests := []struct {
		name   string
		values []uint64
		width  int
		want   string
	}{
		{"none", nil, 20, ""},
		{"one value", []uint64{5}, 20, ""},
		{"zero width", []uint64{1, 2}, 0, ""},
		{"all zero", []uint64{0, 0, 0}, 20, "▁▁▁"},
		{"fewer than the width: one each", []uint64{0, 1, 2, 3, 4, 5, 6, 7}, 20, "▁▂▃▄▅▆▇█"},
		{"flat", []uint64{9, 9}, 20, "██"},
		{"down-sampled ramp: each column its maximum", ramp, 10, "▂▂▃▄▄▅▆▇▇█"},
		{"a spike survives down-sampling", spike, 20, "▁▁▁▁▁▁▁▁█▁▁▁▁▁▁▁▁▁▁▁"},
		{"the issue's shape", []uint64{1, 2, 3, 5, 7, 7, 8, 6, 3, 1}, 20, "▂▃▄▅▇▇█▆▄▂"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sparkline(tt.values, tt.width)
			if got != tt.want {
				t.Errorf("Sparkline = %q, want %q", got, tt.want)
			}
			if n := len([]rune(got)); n > tt.width {
				t.Errorf("%d characters, more than the width %d", n, tt.width)
			}
		})
	}
}
