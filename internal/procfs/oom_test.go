package procfs

import (
	"os"
	"testing"
	"testing/fstest"
)

func TestParseOOMScoreAdj(t *testing.T) {
	tests := []struct {
		name, text string
		want       int
		ok         bool
	}{
		{"as the kernel writes it", "300\n", 300, true},
		{"negative", "-500\n", -500, true},
		{"the lowest", "-1000\n", -1000, true},
		{"no newline", "0", 0, true},
		{"empty", "", 0, false},
		{"not a number", "high\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOOMScoreAdj(tt.text)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseOOMScoreAdj(%q) = %d, %v; want %d, ok %v", tt.text, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestReadOOMScoreAdj(t *testing.T) {
	if _, err := ReadOOMScoreAdj(os.Getpid()); err != nil {
		t.Errorf("ReadOOMScoreAdj of this test: %v", err)
	}
	fsys := fstest.MapFS{"42/oom_score_adj": {Data: []byte("-200\n")}}
	if v, err := ReadOOMScoreAdjFS(fsys, 42); err != nil || v != -200 {
		t.Errorf("ReadOOMScoreAdjFS of a fixture = %d, %v; want -200", v, err)
	}
	if _, err := ReadOOMScoreAdjFS(fsys, 43); err == nil {
		t.Error("ReadOOMScoreAdjFS of a process that is not there: no error")
	}
}
