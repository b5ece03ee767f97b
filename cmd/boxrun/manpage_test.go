package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestManPage renders boxrun help --man with man(1) and checks its sections
// and that it names every flag of every command.
func TestManPage(t *testing.T) {
	code, page, stderr := runCLI(t, "help", "--man")
	if code != 0 || stderr != "" {
		t.Fatalf("help --man: exit %d, stderr %q", code, stderr)
	}
	golden(t, "boxrun.1", page)
	man, err := exec.LookPath("man")
	if err != nil {
		t.Fatalf("man is needed for this test: %v", err)
	}
	cmd := exec.Command(man, "-E", "ascii", "-l", writeFile(t, "boxrun.1", page))
	cmd.Env = append(cmd.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "MAN_KEEP_FORMATTING=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	text := string(out)
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(text, "\n"+section+"\n") {
			t.Errorf("the rendered page has no %s section", section)
		}
	}
	if !strings.Contains(text, "boxrun - "+summary[:20]) {
		t.Errorf("NAME does not give the summary:\n%s", text[:min(len(text), 400)])
	}
	// Every flag, with the words of the page joined again where man broke
	// lines.
	flat := strings.Join(strings.Fields(text), " ")
	check := func(where string, fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(flat, "--"+f.Name) {
				t.Errorf("%s: --%s is not on the page", where, f.Name)
			}
		})
	}
	check("boxrun", rootFlags())
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		if !strings.Contains(flat, "boxrun "+c.name) {
			t.Errorf("boxrun %s is not on the page", c.name)
		}
		check("boxrun "+c.name, describeFlags(c))
	}
	for _, e := range environment {
		if !strings.Contains(flat, strings.Fields(e.name)[0]) {
			t.Errorf("%s is not on the page", e.name)
		}
	}
}

// TestManPageHasNoTroffWarnings runs groff with warnings on.
func TestManPageHasNoTroffWarnings(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Fatal("groff is not installed (apt-get install groff-base): the man page cannot be checked for warnings")
	}
	_, page, _ := runCLI(t, "help", "--man")
	cmd := exec.Command(groff, "-man", "-Tascii", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -ww: %v\n%s", err, out)
	}
}
