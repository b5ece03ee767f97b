package policy

import (
	"errors"
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
			// The chain leaves oom_score_adj and protect unset, so the
			// built-in tests policy, the baseline, fills them in silently
			// (see TestResolveProjectMayOnlyTighten).
			name: "every ignored key is listed, along the extends chain",
			src: "[policies.a]\noom_score_adj = -5\nprotect = [\"editors\"]\n" +
				"[policies.tests]\nextends = \"a\"\nleftovers = \"keep\"\n",
			check: func(r *Resolved) bool {
				return *r.OOMScoreAdj == 500 && r.Origins["oom_score_adj"].File == OriginBuiltin &&
					slices.Equal(r.Protect, []string{"editors"}) && r.Leftovers == "kill"
			},
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

// TestResolveProjectMayOnlyTighten checks that a project file's policy, or
// a policy it extends, comes out no looser than the same name resolved from
// the trusted files alone (the user's file and the built-in one), and which
// clamped values are reported.
func TestResolveProjectMayOnlyTighten(t *testing.T) {
	const (
		project = "/p/.boxrun.toml"
		user    = "/home/u/.config/boxrun/policies.toml"
		fix     = "; set it in your own ~/.config/boxrun/policies.toml or with --set"
	)
	tests := []struct {
		name    string
		user    string // the user's policies.toml, "" for none
		src     string // the project's .boxrun.toml
		policy  string // "" for tests
		set     []string
		check   func(r *Resolved) bool
		origins map[string]string // key: Origins[key].String()
		ignored []string          // Ignored, as strings (a prefix of each)
	}{
		{
			name:  "shadowing tests with max limits takes the built-in limits",
			src:   "[policies.tests]\nmemory.max = \"max\"\npids.max = \"max\"\n",
			check: func(r *Resolved) bool { return *r.MemoryMax == 12*gib && *r.PidsMax == 4096 },
			origins: map[string]string{"memory.max": OriginBuiltin, "pids.max": OriginBuiltin, "protect": OriginBuiltin,
				"oom_score_adj": OriginBuiltin, "cpu.weight": OriginBuiltin},
			ignored: []string{
				project + `:2: memory.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 75% = 12G, built-in)` + fix,
				project + `:3: pids.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (pids.max = 4096, built-in)` + fix,
			},
		},
		{
			name: "shadowing the user's tests takes the user's limits",
			user: "[policies.tests]\nextends = \"tests\"\nmemory.max = \"6G\"\n",
			src:  "[policies.tests]\nmemory.max = \"max\"\n",
			check: func(r *Resolved) bool {
				return *r.MemoryMax == 6*gib && *r.PidsMax == 4096 && slices.Equal(r.Protect, []string{"editors"})
			},
			origins: map[string]string{"memory.max": user + ":3", "pids.max": OriginBuiltin},
			ignored: []string{project + `:2: memory.max = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 6G, ` + user + ":3)" + fix},
		},
		{
			name: "tighter values are kept, without warnings",
			src: "[policies.tests]\nmemory.max = \"1G\"\nmemory.swap.max = 0\npids.max = 64\ncpu.weight = 10\ncpu.max = \"100%\"\n" +
				"io.weight = 10\noom_score_adj = 800\nmax_concurrent = 2\nstart_when_available = \"1G\"\n",
			check: func(r *Resolved) bool {
				return *r.MemoryMax == gib && *r.MemorySwapMax == 0 && *r.PidsMax == 64 && *r.CPUWeight == 10 &&
					*r.CPUQuotaPerSecUSec == 1_000_000 && *r.IOWeight == 10 && *r.OOMScoreAdj == 800 &&
					r.MaxConcurrent == 2 && *r.StartWhenAvailable == gib
			},
			origins: map[string]string{"memory.max": project + ":2", "oom_score_adj": project + ":8", "max_concurrent": project + ":9"},
		},
		{
			name: "keys the project leaves out take the baseline's silently",
			src:  "[policies.tests]\ndescription = \"mine\"\nmemory.max = \"2G\"\nmemory.backpressure = false\nleftovers_grace = \"10s\"\n",
			check: func(r *Resolved) bool {
				return r.Description == "mine" && *r.MemoryMax == 2*gib && !r.MemoryBackpressure && r.LeftoversGrace.Seconds() == 10 &&
					*r.PidsMax == 4096 && *r.CPUWeight == 50 && *r.OOMScoreAdj == 500 && slices.Equal(r.Protect, []string{"editors"})
			},
			origins: map[string]string{"pids.max": OriginBuiltin, "cpu.weight": OriginBuiltin, "oom_score_adj": OriginBuiltin,
				"protect": OriginBuiltin, "memory.backpressure": project + ":4"},
		},
		{
			name: "extending a looser policy of the user's is clamped where the user wrote it",
			user: "[policies.quick]\nmemory.max = \"max\"\npids.max = 100\nprotect = []\n",
			src:  "[policies.tests]\nextends = \"quick\"\n",
			check: func(r *Resolved) bool {
				return *r.MemoryMax == 12*gib && *r.PidsMax == 100 && slices.Equal(r.Protect, []string{"editors"})
			},
			origins: map[string]string{"memory.max": OriginBuiltin, "pids.max": user + ":3", "protect": OriginBuiltin},
			ignored: []string{
				user + `:2: memory.max = "max" in policy "quick" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 75% = 12G, built-in)`,
				user + `:4: protect = [] in policy "quick" ignored: a project file may only tighten policy "tests" of your own files (protect = ["editors"], built-in)`,
			},
		},
		{
			name: "extending the looser built-in build policy is clamped",
			src:  "[policies.tests]\nextends = \"build\"\n",
			check: func(r *Resolved) bool {
				return *r.MemoryMax == 12*gib && *r.PidsMax == 4096 && *r.CPUWeight == 50 && *r.OOMScoreAdj == 500
			},
			ignored: []string{
				`built-in: memory.max = "85%" (13.6G) in policy "build" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 75% = 12G, built-in)`,
				`built-in: pids.max = 8192 in policy "build" ignored`,
				`built-in: cpu.weight = 80 in policy "build" ignored`,
				`built-in: oom_score_adj = 300 in policy "build" ignored`,
			},
		},
		{
			name:    "--set may loosen",
			src:     "[policies.tests]\nmemory.max = \"max\"\npids.max = \"max\"\n",
			set:     []string{"memory.max=max", "protect="},
			check:   func(r *Resolved) bool { return *r.MemoryMax == Unlimited && *r.PidsMax == 4096 && len(r.Protect) == 0 },
			origins: map[string]string{"memory.max": OriginSet, "protect": OriginSet, "pids.max": OriginBuiltin},
			ignored: []string{project + `:3: pids.max = "max" in policy "tests" ignored`},
		},
		{
			name:    "a name only the project defines resolves as written",
			src:     "[policies.mine]\nextends = \"tests\"\nmemory.max = \"max\"\npids.max = \"max\"\n",
			policy:  "mine",
			check:   func(r *Resolved) bool { return *r.MemoryMax == Unlimited && *r.PidsMax == Unlimited },
			origins: map[string]string{"memory.max": project + ":3"},
		},
		{
			name:    "a percentage above the baseline's bytes is clamped",
			user:    "[policies.tests]\nextends = \"tests\"\nmemory.max = \"8G\"\n",
			src:     "[policies.tests]\nmemory.max = \"60%\"\n",
			check:   func(r *Resolved) bool { return *r.MemoryMax == 8*gib },
			ignored: []string{project + `:2: memory.max = "60%" (9.6G) in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (memory.max = 8G, ` + user + ":3)"},
		},
		{
			name:    "a percentage below the baseline's bytes is kept",
			user:    "[policies.tests]\nextends = \"tests\"\nmemory.max = \"8G\"\n",
			src:     "[policies.tests]\nmemory.max = \"40%\"\n",
			check:   func(r *Resolved) bool { return *r.MemoryMax == 6871945216 }, // 40% of 16G, whole pages
			origins: map[string]string{"memory.max": project + ":2"},
		},
		{
			name:    "bytes above the baseline's percentage are clamped",
			src:     "[policies.tests]\nmemory.max = \"13G\"\n",
			check:   func(r *Resolved) bool { return *r.MemoryMax == 12*gib },
			ignored: []string{project + `:2: memory.max = "13G" in policy "tests" ignored`},
		},
		{
			name:    "max_concurrent max is looser than 4",
			user:    "[policies.tests]\nextends = \"tests\"\nmax_concurrent = 4\n",
			src:     "[policies.tests]\nextends = \"tests\"\nmax_concurrent = \"max\"\n",
			check:   func(r *Resolved) bool { return r.MaxConcurrent == 4 },
			origins: map[string]string{"max_concurrent": user + ":3"},
			ignored: []string{project + `:3: max_concurrent = "max" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (max_concurrent = 4, ` + user + ":3)"},
		},
		{
			name:    "max_concurrent above the baseline's is clamped",
			user:    "[policies.tests]\nextends = \"tests\"\nmax_concurrent = 4\n",
			src:     "[policies.tests]\nmax_concurrent = 8\n",
			check:   func(r *Resolved) bool { return r.MaxConcurrent == 4 },
			ignored: []string{project + `:2: max_concurrent = 8 in policy "tests" ignored`},
		},
		{
			name:  "max_concurrent unset in the baseline stays free",
			src:   "[policies.tests]\nmax_concurrent = 8\n",
			check: func(r *Resolved) bool { return r.MaxConcurrent == 8 },
		},
		{
			name:    "start_when_available may only be raised",
			user:    "[policies.tests]\nextends = \"tests\"\nstart_when_available = \"4G\"\n",
			src:     "[policies.tests]\nstart_when_available = \"2G\"\n",
			check:   func(r *Resolved) bool { return *r.StartWhenAvailable == 4*gib },
			ignored: []string{project + `:2: start_when_available = "2G" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (start_when_available = 4G, ` + user + ":3)"},
		},
		{
			name:    "oom_score_adj below the baseline's is clamped, though above 0",
			src:     "[policies.tests]\noom_score_adj = 100\n",
			check:   func(r *Resolved) bool { return *r.OOMScoreAdj == 500 },
			ignored: []string{project + `:2: oom_score_adj = 100 in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (oom_score_adj = 500, built-in)`},
		},
		{
			name:   "cpu.max and memory.swap.max of strict",
			src:    "[policies.strict]\ncpu.max = \"max\"\nmemory.swap.max = \"max\"\n",
			policy: "strict",
			check:  func(r *Resolved) bool { return *r.CPUQuotaPerSecUSec == 2_000_000 && *r.MemorySwapMax == 0 },
			ignored: []string{
				project + `:3: memory.swap.max = "max" in policy "strict" ignored: a project file may only tighten policy "strict" of your own files (memory.swap.max = 0B, built-in)`,
				project + `:2: cpu.max = "max" in policy "strict" ignored: a project file may only tighten policy "strict" of your own files (cpu.max = 200%, built-in)`,
			},
		},
		{
			name:  "a protect list dropped by not extending stays",
			src:   "[policies.tests]\nmemory.max = \"4G\"\n",
			check: func(r *Resolved) bool { return slices.Equal(r.Protect, []string{"editors"}) },
		},
		{
			name:    "memory.high stays at most the clamped memory.max",
			src:     "[policies.tests]\nmemory.high = \"14G\"\nmemory.max = \"max\"\n",
			check:   func(r *Resolved) bool { return *r.MemoryMax == 12*gib && *r.MemoryHigh == 12*gib && len(r.Notes) == 1 },
			ignored: []string{project + `:3: memory.max = "max" in policy "tests" ignored`},
		},
		{
			name:    "memory.high above the baseline's is clamped",
			user:    "[policies.tests]\nextends = \"tests\"\nmemory.high = \"6G\"\nmemory.max = \"8G\"\n",
			src:     "[policies.tests]\nmemory.high = \"7G\"\nmemory.max = \"8G\"\n",
			check:   func(r *Resolved) bool { return *r.MemoryHigh == 6*gib && *r.MemoryMax == 8*gib && len(r.Notes) == 0 },
			ignored: []string{project + `:2: memory.high = "7G" in policy "tests" ignored: a project file may only tighten policy "tests" of your own files (memory.high = 6G, ` + user + ":3)"},
		},
		{
			name:   "memory.high counts as at most memory.max",
			policy: "build",
			src:    "[policies.build]\nmemory.high = \"max\"\nmemory.max = \"4G\"\n",
			check: func(r *Resolved) bool {
				return *r.MemoryHigh == Unlimited && *r.MemoryMax == 4*gib && len(r.Notes) == 0
			},
		},
		{
			name:   "memory.high left out under a low memory.max stays unset",
			policy: "build",
			src:    "[policies.build]\nmemory.max = \"4G\"\n",
			check:  func(r *Resolved) bool { return r.MemoryHigh == nil && *r.MemoryMax == 4*gib && len(r.Notes) == 0 },
		},
		{
			name:   "memory.high left out under a high memory.max takes the baseline's",
			policy: "build",
			src:    "[policies.build]\nmemory.max = \"max\"\n",
			// 70% and 85% of 16G, in whole pages.
			check:   func(r *Resolved) bool { return *r.MemoryHigh == 12025905152 && *r.MemoryMax == 14602887168 },
			origins: map[string]string{"memory.high": OriginBuiltin, "memory.max": OriginBuiltin},
			ignored: []string{project + `:2: memory.max = "max" in policy "build" ignored`},
		},
	}
	env := Env{MemoryBytes: 16 * gib}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proj := parseString(t, project, tt.src)
			proj.Trust = Project
			s := &Stack{Files: []*File{proj}}
			if tt.user != "" {
				s.Files = append(s.Files, parseString(t, user, tt.user))
			}
			s.Files = append(s.Files, Builtin())
			name := tt.policy
			if name == "" {
				name = "tests"
			}
			r, err := s.Resolve(name, tt.set, env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(r) {
				t.Errorf("resolved %+v", r)
			}
			for k, want := range tt.origins {
				if got := r.Origins[k].String(); got != want {
					t.Errorf("Origins[%s] = %s, want %s", k, got, want)
				}
			}
			var got []string
			for _, ig := range r.Ignored {
				got = append(got, ig.String())
			}
			if len(got) != len(tt.ignored) {
				t.Fatalf("ignored\n%s\nwant %d entries", strings.Join(got, "\n"), len(tt.ignored))
			}
			for i, want := range tt.ignored {
				if !strings.HasPrefix(got[i], want) {
					t.Errorf("ignored[%d] = %q, want it to start with %q", i, got[i], want)
				}
			}
		})
	}
}

// TestResolveProjectBaselineErrors checks that a policy of the user's that
// only resolves with a project file's help fails, naming the user's file.
func TestResolveProjectBaselineErrors(t *testing.T) {
	proj := parseString(t, "/p/.boxrun.toml", "[policies.helper]\nmemory.max = \"max\"\n")
	proj.Trust = Project
	user := parseString(t, "user.toml", "[policies.tests]\nextends = \"helper\"\n")
	s := &Stack{Files: []*File{proj, user, Builtin()}}
	_, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 * gib})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != "user.toml" || !strings.Contains(err.Error(), `from your own files alone`) {
		t.Errorf("Resolve(tests) error %v, want a *ParseError at user.toml saying the user's files must resolve alone", err)
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
