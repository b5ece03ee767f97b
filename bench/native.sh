#!/usr/bin/env bash
# bench/native.sh — backpressure at native speed. Under emulation (the
# real-kernel VM of bench/run.sh) allocation is slow enough for a 10 ms
# controller to keep up; this script runs the two patterns users reported
# on a real machine, unboxed and in boxes of the cgroupfs backend, and
# prints what happened and the ratios:
#
#   burst  BENCH_BURST_TASKS tasks (96), BENCH_BURST_PARALLEL at once (24,
#          xargs -P), each a process that takes BENCH_BURST_MB MiB (150),
#          touching every page, sleeps BENCH_BURST_HOLD (500ms) and exits;
#          unboxed, in a box it fits (BENCH_FIT_BOX, default 5/3 of the
#          parallel demand: 6000M) and in a box it overfills
#          (BENCH_OVER_BOX, 2/3 of it: 2400M);
#   lock   BENCH_LOCK_TASKS tasks (48), BENCH_LOCK_PARALLEL at once (24),
#          each takes BENCH_LOCK_MB MiB (60), then one shared exclusive
#          flock, BENCH_LOCK_MB2 MiB more (60) while holding it, and exits
#          (concurrent cargo runs waiting on cargo's lock); unboxed and in
#          a box of half its demand (BENCH_LOCK_BOX, rounded up to 100M:
#          800M).
#
# BENCH_SCALE (default 1) multiplies every MiB figure whose variable is not
# set, for a smaller machine: BENCH_SCALE=0.25 gives 37M tasks. Sizes are
# in MiB. Each run is cut off after BENCH_TIMEOUT seconds (120) and then
# counts as not finished. BENCH_KEEP=1 keeps each run's files (boxrun's
# report and output, the tasks' exit statuses and errors).
#
# Needs BOXRUN_CGROUP_PARENT: a writable cgroup v2 directory with the
# memory controller available and no processes of its own (boxrun makes
# its boxes in it; no systemd needed). Builds boxrun, bench/workload and
# bench/jsonget with `go build` (CGO_ENABLED=0) unless BOXRUN, WORKLOAD and
# JSONGET name prebuilt binaries.
#
# Prints a machine line, one line per run, and a summary table (Markdown)
# with each boxed run checked against the bounds of the issue:
#
#   burst in a box it fits    every task passes, no pause >= 1 s, <= 1.3x unboxed
#   burst overfilling a box   every task passes, no OOM kill, no pause >= 10 s, <= 2x
#   lock in half its demand   every task passes, no OOM kill, no pause >= 10 s, <= 2x
#
# Exit status: 0 when every bound holds; 1 when a run missed one (it was
# not finished, had an OOM kill, a task failed, a pause or the time was too
# long) — the script reports, it does not retry; 2 when it could not
# measure (no usable cgroup, a build failed, the patterns fail unboxed,
# boxrun did not run).
set -uo pipefail

me=native.sh
say() { printf '%s: %s\n' "$me" "$*" >&2; }
# cannot prints why the benchmark cannot run and its hint lines, and exits 2.
cannot() {
	say "$1"
	shift
	for h in "$@"; do say "hint: $h"; done
	exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)

# --- sizes ---------------------------------------------------------------

scale=${BENCH_SCALE:-1}
# mib N: N MiB times BENCH_SCALE, at least 1.
mib() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'; }
uint() {
	case $2 in '' | *[!0-9]*) cannot "$1=$2: want a whole number" ;; esac
	[ "$2" -gt 0 ] || cannot "$1=$2: want a number above 0"
}
case $scale in '' | *[!0-9.]* | *.*.* | .) ok=0 ;; *) ok=$scale ;; esac
awk -v s="$ok" 'BEGIN { exit !(s + 0 > 0) }' || cannot "BENCH_SCALE=$scale: want a number above 0, e.g. 0.25"

