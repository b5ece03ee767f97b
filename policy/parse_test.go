package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// parseFile parses a file from testdata.
func parseFile(t *testing.T, name string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(name, strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return f
}

func parseString(t *testing.T, name, src string) *File {
	t.Helper()
	f, err := Parse(name, strings.NewReader(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return f
}

// TestParseErrors pins the exact message of every error Parse reports.
// Each input is a small file named bad.toml.
func TestParseErrors(t *testing.T) {
	const allKeys = "description, extends, memory.high, memory.max, memory.swap.max, memory.oom_group, memory.backpressure, " +
		"pids.max, cpu.weight, cpu.max, io.weight, oom_score_adj, leftovers, leftovers_grace, protect, max_concurrent, start_when_available"
	tests := []struct {
		name string
		in   string
		want string
	}{
		// Input.
		{"too large", "# " + strings.Repeat("x", MaxFileSize),
			"bad.toml: policy file too large (the limit is 1 MiB)"},
		{"invalid UTF-8", "[policies.tests]\ndescription = \"caf\xe9\"\n",
			"bad.toml:2: invalid UTF-8 at byte 35 (policy files must be UTF-8 text)"},

		{"max_concurrent zero", "[policies.tests]\nmax_concurrent = 0\n",
			`bad.toml:2: max_concurrent: 0 is out of range (use 1 to 1024, or "max" for no limit)`},
		{"max_concurrent too many", "[policies.tests]\nmax_concurrent = 5000\n",
			`bad.toml:2: max_concurrent: 5000 is out of range (use 1 to 1024, or "max" for no limit)`},
		{"max_concurrent a string", "[policies.tests]\nmax_concurrent = \"three\"\n",
			`bad.toml:2: max_concurrent: expected a number of runs from 1 to 1024, or "max", got string "three"`},
		{"start_when_available zero", "[policies.tests]\nstart_when_available = 0\n",
			"bad.toml:2: start_when_available: 0 is zero bytes (use a size like 4G, or leave the key out to start at once)"},
		{"start_when_available max", "[policies.tests]\nstart_when_available = \"max\"\n",
			`bad.toml:2: start_when_available: "max" would wait forever (use a size like 4G or a percentage like 25%, or leave the key out to start at once)`},

		// TOML syntax and structure.
		{"syntax: missing value", "[policies.tests]\nmemory.max =\n",
			"bad.toml:2: TOML syntax error: unexpected character U+000A at start of value"},
		{"syntax: unquoted string", "[policies.tests]\n\nmemory.max = 4G\n",
			`bad.toml:3: TOML syntax error: strings must be quoted (did you mean memory.max = "4G"? sizes, shares and max are strings in TOML)`},
		{"syntax: unquoted size in another tool's unit", "[policies.tests]\nmemory.max = 4GB # the box\n",
			`bad.toml:2: TOML syntax error: strings must be quoted (did you mean memory.max = "4G"? sizes, shares and max are strings in TOML)`},
		{"syntax: unquoted percentage", "[policies.tests]\ncpu.max = 50%\n",
			`bad.toml:2: TOML syntax error: expected newline but got U+0025 '%' (did you mean cpu.max = "50%"? sizes, shares and max are strings in TOML)`},
		{"syntax: unquoted max", "[slice]\nmemory.max = max\n",
			`bad.toml:2: TOML syntax error: unexpected character U+006D 'm' at start of value (did you mean memory.max = "max"? sizes, shares and max are strings in TOML)`},
		{"syntax: no hint for a number", "[policies.tests]\npids.max = 12 34\n",
			`bad.toml:2: TOML syntax error: expected newline but got U+0033 '3'`},
		{"syntax: unclosed table", "[policies.tests\n",
			"bad.toml:1: TOML syntax error: expected ']' to close table name"},
		{"syntax: error at end of input", "[policies.tests]\ndescription = \"x",
			"bad.toml:2: TOML syntax error: unterminated basic string"},
		{"array of tables", "[[policies]]\nname = \"x\"\n",
			"bad.toml:1: arrays of tables ([[policies]]) are not supported; use [policies.NAME] tables"},
		{"duplicate key", "[policies.tests]\nmemory.max = \"1G\"\n\nmemory.max = \"2G\"\n",
			`bad.toml:4: duplicate key "memory.max" in policy "tests" (first set on line 2)`},
		{"duplicate key across spellings", "[policies.tests]\nmemory.max = \"1G\"\nmemory = { max = \"2G\" }\n",
			`bad.toml:3: duplicate key "memory" in policy "tests" (first set on line 2)`},
		{"duplicate key in protect", "[protect.x]\nmatch = [\"a\"]\nmatch = [\"b\"]\n",
			`bad.toml:3: duplicate key "match" in protection group "x" (first set on line 2)`},
		{"duplicate key in slice", "[slice]\npids.max = 1\npids.max = 2\n",
			`bad.toml:3: duplicate key "pids.max" in [slice] (first set on line 2)`},
		{"duplicate top-level key", "x = 1\nx = 2\n",
			`bad.toml:1: unknown key "x" (known: [policies.NAME], [protect.NAME], [slice]) (and 1 more problem in bad.toml)`},
		{"table over a value", "[policies]\ntests = 1\n[policies.tests]\n",
			`bad.toml:2: policies.tests: expected a table [policies.tests], got integer 1 (and 1 more problem in bad.toml)`},
		{"table defined twice", "[policies.tests]\n[policies.build]\n[policies.tests]\n",
			"bad.toml:3: table [policies.tests] is defined twice (first on line 1)"},
		{"table after dotted keys", "[policies.tests]\nmemory.max = \"1G\"\n[policies.tests.memory]\n",
			"bad.toml:3: table [policies.tests.memory] was already made by dotted keys on line 2; use one style"},
		{"dotted keys into a table", "[policies.tests.memory]\nmax = \"1G\"\n[policies.tests]\nmemory.high = \"1G\"\n",
			`bad.toml:4: cannot set "memory.high" in policy "tests" with a dotted key: [policies.tests.memory] is a table of its own (line 1); set it there`},
		{"table into an inline table", "[policies]\ntests = { memory.max = \"1G\" }\n[policies.tests.cpu]\n",
			`bad.toml:3: cannot add to "policies.tests": it is an inline table (line 2)`},
		{"dotted key into an inline table", "[policies.tests]\nmemory = { max = \"1G\" }\nmemory.high = \"1G\"\n",
			`bad.toml:3: cannot add to "memory" in policy "tests": it is an inline table (line 2)`},

		// Top level.
		{"unknown table", "[policies.tests]\n[polices.build]\n",
			"bad.toml:2: unknown table [polices] (did you mean [policies.NAME]?)"},
		{"unknown table, nothing near", "[policies.tests]\n[limits]\n",
			"bad.toml:2: unknown table [limits] (known: [policies.NAME], [protect.NAME], [slice])"},
		{"keys of a policy without its header", "memory.max = \"4G\"\n",
			"bad.toml:1: unknown table [memory] (the keys of a policy go under a [policies.NAME] header)"},
		{"unknown top-level key", "version = 2\n",
			`bad.toml:1: unknown key "version" (known: [policies.NAME], [protect.NAME], [slice])`},
		{"policies not a table", "policies = \"tests\"\n",
			`bad.toml:1: policies: expected tables like [policies.NAME], got string "tests"`},
		{"policy not a table", "[policies]\ntests = 1\n",
			"bad.toml:2: policies.tests: expected a table [policies.tests], got integer 1"},
		{"policy name with a space", "[policies.\"my tests\"]\n",
			`bad.toml:1: policy name "my tests" is not valid (use up to 64 letters, digits, "-" and "_")`},
		{"empty policy name", "[policies.\"\"]\n",
			`bad.toml:1: policy name "" is not valid (use up to 64 letters, digits, "-" and "_")`},
		{"protect not a table", "protect = [\"editors\"]\n",
			`bad.toml:1: protect: expected tables like [protect.NAME], got an array`},
		{"protection group name", "[protect.\"a.b\"]\nmatch = [\"x\"]\n",
			`bad.toml:1: protection group name "a.b" is not valid (use up to 64 letters, digits, "-" and "_")`},
		{"slice not a table", "slice = 1\n",
			"bad.toml:1: slice: expected a table [slice], got integer 1"},

		// Keys of a policy.
		{"unknown key", "[policies.tests]\ndescription = \"x\"\n\n\nmemory.hihg = \"1G\"\n",
			`bad.toml:5: unknown key "memory.hihg" in policy "tests" (did you mean memory.high?)`},
		{"unknown key, nothing near", "[policies.tests]\nlimit = \"1G\"\n",
			`bad.toml:2: unknown key "limit" in policy "tests" (known: ` + allKeys + `)`},
		{"systemd's name of a key", "[policies.tests]\nMemoryMax = \"4G\"\n",
			`bad.toml:2: unknown key "MemoryMax" in policy "tests" (did you mean memory.max? boxrun's keys are named after the cgroup v2 files, not systemd's properties)`},
		{"systemd's name of a key in a protection group", "[protect.editors]\nmatch = [\"code\"]\nMemoryLow = \"2G\"\n",
			`bad.toml:3: unknown key "MemoryLow" in protection group "editors" (did you mean memory.low? boxrun's keys are named after the cgroup v2 files, not systemd's properties)`},
		{"memory.low in a policy", "[policies.tests]\nmemory.low = \"2G\"\n",
			`bad.toml:2: unknown key "memory.low" in policy "tests" (memory.low is a setting of a [protect.NAME] group, which shields the editor from the boxes; a box is limited with memory.high and memory.max)`},
		{"systemd's MemoryLow in a policy", "[policies.tests]\nMemoryLow = \"2G\"\n",
			`bad.toml:2: unknown key "MemoryLow" in policy "tests" (memory.low is a setting of a [protect.NAME] group, which shields the editor from the boxes; a box is limited with memory.high and memory.max)`},
		{"systemd's name of a key boxrun lacks", "[policies.tests]\nMemoryMin = \"2G\"\n",
			`bad.toml:2: unknown key "MemoryMin" in policy "tests" (boxrun has no memory.min; a [protect.NAME] group's memory.low shields the editor instead)`},
		{"unknown key in a sub-table", "[policies.tests.memory]\nhihg = \"1G\"\n",
			`bad.toml:2: unknown key "memory.hihg" in policy "tests" (did you mean memory.high?)`},
		{"unknown table in a policy", "[policies.tests.memroy]\nhigh = \"1G\"\n",
			`bad.toml:2: unknown key "memroy.high" in policy "tests" (did you mean memory.high?)`},
		{"unknown table in a policy, nothing near", "[policies.tests.limits]\nram = \"1G\"\n",
			`bad.toml:1: unknown key "limits" in policy "tests" (known: ` + allKeys + `)`},
		{"quoted dotted key is not a dotted key", "[policies.tests]\n\"memory.max\" = \"1G\"\n",
			`bad.toml:2: unknown key "\"memory.max\"" in policy "tests" (did you mean memory.max, without the quotes? a quoted key is one key, not a dotted one)`},
		{"value where sub-keys belong", "[policies.tests]\nmemory = \"8G\"\n",
			`bad.toml:2: memory: expected sub-keys (memory.high, memory.max, memory.swap.max, memory.oom_group, memory.backpressure), got string "8G"`},
		{"table where a value belongs", "[policies.tests.memory.max]\nbytes = 1\n",
			`bad.toml:1: memory.max: expected a size like "8G", "60%" or "max", got a table`},

		// Values.
		{"not a size", "[policies.tests]\nmemory.max = \"12Q\"\n",
			`bad.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)`},
		{"a decimal unit", "[policies.tests]\nmemory.max = \"4GB\"\n",
			`bad.toml:2: memory.max: "4GB" is not a size (did you mean "4G"? K, M, G and T are powers of 1024)`},
		{"size of the wrong type", "[policies.tests]\nmemory.high = true\n",
			`bad.toml:2: memory.high: expected a size like "8G", "60%" or "max", got boolean true`},
		{"size as a float", "[policies.tests]\nmemory.high = 1.5\n",
			`bad.toml:2: memory.high: expected a size like "8G", "60%" or "max", got float 1.5`},
		{"negative size", "[policies.tests]\nmemory.max = \"-1G\"\n",
			`bad.toml:2: memory.max: "-1G" is negative (use a positive size like 8G, or max)`},
		{"negative integer size", "[policies.tests]\nmemory.max = -1\n",
			`bad.toml:2: memory.max: -1 is negative (use a positive size like 8G, or max)`},
		{"zero memory.max", "[policies.tests]\nmemory.max = \"0\"\n",
			`bad.toml:2: memory.max: "0" is zero bytes (use "max" for no limit, or a positive size like 8G)`},
		{"zero memory.high as an integer", "[policies.tests]\nmemory.high = 0\n",
			`bad.toml:2: memory.high: 0 is zero bytes (use "max" for no limit, or a positive size like 8G)`},
		{"zero bytes after rounding down", "[policies.tests]\nmemory.max = \"0.1\"\n",
			`bad.toml:2: memory.max: "0.1" is zero bytes (use "max" for no limit, or a positive size like 8G)`},
		{"size too large", "[policies.tests]\nmemory.max = \"99999999T\"\n",
			`bad.toml:2: memory.max: "99999999T" is too large (the largest size is 8388607T; use max for no limit)`},
		{"zero percent", "[policies.tests]\nmemory.swap.max = \"0%\"\n",
			`bad.toml:2: memory.swap.max: "0%" is not a useful share of memory (use a percentage above 0%, or max)`},
		{"percent over 100", "[policies.tests]\nmemory.max = \"101%\"\n",
			`bad.toml:2: memory.max: "101%" is more than 100% of memory`},
		{"bool of the wrong type", "[policies.tests]\nmemory.oom_group = \"yes\"\n",
			`bad.toml:2: memory.oom_group: expected true or false, got string "yes"`},
		{"backpressure of the wrong type", "[policies.tests]\nmemory.backpressure = 1\n",
			`bad.toml:2: memory.backpressure: expected true or false, got integer 1`},
		{"pids.max zero", "[policies.tests]\npids.max = 0\n",
			`bad.toml:2: pids.max: 0 is out of range (use 1 or more, or "max")`},
		{"pids.max as a string", "[policies.tests]\npids.max = \"4096\"\n",
			`bad.toml:2: pids.max: expected a number of processes or "max", got string "4096"`},
		{"pids.max beyond 64 bits", "[policies.tests]\npids.max = 99999999999999999999\n",
			`bad.toml:2: pids.max: 99999999999999999999 is out of range (a number of processes or "max")`},
		{"cpu.weight zero", "[policies.tests]\ncpu.weight = 0\n",
			`bad.toml:2: cpu.weight: 0 is out of range (use 1 to 10000; the default is 100)`},
		{"io.weight too large", "[policies.tests]\nio.weight = 10_001\n",
			`bad.toml:2: io.weight: 10_001 is out of range (use 1 to 10000; the default is 100)`},
		{"cpu.weight as a string", "[policies.tests]\ncpu.weight = \"50\"\n",
			`bad.toml:2: cpu.weight: expected an integer from 1 to 10000, got string "50"`},
		{"cpu.max as an integer", "[policies.tests]\ncpu.max = 400\n",
			`bad.toml:2: cpu.max: expected a share of one CPU like "50%" or "400%", or "max", got integer 400`},
		{"cpu.max without percent", "[policies.tests]\ncpu.max = \"4\"\n",
			`bad.toml:2: cpu.max: "4" is not a CPU share (use a percent of one CPU like "50%" or "400%", or max)`},
		{"cpu.max below 1%", "[policies.tests]\ncpu.max = \"0.5%\"\n",
			`bad.toml:2: cpu.max: "0.5%" is less than 1% of one CPU (the kernel needs at least 1ms per 100ms period)`},
		{"cpu.max beyond any machine", "[policies.tests]\ncpu.max = \"1000000%\"\n",
			`bad.toml:2: cpu.max: "1000000%" is more than 819200% (8192 CPUs)`},
		{"oom_score_adj out of range", "[policies.tests]\noom_score_adj = 1001\n",
			`bad.toml:2: oom_score_adj: 1001 is out of range (use -1000 to 1000)`},
		{"oom_score_adj as a float", "[policies.tests]\noom_score_adj = 5.0\n",
			`bad.toml:2: oom_score_adj: expected an integer from -1000 to 1000, got float 5.0`},
		{"leftovers unknown", "[policies.tests]\nleftovers = \"stop\"\n",
			`bad.toml:2: leftovers: expected "kill" or "keep", got string "stop"`},
		{"leftovers_grace not a duration", "[policies.tests]\nleftovers_grace = \"5 sec\"\n",
			`bad.toml:2: leftovers_grace: "5 sec" is not a duration (use Go syntax like "500ms", "2s" or "1m")`},
		{"leftovers_grace negative", "[policies.tests]\nleftovers_grace = \"-1s\"\n",
			`bad.toml:2: leftovers_grace: "-1s" is negative`},
		{"leftovers_grace too long", "[policies.tests]\nleftovers_grace = \"61m\"\n",
			`bad.toml:2: leftovers_grace: "61m" is more than 1h`},
		{"leftovers_grace as an integer", "[policies.tests]\nleftovers_grace = 5\n",
			`bad.toml:2: leftovers_grace: expected a duration like "2s", got integer 5`},
		{"protect as a string", "[policies.tests]\nprotect = \"editors\"\n",
			`bad.toml:2: protect: expected a list of protection group names like ["editors"], got string "editors"`},
		{"protect with a number", "[policies.tests]\nprotect = [\n  \"editors\",\n  1,\n]\n",
			`bad.toml:4: protect: element 2 is integer 1, expected a protection group name`},
		{"protect with an empty name", "[policies.tests]\nprotect = [\"\"]\n",
			`bad.toml:2: protect: element 1 is empty, expected a protection group name`},
		{"protect twice", "[policies.tests]\nprotect = [\"editors\", \"editors\"]\n",
			`bad.toml:2: protect: "editors" is listed twice`},
		{"description of the wrong type", "[policies.tests]\ndescription = 1979-05-27\n",
			`bad.toml:2: description: expected a string, got date/time 1979-05-27`},
		{"description with a terminal escape", "[policies.tests]\ndescription = \"\\u001b]0;pwned\\u0007\"\n",
			`bad.toml:2: description: "\x1b]0;pwned\a" contains the control character U+001B (use one line of plain text)`},
		{"description on two lines", "[policies.tests]\ndescription = \"\"\"\none\ntwo\"\"\"\n",
			`bad.toml:2: description: "one\ntwo" contains the control character U+000A (use one line of plain text)`},
		{"extends of the wrong type", "[policies.tests]\nextends = [\"base\"]\n",
			`bad.toml:2: extends: expected a policy name, got an array`},
		{"extends an invalid name", "[policies.tests]\nextends = \"my base\"\n",
			`bad.toml:2: extends: policy name "my base" is not valid (use up to 64 letters, digits, "-" and "_")`},

		// Protection groups and the slice.
		{"protect group without match", "[protect.editors]\nmemory.low = \"1G\"\n",
			`bad.toml:1: protect.editors: match is required (list the process names to protect, e.g. match = ["code"])`},
		{"protect group with empty match", "[protect.editors]\nmatch = []\n",
			`bad.toml:2: protect.editors.match: is empty (list at least one process name, e.g. match = ["code"])`},
		{"protect group match of the wrong type", "[protect.editors]\nmatch = \"code\"\n",
			`bad.toml:2: protect.editors.match: expected a list of process names like ["code"], got string "code"`},
		{"protect group unknown key", "[protect.editors]\nmatch = [\"code\"]\nmemory.max = \"1G\"\n",
			`bad.toml:3: unknown key "memory.max" in protection group "editors" (known: match, memory.low, oom_score_adj)`},
		{"protect group bad memory.low", "[protect.editors]\nmatch = [\"code\"]\nmemory.low = \"lots\"\n",
			`bad.toml:3: protect.editors.memory.low: "lots" is not a size (use 512M, 8G, 60% or max)`},
		{"protect group bad oom_score_adj", "[protect.editors]\nmatch = [\"code\"]\noom_score_adj = -1001\n",
			`bad.toml:3: protect.editors.oom_score_adj: -1001 is out of range (use -1000 to 1000)`},
		{"slice unknown key", "[slice]\ncpu.max = \"400%\"\n",
			`bad.toml:2: unknown key "cpu.max" in [slice] (known: memory.high, memory.max, pids.max, cpu.weight)`},
		{"slice bad value", "[slice]\nmemory.max = \"0\"\n",
			`bad.toml:2: slice.memory.max: "0" is zero bytes (use "max" for no limit, or a positive size like 8G)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("bad.toml", strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want error\n%s", f, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Fatalf("Parse error\n got: %s\nwant: %s", got, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.File != "bad.toml" {
				t.Errorf("ParseError.File = %q, want bad.toml", pe.File)
			}
		})
	}
}

// TestParseReportsEveryProblem: Parse reports all the problems of a file,
// by line, not only the first (issue #19); a syntax error ends the file.
func TestParseReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // each problem, in order
	}{
		{"one problem is a ParseError of its own", "[policies.a]\nmemory.max = \"12Q\"\n",
			[]string{`bad.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)`}},
		{"bad values in several policies", "[policies.a]\nmemory.max = \"12Q\"\npids.max = 0\n[policies.b]\ncpu.weight = 0\n",
			[]string{
				`bad.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)`,
				`bad.toml:3: pids.max: 0 is out of range (use 1 or more, or "max")`,
				`bad.toml:5: cpu.weight: 0 is out of range (use 1 to 10000; the default is 100)`,
			}},
		{"structure, keys and values together, by line", "[policies.a]\nmemory.mx = \"1G\"\n[policies.a]\n[protect.e]\nmemory.low = \"1G\"\n[slice]\npids.max = \"x\"\npids.max = 2\n",
			[]string{
				`bad.toml:2: unknown key "memory.mx" in policy "a" (did you mean memory.max?)`,
				`bad.toml:3: table [policies.a] is defined twice (first on line 1)`,
				`bad.toml:4: protect.e: match is required (list the process names to protect, e.g. match = ["code"])`,
				`bad.toml:7: slice.pids.max: expected a number of processes or "max", got string "x"`,
				`bad.toml:8: duplicate key "pids.max" in [slice] (first set on line 7)`,
			}},
		{"keys under a refused header are not read as the first table's", "[policies.a]\npids.max = 1\n[policies.a]\npids.max = 0\n",
			[]string{`bad.toml:3: table [policies.a] is defined twice (first on line 1)`}},
		{"a bad match is not also missing", "[protect.e]\nmatch = \"code\"\n",
			[]string{`bad.toml:2: protect.e.match: expected a list of process names like ["code"], got string "code"`}},
		{"a syntax error ends the file", "[policies.a]\nmemory.max = \"12Q\"\n[protect.e]\nmemory.low = = 1\nmatch = [\"code\"]\npids.max = 0\n",
			[]string{
				`bad.toml:2: memory.max: "12Q" is not a size (use 512M, 8G, 60% or max)`,
				`bad.toml:4: TOML syntax error: unexpected character U+003D '=' at start of value`,
			}},
		{"unknown tables at the top", "[polices.a]\n[slise]\n",
			[]string{
				`bad.toml:1: unknown table [polices] (did you mean [policies.NAME]?)`,
				`bad.toml:2: unknown table [slise] (did you mean [slice]?)`,
			}},
		{"every mistyped key of an unknown table", "[policies.a.memroy]\nhigh = \"1G\"\nmax = \"2G\"\n",
			[]string{
				`bad.toml:2: unknown key "memroy.high" in policy "a" (did you mean memory.high?)`,
				`bad.toml:3: unknown key "memroy.max" in policy "a" (did you mean memory.max?)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.toml", strings.NewReader(tt.in))
			var got []string
			for _, e := range Problems(err) {
				var pe *ParseError
				if !errors.As(e, &pe) || pe.File != "bad.toml" {
					t.Errorf("problem %q (%T) is not a *ParseError of bad.toml", e, e)
				}
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var list ParseErrors
			switch {
			case len(tt.want) == 1 && errors.As(err, &list):
				t.Errorf("one problem came as ParseErrors")
			case len(tt.want) > 1 && !errors.As(err, &list):
				t.Errorf("%d problems came as %T, want ParseErrors", len(tt.want), err)
			}
			var first *ParseError
			if !errors.As(err, &first) || first.Error() != tt.want[0] {
				t.Errorf("errors.As finds %v, want the first problem", first)
			}
		})
	}
}

// TestParseErrorsError: one line that still says there is more.
func TestParseErrorsError(t *testing.T) {
	p := func(line int) *ParseError {
		return &ParseError{File: "f.toml", Line: line, Err: errors.New("bad")}
	}
	for _, tt := range []struct {
		list ParseErrors
		want string
	}{
		{ParseErrors{p(1)}, "f.toml:1: bad"},
		{ParseErrors{p(1), p(2)}, "f.toml:1: bad (and 1 more problem in f.toml)"},
		{ParseErrors{p(1), p(2), p(3)}, "f.toml:1: bad (and 2 more problems in f.toml)"},
	} {
		if got := tt.list.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if got := Problems(nil); got != nil {
		t.Errorf("Problems(nil) = %v", got)
	}
	if got := Problems(errors.New("x")); len(got) != 1 {
		t.Errorf("Problems of one error = %v", got)
	}
}

// TestParseErrorFields checks the data a ParseError carries for callers.
func TestParseErrorFields(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ParseError // Err not compared
	}{
		{"bad value", "[policies.tests]\n\nmemory.max = \"12Q\"\n",
			ParseError{File: "bad.toml", Line: 3, Key: "memory.max", Value: "12Q"}},
		{"bad value in a sub-table", "[policies.tests.memory]\nmax = \"12Q\"\n",
			ParseError{File: "bad.toml", Line: 2, Key: "memory.max", Value: "12Q"}},
		{"unknown key", "[policies.tests]\nmemory.hihg = \"1G\"\n",
			ParseError{File: "bad.toml", Line: 2, Value: "memory.hihg"}},
		{"array value", "[policies.tests]\nprotect = [\"a\", 2]\n",
			ParseError{File: "bad.toml", Line: 2, Key: "protect", Value: `["a", 2]`}},
		{"slice value", "[slice]\npids.max = 0\n",
			ParseError{File: "bad.toml", Line: 2, Key: "slice.pids.max", Value: "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.toml", strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want a *ParseError", err)
			}
			got := *pe
			got.Err = nil
			if got != tt.want {
				t.Errorf("ParseError = %+v, want %+v", got, tt.want)
			}
			if pe.Unwrap() == nil {
				t.Errorf("Unwrap() = nil")
			}
		})
	}
}

