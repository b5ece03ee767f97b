package procfs

import (
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	const full = "Name:\tcode\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n" +
		"VmHWM:\t  307200 kB\nVmRSS:\t  204800 kB\nThreads:\t27\nCapEff:\t000001ffffffffff\n"
	tests := []struct {
		name, status string
		want         Status
	}{
		{"a user's process", full, Status{UID: 1000, EUID: 1001, CapEff: 0x1ffffffffff, Threads: 27, RSS: 204800 * 1024, HWM: 307200 * 1024}},
		{"root in a docker container, without CAP_SYS_RESOURCE", "Uid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\n", Status{UID: 0, EUID: 0, CapEff: 0x1fffeffffff}},
		{"a kernel thread: no VmRSS", "Name:\tkthreadd\nUid:\t0\t0\t0\t0\nThreads:\t1\nCapEff:\t000001ffffffffff\n", Status{UID: 0, EUID: 0, CapEff: 0x1ffffffffff, Threads: 1}},
		{"nothing boxrun reads", "Name:\tx\n", Status{UID: -1, EUID: -1}},
		{"empty", "", Status{UID: -1, EUID: -1}},
		{"a Uid line with one id", "Uid:\t1000\n", Status{UID: -1, EUID: -1}},
		{"numbers that do not parse", "Uid:\tx\t1\nCapEff:\tzz\nThreads:\tmany\nVmRSS:\t-1 kB\nVmHWM:\tx kB\n", Status{UID: -1, EUID: -1}},
		{"the first good line counts", "Uid:\tx\ty\nUid:\t5\t6\nUid:\t7\t8\nThreads:\t2\nThreads:\t3\n", Status{UID: 5, EUID: 6, Threads: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseStatus(tt.status); got != tt.want {
				t.Errorf("ParseStatus(%q) = %+v, want %+v", tt.status, got, tt.want)
			}
		})
	}
}

func TestReadStatus(t *testing.T) {
	st, err := ReadStatus(os.Getpid())
	if err != nil || st.UID != os.Getuid() || st.EUID != os.Geteuid() || st.Threads < 1 || st.RSS == 0 {
		t.Fatalf("ReadStatus of this test = %+v, %v; want its uids, threads and resident size", st, err)
	}
}
