package probe

import (
	"os"
	"strings"
	"testing"
)

// TestRelease: uname's release is the one /proc names.
func TestRelease(t *testing.T) {
	want, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatalf("reading the kernel release to compare with: %v", err)
	}
	if got := Release(); got == "" || got != strings.TrimSpace(string(want)) {
		t.Errorf("Release() = %q, want %q", got, strings.TrimSpace(string(want)))
	}
}
