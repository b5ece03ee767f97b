package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const gib = 1 << 30

func TestResolveOverrides(t *testing.T) {
	setOrigin := Origin{File: OriginSet}
	tests := []struct {
		name  string
		set   []string
		check func(r *Resolved) bool
		key   string // must come from --set
	}{
		{"size", []string{"memory.max=4G"}, func(r *Resolved) bool { return *r.MemoryMax == 4*gib }, "memory.max"},
		{"spaces around", []string{" memory.max = 4G "}, func(r *Resolved) bool { return *r.MemoryMax == 4*gib }, "memory.max"},
		{"quoted TOML string", []string{`memory.max="4G"`}, func(r *Resolved) bool { return *r.MemoryMax == 4*gib }, "memory.max"},
		{"integer bytes", []string{"memory.max=1073741824"}, func(r *Resolved) bool { return *r.MemoryMax == gib }, "memory.max"},
		{"percent", []string{"memory.max=50%"}, func(r *Resolved) bool { return *r.MemoryMax == 8*gib }, "memory.max"},
		{"max", []string{"memory.max=max"}, func(r *Resolved) bool { return *r.MemoryMax == Unlimited }, "memory.max"},
		{"later wins", []string{"memory.max=4G", "memory.max=6G"}, func(r *Resolved) bool { return *r.MemoryMax == 6*gib }, "memory.max"},
		{"pids max", []string{"pids.max=max"}, func(r *Resolved) bool { return *r.PidsMax == Unlimited }, "pids.max"},
		{"pids number", []string{"pids.max=100"}, func(r *Resolved) bool { return *r.PidsMax == 100 }, "pids.max"},
		{"bool", []string{"memory.oom_group=true"}, func(r *Resolved) bool { return r.MemoryOOMGroup }, "memory.oom_group"},
		{"bool off", []string{"memory.backpressure=false"}, func(r *Resolved) bool { return !r.MemoryBackpressure }, "memory.backpressure"},
		{"duration", []string{"leftovers_grace=5s"}, func(r *Resolved) bool { return r.LeftoversGrace == 5*time.Second }, "leftovers_grace"},
		{"leftovers", []string{"leftovers=keep"}, func(r *Resolved) bool { return r.Leftovers == "keep" }, "leftovers"},
		{"cpu.max", []string{"cpu.max=150%"}, func(r *Resolved) bool { return *r.CPUQuotaPerSecUSec == 1_500_000 }, "cpu.max"},
		{"cpu.max max", []string{"cpu.max=max"}, func(r *Resolved) bool { return *r.CPUQuotaPerSecUSec == Unlimited }, "cpu.max"},
		{"cpu.max rounds to the microsecond", []string{"cpu.max=33.3%"}, func(r *Resolved) bool { return *r.CPUQuotaPerSecUSec == 333_000 }, "cpu.max"},
		{"max_concurrent", []string{"max_concurrent=3"}, func(r *Resolved) bool { return r.MaxConcurrent == 3 }, "max_concurrent"},
		{"max_concurrent max", []string{"max_concurrent=3", "max_concurrent=max"}, func(r *Resolved) bool { return r.MaxConcurrent == 0 }, "max_concurrent"},
		{"start_when_available percent", []string{"start_when_available=25%"}, func(r *Resolved) bool { return *r.StartWhenAvailable == 4*gib }, "start_when_available"},
		{"cpu.weight", []string{"cpu.weight=200"}, func(r *Resolved) bool { return *r.CPUWeight == 200 }, "cpu.weight"},
		{"io.weight", []string{"io.weight=10"}, func(r *Resolved) bool { return *r.IOWeight == 10 }, "io.weight"},
		{"oom_score_adj", []string{"oom_score_adj=-5"}, func(r *Resolved) bool { return *r.OOMScoreAdj == -5 }, "oom_score_adj"},
		{"protect comma list", []string{"protect=language-servers, editors"}, func(r *Resolved) bool {
			return reflect.DeepEqual(r.Protect, []string{"language-servers", "editors"})
		}, "protect"},
		{"protect TOML array", []string{`protect=["language-servers"]`}, func(r *Resolved) bool {
			return reflect.DeepEqual(r.Protect, []string{"language-servers"})
		}, "protect"},
		{"protect none", []string{"protect="}, func(r *Resolved) bool { return len(r.Protect) == 0 }, "protect"},
		{"description with spaces", []string{"description=my own tests"}, func(r *Resolved) bool { return r.Description == "my own tests" }, "description"},
		{"description that looks like a number", []string{"description=42"}, func(r *Resolved) bool { return r.Description == "42" }, "description"},
		{"value containing =", []string{"description=a=b"}, func(r *Resolved) bool { return r.Description == "a=b" }, "description"},
	}
	s := builtinStack(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Resolve("tests", tt.set, Env{MemoryBytes: 16 * gib})
			if err != nil {
				t.Fatalf("Resolve(tests, %q): %v", tt.set, err)
			}
			if !tt.check(r) {
				t.Errorf("Resolve(tests, %q) = %+v", tt.set, r)
			}
			if r.Origins[tt.key] != setOrigin {
				t.Errorf("Origins[%s] = %v, want --set", tt.key, r.Origins[tt.key])
			}
		})
	}
	// Overrides do not change the stack.
	r, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 * gib})
	if err != nil || *r.MemoryMax != 12884901888 || r.Origins["memory.max"].File != OriginBuiltin {
		t.Errorf("tests after overrides = %+v, %v", r, err)
	}
}

