package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// pseudoVersion matches the versions the go command makes up for an
// untagged commit (v0.0.0-20250102030405-1a2b3c4d5e6f, +dirty).
var pseudoVersion = regexp.MustCompile(`-(0\.)?\d{14}-[0-9a-f]{12}(\+dirty)?$|\+dirty$`)

// linkedVersion is the version of the package boxrun was built for:
// make package links it in with -ldflags "-X main.linkedVersion=VERSION"
// (VERSION from packaging/version, e.g. 1.2.3+4.g1a2b3c4), so that
// boxrun --version says what dpkg and rpm say. Empty in every other build,
// where the build info tells the version. Set only by the linker.
var linkedVersion string

// versionLine is what boxrun --version and boxrun version print.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(linkedVersion, bi, runtime.GOOS+"/"+runtime.GOARCH)
}

// formatVersion says which boxrun bi is: "boxrun v1.2.3 (revision
// 1a2b3c4d5e6f, 2025-01-02T03:04:05Z, modified) go1.26.0 linux/amd64". The
// version is linked when it is not empty (a packaged build), else the
// module's tag, or "(devel)" for a build that is not of a tag; the revision
// is there when the build recorded one.
func formatVersion(linked string, bi *debug.BuildInfo, platform string) string {
	version, goVersion := "(devel)", runtime.Version()
	var vcs []string
	if bi != nil {
		goVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
			version = v
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			vcs = append(vcs, "revision "+rev[:min(len(rev), 12)])
			if t := settings["vcs.time"]; t != "" {
				vcs = append(vcs, t)
			}
			if settings["vcs.modified"] == "true" {
				vcs = append(vcs, "modified")
			}
		}
	}
	if linked != "" {
		version = linked
	}
	line := "boxrun " + version
	if len(vcs) > 0 {
		line += " (" + strings.Join(vcs, ", ") + ")"
	}
	return line + " " + goVersion + " " + platform
}

// runVersion implements `boxrun version`.
func runVersion(_ context.Context, _ options, args []string, stdout io.Writer, out *printer) int {
	fs := newSubcommand("version", "usage: boxrun version", out)
	if code, done := parseSubcommand(fs, "version", args, "", out); done {
		return code
	}
	if !noArguments(fs, "version", "boxrun version takes no argument", out) {
		return exitBoxrunFailed
	}
	fmt.Fprintln(stdout, versionLine())
	return 0
}
