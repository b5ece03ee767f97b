package observe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxrun/boxrun/backpressure"
	"github.com/boxrun/boxrun/internal/ledger"
)

// fakeSlice makes a slice's cgroup directory in a temporary directory,
// named name, with memory.max limit and 300M in use, and the
// directories of the boxes in it; it returns the slice's directory and
// boxrun's runtime directory beside it.
func fakeSlice(t *testing.T, name, limit string, boxes ...string) (slice, run string) {
	t.Helper()
	root := t.TempDir()
	slice = filepath.Join(root, name)
	for _, b := range boxes {
		if err := os.MkdirAll(filepath.Join(slice, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// 350M in use, 50M of it cache the kernel reclaims first.
	for file, v := range map[string]string{"memory.max": limit + "\n", "memory.current": "367001600\n",
		"memory.stat": "anon 262144000\nfile 104857600\nactive_file 52428800\ninactive_file 52428800\n"} {
		if err := os.WriteFile(filepath.Join(slice, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return slice, filepath.Join(root, "run")
}

func TestOpenSliceShare(t *testing.T) {
	tests := []struct {
		name, slice, limit string
		run                bool
		want               bool
	}{
		{"boxrun.slice with a budget", "boxrun.slice", "536870912", true, true},
		{"boxrun.slice without one", "boxrun.slice", "max", true, false},
		{"another parent", "user.slice", "536870912", true, false},
		{"no runtime directory given", "boxrun.slice", "536870912", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slice, run := fakeSlice(t, tt.slice, tt.limit, "boxrun-tests-1")
			if !tt.run {
				run = ""
			}
			var warnings []string
			s := openSliceShare(filepath.Join(slice, "boxrun-tests-1"), run, func(w string) { warnings = append(warnings, w) })
			if (s != nil) != tt.want {
				t.Fatalf("share %v, want one: %v", s, tt.want)
			}
			s.close()
			if len(warnings) > 0 {
				t.Errorf("warnings %q", warnings)
			}
		})
	}
}

// TestSliceShareLooks has two boxes of one slice look in turn, as their
// observers do: each sees the slice's budget and usage and what the other
// published, stale and corrupt entries are ignored with one warning, and
// a box's entry goes when its run ends.
func TestSliceShareLooks(t *testing.T) {
	slice, run := fakeSlice(t, "boxrun.slice", "536870912", "boxrun-tests-a", "boxrun-tests-b", "boxrun-tests-old")
	var warnings []string
	warn := func(w string) { warnings = append(warnings, w) }
	a := openSliceShare(filepath.Join(slice, "boxrun-tests-a"), run, warn)
	b := openSliceShare(filepath.Join(slice, "boxrun-tests-b"), run, warn)
	if a == nil || b == nil {
		t.Fatal("no share in a slice with a budget")
	}
	defer b.close()
	now := time.Now()
	l, err := ledger.Open(ledger.Dir(run, slice))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Write(ledger.Entry{Box: "boxrun-tests-old", Reserved: 1 << 30, Written: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ledger.Dir(run, slice), "boxrun-tests-bad"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}

	view, publish := a.look(now)
	if view == nil || view.Max != 512<<20 || view.Usage != 300<<20 || view.Reserved != 0 {
		t.Fatalf("a's first view %+v, want 512M max, 300M used (350M less 50M of inactive cache), nothing reserved: the stale entry ignored", view)
	}
	since := now.Add(-6 * time.Second)
	publish(backpressure.Reservation{Bytes: 40 << 20, Running: 2, Since: since, Need: 30 << 20, Sizes: map[string]uint64{"job": 30 << 20}})

	view, publish = b.look(now.Add(10 * time.Millisecond))
	publish(backpressure.Reservation{Bytes: 8 << 20})
	if view == nil || view.Reserved != 40<<20 || view.Running != 2 || !view.Claim.Equal(since) || view.ClaimNeed != 30<<20 || view.Sizes["job"] != 30<<20 {
		t.Errorf("b's view %+v, want a's reservation, running leaves, claim and sizes", view)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "boxrun-tests-bad") {
		t.Errorf("warnings %q, want one, for the corrupt entry", warnings)
	}

	a.close()
	view, publish = b.look(now.Add(20 * time.Millisecond))
	publish(backpressure.Reservation{})
	if view.Reserved != 0 || !view.Claim.IsZero() {
		t.Errorf("after a's run ended b sees %+v, want nothing of a", view)
	}
	if !b.busy() {
		t.Errorf("a slice 300M full of 512M is not busy")
	}
}