func TestResolveOverrideErrors(t *testing.T) {
	const allKeys = "description, extends, memory.high, memory.max, memory.swap.max, memory.oom_group, memory.backpressure, " +
		"pids.max, cpu.weight, cpu.max, io.weight, oom_score_adj, leftovers, leftovers_grace, protect, max_concurrent, start_when_available"
	tests := []struct {
		set  string
		want string
	}{
		{"memory.max", `--set "memory.max": missing "=" (use KEY=VALUE, e.g. memory.max=4G)`},
		{"=4G", `--set =4G: missing key (use KEY=VALUE, e.g. memory.max=4G)`},
		{"memory.hihg=1G", `--set memory.hihg=1G: unknown key "memory.hihg" (did you mean --set memory.high=1G?)`},
		{"memory.mx=4G", `--set memory.mx=4G: unknown key "memory.mx" (did you mean --set memory.max=4G?)`},
		{"memory_max=4GB", `--set memory_max=4GB: unknown key "memory_max" (did you mean memory.max?)`},
		// systemd's names, with systemd's values in boxrun's spelling.
		{"MemoryMax=4G", `--set MemoryMax=4G: unknown key "MemoryMax" (did you mean --set memory.max=4G?)`},
		{"MemoryHigh=infinity", `--set MemoryHigh=infinity: unknown key "MemoryHigh" (did you mean --set memory.high=max?)`},
		{"TasksMax=512", `--set TasksMax=512: unknown key "TasksMax" (did you mean --set pids.max=512?)`},
		{"TasksMax=10%", `--set TasksMax=10%: unknown key "TasksMax" (did you mean pids.max? boxrun's keys are named after the cgroup v2 files, not systemd's properties)`},
		{"CPUQuota=50%", `--set CPUQuota=50%: unknown key "CPUQuota" (did you mean --set cpu.max=50%?)`},
		{"CPUWeight=20", `--set CPUWeight=20: unknown key "CPUWeight" (did you mean --set cpu.weight=20?)`},
		{"IOWeight=20", `--set IOWeight=20: unknown key "IOWeight" (did you mean --set io.weight=20?)`},
		{"OOMScoreAdjust=500", `--set OOMScoreAdjust=500: unknown key "OOMScoreAdjust" (did you mean --set oom_score_adj=500?)`},
		{"OOMPolicy=kill", `--set OOMPolicy=kill: unknown key "OOMPolicy" (did you mean --set memory.oom_group=true?)`},
		{"MemorySwapMax=0", `--set MemorySwapMax=0: unknown key "MemorySwapMax" (did you mean --set memory.swap.max=0?)`},
		{"memorymax=4G", `--set memorymax=4G: unknown key "memorymax" (did you mean --set memory.max=4G?)`},
		{"MemoryLow=2G", `--set MemoryLow=2G: unknown key "MemoryLow" (memory.low is a setting of a [protect.NAME] group, which shields the editor from the boxes; a box is limited with memory.high and memory.max)`},
		{"MemoryMin=1G", `--set MemoryMin=1G: unknown key "MemoryMin" (boxrun has no memory.min; a [protect.NAME] group's memory.low shields the editor instead)`},
		{"memory.max=4GB", `--set memory.max=4GB: "4GB" is not a size (did you mean "4G"? K, M, G and T are powers of 1024)`},
		{"memory=4G", `--set memory=4G: unknown key "memory" (known: ` + allKeys + `)`},
		{"memory.max=12Q", `--set memory.max=12Q: "12Q" is not a size (use 512M, 8G, 60% or max)`},
		{"memory.max=0", `--set memory.max=0: 0 is zero bytes (use "max" for no limit, or a positive size like 8G)`},
		{"memory.max=", `--set memory.max=: "" is not a size (use 512M, 8G, 60% or max)`},
		{"extends=base", `--set extends=base: cannot be changed with --set (write a policy that extends this one instead)`},
		{"cpu.max=400", `--set cpu.max=400: expected a share of one CPU like "50%" or "400%", or "max", got integer 400`},
		{"memory.oom_group=yes", `--set memory.oom_group=yes: expected true or false, got string "yes"`},
		{"pids.max=0", `--set pids.max=0: 0 is out of range (use 1 or more, or "max")`},
		{"leftovers_grace=5", `--set leftovers_grace=5: expected a duration like "2s", got integer 5`},
		{"protect=nope", `--set protect=nope: unknown protection group "nope" (known: editors, language-servers)`},
		{"protect=editor", `--set protect=editor: unknown protection group "editor" (did you mean editors?)`},
		{"description=caf\xe9", `--set "description=caf\xe9": is not valid UTF-8 text`},
		{"description=\x1b[2J", `--set "description=\x1b[2J": "\x1b[2J" contains the control character U+001B (use one line of plain text)`},
		{"memory.high=50%", `--set memory.high=50%: 50% is a share of memory, but the memory size is unknown (use a size like 8G)`},
	}
	s := builtinStack(t)
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			env := Env{MemoryBytes: 16 * gib}
			if strings.Contains(tt.set, "%") {
				env = Env{}
			}
			_, err := s.Resolve("check", []string{tt.set}, env)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Resolve(check, --set %s) error\n got: %v\nwant: %s", tt.set, err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != OriginSet || pe.Value != tt.set {
				t.Errorf("error = %#v, want a *ParseError for --set with Value %q", err, tt.set)
			}
		})
	}
}

