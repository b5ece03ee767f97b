#!/usr/bin/env bash
# bench/run.sh — boxrun's cost and what it buys, measured in the real-kernel
# VM (QEMU emulation), every figure of a mode from one boot (issues 6, 10):
#
#   - backpressure: a synthetic suite and a real cargo test in a box half
#     their size: failed jobs, OOM kills, and time against the unboxed run;
#   - launch: `true` bare, under boxrun and under systemd-run --scope,
#     interleaved, medians and ratios;
#   - footprint: boxrun's CPU, peak RSS and threads over a 20 s run;
#   - throughput: a CPU-bound parallel workload bare and under boxrun;
#   - editor: an editor-like probe's wake-up lateness and working-set touch
#     time, idle and beside a runaway suite: bare, systemd-run --scope,
#     boxrun --policy tests;
#   - native: bench/native.sh's burst and lock patterns, scaled down to
#     the guest (cgroupfs boot only; on a native host run the script
#     itself);
#   - micro: Go benchmarks of policy resolution and report formatting, on
#     the host.
#
# Absolute times under emulation are noise; the ratios are the result.
# Prints a table and writes bench/results/latest.json. Needs what
# `make test` needs (root, qemu-system-x86, busybox-static, cpio).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Micro-benchmarks first, on the host, before the VM loads it.
go test -run '^$' -bench . -benchmem ./policy/ ./report/ >"$log" 2>&1 || status=$?
BOXRUN_IT_RUN="${BOXRUN_BENCH_RUN:-Backpressure|TestBench}" \
	go test -count=1 -p 1 -timeout 50m -v -run 'RealKernel' ./integration/ >>"$log" 2>&1 || status=$?
mkdir -p bench/results
host="$(uname -m) $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), QEMU TCG guest 2 vCPUs 1 GiB"
if ! go run ./bench/summarize "$host" bench/results/latest.json <"$log"; then
	echo "bench: no figures (go test exit $status); the log ends:" >&2
	tail -40 "$log" >&2
	exit 1
fi
if [ "$status" != 0 ]; then
	echo "bench: some scenarios failed (go test exit $status); the log ends:" >&2
	grep -E -- '--- FAIL|failed in the guest' "$log" | head -20 >&2
fi
exit "$status"
