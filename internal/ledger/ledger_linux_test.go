package ledger

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Ledger {
	t.Helper()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestDir(t *testing.T) {
	a := Dir("/run/boxrun", "/boxrun.slice")
	if b := Dir("/run/boxrun", "boxrun.slice/"); b != a {
		t.Errorf("one slice, two ledgers: %s and %s", a, b)
	}
	if b := Dir("/run/boxrun", "/user.slice/user-1000.slice/user@1000.service/boxrun.slice"); b == a {
		t.Errorf("two slices share the ledger %s", a)
	}
	if filepath.Dir(a) != "/run/boxrun" || !strings.HasPrefix(filepath.Base(a), "ledger-") {
		t.Errorf("ledger directory %s, want ledger-DIGEST in /run/boxrun", a)
	}
}

// TestOthers writes entries as boxes of a slice would and reads them back
// as one box's look does: its own left out; those of boxes gone, not
// refreshed for Stale, unreadable or misnamed ignored and removed, with a
// problem for each of the last two; a half-written one of a boxrun that
// died removed once stale, and one being written left alone.
func TestOthers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	l := open(t, dir)
	since := now.Add(-6 * time.Second)
	for _, e := range []Entry{
		{Box: "own", Reserved: 1, Written: now},
		{Box: "busy", Reserved: 40 << 20, Running: 3, Since: since, Need: 30 << 20, Sizes: map[string]uint64{"job": 30 << 20}, Written: now.Add(-time.Second)},
		{Box: "calm", Written: now},
		{Box: "gone", Reserved: 1 << 30, Written: now},
		{Box: "stale", Reserved: 1 << 30, Written: now.Add(-Stale - time.Millisecond)},
	} {
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "corrupt"), []byte("{\"box\": \"corr"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, age := range map[string]time.Duration{".tmp-old": time.Minute, ".tmp-new": 0} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	misnamed, _ := os.ReadFile(filepath.Join(dir, "calm"))
	if err := os.WriteFile(filepath.Join(dir, "copied"), misnamed, 0o600); err != nil {
		t.Fatal(err)
	}
	got, problems := l.Others("own", now, func(box string) bool { return box != "gone" })
	sort.Slice(got, func(i, j int) bool { return got[i].Box < got[j].Box })
	want := []Entry{
		{Box: "busy", Reserved: 40 << 20, Running: 3, Since: since, Need: 30 << 20, Sizes: map[string]uint64{"job": 30 << 20}, Written: now.Add(-time.Second)},
		{Box: "calm", Written: now},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range want {
		if !got[i].Since.Equal(want[i].Since) || !got[i].Written.Equal(want[i].Written) {
			t.Errorf("entry %s: since %v written %v, want %v and %v", got[i].Box, got[i].Since, got[i].Written, want[i].Since, want[i].Written)
		}
		got[i].Since, got[i].Written, want[i].Since, want[i].Written = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
	if len(problems) != 2 || !strings.Contains(strings.Join(problems, "\n"), "corrupt: not an entry") || !strings.Contains(strings.Join(problems, "\n"), `names box "calm"`) {
		t.Errorf("problems %q, want one for the corrupt entry and one for the misnamed", problems)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if want := []string{".lock", ".tmp-new", "busy", "calm", "own"}; !reflect.DeepEqual(names, want) {
		t.Errorf("left in the ledger %v, want %v: the others removed, and a half-written entry once it is stale", names, want)
	}
	if err := l.Remove("own"); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove("own"); err != nil {
		t.Errorf("removing an entry twice: %v", err)
	}
	if got, _ := l.Others("busy", now, func(string) bool { return true }); len(got) != 1 || got[0].Box != "calm" {
		t.Errorf("after removing own, busy sees %+v, want calm alone", got)
	}
}

func TestWriteRefusesWhatIsNoBox(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger"))
	for _, name := range []string{"", "../x", ".lock", "a/b"} {
		if err := l.Write(Entry{Box: name, Written: now}); err == nil {
			t.Errorf("wrote an entry for box %q", name)
		}
	}
}

// TestLock: one box's look holds the lock, another's waits for it, and
// gives up after its wait.
func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	a, b := open(t, dir), open(t, dir)
	if !a.Lock(time.Second) {
		t.Fatal("the first look could not take a free lock")
	}
	if b.Lock(20 * time.Millisecond) {
		t.Fatal("two looks hold the lock at once")
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.Unlock()
	}()
	if !b.Lock(5 * time.Second) {
		t.Fatal("the lock was never let go")
	}
	b.Unlock()
}

func TestOpenRefusesAnotherUsersDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Errorf("opened a ledger anyone may write: %v", err)
	}
}
