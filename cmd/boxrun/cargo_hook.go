package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// shimMarker is on the second line of every cargo shim boxrun writes: only
// files with it are boxrun's to replace or remove.
const shimMarker = "# boxrun cargo shim"

// origSuffix names a cargo wrapper the shim was installed over; the shim
// runs it as the real cargo, and uninstalling puts it back.
const origSuffix = ".boxrun-orig"

// cargoShim renders the shim for the boxrun binary at boxrun, installed in
// dir. It runs cargo test (t), bench, nextest and miri test under
// boxrun --policy tests (or $BOXRUN_CARGO_POLICY) and everything else
// straight through; inside a box already it runs cargo directly.
func cargoShim(boxrun, dir string) string {
	return `#!/bin/sh
` + shimMarker + ` (boxrun install cargo-hook; remove with boxrun uninstall cargo-hook).
# Runs cargo test, bench, nextest and miri test in a boxrun box; everything
# else straight through to the real cargo.
boxrun=` + shellQuote(boxrun) + `
here=` + shellQuote(dir) + `

# The real cargo: a wrapper this shim was installed over, else the first
# cargo on PATH that is not a boxrun shim.
real=
if [ -x "$here/cargo` + origSuffix + `" ]; then
	real="$here/cargo` + origSuffix + `"
else
	oldifs=$IFS
	IFS=:
	for d in $PATH; do
		[ -n "$d" ] || d=.
		[ -x "$d/cargo" ] && [ ! -d "$d/cargo" ] || continue
		grep -q '^` + shimMarker + `' "$d/cargo" 2>/dev/null && continue
		real="$d/cargo"
		break
	done
	IFS=$oldifs
fi
if [ -z "$real" ]; then
	echo "boxrun cargo shim: no cargo found on PATH besides this shim ($0)" >&2
	exit 127
fi

# Already in a box (boxrun runs cargo, or a test runs cargo): no second one.
# The kernel says where this process runs; an inherited BOXRUN_CGROUP may
# be stale (a shell that left its box), so it is not asked.
if grep -Eq '^0::.*/boxrun-[^/]+-[0-9a-f]{8}(\.scope)?(/|$)' "${BOXRUN_SHIM_CGROUP_FILE:-/proc/self/cgroup}" 2>/dev/null; then
	exec "$real" "$@"
fi

# cargo's subcommand: the first argument that is not +toolchain or a global
# option (those taking a value take the next argument too).
sub=
next=
skip=
for a in "$@"; do
	if [ -n "$skip" ]; then skip=; continue; fi
	if [ -n "$sub" ]; then
		case $a in -*) continue ;; esac
		next=$a
		break
	fi
	case $a in
	+*) ;;
	--color|--config|--explain|-C|-Z) skip=1 ;;
	-*) ;;
	*) sub=$a; [ "$sub" = miri ] || break ;;
	esac
done
case $sub in
test|t|bench|nextest) box=1 ;;
miri) [ "$next" = test ] && box=1 ;;
esac
if [ -n "$box" ]; then
	exec "$boxrun" --policy "${BOXRUN_CARGO_POLICY:-tests}" -- "$real" "$@"
fi
exec "$real" "$@"
`
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isShim reports whether the file at path is a boxrun cargo shim.
func isShim(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	_, rest, _ := bytes.Cut(data, []byte("\n"))
	return bytes.HasPrefix(rest, []byte(shimMarker))
}

// installShim writes the shim as dir/cargo. A cargo there that is not a
// boxrun shim (the user's own wrapper) is moved to dir/cargo.boxrun-orig,
// and the shim runs it as the real cargo. It returns what it did, for the
// user.
func installShim(dir, boxrun string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making %s: %w", dir, err)
	}
	shim := filepath.Join(dir, "cargo")
	orig := shim + origSuffix
	did := "wrote " + shim
	if fi, err := os.Lstat(shim); err == nil {
		switch {
		case isShim(shim):
			did = "updated " + shim
		case fi.IsDir():
			return "", fmt.Errorf("%s is a directory", shim)
		default:
			if _, err := os.Lstat(orig); err == nil {
				return "", fmt.Errorf("%s is not boxrun's shim, and %s exists already: move one of them away first", shim, orig)
			}
			if err := os.Rename(shim, orig); err != nil {
				return "", fmt.Errorf("moving your %s aside: %w", shim, err)
			}
			did = fmt.Sprintf("moved your %s to %s (the shim runs it as cargo) and wrote the shim", shim, orig)
		}
	}
	tmp := shim + ".boxrun-tmp"
	if err := os.WriteFile(tmp, []byte(cargoShim(boxrun, dir)), 0o755); err != nil {
		return "", fmt.Errorf("writing %s: %w", shim, err)
	}
	if err := os.Rename(tmp, shim); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", shim, err)
	}
	return did, nil
}

