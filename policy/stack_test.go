package policy

import (
	"errors"
	"reflect"
	"testing"
)

func TestSearchPaths(t *testing.T) {
	tests := []struct {
		name string
		cwd  string
		env  map[string]string
		want []string
	}{
		{
			name: "everything set",
			cwd:  "/home/u/src/proj",
			env:  map[string]string{"BOXRUN_POLICY_FILE": "/tmp/p.toml", "XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"},
			want: []string{
				"/tmp/p.toml",
				"/home/u/src/proj/.boxrun.toml",
				"/home/u/src/.boxrun.toml",
				"/home/u/.boxrun.toml",
				"/home/.boxrun.toml",
				"/.boxrun.toml",
				"/xdg/boxrun/policies.toml",
				"/etc/boxrun/policies.toml",
			},
		},
		{
			name: "no XDG_CONFIG_HOME falls back to HOME/.config",
			cwd:  "/srv",
			env:  map[string]string{"HOME": "/home/u"},
			want: []string{"/srv/.boxrun.toml", "/.boxrun.toml", "/home/u/.config/boxrun/policies.toml", "/etc/boxrun/policies.toml"},
		},
		{
			name: "relative XDG_CONFIG_HOME is ignored",
			cwd:  "/",
			env:  map[string]string{"XDG_CONFIG_HOME": "config", "HOME": "/home/u"},
			want: []string{"/.boxrun.toml", "/home/u/.config/boxrun/policies.toml", "/etc/boxrun/policies.toml"},
		},
		{
			name: "no HOME and no XDG_CONFIG_HOME",
			cwd:  "/",
			env:  map[string]string{},
			want: []string{"/.boxrun.toml", "/etc/boxrun/policies.toml"},
		},
		{
			name: "cwd is cleaned",
			cwd:  "/a/b/../c/",
			env:  map[string]string{},
			want: []string{"/a/c/.boxrun.toml", "/a/.boxrun.toml", "/.boxrun.toml", "/etc/boxrun/policies.toml"},
		},
		{
			name: "no cwd",
			cwd:  "",
			env:  map[string]string{"XDG_CONFIG_HOME": "/xdg"},
			want: []string{"/xdg/boxrun/policies.toml", "/etc/boxrun/policies.toml"},
		},
		{
			name: "BOXRUN_POLICY_FILE that is also found by the search comes first, once",
			cwd:  "/p",
			env:  map[string]string{"BOXRUN_POLICY_FILE": "/p/.boxrun.toml"},
			want: []string{"/p/.boxrun.toml", "/.boxrun.toml", "/etc/boxrun/policies.toml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			if got := SearchPaths(tt.cwd, getenv); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SearchPaths(%q) =\n%q\nwant\n%q", tt.cwd, got, tt.want)
			}
		})
	}
}

// builtinStack returns a stack of the given testdata files over Builtin.
func builtinStack(t *testing.T, files ...string) *Stack {
	t.Helper()
	s := &Stack{}
	for _, name := range files {
		s.Files = append(s.Files, parseFile(t, name))
	}
	s.Files = append(s.Files, Builtin())
	return s
}

