package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxrun/boxrun/sandbox"
)

// protectUnitName is the user unit that keeps the editor protected.
const protectUnitName = "boxrun-protect.service"

// protectUnitTemplate is contrib/systemd/boxrun-protect.service with
// @BOXRUN@ for the path of the binary (a test keeps the two equal).
const protectUnitTemplate = `# boxrun-protect.service: keeps the editor (the groups of the tests policy)
# shielded from the OOM killer and from reclaim, re-applying protection as
# new editor processes start. Install it for your user with
#
#   boxrun install user-unit
#
# which writes this file with the path of the boxrun binary to
# ~/.config/systemd/user/ and enables and starts it; remove it with
# boxrun uninstall user-unit. What it changed is undone by
# boxrun protect --undo.

[Unit]
Description=boxrun: protect the editor from the OOM killer and memory pressure
Documentation=https://github.com/boxrun/boxrun#protecting-the-editor

[Service]
Type=notify
ExecStart=@BOXRUN@ protect --watch
Restart=on-failure
RestartSec=5s
# It polls /proc every 2 seconds and holds a few MB.
MemoryMax=64M
TasksMax=32

[Install]
WantedBy=default.target
`

// unitExecPath quotes a path for ExecStart: % starts a specifier, $ a
// variable, and a path with spaces or quotes needs double quotes.
func unitExecPath(p string) string {
	p = strings.NewReplacer("%", "%%", "$", "$$").Replace(p)
	if strings.ContainsAny(p, " \t\"'\\") {
		p = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return p
}

// protectUnit renders the unit for the boxrun binary at exe.
func protectUnit(exe string) string {
	return strings.Replace(protectUnitTemplate, "@BOXRUN@", unitExecPath(exe), 1)
}

// userUnitPath is where the user manager reads the unit from.
func userUnitPath(getenv func(string) string) (string, error) {
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		return "", errors.New("HOME is not set to an absolute path: cannot find ~/.config/systemd/user")
	}
	return filepath.Join(home, ".config", "systemd", "user", protectUnitName), nil
}

// runInstall implements `boxrun install user-unit` (install=true) and
// `boxrun uninstall user-unit`.
func runInstall(ctx context.Context, install bool, args []string, stdout io.Writer, out *printer) int {
	verb := "uninstall"
	if install {
		verb = "install"
	}
	fs := pflag.NewFlagSet("boxrun "+verb, pflag.ContinueOnError)
	fs.SetOutput(out.w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: boxrun %s user-unit\n", verb)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		out.errorf("%s: %v", verb, err)
		return exitBoxrunFailed
	}
	if fs.NArg() != 1 || fs.Arg(0) != "user-unit" {
		out.errorf("%s: what to %s? the only thing is user-unit", verb, verb)
		out.hintf("boxrun %s user-unit", verb)
		return exitBoxrunFailed
	}
	if os.Geteuid() == 0 {
		out.errorf("%s user-unit: run it as the user whose editor to protect, without sudo (it talks to that user's systemd manager)", verb)
		return exitBoxrunFailed
	}
	file, err := userUnitPath(os.Getenv)
	if err != nil {
		out.errorf("%s user-unit: %v", verb, err)
		return exitBoxrunFailed
	}
	if !install {
		removed, err := sandbox.UninstallUserUnit(ctx, file)
		if err != nil {
			out.errorf("uninstall user-unit: %v", err)
			return 1
		}
		if !removed {
			out.infof("%s was not installed", protectUnitName)
			return 0
		}
		out.infof("stopped, disabled and removed %s (%s)", protectUnitName, file)
		out.hintf("boxrun protect --undo restores what it changed")
		return 0
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		out.errorf("install user-unit: finding the boxrun binary: %v", err)
		return 1
	}
	if strings.HasPrefix(exe, os.TempDir()+"/") || strings.Contains(exe, "/go-build") {
		out.warnf("the unit will run %s, a temporary build; install boxrun first (go install ./cmd/boxrun) and run that", exe)
	}
	if err := sandbox.InstallUserUnit(ctx, file, protectUnit(exe)); err != nil {
		out.errorf("install user-unit: %v", err)
		return 1
	}
	out.infof("installed, enabled and started %s (%s), running %s protect --watch", protectUnitName, file, exe)
	out.hintf("see what it does: journalctl --user -u %s", protectUnitName)
	return 0
}
