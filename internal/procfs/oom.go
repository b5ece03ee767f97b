package procfs

import (
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// ParseOOMScoreAdj parses the text of /proc/PID/oom_score_adj: one number
// from -1000 to 1000 and a newline.
func ParseOOMScoreAdj(s string) (int, error) {
	return strconv.Atoi(strings.TrimSpace(s))
}

// ReadOOMScoreAdj reads /proc/PID/oom_score_adj of the running system.
func ReadOOMScoreAdj(pid int) (int, error) { return ReadOOMScoreAdjFS(os.DirFS("/proc"), pid) }

// ReadOOMScoreAdjFS reads PID/oom_score_adj from a proc file system rooted
// at its mount (os.DirFS("/proc"), or a fixture).
func ReadOOMScoreAdjFS(fsys fs.FS, pid int) (int, error) {
	b, err := fs.ReadFile(fsys, strconv.Itoa(pid)+"/oom_score_adj")
	if err != nil {
		return 0, err
	}
	return ParseOOMScoreAdj(string(b))
}
