package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCounterRereadsInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory.current")
	if err := os.WriteFile(path, []byte("123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := OpenCounter(path)
	defer c.Close()
	if v, ok := c.Read(); !ok || v != 123 {
		t.Fatalf("read = %d, %v; want 123", v, ok)
	}
	// The kernel regenerates a cgroup file on each read from offset 0; a
	// rewrite in place stands for that here.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("18446744073709551615\n")
	f.Close()
	if v, ok := c.Read(); !ok || v != 18446744073709551615 {
		t.Fatalf("read after the change = %d, %v; want the new value", v, ok)
	}
	c.Close()
	if _, ok := c.Read(); ok {
		t.Error("a closed counter still reads")
	}
	if _, ok := OpenCounter(filepath.Join(t.TempDir(), "missing")).Read(); ok {
		t.Error("a missing file reads")
	}
}

func TestStatFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.stat")
	if err := os.WriteFile(path, []byte("usage_usec 1500\nuser_usec 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := OpenStatFile(path)
	if v, ok := f.Value("usage_usec"); !ok || v != 1500 {
		t.Errorf("usage_usec = %d, %v", v, ok)
	}
	if _, ok := f.Value("nr_throttled"); ok {
		t.Error("a missing key reads")
	}
	f.Close()
	if _, ok := f.Value("usage_usec"); ok {
		t.Error("a closed file reads")
	}
}