func TestResolvePercent(t *testing.T) {
	tests := []struct {
		name             string
		env              Env
		wantHigh, wantMx uint64
	}{
		// memory.high=60% (set here) and the built-in 75%, rounded down to
		// 4 KiB pages.
		{"16 GiB", Env{MemoryBytes: 16 * gib}, 10307919872, 12884901888},
		{"64 GiB", Env{MemoryBytes: 64 * gib}, 41231683584, 48 * gib},
		{"15.5 GiB, a typical MemTotal", Env{MemoryBytes: 16_252_928 * 1024}, 9985798144, 12482248704},
	}
	s := builtinStack(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Resolve("tests", []string{"memory.high=60%"}, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if *r.MemoryHigh != tt.wantHigh || *r.MemoryMax != tt.wantMx {
				t.Errorf("memory.high, memory.max = %d, %d; want %d, %d", *r.MemoryHigh, *r.MemoryMax, tt.wantHigh, tt.wantMx)
			}
			if *r.MemoryHigh%4096 != 0 || *r.MemoryMax%4096 != 0 {
				t.Errorf("not page aligned: %d, %d", *r.MemoryHigh, *r.MemoryMax)
			}
		})
	}
	_, err := s.Resolve("tests", nil, Env{})
	want := "built-in: memory.max: 75% is a share of memory, but the memory size is unknown (use a size like 8G)"
	if err == nil || err.Error() != want {
		t.Errorf("Resolve with unknown memory: %v, want %s", err, want)
	}
	// Absolute sizes need no memory size.
	if _, err := s.Resolve("tests", []string{"memory.high=1G", "memory.max=2G"}, Env{}); err != nil {
		t.Errorf("Resolve with absolute sizes and unknown memory: %v", err)
	}
}