burst_tasks=${BENCH_BURST_TASKS:-96}
burst_par=${BENCH_BURST_PARALLEL:-24}
burst_mb=${BENCH_BURST_MB:-$(mib 150)}
burst_hold=${BENCH_BURST_HOLD:-500ms}
lock_tasks=${BENCH_LOCK_TASKS:-48}
lock_par=${BENCH_LOCK_PARALLEL:-24}
lock_mb=${BENCH_LOCK_MB:-$(mib 60)}
lock_mb2=${BENCH_LOCK_MB2:-$(mib 60)}
lock_hold=${BENCH_LOCK_HOLD:-0s}
limit=${BENCH_TIMEOUT:-120}
for v in burst_tasks:BENCH_BURST_TASKS burst_par:BENCH_BURST_PARALLEL burst_mb:BENCH_BURST_MB \
	lock_tasks:BENCH_LOCK_TASKS lock_par:BENCH_LOCK_PARALLEL lock_mb:BENCH_LOCK_MB \
	lock_mb2:BENCH_LOCK_MB2 limit:BENCH_TIMEOUT; do
	name=${v%%:*}
	uint "${v#*:}" "${!name}"
done
# The demand is what the tasks running at once hold together.
burst_demand=$((burst_par * burst_mb))
lock_demand=$((lock_par * lock_mb + lock_mb2))
fit_box=${BENCH_FIT_BOX:-$(((burst_demand * 5 + 2) / 3))}
over_box=${BENCH_OVER_BOX:-$((burst_demand * 2 / 3))}
lock_box=${BENCH_LOCK_BOX:-$(((lock_demand / 2 + 99) / 100 * 100))}
uint BENCH_FIT_BOX "$fit_box"
uint BENCH_OVER_BOX "$over_box"
uint BENCH_LOCK_BOX "$lock_box"

# --- the cgroup boxrun makes its boxes in ------------------------------------

howto=(
	"as root: mkdir /sys/fs/cgroup/bench && echo '+memory +pids' > /sys/fs/cgroup/cgroup.subtree_control && BOXRUN_CGROUP_PARENT=/sys/fs/cgroup/bench $0"
	"or, with systemd, a delegated scope: systemd-run --user --scope -p Delegate=yes bash, then in that shell: cg=/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/self/cgroup); mkdir \$cg/shell && echo \$\$ > \$cg/shell/cgroup.procs && BOXRUN_CGROUP_PARENT=\$cg $0"
)
parent=${BOXRUN_CGROUP_PARENT:-}
[ -n "$parent" ] || cannot "BOXRUN_CGROUP_PARENT is not set: it names the cgroup v2 directory the boxes are made in" "${howto[@]}"
mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$mnt" ] || cannot "no cgroup v2 hierarchy is mounted on this host" "boot with systemd.unified_cgroup_hierarchy=1, or mount one: mount -t cgroup2 none /sys/fs/cgroup"
[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] ||
	cannot "/sys/fs/cgroup is not cgroup v2 (a hybrid or v1 layout; cgroup v2 is at $mnt with no memory controller): boxrun's cgroupfs backend needs the unified hierarchy" \
		"boot with systemd.unified_cgroup_hierarchy=1, or run this in a VM or container with cgroup v2"
