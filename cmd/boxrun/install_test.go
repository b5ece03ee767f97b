package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	// A config kept elsewhere and linked in stays linked.
	target := filepath.Join(dir, "dotfiles", "config.toml")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "cargo", "config.toml")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := replaceFile(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file: %v, %v", fi, err)
	}
	fi, err := os.Stat(target)
	if b, _ := os.ReadFile(target); string(b) != "new\n" || err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("target: %q, mode %v, %v; want the new text with its mode kept", b, fi.Mode(), err)
	}
	for _, d := range []string{filepath.Dir(target), filepath.Dir(link)} {
		if entries, _ := os.ReadDir(d); len(entries) != 1 {
			t.Errorf("temporary files left in %s: %v", d, entries)
		}
	}
	// A new file gets an ordinary mode.
	fresh := filepath.Join(dir, "fresh.toml")
	if err := replaceFile(fresh, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("a new file: %v, %v; want mode 0644", fi, err)
	}
}