func TestParseSizeErrorUnwraps(t *testing.T) {
	_, err := Parse("bad.toml", strings.NewReader("[policies.tests]\nmemory.max = \"12Q\"\n"))
	_, sizeErr := ParseSize("12Q")
	if !strings.HasSuffix(err.Error(), sizeErr.Error()) {
		t.Errorf("Parse error %q does not end with ParseSize's %q", err, sizeErr)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse("x.toml", iotest.ErrReader(boom))
	if !errors.Is(err, boom) || err.Error() != "reading policy file x.toml: boom" {
		t.Errorf("Parse error = %v, want it to wrap boom and name the file", err)
	}
}

func TestParseEmptyAndLimits(t *testing.T) {
	f := parseString(t, "empty.toml", "")
	if f.Path != "empty.toml" || len(f.Policies) != 0 || len(f.Protect) != 0 || f.Slice != nil || f.Policies == nil || f.Protect == nil {
		t.Errorf("empty file = %+v", f)
	}
	// Exactly MaxFileSize bytes is fine.
	src := "[policies.a]\n#"
	src += strings.Repeat("x", MaxFileSize-len(src))
	if _, err := Parse("big.toml", strings.NewReader(src)); err != nil {
		t.Errorf("file of exactly MaxFileSize: %v", err)
	}
	// A UTF-8 byte order mark is skipped.
	f = parseString(t, "bom.toml", "\xEF\xBB\xBF[policies.a]\ndescription = \"x\"\n")
	if f.Policies["a"].Description != "x" || f.Policies["a"].Origins["description"].Line != 2 {
		t.Errorf("file with BOM = %+v", f.Policies["a"])
	}
}

// TestParseSpellingsEquivalent checks that dotted keys, sub-tables and
// inline tables give the same policy, keyed the same way in Origins.
func TestParseSpellingsEquivalent(t *testing.T) {
	want := &Policy{
		Name:               "tests",
		Description:        "same policy, dotted keys",
		MemoryHigh:         &Size{Bytes: 6 << 30},
		MemoryMax:          &Size{Bytes: 8 << 30},
		MemorySwapMax:      &Size{Bytes: 0},
		MemoryOOMGroup:     ptr(true),
		MemoryBackpressure: ptr(true),
		PidsMax:            ptr(uint64(4096)),
		CPUWeight:          ptr(uint64(50)),
		CPUMaxPercent:      ptr(250.0),
		IOWeight:           ptr(uint64(30)),
	}
	wantKeys := []string{"cpu.max", "cpu.weight", "description", "io.weight", "memory.backpressure", "memory.high",
		"memory.max", "memory.oom_group", "memory.swap.max", "pids.max"}
	for _, name := range []string{"dotted.toml", "subtables.toml", "inline.toml"} {
		t.Run(name, func(t *testing.T) {
			p := parseFile(t, name).Policies["tests"]
			if p == nil {
				t.Fatal("no policy tests")
			}
			var keys []string
			for k, o := range p.Origins {
				keys = append(keys, k)
				if o.File != name || o.Line < 3 {
					t.Errorf("Origins[%s] = %v", k, o)
				}
			}
			if p.Defined != (Origin{name, 2}) {
				t.Errorf("Defined = %v, want %s:2", p.Defined, name)
			}
			got := *p
			got.Origins, got.Defined = nil, Origin{}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("policy = %+v\nwant     %+v", got, *want)
			}
			sortStrings(keys)
			if !reflect.DeepEqual(keys, wantKeys) {
				t.Errorf("Origins keys = %v, want %v", keys, wantKeys)
			}
		})
	}
}

