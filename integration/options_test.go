package integration

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxrun/boxrun/integration/vm"
)

// options are the harness's settings from the environment (see the
// package doc), read once by each VM test before it builds or boots
// anything, so that a bad value fails at once and not after a boot.
// They are passed down explicitly: nothing here is package state.
type options struct {
	// run is $BOXRUN_IT_RUN, a -test.run pattern for the scenarios; ""
	// runs them all but the benchmarks.
	run string
	// count is $BOXRUN_IT_COUNT, the -test.count of the scenarios: how
	// many times each chosen scenario runs in the one boot.
	count int
	// stall is $BOXRUN_IT_WATCHDOG_STALL, how long the guest's heartbeat
	// may stop before the watchdog dumps the kernel's view to the console
	// (see watchdog_test.go).
	stall time.Duration
	// guests is $BOXRUN_IT_GUEST: the guests whose VMs run, one after the
	// other (see parseGuests).
	guests []vm.Guest
}

// defaultStall is the watchdog's threshold: four heartbeats (30 s apart)
// missed. The slowest scenario steps under emulation (a boxrun start
// while the guest swaps) take tens of seconds, never minutes; a guest
// that is silent for two minutes has frozen.
const defaultStall = 2 * time.Minute

// optionsFromEnv reads the options through getenv (os.Getenv; tests pass
// a map's lookup) and says which variable is wrong and why.
func optionsFromEnv(getenv func(string) string) (options, error) {
	o := options{run: getenv("BOXRUN_IT_RUN")}
	var err error
	if o.count, err = parseCount(getenv("BOXRUN_IT_COUNT")); err != nil {
		return options{}, err
	}
	if o.stall, err = parseStall(getenv("BOXRUN_IT_WATCHDOG_STALL")); err != nil {
		return options{}, err
	}
	if o.guests, err = parseGuests(getenv("BOXRUN_IT_GUEST")); err != nil {
		return options{}, err
	}
	return o, nil
}

// parseCount parses $BOXRUN_IT_COUNT: a whole number, 1 or more; unset
// means 1.
func parseCount(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("BOXRUN_IT_COUNT=%q: want how many times to run each scenario in the boot, a whole number of 1 or more (e.g. BOXRUN_IT_COUNT=5)", s)
	}
	return n, nil
}

// parseStall parses $BOXRUN_IT_WATCHDOG_STALL: a positive Go duration;
// unset means defaultStall.
func parseStall(s string) (time.Duration, error) {
	if s == "" {
		return defaultStall, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("BOXRUN_IT_WATCHDOG_STALL=%q: want a positive duration such as 2m or 45s", s)
	}
	return d, nil
}

// parseGuests parses $BOXRUN_IT_GUEST: debian12, debian13, or all (both,
// oldest first); unset means debian12 alone. Each guest doubles the VM
// tests' time, so make test runs the second only when asked.
func parseGuests(s string) ([]vm.Guest, error) {
	switch s {
	case "":
		return []vm.Guest{vm.Debian12}, nil
	case "all":
		return vm.Guests, nil
	}
	for _, g := range vm.Guests {
		if s == g.String() {
			return []vm.Guest{g}, nil
		}
	}
	return nil, fmt.Errorf("BOXRUN_IT_GUEST=%q: want debian12 (Linux 6.1 over the host's root, the default), debian13 (Linux 6.12, systemd 257) or all", s)
}

// requireOptions reads the options, failing the test (before any build or
// boot) on a bad value.
func requireOptions(t *testing.T, getenv func(string) string) options {
	t.Helper()
	o, err := optionsFromEnv(getenv)
	if err != nil {
		t.Fatalf("the harness's environment: %v", err)
	}
	return o
}

func TestParseCount(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int // 0: an error
	}{
		{"", 1}, // unset: each scenario once
		{"1", 1},
		{"2", 2},
		{"50", 50},
		{"0", 0},   // the boundary: no run at all is no test
		{"-3", 0},  // negative
		{"two", 0}, // not a number
		{"2.5", 0}, // not whole
		{" 2", 0},  // no trimming: the value is passed as written
		{"2x", 0},
	} {
		n, err := parseCount(c.in)
		if c.want == 0 {
			if err == nil {
				t.Errorf("parseCount(%q) = %d, want an error", c.in, n)
			}
			continue
		}
		if err != nil || n != c.want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", c.in, n, err, c.want)
		}
	}
}

func TestParseStall(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"", defaultStall},
		{"2m", 2 * time.Minute},
		{"15s", 15 * time.Second},
		{"0s", 0},  // never waits: every poll would dump
		{"-1m", 0}, // negative
		{"120", 0}, // no unit
	} {
		d, err := parseStall(c.in)
		if c.want == 0 {
			if err == nil {
				t.Errorf("parseStall(%q) = %s, want an error", c.in, d)
			}
			continue
		}
		if err != nil || d != c.want {
			t.Errorf("parseStall(%q) = %s, %v; want %s", c.in, d, err, c.want)
		}
	}
}

func TestParseGuests(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []vm.Guest // nil: an error
	}{
		{"", []vm.Guest{vm.Debian12}}, // the default: CI time stays one guest's
		{"debian12", []vm.Guest{vm.Debian12}},
		{"debian13", []vm.Guest{vm.Debian13}},
		{"all", []vm.Guest{vm.Debian12, vm.Debian13}}, // oldest first
		{"Debian13", nil},                             // spelled as String() spells it
		{"debian12,debian13", nil},                    // no lists: all is the list
		{"trixie", nil},
	} {
		got, err := parseGuests(c.in)
		if c.want == nil {
			if err == nil || !strings.Contains(err.Error(), "BOXRUN_IT_GUEST") {
				t.Errorf("parseGuests(%q) = %v, %v; want an error naming the variable", c.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseGuests(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	o, err := optionsFromEnv(env(map[string]string{"BOXRUN_IT_RUN": "TestCtrlZ", "BOXRUN_IT_COUNT": "3"}))
	if want := (options{run: "TestCtrlZ", count: 3, stall: defaultStall, guests: []vm.Guest{vm.Debian12}}); err != nil || !reflect.DeepEqual(o, want) {
		t.Errorf("optionsFromEnv = %+v, %v; want %+v", o, err, want)
	}
	// The message names the variable and the value, so that the user
	// knows what to fix without reading the harness.
	_, err = optionsFromEnv(env(map[string]string{"BOXRUN_IT_COUNT": "0"}))
	if err == nil || !strings.HasPrefix(err.Error(), `BOXRUN_IT_COUNT="0"`) {
		t.Errorf("BOXRUN_IT_COUNT=0: error %v, want one naming the variable and value", err)
	}
}
