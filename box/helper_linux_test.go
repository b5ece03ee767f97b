package box

import (
	"reflect"
	"testing"
)

func TestHelperArgsRoundTrip(t *testing.T) {
	adj := 500
	in := helperConfig{oomScoreAdj: &adj, nproc: 64, path: "/bin/sh", argv: []string{"sh", "-c", "exit 7", "--"}}
	got, err := parseHelperArgs(helperArgs(in))
	if err != nil {
		t.Fatal(err)
	}
	if *got.oomScoreAdj != 500 || got.nproc != 64 || got.path != "/bin/sh" || !reflect.DeepEqual(got.argv, in.argv) {
		t.Fatalf("round trip: got %+v", got)
	}
	for _, bad := range [][]string{
		{helperArg},
		{helperArg, "--oom-score-adj"},
		{helperArg, "--oom-score-adj", "x", "--", "/a", "a"},
		{helperArg, "--bogus", "1", "--", "/a", "a"},
		{"other"},
	} {
		if _, err := parseHelperArgs(bad); err == nil {
			t.Errorf("parseHelperArgs(%q): want error", bad)
		}
	}
}

func TestParseHelperStatus(t *testing.T) {
	s := parseHelperStatus([]byte("W setting oom_score_adj to 500: denied\nE 127 nope: no such file\n"))
	if len(s.warnings) != 1 || s.execCode != 127 || s.execErr != "nope: no such file" {
		t.Fatalf("got %+v", s)
	}
	if s := parseHelperStatus(nil); s.execCode != 0 || len(s.warnings) != 0 {
		t.Fatalf("empty status: got %+v", s)
	}
}