func TestParseFull(t *testing.T) {
	f := parseFile(t, "full.toml")
	p := f.Policies["everything"]
	want := &Policy{
		Name:               "everything",
		Description:        "sets every key",
		Extends:            "base",
		MemoryHigh:         &Size{Percent: 60},
		MemoryMax:          &Size{Bytes: 8 << 30},
		MemorySwapMax:      &Size{Max: true},
		MemoryOOMGroup:     ptr(false),
		MemoryBackpressure: ptr(true),
		PidsMax:            ptr(uint64(Unlimited)),
		CPUWeight:          ptr(uint64(10000)),
		CPUMaxUnlimited:    true,
		IOWeight:           ptr(uint64(1)),
		OOMScoreAdj:        ptr(-1000),
		Leftovers:          "keep",
		LeftoversGrace:     ptr(time.Hour),
		Protect:            []string{"editors", "tools"},
		MaxConcurrent:      ptr(3),
		StartWhenAvailable: &Size{Bytes: 4 << 30},
	}
	got := *p
	if len(got.Origins) != len(policyKeys) {
		t.Errorf("Origins has %d keys, want all %d: %v", len(got.Origins), len(policyKeys), got.Origins)
	}
	if got.Origins["memory.high"] != (Origin{"full.toml", 5}) || got.Origins["protect"] != (Origin{"full.toml", 17}) {
		t.Errorf("Origins = %v", got.Origins)
	}
	got.Origins, got.Defined = nil, Origin{}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("policy = %+v\nwant     %+v", got, *want)
	}

	g := f.Protect["tools"]
	wantGroup := &ProtectGroup{
		Name:        "tools",
		Match:       []string{"make", "ninja"},
		MemoryLow:   &Size{Bytes: 512 << 20},
		OOMScoreAdj: ptr(-100),
		Origins: map[string]Origin{
			"match": {"full.toml", 22}, "memory.low": {"full.toml", 23}, "oom_score_adj": {"full.toml", 24},
		},
		Defined: Origin{"full.toml", 21},
	}
	if !reflect.DeepEqual(g, wantGroup) {
		t.Errorf("protect.tools = %+v\nwant            %+v", g, wantGroup)
	}

	wantSlice := &SliceLimits{
		MemoryHigh: &Size{Percent: 80},
		MemoryMax:  &Size{Percent: 90},
		PidsMax:    ptr(uint64(16384)),
		CPUWeight:  ptr(uint64(100)),
		Origins: map[string]Origin{
			"memory.high": {"full.toml", 27}, "memory.max": {"full.toml", 28},
			"pids.max": {"full.toml", 29}, "cpu.weight": {"full.toml", 30},
		},
		Defined: Origin{"full.toml", 26},
	}
	if !reflect.DeepEqual(f.Slice, wantSlice) {
		t.Errorf("slice = %+v\nwant    %+v", f.Slice, wantSlice)
	}
}

