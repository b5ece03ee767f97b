package box

import "testing"

func TestParseDescriptionAndName(t *testing.T) {
	for _, tt := range []struct{ desc, pol, cmd string }{
		{"boxrun tests: cargo test", "tests", "cargo test"},
		{"boxrun my-pol: sh -c a: b", "my-pol", "sh -c a: b"},
		{"something else", "", "something else"},
	} {
		if p, c := ParseDescription(tt.desc); p != tt.pol || c != tt.cmd {
			t.Errorf("ParseDescription(%q) = %q, %q", tt.desc, p, c)
		}
	}
	for name, want := range map[string]string{
		"boxrun-tests-1a2b3c4d.scope": "tests",
		"boxrun-it-3f2a9c1d":          "it",
		"boxrun-my_pol-00000000":      "my_pol",
		"boxrun-tests-xyz.scope":      "",
		"boxrun.slice":                "",
	} {
		if got := PolicyOfName(name); got != want {
			t.Errorf("PolicyOfName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestGuardPolicy(t *testing.T) {
	for _, tt := range []struct {
		name, pol string
		ok        bool
	}{
		{"boxrun-tests-1a2b3c4d-guard", "tests", true},
		{"boxrun-tests-1a2b3c4d-guard.scope", "tests", true},
		{"boxrun-tests-1a2b3c4d", "", false},
		{"boxrun-tests-1a2b3c4d.scope", "", false},
		{"boxrun-tests-guard", "", false},
	} {
		if pol, ok := GuardPolicy(tt.name); pol != tt.pol || ok != tt.ok {
			t.Errorf("GuardPolicy(%q) = %q, %v; want %q, %v", tt.name, pol, ok, tt.pol, tt.ok)
		}
	}
}
