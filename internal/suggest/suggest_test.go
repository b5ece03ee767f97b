package suggest

import (
	"reflect"
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"memory.max", "memory.max", 0},
		{"memory.mx", "memory.max", 1},    // a deletion
		{"memory.maxx", "memory.max", 1},  // an insertion
		{"memory_max", "memory.max", 1},   // a replacement
		{"memory.hihg", "memory.high", 1}, // two runes swapped
		{"polcy", "policy", 1},
		{"stauts", "status", 1},
		{"test", "tests", 1},
		{"tset", "tests", 2},
		{"ca", "abc", 3}, // a swap and an edit of the swapped pair is not one edit (OSA, not full Damerau)
		{"Tests", "tests", 1},
		{"µs", "us", 1}, // runes, not bytes
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestMaxDistance(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{1, 1}, {5, 1}, {6, 2}, {10, 2}, {11, 3}, {40, 3}} {
		if got := MaxDistance(tt.n); got != tt.want {
			t.Errorf("MaxDistance(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	policies := []string{"base", "build", "check", "strict", "tests"}
	keys := []string{"memory.high", "memory.max", "memory.swap.max", "pids.max", "cpu.weight", "cpu.max", "io.weight"}
	commands := []string{"policy", "status", "gc", "protect", "doctor", "install", "uninstall", "help", "version", "completion"}
	tests := []struct {
		name       string
		word       string
		candidates []string
		want       []string
	}{
		{"one deletion", "test", policies, []string{"tests"}},
		{"case does not count", "Tests", policies, []string{"tests"}},
		{"swapped runes", "buidl", policies, []string{"build"}},
		{"two edits in a long word", "memory.hgih.", keys, []string{"memory.high"}},
		{"underscore for dot", "memory_max", keys, []string{"memory.max"}},
		{"a missing letter", "memory.mx", keys, []string{"memory.max"}},
		{"equally near: both, in order", "cpu.maxx", []string{"cpu.max", "cpu.maxy"}, []string{"cpu.max", "cpu.maxy"}},
		{"the nearest wins", "pids.mx", []string{"pids.mix", "pids.max", "pid"}, []string{"pids.mix", "pids.max"}},
		{"too far", "weight", keys, nil},
		{"a sibling key is no typo", "memory.low", keys, nil},
		{"nothing alike", "frobnicate", commands, nil},
		{"a command", "polcy", commands, []string{"policy"}},
		{"a two-letter command", "gv", commands, []string{"gc"}},
		{"one letter is no typo of two", "g", commands, nil},
		{"not into a shorter word wholesale", "ab", []string{"a"}, nil},
		{"a known word is no typo", "tests", policies, nil},
		{"empty", "", policies, nil},
		{"absurdly long", strings.Repeat("x", 300), policies, nil},
		{"no candidates", "tests", nil, nil},
		{"too many candidates to guess among", "test", append(make([]string, 1000), "tests"), nil},
		{"as many as may be", "test", append(make([]string, 999), "tests"), []string{"tests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Closest(tt.word, tt.candidates); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

func TestOr(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := Or(tt.in); got != tt.want {
			t.Errorf("Or(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
