package procfs

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestParseStat(t *testing.T) {
	// After the command name: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime vsize rss.
	tail := " 1 1 0 -1 4194304 10 0 0 0 5 2 0 0 20 0 1 0 4242 1000 100 0"
	// Up to field 51 (env_end), then exit_code, as Linux 3.5+ writes it.
	upTo51 := tail + strings.Repeat(" 0", 26)
	tests := []struct {
		name string
		stat string
		want Stat
		err  string
	}{
		{"plain", "123 (memcrate) S 45" + tail, Stat{PID: 123, PPID: 45, Comm: "memcrate", State: 'S', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100}, ""},
		{"name with spaces and parentheses", "7 (a (b) c) R 1" + tail, Stat{PID: 7, PPID: 1, Comm: "a (b) c", State: 'R', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100}, ""},
		{"a zombie", "9 (x) Z 1" + tail, Stat{PID: 9, PPID: 1, Comm: "x", State: 'Z', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100}, ""},
		{"zombie killed by SIGKILL", "9 (x) Z 1" + upTo51 + " 9", Stat{PID: 9, PPID: 1, Comm: "x", State: 'Z', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100, ExitCode: 9}, ""},
		{"zombie that exited 1", "9 (x) Z 1" + upTo51 + " 256", Stat{PID: 9, PPID: 1, Comm: "x", State: 'Z', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100, ExitCode: 256}, ""},
		{"running, exit_code 0", "9 (x) R 1" + upTo51 + " 0\n", Stat{PID: 9, PPID: 1, Comm: "x", State: 'R', UTime: 5, STime: 2, StartTime: 4242, RSSPages: 100}, ""},
		{"bad exit_code", "9 (x) Z 1" + upTo51 + " nine", Stat{}, "bad exit_code"},
		{"truncated", "7 (x) R 1 2 3", Stat{}, "fields after the command name"},
		{"no parentheses", "7 x R 1" + tail, Stat{}, "no command name"},
		{"bad pid", "x (y) R 1" + tail, Stat{}, "bad pid"},
		{"bad state", "7 (x) RS 1" + tail, Stat{}, "fields after the command name"},
		{"bad rss", "7 (x) R 1" + strings.Replace(tail, " 100 ", " x ", 1), Stat{}, "bad ppid, utime, stime, starttime or rss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.stat)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseStat(%q) error %v, want one saying %q", tt.stat, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseStat(%q) = %+v, %v; want %+v", tt.stat, got, err, tt.want)
			}
		})
	}
}

func TestStatSignal(t *testing.T) {
	tests := []struct {
		name string
		code int
		want int
	}{
		{"running", 0, 0},
		{"killed by SIGKILL", 9, 9},
		{"killed by SIGSEGV with a core dump", 0x80 | 11, 11},
		{"exited 1", 1 << 8, 0},
	}
	for _, tt := range tests {
		if got := (Stat{ExitCode: tt.code}).Signal(); got != tt.want {
			t.Errorf("%s: Signal() of exit_code %#x = %d, want %d", tt.name, tt.code, got, tt.want)
		}
	}
}

func TestReadStat(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.PID != os.Getpid() || st.PPID != os.Getppid() || st.StartTime == 0 || st.RSS() == 0 {
		t.Errorf("ReadStat(self) = %+v, %v", st, err)
	}
	fsys := fstest.MapFS{"42/stat": {Data: []byte("42 (sh) S 1 1 1 0 -1 4194304 10 0 0 0 5 2 0 0 20 0 1 0 77 1000 3 0\n")}}
	if st, err := ReadStatFS(fsys, 42); err != nil || st.Comm != "sh" || st.StartTime != 77 || st.CPU() != 70*time.Millisecond {
		t.Errorf("ReadStatFS = %+v, %v", st, err)
	}
	if _, err := ReadStatFS(fsys, 43); err == nil {
		t.Error("ReadStatFS of a missing process: no error")
	}
}