// TestParseTOMLSpellings checks TOML forms users may write: integer
// spellings, literal strings, max in capitals, comments everywhere.
func TestParseTOMLSpellings(t *testing.T) {
	src := `
# comment
[policies.a] # trailing comment
memory.max = 0x1000_0000   # hex integer: bytes
memory.high = 'MAX'        # literal string, any case
pids.max = 1_000
cpu.weight = +50
oom_score_adj = -0
protect = [
  "editors", # one
  "language-servers",
]
[policies."b"]
description = """
multi-line"""
`
	f := parseString(t, "spell.toml", src)
	a := f.Policies["a"]
	if a.MemoryMax.Bytes != 0x10000000 || !a.MemoryHigh.Max || *a.PidsMax != 1000 || *a.CPUWeight != 50 || *a.OOMScoreAdj != 0 ||
		!reflect.DeepEqual(a.Protect, []string{"editors", "language-servers"}) {
		t.Errorf("policy a = %+v", a)
	}
	if a.Origins["protect"].Line != 9 {
		t.Errorf("protect set on line %d, want 9", a.Origins["protect"].Line)
	}
	if b := f.Policies["b"]; b == nil || b.Description != "multi-line" {
		t.Errorf("policy b = %+v", b)
	}
}

// TestParseTableOrder checks TOML's rules on implicit tables: a table named
// in a header before its parent may still be defined later, and sub-tables
// may be added to tables made by dotted keys.
func TestParseTableOrder(t *testing.T) {
	src := `
[policies.tests.memory]
max = "8G"
[policies.tests]
description = "defined after its sub-table"
[policies.build]
memory.max = "8G"
[policies.build.memory.swap]
max = "0"
`
	f := parseString(t, "order.toml", src)
	tests := f.Policies["tests"]
	if tests.Description == "" || tests.MemoryMax == nil || tests.Defined.Line != 4 {
		t.Errorf("tests = %+v", tests)
	}
	build := f.Policies["build"]
	if build.MemoryMax == nil || build.MemorySwapMax == nil || build.MemorySwapMax.Bytes != 0 {
		t.Errorf("build = %+v", build)
	}
}

func TestOriginString(t *testing.T) {
	tests := []struct {
		in   Origin
		want string
	}{
		{Origin{"a.toml", 3}, "a.toml:3"},
		{Origin{OriginBuiltin, 12}, "built-in"},
		{Origin{OriginSet, 0}, "--set"},
		{Origin{"a.toml", 0}, "a.toml"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
