package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// seeAlso are the man pages boxrun(1) refers to. Read-only.
var seeAlso = []string{"systemd-run(1)", "systemd.resource-control(5)", "systemd.scope(5)", "cgroups(7)", "oom_score_adj in proc(5)"}

// writeMan writes the manual page boxrun(1) in roff, from what --help
// says: the same commands, flags and tables.
func writeMan(w io.Writer) {
	fmt.Fprintf(w, ".TH BOXRUN 1 \"\" \"boxrun\" \"User Commands\"\n")
	fmt.Fprintf(w, ".SH NAME\nboxrun \\- %s\n", roff(summary))
	fmt.Fprintf(w, ".SH SYNOPSIS\n.nf\n")
	lines := []string{rootSynopsis}
	for _, c := range subcommands("") {
		lines = append(lines, c.synopsis...)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "\\fBboxrun\\fR %s\n", roff(l))
	}
	fmt.Fprintf(w, ".fi\n.SH DESCRIPTION\n%s\n", roff(description))
	fmt.Fprintf(w, ".PP\nA program that is called like a command of boxrun runs with \\fBboxrun \\-\\- NAME\\fR.\n")
	fmt.Fprintf(w, ".SH OPTIONS\n")
	writeManFlags(w, rootFlags())
	fmt.Fprintf(w, ".SH COMMANDS\n")
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		fmt.Fprintf(w, ".SS %s\n.nf\n", roff("boxrun "+c.name))
		for _, l := range c.synopsis {
			fmt.Fprintf(w, "\\fBboxrun\\fR %s\n", roff(l))
		}
		fmt.Fprintf(w, ".fi\n.PP\n%s.\n", roff(capitalize(c.summary)))
		writeManFlags(w, describeFlags(c))
	}
	fmt.Fprintf(w, ".SH ENVIRONMENT\n")
	writeManTable(w, environment)
	fmt.Fprintf(w, ".PP\nThe command gets:\n")
	writeManTable(w, commandEnvironment)
	fmt.Fprintf(w, ".SH FILES\nPolicies are looked up in, nearest first (a nearer definition of a name replaces a farther one):\n")
	for i, l := range lookup {
		fmt.Fprintf(w, ".IP %d. 4\n%s\n", i+1, roff(l))
	}
	fmt.Fprintf(w, ".SH EXIT STATUS\n")
	writeManTable(w, exitStatuses)
	fmt.Fprintf(w, ".SH EXAMPLES\n.nf\n")
	for _, e := range rootExamples {
		fmt.Fprintf(w, "%s\n", roff(e))
	}
	for _, c := range commands() {
		for _, e := range c.examples {
			fmt.Fprintf(w, "%s\n", roff(e))
		}
	}
	fmt.Fprintf(w, ".fi\n.SH SEE ALSO\n")
	for i, s := range seeAlso {
		sep := ","
		if i == len(seeAlso)-1 {
			sep = ""
		}
		if name, sect, ok := strings.Cut(strings.TrimSuffix(s, ")"), "("); ok && !strings.Contains(s, " ") {
			fmt.Fprintf(w, ".BR %s (%s)%s\n", name, sect, sep)
		} else {
			fmt.Fprintf(w, "%s%s\n", roff(s), sep)
		}
	}
}

// writeManFlags lists the flags of fs as tagged paragraphs.
func writeManFlags(w io.Writer, fs *pflag.FlagSet) {
	for _, d := range flagDocs(fs) {
		fmt.Fprintf(w, ".TP\n\\fB%s\\fR\n%s\n", roff(strings.TrimSpace(d.names)), roff(d.usage))
	}
}

func writeManTable(w io.Writer, rows []envVar) {
	for _, r := range rows {
		fmt.Fprintf(w, ".TP\n\\fB%s\\fR\n%s\n", roff(r.name), roff(r.meaning))
	}
}

// roff escapes text for roff: backslashes, hyphens (so that they are not
// hyphenation points and copy as "-"), characters beyond ASCII (as \[uXXXX],
// which needs no preprocessor), and a leading period or quote.
func roff(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 127:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