func TestResolveMemoryHighCapped(t *testing.T) {
	f := parseString(t, "cap.toml", `
[policies.p]
memory.high = "12G"
memory.max = "8G"
`)
	tests := []struct {
		name      string
		set       []string
		wantHigh  uint64
		wantNotes []string
	}{
		{"capped", nil, 8 * gib, []string{"memory.high 12G (cap.toml:3) is above memory.max 8G (cap.toml:4); using 8G for memory.high"}},
		{"capped by --set", []string{"memory.max=4G"}, 4 * gib, []string{"memory.high 12G (cap.toml:3) is above memory.max 4G (--set); using 4G for memory.high"}},
		{"percent capped", []string{"memory.high=75%"}, 8 * gib, []string{"memory.high 75% = 12G (--set) is above memory.max 8G (cap.toml:4); using 8G for memory.high"}},
		{"equal is fine", []string{"memory.high=8G"}, 8 * gib, nil},
		{"max memory.max caps nothing", []string{"memory.max=max"}, 12 * gib, nil},
		{"max memory.high is not capped", []string{"memory.high=max"}, Unlimited, nil},
	}
	s := &Stack{Files: []*File{f}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Resolve("p", tt.set, Env{MemoryBytes: 16 * gib})
			if err != nil {
				t.Fatal(err)
			}
			if *r.MemoryHigh != tt.wantHigh || !reflect.DeepEqual(r.Notes, tt.wantNotes) {
				t.Errorf("memory.high = %d, notes %q; want %d, %q", *r.MemoryHigh, r.Notes, tt.wantHigh, tt.wantNotes)
			}
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	s := &Stack{Files: []*File{parseString(t, "empty.toml", "[policies.nothing]\n")}}
	r, err := s.Resolve("nothing", nil, Env{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Resolved{Name: "nothing", Leftovers: "kill", LeftoversGrace: 2 * time.Second, Origins: map[string]Origin{}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Resolve = %+v\nwant      %+v", r, want)
	}
}

func TestResolveUnknownProtectGroup(t *testing.T) {
	s := &Stack{Files: []*File{
		parseString(t, "p.toml", "[policies.p]\n\nprotect = [\"editors\", \"editor\"]\n"),
		Builtin(),
	}}
	_, err := s.Resolve("p", nil, Env{MemoryBytes: gib})
	want := `p.toml:3: protect: unknown protection group "editor" (did you mean editors?)`
	if err == nil || err.Error() != want {
		t.Errorf("Resolve error = %v, want %s", err, want)
	}
}

func TestResolveDoesNotAlias(t *testing.T) {
	s := builtinStack(t)
	r, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 * gib})
	if err != nil {
		t.Fatal(err)
	}
	r.Protect[0] = "changed"
	*r.PidsMax = 1
	r.Origins["pids.max"] = Origin{}
	again, err := s.Resolve("tests", nil, Env{MemoryBytes: 16 * gib})
	if err != nil {
		t.Fatal(err)
	}
	if again.Protect[0] != "editors" || *again.PidsMax != 4096 || again.Origins["pids.max"].File != OriginBuiltin {
		t.Errorf("changing a Resolved changed the stack: %+v", again)
	}
}

func TestResolveSlice(t *testing.T) {
	env := Env{MemoryBytes: 16 * gib}
	r, err := (&Stack{Files: []*File{Builtin()}}).ResolveSlice(env)
	if err != nil {
		t.Fatal(err)
	}
	pct := func(p float64) uint64 { b, _ := Size{Percent: p}.Resolve(env); return b }
	if r.Empty() || *r.MemoryHigh != pct(80) || *r.MemoryMax != pct(85) || *r.PidsMax != 16384 || r.CPUWeight != nil {
		t.Errorf("built-in slice = %+v", r)
	}
	// The nearest [slice] table wins whole.
	user := parseString(t, "user.toml", "[slice]\nmemory.max = \"8G\"\n")
	r, err = (&Stack{Files: []*File{user, Builtin()}}).ResolveSlice(env)
	if err != nil {
		t.Fatal(err)
	}
	if *r.MemoryMax != 8*gib || r.MemoryHigh != nil || r.PidsMax != nil {
		t.Errorf("user slice = %+v", r)
	}
	if got := r.Origins["memory.max"]; got != (Origin{"user.toml", 2}) {
		t.Errorf("origin = %v", got)
	}
	// A percentage with no known memory fails, naming the key.
	if _, err := (&Stack{Files: []*File{Builtin()}}).ResolveSlice(Env{}); err == nil || !strings.Contains(err.Error(), "slice.memory.high") {
		t.Errorf("no memory size: err = %v", err)
	}
	if r, err := (&Stack{}).ResolveSlice(env); r != nil || err != nil || !r.Empty() {
		t.Errorf("no [slice]: %v, %v", r, err)
	}
}

// BenchmarkResolve resolves the built-in tests policy with an override, as
// every run does before it starts.
func BenchmarkResolve(b *testing.B) {
	st := &Stack{Files: []*File{Builtin()}}
	env := Env{MemoryBytes: 16 * gib}
	for i := 0; i < b.N; i++ {
		if _, err := st.Resolve("tests", []string{"memory.max=8G"}, env); err != nil {
			b.Fatal(err)
		}
	}
}