func TestNames(t *testing.T) {
	s := builtinStack(t, "user.toml", "project.toml")
	got := s.Names()
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	if want := []string{"base", "build", "check", "ci", "strict", "tests"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	byName := map[string]Entry{}
	for _, e := range got {
		byName[e.Name] = e
	}
	builtin := Builtin()
	tests := []struct {
		name string
		want Entry
	}{
		{"tests", Entry{
			Name: "tests",
			// user.toml's tests has no description: the built-in one it
			// extends provides it.
			Description: "test suites: cargo test, go test, pytest -n",
			Origin:      Origin{"user.toml", 3},
			Shadowed:    []Origin{builtin.Policies["tests"].Defined},
		}},
		{"build", Entry{
			Name:        "build",
			Description: "this project's build",
			Origin:      Origin{"project.toml", 2},
			Shadowed:    []Origin{builtin.Policies["build"].Defined},
		}},
		{"ci", Entry{Name: "ci", Description: "what CI runs", Origin: Origin{"project.toml", 6}}},
		{"base", Entry{Name: "base", Description: builtin.Policies["base"].Description, Origin: builtin.Policies["base"].Defined}},
	}
	for _, tt := range tests {
		if e := byName[tt.name]; !reflect.DeepEqual(e, tt.want) {
			t.Errorf("entry %s = %+v\nwant %+v", tt.name, e, tt.want)
		}
	}
}

func TestNearerReplacesFartherWhole(t *testing.T) {
	s := builtinStack(t, "project.toml")
	r, err := s.Resolve("build", nil, Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	// project.toml's build sets only description and memory.max and does
	// not extend anything: nothing of the built-in build (or base) remains.
	if *r.MemoryMax != 4<<30 || r.MemoryHigh != nil || r.PidsMax != nil || r.CPUWeight != nil || r.OOMScoreAdj != nil ||
		r.MemorySwapMax != nil || r.Protect != nil {
		t.Errorf("resolved build = %+v", r)
	}
	want := map[string]Origin{"description": {"project.toml", 3}, "memory.max": {"project.toml", 4}}
	if !reflect.DeepEqual(r.Origins, want) {
		t.Errorf("Origins = %v, want %v", r.Origins, want)
	}
}

func TestExtendsChain(t *testing.T) {
	s := builtinStack(t, "project.toml")
	r, err := s.Resolve("ci", nil, Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	// ci (project.toml) -> tests (built-in) -> base (built-in).
	checks := []struct {
		key    string
		ok     bool
		origin Origin
	}{
		{"pids.max", *r.PidsMax == 2048, Origin{"project.toml", 9}},
		{"description", r.Description == "what CI runs", Origin{"project.toml", 7}},
		{"memory.max", *r.MemoryMax == 12884901888, Origin{OriginBuiltin, 0}},
		{"cpu.weight", *r.CPUWeight == 50, Origin{OriginBuiltin, 0}},
		{"leftovers_grace", r.LeftoversGrace.String() == "2s", Origin{OriginBuiltin, 0}},
		{"memory.swap.max", *r.MemorySwapMax == Unlimited, Origin{OriginBuiltin, 0}},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s has the wrong value: %+v", c.key, r)
		}
		o := r.Origins[c.key]
		if o.File != c.origin.File || (c.origin.Line != 0 && o.Line != c.origin.Line) {
			t.Errorf("Origins[%s] = %v, want %v", c.key, o, c.origin)
		}
	}
	if _, ok := r.Origins["extends"]; ok {
		t.Errorf("Origins lists extends: %v", r.Origins)
	}
}

func TestSelfExtendsAcrossLayers(t *testing.T) {
	project := parseString(t, "project.toml", `
[policies.tests]
extends = "tests"
pids.max = 100
`)
	s := &Stack{Files: []*File{project, parseFile(t, "user.toml"), Builtin()}}
	r, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	// project tests -> user tests -> built-in tests -> base.
	if *r.PidsMax != 100 || r.Origins["pids.max"].File != "project.toml" {
		t.Errorf("pids.max = %d from %v, want 100 from project.toml", *r.PidsMax, r.Origins["pids.max"])
	}
	if *r.MemoryMax != 8<<30 || r.Origins["memory.max"].File != "user.toml" {
		t.Errorf("memory.max = %d from %v, want 50%% of 16G from user.toml", *r.MemoryMax, r.Origins["memory.max"])
	}
	if r.Leftovers != "keep" || r.Origins["leftovers"].File != "user.toml" {
		t.Errorf("leftovers = %q from %v, want keep from user.toml", r.Leftovers, r.Origins["leftovers"])
	}
	// The built-in tests policy leaves memory.high to backpressure.
	if r.MemoryHigh != nil || len(r.Notes) != 0 {
		t.Errorf("memory.high = %v (notes %q), want it unset", r.MemoryHigh, r.Notes)
	}
	if r.Description != "test suites: cargo test, go test, pytest -n" {
		t.Errorf("description = %q", r.Description)
	}
}

func TestExtendsErrors(t *testing.T) {
	tests := []struct {
		name   string
		files  []*File
		policy string
		want   string
	}{
		{
			name:   "cycle in one file",
			files:  []*File{parseFile(t, "cycle.toml")},
			policy: "a",
			want:   "cycle.toml:8: extends cycle: a -> b -> c -> a",
		},
		{
			name:   "cycle starting in the middle",
			files:  []*File{parseFile(t, "cycle.toml")},
			policy: "b",
			want:   "cycle.toml:2: extends cycle: b -> c -> a -> b",
		},
		{
			name: "cycle across files",
			files: []*File{
				parseString(t, "near.toml", "[policies.a]\nextends = \"b\"\n"),
				parseString(t, "far.toml", "[policies.b]\n\nextends = \"a\"\n"),
			},
			policy: "a",
			want:   "far.toml:3: extends cycle: a -> b -> a",
		},
		{
			name:   "missing parent",
			files:  []*File{parseFile(t, "missing-parent.toml")},
			policy: "child",
			want:   `missing-parent.toml:3: extends: policy "child" extends "nope", which is not defined (known: child)`,
		},
		{
			name:   "mistyped parent",
			files:  []*File{parseString(t, "typo.toml", "[policies.mine]\nextends = \"test\"\n"), Builtin()},
			policy: "mine",
			want:   `typo.toml:2: extends: policy "mine" extends "test", which is not defined (did you mean tests?)`,
		},
		{
			name:   "self-extends with nothing farther",
			files:  []*File{parseString(t, "solo.toml", "[policies.tests]\nextends = \"tests\"\n")},
			policy: "tests",
			want:   `solo.toml:2: extends: policy "tests" extends itself, but no farther file defines "tests" to build on`,
		},
		{
			name: "self-extends does not look at nearer files",
			files: []*File{
				parseString(t, "near.toml", "[policies.x]\ndescription = \"near\"\n"),
				parseString(t, "far.toml", "[policies.x]\nextends = \"x\"\n"),
			},
			policy: "x",
			want:   "", // near x does not extend; far x is shadowed and never read
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Stack{Files: tt.files}
			_, err := s.Resolve(tt.policy, nil, Env{MemoryBytes: 1 << 30})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Resolve error\n got: %v\nwant: %s", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
		})
	}
}

func TestResolveUnknownPolicy(t *testing.T) {
	s := builtinStack(t)
	for _, tt := range []struct {
		name, want string
	}{
		{"nope", `unknown policy "nope" (known: base, build, check, strict, tests)`},
		{"test", `unknown policy "test" (did you mean tests?)`},
		{"Strict", `unknown policy "Strict" (did you mean strict?)`},
		// -p given a setting, as systemd-run -p takes one.
		{"MemoryMax=4G", `unknown policy "MemoryMax=4G" (did you mean --set memory.max=4G? a policy is named, a setting is changed with --set)`},
		{"memory.max=4G", `unknown policy "memory.max=4G" (did you mean --set memory.max=4G? a policy is named, a setting is changed with --set)`},
		{"memory.max=lots", `unknown policy "memory.max=lots" (known: base, build, check, strict, tests)`},
	} {
		_, err := s.Resolve(tt.name, nil, Env{MemoryBytes: 1 << 30})
		if !errors.Is(err, ErrUnknownPolicy) {
			t.Fatalf("error %v does not wrap ErrUnknownPolicy", err)
		}
		if err.Error() != tt.want {
			t.Errorf("Resolve(%q) error = %q, want %q", tt.name, err, tt.want)
		}
	}
}

func TestStackProtectGroupsAndSlice(t *testing.T) {
	near := parseString(t, "near.toml", `
[protect.editors]
match = ["vim"]
[slice]
pids.max = 10
`)
	s := &Stack{Files: []*File{near, nil, Builtin()}}
	groups := s.ProtectGroups()
	if got := groups["editors"].Match; !reflect.DeepEqual(got, []string{"vim"}) {
		t.Errorf("editors match = %v, want the nearer [vim]", got)
	}
	if groups["language-servers"] == nil {
		t.Errorf("language-servers missing from %v", groups)
	}
	if sl := s.Slice(); sl.MemoryMax != nil || *sl.PidsMax != 10 {
		t.Errorf("slice = %+v, want the nearer one whole", sl)
	}
	if sl := (&Stack{Files: []*File{near}}).Slice(); sl == nil {
		t.Error("Slice() = nil")
	}
	if sl := (&Stack{}).Slice(); sl != nil {
		t.Errorf("empty stack Slice() = %+v", sl)
	}
}