case $parent in
"$mnt" | "$mnt"/*) dir=$parent ;;
*) dir=$mnt/${parent#/} ;;
esac
dir=${dir%/}
[ -d "$dir" ] || cannot "BOXRUN_CGROUP_PARENT=$parent: $dir does not exist" "${howto[@]}"
[ "$(stat -f -c %T "$dir")" = cgroup2fs ] || cannot "BOXRUN_CGROUP_PARENT=$parent: $dir is not in the cgroup v2 hierarchy" "${howto[@]}"
grep -qw memory "$dir/cgroup.controllers" 2>/dev/null ||
	cannot "the memory controller is not available in $dir (its cgroup.controllers: $(cat "$dir/cgroup.controllers" 2>/dev/null))" \
		"enable it from the level above: echo +memory > $(dirname "$dir")/cgroup.subtree_control"
if [ ! -w "$dir" ] || [ ! -w "$dir/cgroup.subtree_control" ]; then
	cannot "$dir is not writable by $(id -un): boxrun must create boxes in it and enable memory in its cgroup.subtree_control (now: $(cat "$dir/cgroup.subtree_control"))" "${howto[@]}"
fi
if [ "$dir" != "$mnt" ] && [ -s "$dir/cgroup.procs" ]; then
	cannot "$dir holds processes ($(tr '\n' ' ' <"$dir/cgroup.procs")): cgroup v2 lets no controller be enabled for the children of a cgroup with processes of its own" \
		"move them into a child (mkdir $dir/shell; echo PID > $dir/shell/cgroup.procs), or use an empty child as BOXRUN_CGROUP_PARENT"
fi
export BOXRUN_CGROUP_PARENT=$dir

# Unboxed, the tasks running at once hold the whole demand: refuse to run
# the machine into its own OOM killer.
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
for d in "burst:$burst_demand" "lock:$lock_demand"; do
	if [ "${d#*:}" -gt $((avail * 8 / 10)) ]; then
		cannot "the ${d%%:*} pattern holds ${d#*:}M at once unboxed, more than 80% of the ${avail}M available" \
			"scale it down: BENCH_SCALE=$(awk -v a="$avail" -v d="${d#*:}" 'BEGIN { printf "%.2f", a * 0.6 / d }') $0"
	fi
done
parent_max=$(cat "$dir/memory.max" 2>/dev/null || echo max)
if [ "$parent_max" != max ] && [ $((parent_max >> 20)) -lt "$fit_box" ]; then
	say "warning: $dir has memory.max $((parent_max >> 20))M, below the ${fit_box}M box: the parent limits the boxed runs, not the box"
fi

# --- binaries ------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/boxrun-native.XXXXXX") || cannot "cannot make a temporary directory"
if [ "${BENCH_KEEP:-}" = 1 ]; then
	trap 'say "the runs'"'"' files are in $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
build() { # build VAR PACKAGE: $VAR, or go build PACKAGE into $tmp
	local var=$1 pkg=$2 bin
	bin=${!var:-}
	if [ -n "$bin" ]; then
		[ -x "$bin" ] || cannot "$var=$bin is not an executable file"
		printf '%s\n' "$bin"
		return
	fi
	command -v go >/dev/null || cannot "no go on PATH to build $pkg" "install Go, or set $var to a prebuilt binary"
	bin=$tmp/$(basename "$pkg")
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin" "$pkg") >&2 || cannot "building $pkg failed"
	printf '%s\n' "$bin"
}
boxrun=$(build BOXRUN ./cmd/boxrun) || exit 2
workload=$(build WORKLOAD ./bench/workload) || exit 2
jsonget=$(build JSONGET ./bench/jsonget) || exit 2

# task.sh RESULTS INDEX COMMAND...: one task of a pattern; records its exit
# status (lines this short are appended atomically) and its errors.
cat >"$tmp/task.sh" <<'EOF'
#!/bin/sh
res=$1 i=$2
shift 2
"$@" 2>>"$res/errors.$i"
echo "$i $?" >>"$res/status"
EOF
chmod +x "$tmp/task.sh"

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'machine: %s %s %s, %s CPUs, %s MiB RAM (%s MiB available); boxrun at commit %s; boxes in %s; cut-off %ss\n' \
	"$(uname -s)" "$(uname -r)" "$(uname -m)" "$(nproc)" "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)" "$avail" \
	"$commit" "$dir" "$limit"

# --- runs ----------------------------------------------------------------

now() { printf '%s\n' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
# boxes lists the box directories boxrun has made in the parent.
boxes() { find "$dir/boxrun.slice" -mindepth 1 -maxdepth 1 -type d 2>/dev/null; }
# newboxes BEFORE: the boxes not listed in BEFORE. (No process substitution:
# /dev/fd is missing where no init system made it.)
newboxes() { boxes | awk -v before="$1" 'BEGIN { n = split(before, b, "\n"); for (i = 1; i <= n; i++) old[b[i]] = 1 } !old[$0]'; }
# atleast A B: whether the number A is at least B.
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

status=0
rows=()
declare -A wall_of # pattern -> its unboxed wall time

# run NAME PATTERN BOX TASKS PARALLEL MAX_PAUSE MAX_RATIO -- WORKLOAD_ARGS...
# runs TASKS tasks of a pattern, PARALLEL at once, unboxed (BOX "-") or in
# a box of BOX MiB, checks a boxed run against its bounds (a pause of
# MAX_PAUSE seconds or more, more than MAX_RATIO times the unboxed time),
# prints its line and adds its row to the summary. @LOCK@ in the workload's
# arguments is the run's lock file.
run() {
	local name=$1 pattern=$2 box=$3 tasks=$4 par=$5 max_pause=$6 max_ratio=$7
	shift 8
	local res=$tmp/$name
	mkdir -p "$res"
	: >"$res/status"
	local args="$*"
	local cmd="seq $tasks | xargs -P $par -I{} $tmp/task.sh $res {} $workload ${args//@LOCK@/$res/lock}"
	local before start end rc
	before=$(boxes)
	start=$(now)
	if [ "$box" = - ]; then
		timeout -k 10 "$limit" sh -c "$cmd" >"$res/out" 2>"$res/err"
	else
		timeout -k 10 "$limit" "$boxrun" --backend cgroupfs -p tests --set "memory.max=${box}M" \
			--report-json "$res/report.json" -- sh -c "$cmd" >"$res/out" 2>"$res/err"
	fi
	rc=$?
	end=$(now)
	local wall finished=yes passed
	wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
	if [ "$rc" = 124 ] || atleast "$wall" "$limit"; then
		finished=no
	fi
	passed=$(awk '$2 == 0' "$res/status" | wc -l)

	local oom=- pause=- paused=- bp=- ratio=-
	if [ "$box" = - ]; then
		wall_of[$pattern]=$wall
		if [ "$finished" = no ] || [ "$passed" != "$tasks" ]; then
			say "$name: the pattern does not finish even without a box ($passed of $tasks tasks passed, exit $rc): nothing to compare with"
			cat "$res"/errors.* 2>/dev/null | sort | uniq -c | head -5 >&2
			status=2
		fi
	else
		[ "$finished" = yes ] || reap "$name" "$before"
		if [ -s "$res/report.json" ]; then
			local js got=()
			if js=$("$jsonget" "$res/report.json" memory.events.oom_kill backpressure.max_pause_seconds backpressure.paused backpressure); then
				mapfile -t got <<<"$js"
				oom=${got[0]:--} pause=${got[1]:--} paused=${got[2]:--} bp=${got[3]:--}
			else
				say "$name: cannot read boxrun's report $res/report.json"
				status=2
			fi
		elif [ "$finished" = yes ]; then
			say "$name: boxrun exited $rc and wrote no report; its output ends:"
			tail -5 "$res/err" >&2
			status=2
		fi
		ratio=$(awk -v a="$wall" -v b="${wall_of[$pattern]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	fi

	# The bounds of the issue; each one missed is named.
	local missed=() verdict=-
	if [ "$box" != - ]; then
		[ "$finished" = yes ] || missed+=("not finished within ${limit}s")
		[ "$passed" = "$tasks" ] || missed+=("$((tasks - passed)) of $tasks tasks failed or never ran")
		case $oom in
		0) ;;
		-) missed+=("no memory.events.oom_kill in the report") ;;
		*) missed+=("$oom OOM kills") ;;
		esac
		if [ "$pause" = - ]; then
			missed+=("no backpressure.max_pause_seconds in the report")
		elif atleast "$pause" "$max_pause"; then
			missed+=("longest pause ${pause}s >= ${max_pause}s")
		fi
		if [ "$finished" = yes ] && ! atleast "$max_ratio" "$ratio"; then
			missed+=("${ratio}x unboxed > ${max_ratio}x")
		fi
		if [ ${#missed[@]} = 0 ]; then
			verdict="ok (pause < ${max_pause}s, <= ${max_ratio}x)"
		else
			verdict="MISSED: $(join "; " "${missed[@]}")"
			[ "$status" = 2 ] || status=1
		fi
	fi

	# Columns; a report without the expected backpressure fields shows what
	# it has instead (the schema may gain or rename fields).
	local boxcol=unboxed pausecol=- ratiocol=- wallcol=${wall}s
	[ "$box" = - ] || boxcol=${box}M
	[ "$pause" = - ] || pausecol=${pause}s
	if [ "$pause" = - ] && [ "$bp" != - ]; then pausecol="? (backpressure: $bp)"; fi
	[ "$ratio" = - ] || ratiocol=${ratio}x
	[ "$finished" = yes ] || wallcol="${wall}s, not finished"
	printf '%-13s box %-8s tasks %s/%s  OOM kills %s  longest pause %s  paused %s  wall %s  vs unboxed %s\n' \
		"$name" "$boxcol" "$passed" "$tasks" "$oom" "$pausecol" "$paused" "$wallcol" "$ratiocol"
	[ ${#missed[@]} = 0 ] || say "$name: $verdict"
	rows+=("| $pattern | $boxcol | $passed/$tasks | $oom | $pausecol | $paused | $wallcol | $ratiocol | $verdict |")
}

# join SEP WORDS...: the words joined by SEP.
join() {
	local sep=$1 out=$2
	shift 2
	for w in "$@"; do out+=$sep$w; done
	printf '%s\n' "$out"
}

# reap NAME BEFORE: after a cut-off, a box of this run that outlived
# boxrun (its guard normally removes it) would hold its memory through the
# next runs. Kill and remove boxes not in BEFORE that hold this script's
# tasks; another boxrun's boxes in the same parent are left alone.
reap() {
	local name=$1 before=$2 b pid
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -n "$(newboxes "$before")" ] || return 0
		sleep 0.5
	done
	for b in $(newboxes "$before"); do
		while read -r pid; do
			if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$tmp/"; then
				say "warning: $name: box $b outlived boxrun; killing what is in it"
				echo 1 >"$b/cgroup.kill" 2>/dev/null || xargs -r kill -KILL <"$b/cgroup.procs" 2>/dev/null
				sleep 1
				rmdir "$b" 2>/dev/null || say "warning: could not remove $b"
				break
			fi
		done <"$b/cgroup.procs"
	done
}

burst=(-mb "$burst_mb" -hold "$burst_hold")
lock=(-mb "$lock_mb" -lock @LOCK@ -mb2 "$lock_mb2" -hold "$lock_hold")
printf 'burst: %s tasks, %s at once, %sM each, held %s (%sM at once); lock: %s tasks, %s at once, %sM + %sM under the lock (%sM at once)\n' \
	"$burst_tasks" "$burst_par" "$burst_mb" "$burst_hold" "$burst_demand" "$lock_tasks" "$lock_par" "$lock_mb" "$lock_mb2" "$lock_demand"

# finish prints the summary table and exits with the status.
finish() {
	echo
	echo "| pattern | box | tasks passed | OOM kills | longest pause | paused | wall | vs unboxed | bounds |"
	echo "|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	case $status in
	0) echo "every bound holds" ;;
	1) echo "some bounds missed (see above)" ;;
	*) echo "could not measure everything (see above)" ;;
	esac
	exit "$status"
}

run burst-unboxed burst - "$burst_tasks" "$burst_par" - - -- "${burst[@]}"
[ "$status" = 2 ] && finish
run burst-fit burst "$fit_box" "$burst_tasks" "$burst_par" 1 1.3 -- "${burst[@]}"
run burst-over burst "$over_box" "$burst_tasks" "$burst_par" 10 2 -- "${burst[@]}"
run lock-unboxed lock - "$lock_tasks" "$lock_par" - - -- "${lock[@]}"
[ "$status" = 2 ] && finish
run lock-half lock "$lock_box" "$lock_tasks" "$lock_par" 10 2 -- "${lock[@]}"

finish
