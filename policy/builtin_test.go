package policy

import (
	"reflect"
	"sort"
	"testing"
	"time"
)

func TestBuiltinParses(t *testing.T) {
	f := Builtin()
	var names []string
	for name, p := range f.Policies {
		names = append(names, name)
		if p.Description == "" {
			t.Errorf("built-in policy %s has no description", name)
		}
		for key, o := range p.Origins {
			if o.File != OriginBuiltin || o.Line == 0 {
				t.Errorf("%s: Origins[%s] = %#v, want the built-in file with a line", name, key, o)
			}
		}
	}
	sort.Strings(names)
	if want := []string{"base", "build", "check", "strict", "tests"}; !reflect.DeepEqual(names, want) {
		t.Errorf("built-in policies = %v, want %v", names, want)
	}
	if f.Protect["editors"] == nil || f.Protect["language-servers"] == nil || len(f.Protect) != 2 {
		t.Errorf("built-in protection groups = %v", f.Protect)
	}
	if f.Slice == nil || f.Slice.MemoryMax == nil || *f.Slice.PidsMax != 16384 {
		t.Errorf("built-in slice = %+v", f.Slice)
	}
	// Every call returns a fresh copy.
	f.Policies["tests"].Description = "changed"
	if Builtin().Policies["tests"].Description == "changed" {
		t.Error("Builtin() returns shared state")
	}
}

func TestBuiltinBrokenPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("mustParseBuiltin of a broken file did not panic")
		}
	}()
	mustParseBuiltin("[policies.x]\nmemory.max = \"12Q\"\n")
}

// TestBuiltinResolves resolves every built-in policy on the machines the
// values are chosen for and checks the invariants a box relies on.
func TestBuiltinResolves(t *testing.T) {
	s := &Stack{Files: []*File{Builtin()}}
	for _, env := range []Env{{MemoryBytes: 16 * gib}, {MemoryBytes: 64 * gib}} {
		for _, e := range s.Names() {
			t.Run(FormatBytes(env.MemoryBytes)+"/"+e.Name, func(t *testing.T) {
				r, err := s.Resolve(e.Name, nil, env)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Notes) != 0 {
					t.Errorf("built-in policy needs adjusting: %q", r.Notes)
				}
				if r.MemoryMax != nil && (*r.MemoryMax == 0 || *r.MemoryMax > env.MemoryBytes) {
					t.Errorf("memory.max = %d", *r.MemoryMax)
				}
				if r.Leftovers != "kill" || r.LeftoversGrace != 2*time.Second {
					t.Errorf("leftovers = %s after %s", r.Leftovers, r.LeftoversGrace)
				}
				if r.LinuxResources() == nil {
					t.Error("LinuxResources() = nil")
				}
				for _, g := range r.Protect {
					if _, ok := s.ProtectGroups()[g]; !ok {
						t.Errorf("protect names unknown group %q", g)
					}
				}
			})
		}
	}
	// The protection groups and the slice resolve too.
	env := Env{MemoryBytes: 16 * gib}
	for name, g := range s.ProtectGroups() {
		if _, err := g.MemoryLow.Resolve(env); err != nil {
			t.Errorf("protect.%s.memory.low: %v", name, err)
		}
	}
	sl := s.Slice()
	high, err1 := sl.MemoryHigh.Resolve(env)
	mx, err2 := sl.MemoryMax.Resolve(env)
	if err1 != nil || err2 != nil || high > mx {
		t.Errorf("slice memory.high %d, memory.max %d: %v, %v", high, mx, err1, err2)
	}
}

// TestBuiltinTests pins the resolved tests policy on a 16 GiB machine.
func TestBuiltinTests(t *testing.T) {
	s := &Stack{Files: []*File{Builtin()}}
	r, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 * gib})
	if err != nil {
		t.Fatal(err)
	}
	u := func(v uint64) *uint64 { return &v }
	want := &Resolved{
		Name:               "tests",
		Description:        "test suites: cargo test, go test, pytest -n",
		MemoryMax:          u(12884901888), // 75%
		MemorySwapMax:      u(Unlimited),   // from base
		MemoryBackpressure: true,
		PidsMax:            u(4096),
		CPUWeight:          u(50),
		OOMScoreAdj:        ptr(500),
		Leftovers:          "kill",
		LeftoversGrace:     2 * time.Second,
		Protect:            []string{"editors"},
	}
	got := *r
	got.Origins = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("tests = %+v\nwant    %+v", got, *want)
	}
	wantKeys := []string{"cpu.weight", "description", "leftovers", "leftovers_grace", "memory.backpressure",
		"memory.max", "memory.oom_group", "memory.swap.max", "oom_score_adj", "pids.max", "protect"}
	var keys []string
	for k := range r.Origins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("Origins keys = %v, want %v", keys, wantKeys)
	}
}
