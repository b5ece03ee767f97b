package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSearchFilesTrust(t *testing.T) {
	tests := []struct {
		name string
		cwd  string
		env  map[string]string
		want []SearchPath
	}{
		{
			name: "project files are the ones found from cwd",
			cwd:  "/home/u/p",
			env:  map[string]string{"BOXRUN_POLICY_FILE": "/tmp/p.toml", "HOME": "/home/u"},
			want: []SearchPath{
				{"/tmp/p.toml", Trusted},
				{"/home/u/p/.boxrun.toml", Project},
				{"/home/u/.boxrun.toml", Project},
				{"/home/.boxrun.toml", Project},
				{"/.boxrun.toml", Project},
				{"/home/u/.config/boxrun/policies.toml", Trusted},
				{"/etc/boxrun/policies.toml", Trusted},
			},
		},
		{
			name: "a .boxrun.toml named by BOXRUN_POLICY_FILE is trusted",
			cwd:  "/p",
			env:  map[string]string{"BOXRUN_POLICY_FILE": "/p/.boxrun.toml"},
			want: []SearchPath{{"/p/.boxrun.toml", Trusted}, {"/.boxrun.toml", Project}, {"/etc/boxrun/policies.toml", Trusted}},
		},
		{
			name: "no cwd, no project files",
			env:  map[string]string{"XDG_CONFIG_HOME": "/xdg"},
			want: []SearchPath{{"/xdg/boxrun/policies.toml", Trusted}, {"/etc/boxrun/policies.toml", Trusted}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			if got := SearchFiles(tt.cwd, getenv); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SearchFiles(%q) =\n%v\nwant\n%v", tt.cwd, got, tt.want)
			}
		})
	}
}

// projectStack returns a stack of a project file with src over the
// built-in policies.
func projectStack(t *testing.T, trust Trust, src string) *Stack {
	t.Helper()
	f := parseString(t, "/p/.boxrun.toml", src)
	f.Trust = trust
	return &Stack{Files: []*File{f, Builtin()}}
}

// TestResolveProjectMayOnlyRestrict checks which settings of a project
// file Resolve ignores, and that a trusted file with the same text keeps
// them all.
func TestResolveProjectMayOnlyRestrict(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		check   func(r *Resolved) bool // on the project file's result
		ignored []string               // Ignored, as strings
	}{
		{
			name:  "lower limits are kept",
			src:   "[policies.tests]\nextends = \"tests\"\nmemory.max = \"1G\"\npids.max = 64\n",
			check: func(r *Resolved) bool { return *r.MemoryMax == 1<<30 && *r.PidsMax == 64 },
		},
		{
			name:  "protect is ignored, the inherited list stays",
			src:   "[policies.tests]\nextends = \"tests\"\nprotect = [\"language-servers\"]\n",
			check: func(r *Resolved) bool { return slices.Equal(r.Protect, []string{"editors"}) },
			ignored: []string{`/p/.boxrun.toml:3: protect = ["language-servers"] in policy "tests" ignored: a project file may not name protection groups, ` +
				`which change processes outside the box; set it in your own ~/.config/boxrun/policies.toml or with --set`},
		},
		{
			name:    "an empty protect list is ignored too",
			src:     "[policies.tests]\nextends = \"tests\"\nprotect = []\n",
			check:   func(r *Resolved) bool { return slices.Equal(r.Protect, []string{"editors"}) },
			ignored: []string{`/p/.boxrun.toml:3: protect = [] in policy "tests" ignored`},
		},
		{
			name:    "negative oom_score_adj is ignored",
			src:     "[policies.mine]\noom_score_adj = -1\n",
			check:   func(r *Resolved) bool { return r.OOMScoreAdj == nil },
			ignored: []string{`/p/.boxrun.toml:2: oom_score_adj = -1 in policy "mine" ignored: a project file may only make the command more likely to be OOM-killed (0 or more)`},
		},
		{
			name:    "oom_score_adj below the inherited one is ignored",
			src:     "[policies.tests]\nextends = \"tests\"\noom_score_adj = 100\n",
			check:   func(r *Resolved) bool { return *r.OOMScoreAdj == 500 },
			ignored: []string{`oom_score_adj = 100 in policy "tests" ignored: a project file may only make the command more likely to be OOM-killed (500 or more)`},
		},
		{
			name:  "oom_score_adj above the inherited one is kept",
			src:   "[policies.tests]\nextends = \"tests\"\noom_score_adj = 900\n",
			check: func(r *Resolved) bool { return *r.OOMScoreAdj == 900 },
		},
		{
			name:  "oom_score_adj 0 without one inherited is kept",
			src:   "[policies.mine]\noom_score_adj = 0\n",
			check: func(r *Resolved) bool { return *r.OOMScoreAdj == 0 },
		},
		{
			name:    "leftovers keep is ignored",
			src:     "[policies.tests]\nextends = \"tests\"\nleftovers = \"keep\"\n",
			check:   func(r *Resolved) bool { return r.Leftovers == "kill" },
			ignored: []string{`/p/.boxrun.toml:3: leftovers = "keep" in policy "tests" ignored: a project file may not keep processes alive after the command exits`},
		},
		{
			name:  "leftovers kill is kept",
			src:   "[policies.mine]\nleftovers = \"kill\"\nleftovers_grace = \"1s\"\n",
			check: func(r *Resolved) bool { return r.Leftovers == "kill" && r.LeftoversGrace.Seconds() == 1 },
		},
		{
			name: "every ignored key is listed, along the extends chain",
			src: "[policies.a]\noom_score_adj = -5\nprotect = [\"editors\"]\n" +
				"[policies.tests]\nextends = \"a\"\nleftovers = \"keep\"\n",
			check: func(r *Resolved) bool { return r.OOMScoreAdj == nil && r.Protect == nil && r.Leftovers == "kill" },
			ignored: []string{`.boxrun.toml:2: oom_score_adj = -5 in policy "a"`, `.boxrun.toml:3: protect = ["editors"] in policy "a"`,
				`.boxrun.toml:6: leftovers = "keep" in policy "tests"`},
		},
	}
	env := Env{MemoryBytes: 16 << 30}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "tests"
			if strings.Contains(tt.src, "[policies.mine]") {
				name = "mine"
			}
			r, err := projectStack(t, Project, tt.src).Resolve(name, nil, env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(r) {
				t.Errorf("project file: resolved %+v", r)
			}
			if len(r.Ignored) != len(tt.ignored) {
				t.Fatalf("ignored %v, want %d entries", r.Ignored, len(tt.ignored))
			}
			for i, want := range tt.ignored {
				if got := r.Ignored[i].String(); !strings.Contains(got, want) {
					t.Errorf("ignored[%d] = %q, want it to contain %q", i, got, want)
				}
			}
			trusted, err := projectStack(t, Trusted, tt.src).Resolve(name, nil, env)
			if err != nil {
				t.Fatal(err)
			}
			if len(trusted.Ignored) != 0 {
				t.Errorf("a trusted file had settings ignored: %v", trusted.Ignored)
			}
			if len(tt.ignored) > 0 && reflect.DeepEqual(trusted.Origins, r.Origins) {
				t.Errorf("the trusted file resolved like the project file: %v", trusted.Origins)
			}
		})
	}
}