// uninstallShim removes the shim from dir and puts back a wrapper it was
// installed over. It reports whether there was a shim.
func uninstallShim(dir string) (bool, error) {
	shim := filepath.Join(dir, "cargo")
	if !isShim(shim) {
		return false, nil
	}
	if err := os.Remove(shim); err != nil {
		return true, fmt.Errorf("removing %s: %w", shim, err)
	}
	if _, err := os.Lstat(shim + origSuffix); err == nil {
		if err := os.Rename(shim+origSuffix, shim); err != nil {
			return true, fmt.Errorf("putting back %s: %w", shim, err)
		}
	}
	return true, nil
}

// shimPathProblem says what keeps the shim in dir from being the cargo
// that runs, or "" when it is: dir is not on PATH, or another cargo comes
// first.
func shimPathProblem(dir, path string) string {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if filepath.Clean(d) == filepath.Clean(dir) {
			return ""
		}
		if fi, err := os.Stat(filepath.Join(d, "cargo")); err == nil && !fi.IsDir() {
			return fmt.Sprintf("%s comes before %s on PATH, so plain `cargo` runs it, not the shim: put %s first in PATH (in ~/.profile: export PATH=%q:$PATH)", filepath.Join(d, "cargo"), dir, dir, dir)
		}
	}
	return fmt.Sprintf("%s is not on PATH: add it first (in ~/.profile: export PATH=%q:$PATH)", dir, dir)
}

// The block boxrun adds to a cargo config file is between these lines; the
// begin line records how many newlines were added before it, so that
// removing it gives back the file byte for byte.
const (
	configBegin = "# boxrun: begin cargo-hook (boxrun uninstall cargo-hook --config removes it; separator "
	configEnd   = "# boxrun: end cargo-hook\n"
)

// runnerTable matches the table the hook would define.
var runnerTable = regexp.MustCompile(`(?m)^\s*\[\s*target\s*\.\s*(?:'cfg\(all\(\)\)'|"cfg\(all\(\)\)")\s*\]`)

// addRunner returns the cargo config with a runner that boxes every binary
// cargo runs (each test binary in its own box). It refuses a file that
// already has that table, and one that has the hook.
func addRunner(config []byte, boxrun string) ([]byte, error) {
	if bytes.Contains(config, []byte(configBegin)) {
		return nil, errors.New("the boxrun runner is there already")
	}
	if runnerTable.Match(config) {
		return nil, errors.New("it already has a [target.'cfg(all())'] table; add runner = [...] to it yourself, or remove it first")
	}
	sep := ""
	switch {
	case len(config) == 0:
	case config[len(config)-1] == '\n':
		sep = "\n"
	default:
		sep = "\n\n"
	}
	args := []string{boxrun, "--policy", "tests", "--"}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	block := fmt.Sprintf("%s%s%d)\n[target.'cfg(all())']\nrunner = [%s]\n%s", sep, configBegin, len(sep), strings.Join(quoted, ", "), configEnd)
	return append(append([]byte{}, config...), block...), nil
}

// removeRunner takes the hook out of a cargo config, exactly as addRunner
// put it in; ok is false when it is not there.
func removeRunner(config []byte) (out []byte, ok bool, err error) {
	start := bytes.Index(config, []byte(configBegin))
	if start < 0 {
		return config, false, nil
	}
	rest := config[start+len(configBegin):]
	nStr, _, found := bytes.Cut(rest, []byte(")\n"))
	n, convErr := strconv.Atoi(string(nStr))
	end := bytes.Index(config[start:], []byte(configEnd))
	if !found || convErr != nil || n < 0 || n > 2 || end < 0 || start < n || strings.Trim(string(config[start-n:start]), "\n") != "" {
		return nil, true, errors.New("the boxrun block was edited by hand: remove it yourself (between the # boxrun: lines)")
	}
	end += start + len(configEnd)
	return append(append([]byte{}, config[:start-n]...), config[end:]...), true, nil
}
