package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestRootHelpGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("--help: exit %d, stderr %q", code, stderr)
	}
	golden(t, "help.golden", stdout)
	for _, args := range [][]string{{"-h"}, {"help"}} {
		if _, out, _ := runCLI(t, args...); out != stdout {
			t.Errorf("boxrun %s differs from boxrun --help", strings.Join(args, " "))
		}
	}
	if strings.Contains(stdout, "[=true|false]") {
		t.Error("a boolean flag shows [=true|false]")
	}
}

// TestEveryCommandHelp: every command, at every level, has --help, -h and
// boxrun help NAME, all alike; and refuses unknown flags.
func TestEveryCommandHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			words := strings.Fields(c.name)
			code, want, stderr := runCLI(t, append(words, "--help")...)
			if code != 0 || stderr != "" {
				t.Fatalf("--help: exit %d, stderr %q", code, stderr)
			}
			if !strings.HasPrefix(want, "usage: boxrun "+c.name) {
				t.Errorf("--help does not start with its usage:\n%s", want)
			}
			if !strings.Contains(want, "-h, --help") {
				t.Errorf("--help does not list -h, --help:\n%s", want)
			}
			if _, got, _ := runCLI(t, append(words, "-h")...); got != want {
				t.Errorf("-h differs from --help")
			}
			if _, got, _ := runCLI(t, append([]string{"help"}, words...)...); got != want {
				t.Errorf("boxrun help %s differs from --help:\n%s", c.name, got)
			}
			if _, got, _ := runCLI(t, append([]string{"--help"}, words...)...); got != want {
				t.Errorf("boxrun --help %s differs from --help", c.name)
			}
			code, _, stderr = runCLI(t, append(words, "--bogus")...)
			if code != 125 || !strings.Contains(stderr, "unknown flag: --bogus") {
				t.Errorf("--bogus: exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestPolicyListJSON(t *testing.T) {
	code, stdout, _ := runCLI(t, "policy", "list", "--json")
	var list []policyListEntry
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if len(list) == 0 || list[0].DefinedIn != "built-in" {
		t.Errorf("got %+v", list)
	}
}

func TestFormatVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name   string
		linked string // -X main.linkedVersion
		bi     *debug.BuildInfo
		want   string
	}{
		{"no build info", "", nil, "boxrun (devel) "},
		{"go build, no vcs", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"boxrun (devel) go1.26.0 linux/amd64"},
		{"tagged", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}},
			"boxrun v1.2.3 go1.26.0 linux/amd64"},
		{"pseudo-version is not a tag", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20250102030405-1a2b3c4d5e6f+dirty"},
			Settings: settings("vcs.revision", "1a2b3c4d5e6f7a8b9c0d", "vcs.time", "2025-01-02T03:04:05Z", "vcs.modified", "true")},
			"boxrun (devel) (revision 1a2b3c4d5e6f, 2025-01-02T03:04:05Z, modified) go1.26.0 linux/amd64"},
		{"tagged and clean", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("vcs.revision", "1a2b3c4d5e6f7a8b9c0d", "vcs.modified", "false")},
			"boxrun v1.2.3 (revision 1a2b3c4d5e6f) go1.26.0 linux/amd64"},
		// make package: the package's version, whatever the go command stamped.
		{"packaged, no vcs", "0.0.0~git1a2b3c4+dirty", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"boxrun 0.0.0~git1a2b3c4+dirty go1.26.0 linux/amd64"},
		{"packaged over a pseudo-version", "1.2.3+4.g1a2b3c4", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.4-0.20250102030405-1a2b3c4d5e6f"},
			Settings: settings("vcs.revision", "1a2b3c4d5e6f7a8b9c0d", "vcs.modified", "false")},
			"boxrun 1.2.3+4.g1a2b3c4 (revision 1a2b3c4d5e6f) go1.26.0 linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatVersion(tt.linked, tt.bi, "linux/amd64")
			if tt.bi == nil {
				if !strings.HasPrefix(got, tt.want) {
					t.Errorf("got %q, want it to start with %q", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
