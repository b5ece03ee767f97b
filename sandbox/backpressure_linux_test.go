package sandbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSliceBudget(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		files       map[string]string // file name to content; absent files are missing
		room        uint64
		limited     bool
	}{
		{name: "the root cgroup: no limit files", files: map[string]string{}},
		{name: "limits at max", files: map[string]string{"memory.high": "max\n", "memory.max": "max\n", "memory.current": "1000\n"}},
		{
			name: "memory.max only: a tenth under it, less what it holds",
			// 1000M: the line is 900M; 600M held leaves 300M.
			files: map[string]string{"memory.high": "max\n", "memory.max": "1048576000\n", "memory.current": "629145600\n"},
			room:  300 * mib, limited: true,
		},
		{
			name:  "the lower of memory.high and memory.max",
			files: map[string]string{"memory.high": "524288000\n", "memory.max": "1048576000\n", "memory.current": "419430400\n"},
			// 500M: the line is 450M; 400M held leaves 50M.
			room: 50 * mib, limited: true,
		},
		{
			name:  "over its line: no room",
			files: map[string]string{"memory.max": "1048576000\n", "memory.current": "1000000000\n"},
			room:  0, limited: true,
		},
		{
			name:  "a limit without memory.current is not a budget",
			files: map[string]string{"memory.max": "1048576000\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := newSliceBudget(dir)
			defer s.Close()
			room, limited := s.Room(time.Unix(1000, 0))
			if room != tt.room || limited != tt.limited {
				t.Errorf("Room = %d MiB, %v; want %d MiB, %v", room/mib, limited, tt.room/mib, tt.limited)
			}
		})
	}
	// The limits are read again once a second, memory.current at every call.
	dir := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.max", "1048576000\n")
	write("memory.current", "629145600\n")
	s := newSliceBudget(dir)
	defer s.Close()
	t0 := time.Unix(1000, 0)
	s.Room(t0)
	write("memory.max", "max\n")
	write("memory.current", "734003200\n") // 700M, the same length
	if room, limited := s.Room(t0.Add(500 * time.Millisecond)); room != 200*mib || !limited {
		t.Errorf("half a second later: Room = %d MiB, %v; want 200 MiB (the new memory.current, the old limit), true", room/mib, limited)
	}
	if _, limited := s.Room(t0.Add(time.Second)); limited {
		t.Errorf("a second later, with memory.max lifted: still limited")
	}
}
