package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is a
// *ParseError naming the file, and that whatever parses also lists, resolves
// and maps without panicking, as a trusted and as a project file (which
// never lowers oom_score_adj below 0). Seeds: testdata/fuzz/FuzzParse, the
// testdata examples and the built-in file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(builtinTOML))
	examples, _ := filepath.Glob(filepath.Join("testdata", "*.toml"))
	for _, name := range examples {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.toml", bytes.NewReader(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error %q (%T) is not a *ParseError naming the file", err, err)
			}
			return
		}
		for _, trust := range []Trust{Trusted, Project} {
			file.Trust = trust
			fuzzResolveAll(t, &Stack{Files: []*File{file, Builtin()}})
		}
	})
}

// fuzzResolveAll resolves every policy of s, checking what must hold.
func fuzzResolveAll(t *testing.T, s *Stack) {
	t.Helper()
	for _, ig := range s.Ignored() {
		if !strings.HasPrefix(ig.String(), "fuzz.toml:") {
			t.Fatalf("ignored %q does not name the file", ig)
		}
	}
	builtin := &Stack{Files: []*File{Builtin()}}
	for _, e := range s.Names() {
		for _, env := range []Env{{}, {MemoryBytes: 16 << 30}} {
			r, err := s.Resolve(e.Name, []string{"memory.max=4G"}, env)
			if err != nil {
				continue
			}
			if base, err := builtin.Resolve(e.Name, nil, env); err == nil && s.Files[0].Trust == Project {
				for _, k := range tightenKeys {
					if looser(k, r, base) {
						t.Fatalf("a project file loosened %s of the built-in policy %q", k, e.Name)
					}
				}
			}
			if r.MemoryHigh != nil && *r.MemoryHigh != Unlimited && *r.MemoryHigh > 4<<30 {
				t.Fatalf("memory.high %d above memory.max 4G", *r.MemoryHigh)
			}
			if r.OOMScoreAdj != nil && *r.OOMScoreAdj < 0 && s.Files[0].Trust == Project && r.Origins["oom_score_adj"].File == "fuzz.toml" {
				t.Fatalf("a project file lowered oom_score_adj to %d", *r.OOMScoreAdj)
			}
			r.LinuxResources()
		}
	}
}

// FuzzParseSize checks that ParseSize never panics, that every error quotes
// the input, and that what it accepts is in range, spells back (String) to
// the same Size, ignores case and surrounding spaces, and grows with its
// unit and with the memory a percentage is taken of. Seeds:
// testdata/fuzz/FuzzParseSize and the values below.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "-1G", "1.5G", "99999999T", "100%", "101%", "0%", "max", "MAX", "12Q", "", " 4G ", "8388607T", "0.5%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sz, err := ParseSize(s)
		if err != nil {
			if !strings.Contains(err.Error(), quote(s)) {
				t.Fatalf("ParseSize(%q): error %q does not quote the input", s, err)
			}
			return
		}
		if sz.Bytes > MaxSizeBytes || sz.Percent < 0 || sz.Percent > 100 || (sz.Max && (sz.Bytes != 0 || sz.Percent != 0)) {
			t.Fatalf("ParseSize(%q) = %+v, out of range", s, sz)
		}
		again, err := ParseSize(sz.String())
		if err != nil || again != sz {
			t.Fatalf("ParseSize(%q) = %+v; its String %q parses to %+v, %v", s, sz, sz.String(), again, err)
		}
		if len(s) < maxSizeLen {
			for _, v := range []string{strings.ToUpper(s), strings.ToLower(s), " " + s + "\t"} {
				if got, err := ParseSize(v); err != nil || got != sz {
					t.Fatalf("ParseSize(%q) = %+v but ParseSize(%q) = %+v, %v", s, sz, v, got, err)
				}
			}
		}
		checkSizeMonotonic(t, s, sz)
		FormatBytes(sz.Bytes)
		small, errSmall := sz.Resolve(Env{MemoryBytes: 1 << 30})
		large, errLarge := sz.Resolve(Env{MemoryBytes: 64 << 30})
		if errSmall == nil && (errLarge != nil || large < small) {
			t.Fatalf("%q resolves to %d of 1G but %d (%v) of 64G", s, small, large, errLarge)
		}
	})
}

// checkSizeMonotonic checks that a byte size without a unit (or with B)
// grows, or becomes too large, with each larger unit, and that a number
// with one more digit is not smaller.
func checkSizeMonotonic(t *testing.T, s string, sz Size) {
	t.Helper()
	if sz.Max || sz.Percent != 0 {
		return
	}
	num := strings.TrimSpace(s)
	num = strings.TrimSuffix(strings.TrimSuffix(num, "b"), "B")
	intPart, fracPart, ok := splitNumber(num)
	n := len(intPart)
	if fracPart != "" {
		n += 1 + len(fracPart)
	}
	if !ok || n != len(num) || len(num) >= maxSizeLen {
		return // a unit other than B
	}
	prev := sz.Bytes
	for _, unit := range []string{"K", "M", "G", "T"} {
		got, err := ParseSize(num + unit)
		if err != nil {
			if !strings.Contains(err.Error(), "too large") {
				t.Fatalf("%q parses but %q fails: %v", s, num+unit, err)
			}
			break
		}
		if got.Bytes < prev {
			t.Fatalf("%q is %d bytes, less than %d for the smaller unit", num+unit, got.Bytes, prev)
		}
		prev = got.Bytes
	}
	if got, err := ParseSize(num + "0"); err == nil && got.Bytes < sz.Bytes {
		t.Fatalf("%q is %d bytes, less than %q (%d)", num+"0", got.Bytes, s, sz.Bytes)
	}
}

// FuzzOverride checks that any --set argument is either applied (its key
// then comes from --set) or rejected with a *ParseError for --set that names
// the whole argument, never a panic. Seeds: testdata/fuzz/FuzzOverride and
// the values below.
func FuzzOverride(f *testing.F) {
	for _, s := range []string{"memory.max=4G", "memory.max", "=", "protect=a,b", `protect=["editors"]`, "cpu.max=400",
		"description=x = 1\ny = 2", "leftovers_grace=5s", "pids.max=0x10", "memory.high={a=1}", "memory.oom_group=true"} {
		f.Add(s)
	}
	s := &Stack{Files: []*File{Builtin()}}
	f.Fuzz(func(t *testing.T, set string) {
		r, err := s.Resolve("tests", []string{set}, Env{MemoryBytes: 16 << 30})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != OriginSet {
				t.Fatalf("error %q (%T) is not a *ParseError for --set", err, err)
			}
			if pe.Value != set {
				t.Fatalf("error %q names %q, not the argument %q", err, pe.Value, set)
			}
			return
		}
		key, _, _ := strings.Cut(set, "=")
		if o, ok := r.Origins[strings.TrimSpace(key)]; !ok || o.File != OriginSet {
			t.Fatalf("--set %q applied, but its key's origin is %v", set, o)
		}
		r.LinuxResources()
	})
}
