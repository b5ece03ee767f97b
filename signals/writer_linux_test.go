package signals

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestWriterAppendsAndRotates(t *testing.T) {
	root := t.TempDir()
	uid := os.Getuid()
	w := &Writer{Root: root, MaxBytes: 1000}
	rec := Record{Time: time.Unix(1, 0).UTC(), Signal: "SIGKILL", Signo: 9, Target: Process{PID: 7, Comm: "sleep"}}
	for range 10 {
		if err := w.Append(uid, rec); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, strconv.Itoa(uid))
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the user's directory: %v, %v; want mode 0700", fi, err)
	}
	recs, traced, err := ReadDir(dir)
	if !traced || err != nil {
		t.Fatal(traced, err)
	}
	cur, _ := os.Stat(filepath.Join(dir, File))
	old, _ := os.Stat(filepath.Join(dir, File+".1"))
	if cur == nil || old == nil || cur.Size() > 1000 || old.Size() > 1000 || cur.Mode().Perm() != 0o600 {
		t.Errorf("files %v and %v: want both, at most 1000 bytes, 0600", cur, old)
	}
	if len(recs) < 2 || len(recs) >= 10 {
		t.Errorf("%d records kept of 10, want some but not all", len(recs))
	}
}

func TestWriterRefusesALink(t *testing.T) {
	root := t.TempDir()
	uid := os.Getuid()
	dir := filepath.Join(root, strconv.Itoa(uid))
	os.Mkdir(dir, 0o700)
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("keep\n"), 0o600)
	if err := os.Symlink(target, filepath.Join(dir, File)); err != nil {
		t.Fatal(err)
	}
	w := &Writer{Root: root, MaxBytes: DefaultMaxBytes}
	if err := w.Append(uid, Record{Signo: 9}); err == nil {
		t.Error("appended through a symbolic link")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the link's target changed: %q", b)
	}
}
