package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRunFlags(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"nothing to do", nil, 0},
		{"burst task", []string{"-mb", "2", "-hold", "1ms"}, 0},
		{"lock task", []string{"-mb", "1", "-lock", lock, "-mb2", "1"}, 0},
		{"second allocation without a lock", []string{"-mb2", "1"}, 0},
		{"unknown flag", []string{"-gb", "1"}, 2},
		{"stray argument", []string{"-mb", "1", "extra"}, 2},
		{"negative size", []string{"-mb", "-1"}, 2},
		{"lock in a missing directory", []string{"-lock", filepath.Join(t.TempDir(), "no", "lock")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := run(tc.args, io.Discard); got != tc.want {
				t.Errorf("run(%q) = %d, want %d", tc.args, got, tc.want)
			}
		})
	}
}

// TestLockIsExclusive: a task waits while another holds the lock, and
// goes on once it is released.
func TestLockIsExclusive(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	f, err := os.Create(lock)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	// flock locks belong to the open file: the task's own open of the
	// file conflicts with ours although both are in this process.
	go func() { done <- run([]string{"-mb", "1", "-lock", lock, "-mb2", "1"}, io.Discard) }()
	select {
	case code := <-done:
		t.Fatalf("the task finished (exit %d) while the lock was held", code)
	case <-time.After(200 * time.Millisecond):
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the lock was released, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the task did not finish after the lock was released")
	}
}
