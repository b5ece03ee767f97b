package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// packaged are the files both packages carry, with their mode as ls shows
// it. Anything else in a package is a mistake.
var packaged = map[string]string{
	"/usr/bin/boxrun":                                  "-rwxr-xr-x",
	"/usr/share/man/man1/boxrun.1.gz":                  "-rw-r--r--",
	"/usr/share/bash-completion/completions/boxrun":    "-rw-r--r--",
	"/usr/share/zsh/vendor-completions/_boxrun":        "-rw-r--r--",
	"/usr/share/fish/vendor_completions.d/boxrun.fish": "-rw-r--r--",
	"/usr/lib/systemd/user/boxrun-protect.service":     "-rw-r--r--",
	"/usr/lib/systemd/system/boxrun-signals.service":   "-rw-r--r--",
}

// completions are the completion files and the shell each is for.
var completions = map[string]string{
	"/usr/share/bash-completion/completions/boxrun":    "bash",
	"/usr/share/zsh/vendor-completions/_boxrun":        "zsh",
	"/usr/share/fish/vendor_completions.d/boxrun.fish": "fish",
}

// need returns the path of tool, or fails the test naming the Debian
// package that has it: the test never skips for a missing tool.
func need(t *testing.T, tool, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s): the packages cannot be checked without it", tool, debianPackage)
	}
	return p
}

// output runs name with args (in dir, with env added to the environment)
// and returns its standard output; it fails the test with the standard
// error when the command fails.
func output(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// TestVersion checks the versions packaging/version makes from what git
// describe prints, and that dpkg takes each as it is.
func TestVersion(t *testing.T) {
	dpkg := need(t, "dpkg", "dpkg")
	tests := []struct {
		name, describe, want string
	}{
		{"a tag", "v1.2.3", "1.2.3"},
		{"a tag without v", "1.2.3", "1.2.3"},
		{"a pre-release sorts before its release", "v1.2.3-rc.1", "1.2.3~rc.1"},
		{"commits after a tag", "v1.2.3-4-g1a2b3c4", "1.2.3+4.g1a2b3c4"},
		{"commits after a tag, dirty", "v1.2.3-4-g1a2b3c4-dirty", "1.2.3+4.g1a2b3c4.dirty"},
		{"a tag, dirty", "v1.2.3-dirty", "1.2.3+dirty"},
		{"commits after a pre-release", "v1.2.3-rc.1-12-g1a2b3c4d", "1.2.3~rc.1+12.g1a2b3c4d"},
		{"a tag with build metadata", "v1.2.3+meta-2-g1a2b3c4", "1.2.3+meta.2.g1a2b3c4"},
		{"no tag", "1a2b3c4", "0.0.0~git1a2b3c4"},
		{"no tag, dirty", "1a2b3c4-dirty", "0.0.0~git1a2b3c4+dirty"},
		{"no tag, a longer abbreviation", "1a2b3c4d5e6f", "0.0.0~git1a2b3c4d5e6f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.TrimSpace(output(t, ".", nil, "./version", tt.describe))
			if got != tt.want {
				t.Errorf("version %q = %q, want %q", tt.describe, got, tt.want)
			}
			if out, err := exec.Command(dpkg, "--validate-version", got).CombinedOutput(); err != nil {
				t.Errorf("dpkg refuses %q: %v %s", got, err, out)
			}
			// rpm takes no '-' in a version; the rest of its syntax is
			// checked by building the .rpm (TestPackages).
			if strings.Contains(got, "-") {
				t.Errorf("%q has a '-', which rpm does not take", got)
			}
		})
	}
	// What cannot become a version is refused, saying why.
	refused := []struct {
		name, describe, want string
	}{
		{"empty", "", "DESCRIBE is empty"},
		{"a tag that is not a version", "release-x", "tag release-x does not name a version"},
		{"a tag with an underscore", "v1.2_3", "tag v1.2_3 has characters"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command("./version", tt.describe).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("version %q: %v %q, want a failure saying %q", tt.describe, err, out, tt.want)
			}
		})
	}
}

