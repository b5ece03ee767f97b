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
// and maps without panicking. Seeds: testdata/fuzz/FuzzParse, the testdata
// examples and the built-in file.
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
		s := &Stack{Files: []*File{file, Builtin()}}
		for _, e := range s.Names() {
			for _, env := range []Env{{}, {MemoryBytes: 16 << 30}} {
				r, err := s.Resolve(e.Name, []string{"memory.max=4G"}, env)
				if err != nil {
					continue
				}
				if r.MemoryHigh != nil && *r.MemoryHigh != Unlimited && *r.MemoryHigh > 4<<30 {
					t.Fatalf("memory.high %d above memory.max 4G", *r.MemoryHigh)
				}
				r.LinuxResources()
			}
		}
	})
}

// FuzzParseSize checks that ParseSize never panics and that what it accepts
// is in range and spells back (String) to the same Size.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "-1G", "1.5G", "99999999T", "100%", "101%", "0%", "max", "MAX", "12Q", "", " 4G ", "8388607T", "0.5%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sz, err := ParseSize(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if sz.Bytes > MaxSizeBytes || sz.Percent < 0 || sz.Percent > 100 {
			t.Fatalf("ParseSize(%q) = %+v, out of range", s, sz)
		}
		again, err := ParseSize(sz.String())
		if err != nil || again != sz {
			t.Fatalf("ParseSize(%q) = %+v; its String %q parses to %+v, %v", s, sz, sz.String(), again, err)
		}
		FormatBytes(sz.Bytes)
		sz.Resolve(Env{MemoryBytes: 16 << 30})
	})
}

// FuzzOverride checks that any --set argument is either applied or rejected
// with a *ParseError for --set, never a panic.
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
			return
		}
		r.LinuxResources()
	})
}
