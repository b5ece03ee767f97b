package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file converts and validates single TOML values. The functions return
// errors without a location; the caller wraps them in a ParseError.

// Limits of the numeric settings.
const (
	minWeight          = 1
	maxWeight          = 10000
	minOOMScoreAdj     = -1000
	maxOOMScoreAdj     = 1000
	maxLeftoversGrace  = time.Hour
	minCPUMaxPercent   = 1      // the kernel rejects quotas under 1ms per period; 1% of the 100ms period
	maxCPUMaxPercent   = 819200 // 8192 CPUs, Linux's largest NR_CPUS
	maxNameLen         = 64
	nameCharsHint      = `letters, digits, "-" and "_"`
	leftoversKill      = "kill"
	leftoversKeep      = "keep"
	defaultLeftovers   = leftoversKill
	defaultGrace       = 2 * time.Second
	defaultWeightHint  = "the default is 100"
	sizeExpectedPhrase = `a size like "8G", "60%" or "max"`
)

// lineError is an error about a part of a value (an array element) on a
// line of its own; the ParseError then names that line.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// typeError reports a value of the wrong type.
func typeError(want string, v *tomlValue) error {
	return fmt.Errorf("expected %s, got %s", want, v.describe())
}

// integer parses an integer value as int64.
func integer(v *tomlValue, want string) (int64, error) {
	if v.kind != unstable.Integer {
		return 0, typeError(want, v)
	}
	// The parser has checked the TOML syntax; base 0 reads the 0x, 0o and
	// 0b prefixes and underscores the same way TOML does.
	n, err := strconv.ParseInt(v.text, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range (%s)", v.text, want)
	}
	return n, nil
}

// sizeValue reads a memory size: a size string or an integer number of
// bytes. Zero is rejected unless allowZero.
func sizeValue(v *tomlValue, allowZero bool) (Size, error) {
	var s Size
	var spelled string
	switch v.kind {
	case unstable.String:
		var err error
		if s, err = ParseSize(v.text); err != nil {
			return Size{}, err
		}
		spelled = quote(v.text)
	case unstable.Integer:
		n, err := integer(v, sizeExpectedPhrase)
		if err != nil {
			return Size{}, err
		}
		if n < 0 {
			return Size{}, fmt.Errorf("%s is negative (use a positive size like 8G, or max)", v.text)
		}
		s, spelled = Size{Bytes: uint64(n)}, v.text
	default:
		return Size{}, typeError(sizeExpectedPhrase, v)
	}
	if !allowZero && !s.Max && s.Percent == 0 && s.Bytes == 0 {
		return Size{}, fmt.Errorf(`%s is zero bytes (use "max" for no limit, or a positive size like 8G)`, spelled)
	}
	return s, nil
}

// availableValue reads start_when_available: a positive size or
// percentage; "max" would wait forever.
func availableValue(v *tomlValue) (Size, error) {
	if isMax(v) {
		return Size{}, errors.New(`"max" would wait forever (use a size like 4G or a percentage like 25%, or leave the key out to start at once)`)
	}
	s, err := sizeValue(v, true)
	if err == nil && s.Percent == 0 && s.Bytes == 0 {
		err = fmt.Errorf(`%s is zero bytes (use a size like 4G, or leave the key out to start at once)`, v.text)
	}
	return s, err
}

func boolValue(v *tomlValue) (bool, error) {
	if v.kind != unstable.Bool {
		return false, typeError("true or false", v)
	}
	return v.text == "true", nil
}

func stringValue(v *tomlValue) (string, error) {
	if v.kind != unstable.String {
		return "", typeError("a string", v)
	}
	return v.text, nil
}

// descriptionValue reads a description: one line of text without control
// characters, since listings print it to a terminal as it is (a project
// file could otherwise move the cursor or change the title).
func descriptionValue(v *tomlValue) (string, error) {
	d, err := stringValue(v)
	if err != nil {
		return "", err
	}
	for _, r := range d {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%s contains the control character %U (use one line of plain text)", quote(d), r)
		}
	}
	return d, nil
}

// isMax reports whether v is the string "max" (in any case, spaces around).
func isMax(v *tomlValue) bool {
	return v.kind == unstable.String && strings.EqualFold(strings.TrimSpace(v.text), "max")
}

// countLimit reads pids.max: an integer of at least 1, or "max" (Unlimited).
func countLimit(v *tomlValue) (uint64, error) {
	const want = `a number of processes or "max"`
	if isMax(v) {
		return Unlimited, nil
	}
	n, err := integer(v, want)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf(`%s is out of range (use 1 or more, or "max")`, v.text)
	}
	return uint64(n), nil
}

// maxConcurrentLimit bounds max_concurrent: each slot is a lock file.
const maxConcurrentLimit = 1024

// maxConcurrent reads max_concurrent: how many runs of a policy may run at
// once, 1 to maxConcurrentLimit, or "max" (0: no limit).
func maxConcurrent(v *tomlValue) (int, error) {
	want := fmt.Sprintf(`a number of runs from 1 to %d, or "max"`, maxConcurrentLimit)
	if isMax(v) {
		return 0, nil
	}
	n, err := integer(v, want)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > maxConcurrentLimit {
		return 0, fmt.Errorf(`%s is out of range (use 1 to %d, or "max" for no limit)`, v.text, maxConcurrentLimit)
	}
	return int(n), nil
}