func TestStackIgnoresProjectTables(t *testing.T) {
	src := "[protect.editors]\nmatch = [\"evil\"]\nmemory.low = \"90%\"\n\n[protect.mine]\nmatch = [\"x\"]\n\n[slice]\nmemory.max = \"max\"\n"
	s := projectStack(t, Project, src)
	if g := s.ProtectGroups(); !slices.Equal(g["editors"].Match, Builtin().Protect["editors"].Match) || g["mine"] != nil {
		t.Errorf("protect groups %v: the project's groups must be left out", g)
	}
	if sl := s.Slice(); sl != nil && sl.Defined.File == "/p/.boxrun.toml" {
		t.Errorf("slice %+v comes from the project file", sl)
	}
	var got []string
	for _, ig := range s.Ignored() {
		got = append(got, ig.String())
	}
	want := []string{
		"/p/.boxrun.toml:1: [protect.editors] ignored: a project file may not define protection groups, which change processes outside the box (define them in your own ~/.config/boxrun/policies.toml)",
		"/p/.boxrun.toml:5: [protect.mine] ignored: a project file may not define protection groups, which change processes outside the box (define them in your own ~/.config/boxrun/policies.toml)",
		"/p/.boxrun.toml:8: [slice] ignored: a project file may not set the limits of the slice that holds every box (set them in your own ~/.config/boxrun/policies.toml)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ignored() =\n%q\nwant\n%q", got, want)
	}
	trusted := projectStack(t, Trusted, src)
	if len(trusted.Ignored()) != 0 || trusted.ProtectGroups()["mine"] == nil || trusted.Slice().Defined.File != "/p/.boxrun.toml" {
		t.Error("a trusted file's tables must be used")
	}
	// A policy of the user that names a group only the project defines
	// fails as an unknown group, as if the project did not define it.
	user := parseString(t, "user.toml", "[policies.u]\nprotect = [\"mine\"]\n")
	s.Files = append([]*File{user}, s.Files...)
	if _, err := s.Resolve("u", nil, Env{MemoryBytes: 1 << 30}); err == nil || !strings.Contains(err.Error(), `unknown protection group "mine"`) {
		t.Errorf("Resolve(u) error %v, want an unknown protection group", err)
	}
}

func TestTrustString(t *testing.T) {
	for tr, want := range map[Trust]string{Trusted: "trusted", Project: "project", 7: "trust(7)"} {
		if got := tr.String(); got != want {
			t.Errorf("Trust(%d).String() = %q, want %q", int(tr), got, want)
		}
	}
}
