package box

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitEmptyWakesOnCgroupEvents(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "cgroup.events")
	if err := os.WriteFile(events, []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := cgroupDir{mount: dir, rel: "/"}
	if c.waitEmpty(context.Background(), 30*time.Millisecond) {
		t.Fatal("a populated cgroup was reported empty")
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		f, err := os.OpenFile(events, os.O_WRONLY|os.O_TRUNC, 0)
		if err == nil {
			f.WriteString("populated 0\nfrozen 0\n")
			f.Close()
		}
	}()
	start := time.Now()
	if !c.waitEmpty(context.Background(), 10*time.Second) {
		t.Fatal("the cgroup emptied but waitEmpty gave up")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waitEmpty took %v", d)
	}
	if !(cgroupDir{mount: filepath.Join(dir, "gone"), rel: "/"}).waitEmpty(context.Background(), time.Second) {
		t.Error("a removed cgroup is empty")
	}
}
