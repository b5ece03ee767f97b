package boxes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSlotsBoundConcurrency(t *testing.T) {
	dir := t.TempDir()
	const n, runs = 3, 12
	var running, most atomic.Int32
	var wg sync.WaitGroup
	waited := atomic.Int32{}
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := AcquireSlot(context.Background(), SlotRequest{Dir: dir, Policy: "tests", N: n, Holder: "cargo test", Poll: time.Millisecond,
				Waiting: func([]string) { waited.Add(1) }})
			if err != nil {
				t.Error(err)
				return
			}
			now := running.Add(1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if most.Load() > n || most.Load() == 0 {
		t.Errorf("at most %d ran at once, want 1 to %d", most.Load(), n)
	}
	if waited.Load() == 0 {
		t.Errorf("no run waited: the test proves nothing")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

func TestSlotsNoWaitAndArrivalOrder(t *testing.T) {
	dir := t.TempDir()
	req := SlotRequest{Dir: dir, Policy: "a/b c", N: 1, Holder: "first", Poll: time.Millisecond}
	rel1, err := AcquireSlot(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	nw := req
	nw.NoWait, nw.Holder = true, "second"
	if _, err := AcquireSlot(context.Background(), nw); !errors.Is(err, ErrNoSlot) || !strings.Contains(err.Error(), "1 of 1 running: pid") || !strings.Contains(err.Error(), "first") {
		t.Fatalf("--no-wait with every slot taken: %v", err)
	}
	// Waiters get the slot in the order they came.
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rel, err := AcquireSlot(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			rel()
		}(i)
		time.Sleep(20 * time.Millisecond) // arrive one after the other
	}
	rel1()
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Errorf("slots went to %v, want arrival order [0 1 2 3]", order)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	rel, _ := AcquireSlot(context.Background(), req)
	if _, err := AcquireSlot(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past the context: %v", err)
	}
	rel()
}

// TestSlotFreedWhenHolderIsKilled: a holder killed by SIGKILL frees its slot
// (the kernel drops flock locks), and a waiter killed while queued does not
// block those behind it.
func TestSlotFreedWhenHolderIsKilled(t *testing.T) {
	dir := t.TempDir()
	// flock(1) holds the lock like boxrun would, in a process we can kill.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatalf("flock(1) is needed for this test (util-linux): %v", err)
	}
	slot := filepath.Join(dir, slotPrefix("tests")+"slot.0")
	holder := exec.Command("flock", "--close", slot, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	for i := 0; ; i++ {
		if f, ok := tryLock(slot); !ok {
			break
		} else if i > 200 {
			t.Fatal("flock(1) never took the lock")
		} else {
			f.Close()
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A dead waiter's ticket, older than ours: its file stays, unlocked.
	dead := filepath.Join(dir, slotPrefix("tests")+"q.00000000000000000001.1")
	if err := os.WriteFile(dead, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		rel, err := AcquireSlot(context.Background(), SlotRequest{Dir: dir, Policy: "tests", N: 1, Poll: 5 * time.Millisecond})
		if err == nil {
			rel()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	holder.Process.Kill()
	holder.Wait()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slot of a SIGKILLed holder was never freed")
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead waiter's ticket is still there: %v", err)
	}
}
