#!/usr/bin/env bash
# bench/backpressure.sh — what backpressure buys, measured in the real-kernel
# VM (QEMU emulation, systemd as PID 1), every figure from one boot:
#
#   - a suite of 12 threads x 2 jobs, each job a process holding 40 MiB for 1 s,
#     in a 264 MiB box (about twice the box at once): unboxed, kill-only box,
#     backpressure — failed jobs, OOM kills, wall time and its ratio to the
#     unboxed run;
#   - a real `cargo test` (48 CLI tests spawning the crate's binary, 24 test
#     threads) in a 320 MiB box: the same figures.
#
# Absolute times under emulation are noise; the ratios are the result.
# Prints a table and writes bench/results/latest.json. Needs what `make test`
# needs (root, qemu-system-x86, busybox-static, cpio).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
BOXRUN_IT_RUN='Backpressure' go test -count=1 -p 1 -timeout 30m -v -run 'RealKernelSystemd' ./integration/ >"$log" 2>&1 || status=$?
grep -o 'figures: .*' "$log" | sed 's/^figures: //' >"$log.fig" || true
if [ ! -s "$log.fig" ]; then
	echo "bench: the scenarios reported no figures (go test exit $status); log:" >&2
	tail -40 "$log" >&2
	exit 1
fi
mkdir -p bench/results
host="$(uname -m) $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), QEMU TCG guest 2 vCPUs 1 GiB"
{
	printf '{\n  "machine": "%s",\n  "date": "%s",\n  "runs": [\n' "$host" "$(date -u +%FT%TZ)"
	sep=""
	while IFS= read -r line; do
		printf '%s    "%s"' "$sep" "${line//\"/\\\"}"
		sep=$',\n'
	done <"$log.fig"
	printf '\n  ]\n}\n'
} >bench/results/latest.json
rm -f "$log.fig"
echo "backpressure, real kernel ($host):"
grep -o 'figures: .*' "$log" | sed 's/^figures: /  /'
exit "$status"
