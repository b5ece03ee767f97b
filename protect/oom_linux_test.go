package protect

import (
	"os"
	"syscall"
	"testing"

	"github.com/boxrun/boxrun/internal/procfs"
)

// fakeOOM is an oom_score_adj file with a floor, as the kernel keeps it.
type fakeOOM struct {
	val, floor int
	writable   bool
	goneAfter  int // writes before the process exits; 0: never
	writes     int
}

func (f *fakeOOM) Get(int) (int, error) { return f.val, nil }

func (f *fakeOOM) Set(_ int, v int) error {
	f.writes++
	if f.goneAfter > 0 && f.writes > f.goneAfter {
		return syscall.ESRCH
	}
	if !f.writable {
		return &os.PathError{Op: "open", Path: "/proc/1/oom_score_adj", Err: syscall.EACCES}
	}
	if v < f.floor {
		return &os.PathError{Op: "write", Path: "/proc/1/oom_score_adj", Err: syscall.EACCES}
	}
	f.val = v
	return nil
}

func TestLowerOOMScoreAdj(t *testing.T) {
	tests := []struct {
		name             string
		cur, floor, tgt  int
		writable         bool
		goneAfter        int
		after            int
		limited, wantErr bool
	}{
		{"root reaches the target", 300, -1000, -500, true, 0, -500, false, false},
		{"user manager floor", 300, 100, -500, true, 0, 100, true, false},
		{"floor just above the target", 300, -499, -500, true, 0, -499, true, false},
		{"floor at the current value", 300, 300, -500, true, 0, 300, true, false},
		{"already below the target", -600, -1000, -500, true, 0, -600, false, false},
		{"at the target", -500, -1000, -500, true, 0, -500, false, false},
		{"not ours to write", 300, -1000, -500, false, 0, 300, false, true},
		{"exits during the search", 300, 100, -500, true, 3, 300, true, true},
		{"extremes", 1000, 999, -1000, true, 0, 999, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOOM{val: tt.cur, floor: tt.floor, writable: tt.writable, goneAfter: tt.goneAfter}
			after, limited, err := LowerOOMScoreAdj(f, 1, tt.cur, tt.tgt)
			if after != tt.after || limited != tt.limited || (err != nil) != tt.wantErr {
				t.Errorf("got %d, %v, %v; want %d, %v, error %v", after, limited, err, tt.after, tt.limited, tt.wantErr)
			}
			if err == nil && f.val != after {
				t.Errorf("the process is left at %d, reported %d", f.val, after)
			}
			if f.writes > 13 {
				t.Errorf("%d writes; the search should need at most 13", f.writes)
			}
		})
	}
	// Every floor between target and current ends exactly at the floor.
	for floor := -500; floor <= 300; floor += 7 {
		f := &fakeOOM{val: 300, floor: floor, writable: true}
		after, _, err := LowerOOMScoreAdj(f, 1, 300, -500)
		if err != nil || after != floor || f.val != floor {
			t.Fatalf("floor %d: got %d (process at %d), %v", floor, after, f.val, err)
		}
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		status string
		has    bool
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", true},
		{"CapEff:\t000001fffeffffff\n", false}, // root in a docker container
		{"CapEff:\t0000000000000000\n", false},
		{"Name:\tx\n", false},
	}
	for _, tt := range tests {
		if got := procfs.ParseStatus(tt.status).CapEff&(1<<capSysResource) != 0; got != tt.has {
			t.Errorf("%q: CAP_SYS_RESOURCE %v, want %v", tt.status, got, tt.has)
		}
	}
}