// weight reads cpu.weight and io.weight: an integer from 1 to 10000.
func weight(v *tomlValue) (uint64, error) {
	want := fmt.Sprintf("an integer from %d to %d", minWeight, maxWeight)
	n, err := integer(v, want)
	if err != nil {
		return 0, err
	}
	if n < minWeight || n > maxWeight {
		return 0, fmt.Errorf("%s is out of range (use %d to %d; %s)", v.text, minWeight, maxWeight, defaultWeightHint)
	}
	return uint64(n), nil
}

// cpuMax reads cpu.max: a percentage of one CPU, or "max".
func cpuMax(v *tomlValue) (percent float64, unlimited bool, err error) {
	if v.kind != unstable.String {
		return 0, false, typeError(`a share of one CPU like "50%" or "400%", or "max"`, v)
	}
	if isMax(v) {
		return 0, true, nil
	}
	t := strings.TrimSpace(v.text)
	intPart, fracPart, ok := splitNumber(t)
	n := len(intPart)
	if fracPart != "" {
		n += 1 + len(fracPart)
	}
	if !ok || t[n:] != "%" {
		return 0, false, fmt.Errorf(`%s is not a CPU share (use a percent of one CPU like "50%%" or "400%%", or max)`, quote(v.text))
	}
	p, err := strconv.ParseFloat(t[:n], 64)
	if err != nil {
		return 0, false, fmt.Errorf(`%s is not a CPU share (use a percent of one CPU like "50%%" or "400%%", or max)`, quote(v.text))
	}
	switch {
	case p < minCPUMaxPercent:
		return 0, false, fmt.Errorf("%s is less than %d%% of one CPU (the kernel needs at least 1ms per 100ms period)", quote(v.text), minCPUMaxPercent)
	case p > maxCPUMaxPercent:
		return 0, false, fmt.Errorf("%s is more than %d%% (8192 CPUs)", quote(v.text), maxCPUMaxPercent)
	}
	return p, false, nil
}

// oomScoreAdj reads an oom_score_adj from -1000 to 1000.
func oomScoreAdj(v *tomlValue) (int, error) {
	want := fmt.Sprintf("an integer from %d to %d", minOOMScoreAdj, maxOOMScoreAdj)
	n, err := integer(v, want)
	if err != nil {
		return 0, err
	}
	if n < minOOMScoreAdj || n > maxOOMScoreAdj {
		return 0, fmt.Errorf("%s is out of range (use %d to %d)", v.text, minOOMScoreAdj, maxOOMScoreAdj)
	}
	return int(n), nil
}

// leftovers reads "kill" or "keep".
func leftovers(v *tomlValue) (string, error) {
	if v.kind != unstable.String || (v.text != leftoversKill && v.text != leftoversKeep) {
		return "", typeError(`"kill" or "keep"`, v)
	}
	return v.text, nil
}

// grace reads leftovers_grace: a Go duration from 0 to 1h.
func grace(v *tomlValue) (time.Duration, error) {
	if v.kind != unstable.String {
		return 0, typeError(`a duration like "2s"`, v)
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.text))
	if err != nil {
		return 0, fmt.Errorf(`%s is not a duration (use Go syntax like "500ms", "2s" or "1m")`, quote(v.text))
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("%s is negative", quote(v.text))
	case d > maxLeftoversGrace:
		return 0, fmt.Errorf("%s is more than %s", quote(v.text), "1h")
	}
	return d, nil
}

// nameList reads an array of non-empty, distinct strings; what names one
// element in messages ("protection group name", "process name").
func nameList(v *tomlValue, what, example string) ([]string, error) {
	if v.kind != unstable.Array {
		return nil, typeError(fmt.Sprintf("a list of %ss like %s", what, example), v)
	}
	out := make([]string, 0, len(v.elems))
	seen := map[string]bool{}
	for i, e := range v.elems {
		switch {
		case e.kind != unstable.String:
			return nil, &lineError{e.line, fmt.Errorf("element %d is %s, expected a %s", i+1, e.describe(), what)}
		case strings.TrimSpace(e.text) == "":
			return nil, &lineError{e.line, fmt.Errorf("element %d is empty, expected a %s", i+1, what)}
		case seen[e.text]:
			return nil, &lineError{e.line, fmt.Errorf("%s is listed twice", quote(e.text))}
		}
		seen[e.text] = true
		out = append(out, e.text)
	}
	return out, nil
}

// checkName checks a policy or protection group name.
func checkName(name string) error {
	if !isBareKey(name) || len(name) > maxNameLen {
		return fmt.Errorf("%s is not valid (use up to %d %s)", quote(name), maxNameLen, nameCharsHint)
	}
	return nil
}

// extendsValue reads extends: a policy name.
func extendsValue(v *tomlValue) (string, error) {
	if v.kind != unstable.String {
		return "", typeError("a policy name", v)
	}
	if err := checkName(v.text); err != nil {
		return "", fmt.Errorf("policy name %w", err)
	}
	return v.text, nil
}
