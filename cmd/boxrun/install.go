package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxrun/boxrun/internal/systemd"
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
	fs := newSubcommand(verb, fmt.Sprintf("usage: boxrun %s user-unit\n       boxrun %s cargo-hook [--shim DIR | --config [--global]]\n       sudo boxrun %s signal-tracer", verb, verb, verb), out)
	shimDir := fs.String("shim", "", "cargo-hook: the directory of the cargo shim (default ~/.local/bin)")
	config := fs.Bool("config", false, "cargo-hook: a runner in .cargo/config.toml instead of a shim: each test binary in its own box")
	global := fs.Bool("global", false, "cargo-hook --config: in ~/.cargo/config.toml rather than ./.cargo/config.toml")
	if code, done := parseSubcommand(fs, verb, args, "", out); done {
		return code
	}
	if fs.NArg() == 1 && fs.Arg(0) == "cargo-hook" {
		if *config && fs.Changed("shim") {
			out.errorf("%s cargo-hook: --shim and --config are two ways; pick one", verb)
			return exitBoxrunFailed
		}
		return runCargoHook(install, *shimDir, *config, *global, out)
	}
	if fs.NArg() == 1 && fs.Arg(0) == "signal-tracer" {
		return runInstallTracer(ctx, install, out)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "user-unit" {
		out.errorf("%s: what to %s? user-unit, cargo-hook or signal-tracer", verb, verb)
		out.hintf("boxrun %s user-unit, boxrun %s cargo-hook, or sudo boxrun %s signal-tracer", verb, verb, verb)
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
		removed, err := systemd.UninstallUserUnit(ctx, file)
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
	exe, ok := unitExe("user-unit", out)
	if !ok {
		return 1
	}
	if err := systemd.InstallUserUnit(ctx, file, protectUnit(exe)); err != nil {
		out.errorf("install user-unit: %v", err)
		return 1
	}
	out.infof("installed, enabled and started %s (%s), running %s protect --watch", protectUnitName, file, exe)
	out.hintf("see what it does: journalctl --user -u %s", protectUnitName)
	return 0
}

// unitExe is the path of the running boxrun, for a unit to run, with a
// warning when it is a temporary build; ok is false (and the error
// printed) when it cannot be found.
func unitExe(what string, out *printer) (exe string, ok bool) {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		out.errorf("install %s: finding the boxrun binary: %v", what, err)
		return "", false
	}
	if strings.HasPrefix(exe, os.TempDir()+"/") || strings.Contains(exe, "/go-build") {
		out.warnf("the unit will run %s, a temporary build; install boxrun first (go install ./cmd/boxrun) and run that", exe)
	}
	return exe, true
}

// runCargoHook installs or removes the cargo hook: a cargo shim in dir
// (default ~/.local/bin), or with config a runner in a cargo config file.
func runCargoHook(install bool, dir string, config, global bool, out *printer) int {
	verb := "uninstall"
	if install {
		verb = "install"
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		out.errorf("%s cargo-hook: finding the boxrun binary: %v", verb, err)
		return 1
	}
	if install && (strings.HasPrefix(exe, os.TempDir()+"/") || strings.Contains(exe, "/go-build")) {
		out.warnf("the hook will run %s, a temporary build; install boxrun first (go install ./cmd/boxrun) and run that", exe)
	}
	if config {
		return cargoConfigHook(install, global, exe, out)
	}
	if dir == "" {
		home := os.Getenv("HOME")
		if !filepath.IsAbs(home) {
			out.errorf("%s cargo-hook: HOME is not set to an absolute path; say where with --shim DIR", verb)
			return exitBoxrunFailed
		}
		dir = filepath.Join(home, ".local", "bin")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if !install {
		had, err := uninstallShim(dir)
		if err != nil {
			out.errorf("uninstall cargo-hook: %v", err)
			return 1
		}
		if !had {
			out.infof("no boxrun cargo shim in %s", dir)
			return 0
		}
		out.infof("removed the cargo shim from %s", dir)
		return 0
	}
	did, err := installShim(dir, exe)
	if err != nil {
		out.errorf("install cargo-hook: %v", err)
		return 1
	}
	out.infof("%s: cargo test, bench, nextest and miri test now run under boxrun --policy tests (BOXRUN_CARGO_POLICY picks another)", did)
	if p := shimPathProblem(dir, os.Getenv("PATH")); p != "" {
		out.warnf("%s", p)
	}
	return 0
}

// cargoConfigHook adds or removes the runner in .cargo/config.toml.
func cargoConfigHook(install, global bool, exe string, out *printer) int {
	verb := "uninstall"
	if install {
		verb = "install"
	}
	var file string
	if global {
		home := os.Getenv("CARGO_HOME")
		if home == "" {
			if h := os.Getenv("HOME"); filepath.IsAbs(h) {
				home = filepath.Join(h, ".cargo")
			}
		}
		if home == "" {
			out.errorf("%s cargo-hook --config --global: neither CARGO_HOME nor HOME is set", verb)
			return exitBoxrunFailed
		}
		file = filepath.Join(home, "config.toml")
	} else {
		cwd, err := os.Getwd()
		if err != nil {
			out.errorf("%s cargo-hook --config: %v", verb, err)
			return 1
		}
		file = filepath.Join(cwd, ".cargo", "config.toml")
	}
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		out.errorf("%s cargo-hook: reading %s: %v", verb, file, err)
		return 1
	}
	var updated []byte
	if install {
		if updated, err = addRunner(data, exe); err != nil {
			out.errorf("install cargo-hook: %s: %v", file, err)
			return 1
		}
	} else {
		var had bool
		if updated, had, err = removeRunner(data); err != nil {
			out.errorf("uninstall cargo-hook: %s: %v", file, err)
			return 1
		} else if !had {
			out.infof("no boxrun runner in %s", file)
			return 0
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		out.errorf("%s cargo-hook: %v", verb, err)
		return 1
	}
	if err := replaceFile(file, updated); err != nil {
		out.errorf("%s cargo-hook: writing %s: %v", verb, file, err)
		return 1
	}
	if install {
		out.infof("added a runner to %s: every binary cargo runs (each test binary, cargo run) runs in its own box under boxrun --policy tests", file)
	} else {
		out.infof("removed the boxrun runner from %s", file)
	}
	return 0
}

// replaceFile writes data to a new file beside path and renames it over
// path, keeping path's mode: a reader (cargo) never sees half of it, and a
// failed write leaves the old file as it was. A path that is a symbolic
// link (a config kept with dotfiles) stays one: its target is replaced.
func replaceFile(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	return writeReplacing(path, mode, func(w io.Writer) error { _, err := w.Write(data); return err })
}