// TestPackages runs make package once, into a temporary DIST, and checks
// both packages: the .deb's control fields and files with dpkg-deb; the
// .deb installed for real with dpkg -i into a scratch root, where the
// binary, the man page, the completions and the unit are checked; the
// .rpm's header and files with rpm, and its payload against the .deb's.
func TestPackages(t *testing.T) {
	makeCmd := need(t, "make", "make")
	need(t, "git", "git")
	need(t, "gzip", "gzip")
	dpkg := need(t, "dpkg", "dpkg")
	dpkgDeb := need(t, "dpkg-deb", "dpkg")
	man := need(t, "man", "man-db")
	rpm := need(t, "rpm", "rpm")
	rpm2cpio := need(t, "rpm2cpio", "rpm")
	cpio := need(t, "cpio", "cpio")

	dist := t.TempDir()
	start := time.Now()
	cmd := exec.Command(makeCmd, "-C", "..", "package", "DIST="+dist)
	// Not a sub-make of a make unit that ran this test: no jobserver.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	t.Logf("make package took %s", time.Since(start).Round(time.Millisecond))

	want := strings.TrimSpace(output(t, ".", nil, "./version"))
	if b, err := os.ReadFile(filepath.Join(dist, "VERSION")); err != nil || strings.TrimSpace(string(b)) != want {
		t.Fatalf("make package made version %q (%v); packaging/version says %q", b, err, want)
	}
	deb, rpmFile := only(t, dist, "*.deb"), only(t, dist, "*.rpm")

	t.Run("deb", func(t *testing.T) {
		fields := controlFields(output(t, "", nil, dpkgDeb, "--info", deb))
		arch := strings.TrimSpace(output(t, "", nil, dpkg, "--print-architecture"))
		for k, v := range map[string]string{"Package": "boxrun", "Version": want, "Architecture": arch} {
			if fields[k] != v {
				t.Errorf("dpkg-deb --info: %s is %q, want %q", k, fields[k], v)
			}
		}
		for _, k := range []string{"Maintainer", "Description", "Installed-Size", "Homepage"} {
			if fields[k] == "" {
				t.Errorf("dpkg-deb --info: no %s", k)
			}
		}
		files := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(output(t, "", nil, dpkgDeb, "--contents", deb)), "\n") {
			// drwxr-xr-x root/root 0 2025-01-02 03:04 ./usr/bin/
			f := strings.Fields(line)
			if len(f) != 6 {
				t.Errorf("dpkg-deb --contents: unexpected line %q", line)
				continue
			}
			mode, owner, path := f[0], f[1], strings.TrimPrefix(f[5], ".")
			if owner != "root/root" {
				t.Errorf("%s belongs to %s, want root/root", path, owner)
			}
			if strings.HasPrefix(mode, "d") {
				if mode != "drwxr-xr-x" {
					t.Errorf("directory %s has mode %s, want drwxr-xr-x", path, mode)
				}
				continue
			}
			files[path] = mode
		}
		sameFiles(t, "dpkg-deb --contents", files)
	})

	t.Run("dpkg -i", func(t *testing.T) {
		// A real dpkg -i, into a scratch root with a database of its own:
		// --instdir puts the files under root, --admindir keeps dpkg's
		// database (status, info/, triggers/) there, away from the host's,
		// and --log keeps its log there too. This runs what installing the
		// package runs — unpacking, conffile and md5sums bookkeeping, the
		// file list, configure — where dpkg-deb -x would only unpack.
		// --root would do the same but also chroots for maintainer scripts
		// and needs root; --force-not-root lets a developer run this
		// unprivileged. The packages have no maintainer scripts, and the
		// host's triggers (man-db's) are unknown to the scratch database,
		// so nothing of the host runs or changes. --path-include=* undoes
		// a host's path-exclude (slim images drop /usr/share/man), which
		// would silently leave files out.
		root := t.TempDir()
		admin := filepath.Join(root, "var", "lib", "dpkg")
		for _, d := range []string{"info", "updates", "triggers"} {
			if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		hostList := "/var/lib/dpkg/info/boxrun.list"
		_, err := os.Stat(hostList)
		hostHadBoxrun := err == nil
		scratch := []string{"--force-not-root", "--admindir=" + admin, "--instdir=" + root, "--log=" + filepath.Join(root, "dpkg.log")}
		// dpkg wants ldconfig and start-stop-daemon on PATH, which a
		// user's PATH may lack.
		env := []string{"PATH=" + os.Getenv("PATH") + ":/usr/sbin:/sbin"}
		output(t, "", env, dpkg, append(scratch, "--path-include=*", "-i", deb)...)
		if _, err := os.Stat(hostList); !hostHadBoxrun && err == nil {
			t.Errorf("dpkg -i wrote to the host's database: %s exists", hostList)
		}

		status := controlFields(output(t, "", nil, dpkg, "--admindir="+admin, "--status", "boxrun"))
		if status["Status"] != "install ok installed" || status["Version"] != want {
			t.Errorf("dpkg --status boxrun: Status %q, Version %q; want install ok installed, %q", status["Status"], status["Version"], want)
		}
		// The files on disk are the package's, byte for byte.
		if out := output(t, "", nil, dpkg, append(scratch, "--verify", "boxrun")...); out != "" {
			t.Errorf("dpkg --verify boxrun:\n%s", out)
		}
		for path, mode := range packaged {
			fi, err := os.Stat(filepath.Join(root, path))
			if err != nil {
				t.Errorf("not installed: %v", err)
			} else if fi.Mode().String() != mode {
				t.Errorf("%s is installed %s, want %s", path, fi.Mode(), mode)
			}
		}
		if t.Failed() {
			return
		}

		boxrun := filepath.Join(root, "usr", "bin", "boxrun")
		t.Run("version", func(t *testing.T) {
			got := output(t, "", nil, boxrun, "--version")
			if !strings.HasPrefix(got, "boxrun "+want+" ") {
				t.Errorf("boxrun --version says %q, want boxrun %s ...", got, want)
			}
		})

		t.Run("man page", func(t *testing.T) {
			page := filepath.Join(root, "usr", "share", "man", "man1", "boxrun.1.gz")
			f, err := os.Open(page)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("%s is not gzip: %v", page, err)
			}
			// gzip -n: no file name or time in the header, so that the
			// same page compresses to the same bytes.
			if zr.Name != "" || !zr.ModTime.IsZero() {
				t.Errorf("gzip header has name %q and time %v, want none (gzip -n)", zr.Name, zr.ModTime)
			}
			roff, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("reading %s: %v", page, err)
			}
			if string(roff) != output(t, "", nil, boxrun, "help", "--man") {
				t.Errorf("the packaged page is not what the packaged boxrun help --man prints")
			}
			cmd := exec.Command(man, "-E", "ascii", "-l", page)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "MAN_KEEP_FORMATTING=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			text, err := cmd.Output()
			if err != nil {
				t.Fatalf("man -l %s: %v\n%s", page, err, stderr.Bytes())
			}
			for _, s := range []string{"BOXRUN(1)", "\nNAME\n", "boxrun - run a command", "\nSYNOPSIS\n", "\nSEE ALSO\n"} {
				if !strings.Contains(string(text), s) {
					t.Errorf("man -l %s: %q is not on the rendered page:\n%s", page, s, text[:min(len(text), 600)])
				}
			}
		})

		t.Run("completions", func(t *testing.T) {
			for path, shell := range completions {
				got, err := os.ReadFile(filepath.Join(root, path))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != output(t, "", nil, boxrun, "completion", shell) {
					t.Errorf("%s is not what the packaged boxrun completion %s prints", path, shell)
				}
			}
			// zsh autoloads only files that start with #compdef.
			zsh, _ := os.ReadFile(filepath.Join(root, "usr", "share", "zsh", "vendor-completions", "_boxrun"))
			if !bytes.HasPrefix(zsh, []byte("#compdef boxrun\n")) {
				t.Errorf("_boxrun does not start with #compdef boxrun: zsh would not load it")
			}
		})

		t.Run("units", func(t *testing.T) {
			for unit, dir := range map[string]string{"boxrun-protect.service": "user", "boxrun-signals.service": "system"} {
				contrib, err := os.ReadFile(filepath.Join("..", "contrib", "systemd", unit))
				if err != nil {
					t.Fatal(err)
				}
				const from, to = "\nExecStart=/usr/local/bin/boxrun ", "\nExecStart=/usr/bin/boxrun "
				if !bytes.Contains(contrib, []byte(from)) {
					t.Fatalf("contrib/systemd/%s has no %q line; keep the Makefile's sed and this test in step", unit, strings.TrimSpace(from))
				}
				wantUnit := strings.Replace(string(contrib), from, to, 1)
				got, err := os.ReadFile(filepath.Join(root, "usr", "lib", "systemd", dir, unit))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != wantUnit {
					t.Errorf("the packaged unit is not contrib/systemd/%s with ExecStart=/usr/bin/boxrun:\n%s", unit, got)
				}
			}
		})

		t.Run("purge", func(t *testing.T) {
			output(t, "", env, dpkg, append(scratch, "--purge", "boxrun")...)
			for path := range packaged {
				if _, err := os.Stat(filepath.Join(root, path)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there after dpkg --purge (%v)", path, err)
				}
			}
		})
	})

	t.Run("rpm", func(t *testing.T) {
		// rpm reads the package file only; --dbpath keeps it off the
		// host's rpm database, which a Debian host may not even have.
		db := []string{"--dbpath", t.TempDir()}
		header := output(t, "", nil, rpm, append(db, "-qp", "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpmFile)...)
		// nfpm's names for Go's architectures, where they differ.
		arch := runtime.GOARCH
		if a, ok := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}[arch]; ok {
			arch = a
		}
		if header != "boxrun "+want+" 1 "+arch {
			t.Errorf("rpm -qp: %q, want %q", header, "boxrun "+want+" 1 "+arch)
		}
		// The digests of header and payload are right.
		if out := output(t, "", nil, rpm, append(db, "--checksig", "--nosignature", rpmFile)...); !strings.Contains(out, "digests OK") {
			t.Errorf("rpm --checksig: %s", out)
		}
		// rpm -qlp, with modes and owners.
		files := map[string]string{}
		list := output(t, "", nil, rpm, append(db, "-qp", "--queryformat", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]", rpmFile)...)
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Errorf("rpm -qlp: unexpected line %q", line)
				continue
			}
			if f[1] != "root:root" {
				t.Errorf("%s belongs to %s, want root:root", f[2], f[1])
			}
			files[f[2]] = f[0]
		}
		sameFiles(t, "rpm -qlp", files)

		// The payload holds the same bytes as the .deb.
		debRoot, rpmRoot := t.TempDir(), t.TempDir()
		output(t, "", nil, dpkgDeb, "-x", deb, debRoot)
		extract := exec.Command("sh", "-c", `"$1" "$2" | "$3" -idm --quiet`, "sh", rpm2cpio, rpmFile, cpio)
		extract.Dir = rpmRoot
		if out, err := extract.CombinedOutput(); err != nil {
			t.Fatalf("rpm2cpio | cpio: %v\n%s", err, out)
		}
		for path := range packaged {
			d, errD := os.ReadFile(filepath.Join(debRoot, path))
			r, errR := os.ReadFile(filepath.Join(rpmRoot, path))
			if errD != nil || errR != nil || !bytes.Equal(d, r) {
				t.Errorf("%s differs between the .deb and the .rpm (%v, %v)", path, errD, errR)
			}
		}
	})
}

// only returns the one file in dir that matches pattern.
func only(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("make package made %d files matching %s in %s, want 1: %q", len(m), pattern, dir, m)
	}
	return m[0]
}

// controlField is a "Key: value" line of a Debian control paragraph, as
// dpkg-deb --info (indented) and dpkg --status print it.
var controlField = regexp.MustCompile(`(?m)^ ?([A-Z][A-Za-z-]*): (.*)$`)

// controlFields returns the fields of the control paragraph in out (the
// first line of each; continuation lines are left out).
func controlFields(out string) map[string]string {
	fields := map[string]string{}
	for _, m := range controlField.FindAllStringSubmatch(out, -1) {
		fields[m[1]] = strings.TrimSpace(m[2])
	}
	return fields
}

// sameFiles checks that files (path to mode) are exactly packaged.
func sameFiles(t *testing.T, where string, files map[string]string) {
	t.Helper()
	for path, mode := range packaged {
		switch got, ok := files[path]; {
		case !ok:
			t.Errorf("%s: %s is missing", where, path)
		case got != mode:
			t.Errorf("%s: %s has mode %s, want %s", where, path, got, mode)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if _, ok := packaged[path]; !ok {
			t.Errorf("%s: %s should not be in the package", where, path)
		}
	}
}
