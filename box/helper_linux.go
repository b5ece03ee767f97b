package box

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperArg is the first argument that makes the boxrun binary act as the
// start-then-release helper instead of the CLI. main must check IsHelper
// before anything else.
const helperArg = "__boxrun-exec"

// The helper's inherited descriptors (exec.Cmd.ExtraFiles start at 3).
const (
	helperReleaseFD = 3 // read end: the parent writes the release message and closes
	helperStatusFD  = 4 // write end: the helper reports warnings and exec errors, closed by exec
)

// releaseMagic starts a release message; an empty read (EOF) means abort.
const releaseMagic = "GO\x00"

// helperConfig is what the helper does between release and exec.
type helperConfig struct {
	oomScoreAdj *int
	nproc       uint64 // RLIMIT_NPROC to set, 0 for none
	path        string
	argv        []string
}

// helperArgs builds the helper's command line.
func helperArgs(c helperConfig) []string {
	args := []string{helperArg}
	if c.oomScoreAdj != nil {
		args = append(args, "--oom-score-adj", strconv.Itoa(*c.oomScoreAdj))
	}
	if c.nproc != 0 {
		args = append(args, "--nproc", strconv.FormatUint(c.nproc, 10))
	}
	args = append(args, "--", c.path)
	return append(args, c.argv...)
}

// parseHelperArgs is the inverse of helperArgs.
func parseHelperArgs(args []string) (helperConfig, error) {
	var c helperConfig
	if len(args) == 0 || args[0] != helperArg {
		return c, errors.New("not a helper invocation")
	}
	args = args[1:]
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return c, fmt.Errorf("helper: flag %q needs a value", args[0])
		}
		switch args[0] {
		case "--oom-score-adj":
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return c, fmt.Errorf("helper: bad --oom-score-adj %q", args[1])
			}
			c.oomScoreAdj = &n
		case "--nproc":
			n, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return c, fmt.Errorf("helper: bad --nproc %q", args[1])
			}
			c.nproc = n
		default:
			return c, fmt.Errorf("helper: unknown flag %q", args[0])
		}
		args = args[2:]
	}
	if len(args) < 3 {
		return c, errors.New("helper: missing command after --")
	}
	c.path, c.argv = args[1], args[2:]
	return c, nil
}

// IsHelper reports whether args (os.Args) are an invocation of one of
// boxrun's internal roles (the exec helper or the backpressure guard).
func IsHelper(args []string) bool {
	return len(args) > 1 && (args[1] == helperArg || args[1] == GuardArg)
}

// RunHelper is the helper's whole life: wait to be placed in the box, apply
// the per-process settings, and exec the command. It returns only when the
// command could not be started, with the exit status to use (125 when the
// parent aborted or on misuse, 126 not executable, 127 not found). Its
// process then exits; the parent learns why through the status pipe.
func RunHelper(args []string) int {
	if IsGuard(args) {
		return runGuard(args, nil)
	}
	status := os.NewFile(helperStatusFD, "boxrun-status")
	report := func(code int, format string, a ...any) int {
		if status != nil {
			fmt.Fprintf(status, "E %d %s\n", code, fmt.Sprintf(format, a...))
		}
		return code
	}
	c, err := parseHelperArgs(args[1:])
	if err != nil {
		return report(125, "%v", err)
	}
	release := os.NewFile(helperReleaseFD, "boxrun-release")
	if release == nil {
		return report(125, "helper: no release pipe (do not run %s by hand)", helperArg)
	}
	msg, err := io.ReadAll(release)
	release.Close()
	if err != nil || !bytes.HasPrefix(msg, []byte(releaseMagic)) {
		// The parent gave up before placing us: leave without a word.
		return 125
	}
	var box []string
	for _, kv := range bytes.Split(msg[len(releaseMagic):], []byte{0}) {
		if len(kv) > 0 {
			box = append(box, string(kv))
		}
	}
	env := withBoxEnv(os.Environ(), box)
	if c.oomScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*c.oomScoreAdj)), 0); err != nil {
			fmt.Fprintf(status, "W setting oom_score_adj to %d: %v\n", *c.oomScoreAdj, err)
		}
	}
	if c.nproc != 0 {
		lim := unix.Rlimit{Cur: c.nproc, Max: c.nproc}
		var old unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NPROC, &old); err == nil && old.Max < c.nproc {
			lim = unix.Rlimit{Cur: old.Max, Max: old.Max} // cannot raise the hard limit
		}
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &lim); err != nil {
			fmt.Fprintf(status, "W setting RLIMIT_NPROC to %d: %v\n", c.nproc, err)
		}
	}
	// The status pipe must close when exec succeeds.
	unix.CloseOnExec(helperStatusFD)
	err = unix.Exec(c.path, c.argv, env)
	code := 126
	if errors.Is(err, syscall.ENOENT) {
		code = 127
	}
	return report(code, "%s: %v", c.argv[0], err)
}

// helperStatus is what the helper said on its status pipe.
type helperStatus struct {
	warnings []string
	execCode int // 0 when exec succeeded
	execErr  string
}

// parseHelperStatus reads the helper's status messages until EOF.
func parseHelperStatus(data []byte) helperStatus {
	var s helperStatus
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "W "):
			s.warnings = append(s.warnings, line[2:])
		case strings.HasPrefix(line, "E "):
			codeStr, msg, _ := strings.Cut(line[2:], " ")
			code, err := strconv.Atoi(codeStr)
			if err != nil {
				code = 125
			}
			s.execCode, s.execErr = code, msg
		}
	}
	return s
}

// withBoxEnv is env with the box's variables (BOXRUN_POLICY, BOXRUN_UNIT,
// BOXRUN_CGROUP as KEY=VALUE in box) set: inherited copies are dropped
// first, since the first copy of a variable is the one programs see, and a
// copy inherited from a box the caller has left would name that box.
func withBoxEnv(env, box []string) []string {
	out := make([]string, 0, len(env)+len(box))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == EnvPolicy || k == EnvUnit || k == EnvCgroup {
			continue
		}
		out = append(out, kv)
	}
	return append(out, box...)
}
