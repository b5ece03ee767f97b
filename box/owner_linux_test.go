package box

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestOwnership(t *testing.T) {
	dir := t.TempDir()
	self := selfOwner("/boxrun.slice/boxrun-tests-00000001", "")
	// A process that has exited: its pid is free (or reused, with another
	// start time).
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := ownerRecord{PID: gone.Process.Pid, StartTime: 1, Cgroup: "/boxrun.slice/boxrun-tests-00000002"}
	reused := ownerRecord{PID: os.Getpid(), StartTime: self.StartTime + 1, Cgroup: "/boxrun.slice/boxrun-tests-00000003"}
	kept := selfOwner("/boxrun.slice/boxrun-tests-00000004", "")
	kept.Kept = true
	for _, r := range []ownerRecord{self, dead, reused, kept} {
		if err := writeOwner(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		cgroup string
		want   Ownership
		pid    int
	}{
		{self.Cgroup, OwnerRunning, os.Getpid()},
		{dead.Cgroup, OwnerOrphaned, dead.PID},
		{reused.Cgroup, OwnerOrphaned, os.Getpid()},
		{kept.Cgroup, OwnerKept, os.Getpid()},
		{"/boxrun.slice/boxrun-tests-00000005", OwnerUnknown, 0},
		// A record under the same name for another cgroup is not this box's.
		{"/elsewhere/boxrun-tests-00000001", OwnerUnknown, 0},
	}
	for _, tt := range tests {
		got, pid := OwnerOf(dir, tt.cgroup)
		if got != tt.want || pid != tt.pid {
			t.Errorf("OwnerOf(%s) = %s, %d; want %s, %d", tt.cgroup, got, pid, tt.want, tt.pid)
		}
	}
	dropOwner(dir, self.Cgroup)
	if got, _ := OwnerOf(dir, self.Cgroup); got != OwnerUnknown {
		t.Errorf("after dropOwner: %s", got)
	}
	PruneOwners(dir, map[string]bool{filepath.Base(kept.Cgroup): true})
	left, _ := os.ReadDir(dir)
	if len(left) != 1 || left[0].Name() != filepath.Base(kept.Cgroup)+".json" {
		t.Errorf("after pruning, left %v; want only the live box's record", left)
	}
}

func TestOwnerDirsFor(t *testing.T) {
	got := ownerDirsFor("/run/user/0/boxrun/boxes", "/user.slice/user-1500.slice/user@1500.service/boxrun.slice/boxrun-it-0a1b2c3d.scope")
	want := []string{"/run/user/0/boxrun/boxes", "/run/boxrun/boxes", "/run/user/1500/boxrun/boxes"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}
