package policy

import (
	"strings"
	"testing"
)

// TestLint pins every warning of boxrun policy check: settings that are
// valid but probably not what was meant (issue #19).
func TestLint(t *testing.T) {
	const gib = 1 << 30
	env := Env{MemoryBytes: 16 * gib}
	tests := []struct {
		name string
		in   string
		env  Env
		want []string
	}{
		{"nothing to say", "[policies.x]\nmemory.high = \"6G\"\nmemory.max = \"8G\"\nmemory.swap.max = 0\n", env, nil},
		{"a number without a unit", "[policies.x]\nmemory.max = 4096\n", env, []string{
			`f.toml:2: memory.max = 4096 in policy "x": 4096 bytes (4K) is less than 1M, too little memory for any command to run; a number without a unit counts bytes (did you mean "4096M"?)`}},
		{"one byte", "[policies.x]\nmemory.max = 1\n", env, []string{
			`f.toml:2: memory.max = 1 in policy "x": 1B is less than 1M, too little memory for any command to run; a number without a unit counts bytes (did you mean "1M"?)`}},
		{"a string without a unit", "[policies.x]\nmemory.high = \"2048\"\n", env, []string{
			`f.toml:2: memory.high = "2048" in policy "x": 2048 bytes (2K) is less than 1M, too little memory for any command to run; a number without a unit counts bytes (did you mean "2048M"?)`}},
		{"a small size with its unit", "[policies.x]\nmemory.max = \"512K\"\n", env, []string{
			`f.toml:2: memory.max = "512K" in policy "x": 524288 bytes (512K) is less than 1M, too little memory for any command to run`}},
		{"1M is enough not to warn", "[policies.x]\nmemory.max = \"1M\"\nmemory.swap.max = 1048576\n", env, nil},
		{"zero swap is no swap, not a mistake", "[policies.x]\nmemory.swap.max = \"0\"\n", env, nil},
		{"a few bytes of swap", "[policies.x]\nmemory.swap.max = 64\n", env, []string{
			`f.toml:2: memory.swap.max = 64 in policy "x": 64B is less than 1M, too little swap to matter (0 means no swap); a number without a unit counts bytes (did you mean "64M"?)`}},
		{"start_when_available", "[policies.x]\nstart_when_available = 4\n", env, []string{
			`f.toml:2: start_when_available = 4 in policy "x": 4B is less than 1M, so little that the run never waits; a number without a unit counts bytes (did you mean "4M"?)`}},
		{"in a protection group and the slice", "[protect.e]\nmatch = [\"code\"]\nmemory.low = 2048\n[slice]\nmemory.max = 100\n", env, []string{
			`f.toml:3: memory.low = 2048 in protection group "e": 2048 bytes (2K) is less than 1M, too little to shield anything; a number without a unit counts bytes (did you mean "2048M"?)`,
			`f.toml:5: memory.max = 100 in [slice]: 100B is less than 1M, too little memory for any command to run; a number without a unit counts bytes (did you mean "100M"?)`}},
		{"memory.high above memory.max", "[policies.x]\nmemory.high = \"8G\"\nmemory.max = \"4G\"\n", env, []string{
			`f.toml:2: memory.high = "8G" in policy "x": 8G is above memory.max 4G (f.toml:3): the box would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out`}},
		{"memory.high above memory.max through extends, once", "[policies.x]\nmemory.high = \"90%\"\n[policies.y]\nextends = \"x\"\nmemory.max = \"50%\"\n[policies.z]\nextends = \"y\"\n", env, []string{
			`f.toml:2: memory.high = "90%" in policy "y": 90% = 14.4G is above memory.max 50% = 8G (f.toml:5): the box would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out`}},
		{"memory.high above a built-in memory.max", "[policies.tests]\nextends = \"tests\"\nmemory.high = \"80%\"\n", env, []string{
			`f.toml:3: memory.high = "80%" in policy "tests": 80% = 12.8G is above memory.max 75% = 12G (built-in): the box would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out`}},
		{"memory.high max is no limit", "[policies.x]\nmemory.high = \"max\"\nmemory.max = \"4G\"\n", env, nil},
		{"the slice", "[slice]\nmemory.high = \"90%\"\nmemory.max = \"8G\"\n", env, []string{
			`f.toml:2: memory.high = "90%" in [slice]: 90% = 14.4G is above memory.max 8G (f.toml:3): the boxes together would hit the hard limit before being throttled; make memory.high lower than memory.max, or leave it out`}},
		{"memory.low above the memory there is", "[protect.e]\nmatch = [\"code\"]\nmemory.low = \"32G\"\n", env, []string{
			`f.toml:3: memory.low = "32G" in protection group "e": 32G is more than the 16G of memory here (the RAM, or the memory.max of the cgroup boxrun runs in): the group's memory would never be reclaimed, however much the boxes need`}},
		{"memory.low within the memory there is", "[protect.e]\nmatch = [\"code\"]\nmemory.low = \"100%\"\n", env, nil},
		{"memory.low against an unknown memory size", "[protect.e]\nmatch = [\"code\"]\nmemory.low = \"32G\"\n", Env{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseString(t, "f.toml", tt.in)
			s := &Stack{Files: []*File{f, Builtin()}}
			var got []string
			for _, w := range s.Lint(tt.env) {
				got = append(got, w.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestLintBuiltin: the built-in policies give no warning.
func TestLintBuiltin(t *testing.T) {
	for _, mem := range []uint64{0, 1 << 30, 16 << 30, 1 << 40} {
		s := &Stack{Files: []*File{Builtin()}}
		if w := s.Lint(Env{MemoryBytes: mem}); len(w) != 0 {
			t.Errorf("built-in policies with %d bytes: %v", mem, w)
		}
		if w := Builtin().Warnings; len(w) != 0 {
			t.Errorf("built-in file: %v", w)
		}
	}
}
