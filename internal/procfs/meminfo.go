package procfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ParseMeminfo reads one "KEY: N kB" line of a /proc/meminfo file
// (MemTotal, MemAvailable) and returns it in bytes. A line of that key
// whose number does not parse is passed over; a file without a good line
// is an error that names the key.
func ParseMeminfo(r io.Reader, key string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/meminfo", key)
}

// ReadMeminfo reads one line of this system's /proc/meminfo, in bytes
// (see ParseMeminfo).
func ReadMeminfo(key string) (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseMeminfo(f, key)
}
