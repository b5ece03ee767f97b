// Package guest holds the real-kernel scenarios. Its test binary is built on
// the host with the boxrunguest tag and run inside the QEMU guest by
// integration/ (as root, as an unprivileged user with a delegated user
// manager, and in a boot without systemd); without the tag, plain
// `go test ./...` does not build it. Run inside the guest without the
// environment below, the scenarios fail; they never skip.
//
// Environment (set by the host side):
//
//	BOXRUN_BIN          the boxrun binary under test
//	BOXRUN_IT_MODE      root | user | cgroupfs
//	BOXRUN_IT_REPO      the repository checkout, for bench/native.sh
//	BOXRUN_IT_WORKLOAD  bench/workload, built on the host
//	BOXRUN_IT_JSONGET   bench/jsonget, built on the host
//
// Started by the guest script itself, before the scenarios, with
// BOXRUN_IT_ROLE=watchdog (and WATCHDOG_STAMP, WATCHDOG_STALL), the binary
// is the guest's watchdog instead: see watchdog in watchdog_test.go.
package guest
