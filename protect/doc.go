// Package protect shields the editor (and other named process groups) from
// the kernel's OOM killer and from reclaim while boxes run.
//
// A policy file defines protection groups ([protect.NAME]: the names of an
// editor's or a language server's processes, a memory.low and an
// oom_score_adj), and a policy names the groups it protects. boxrun
// protects them before each run of such a policy (in the background while
// the box is being made; cmd/boxrun's protectDuringStart), and
// `boxrun protect` does it on demand, keeps doing it as new processes
// start (--watch, what the boxrun-protect.service user unit runs) and
// restores what it changed (--undo). `boxrun doctor` (package doctor)
// reports through ReadProcs, MatchProcesses and EffectiveProtection how
// well the groups are protected, without changing anything.
//
// The groups are resolved from the policy (groups.go); a snapshot of /proc
// (procs.go) is matched against them, each process with its helpers
// (match.go); a Protector then pulls two levers, each as far as the kernel
// and systemd allow:
//
//   - oom_score_adj of the group's processes is lowered toward the group's
//     value, but an unprivileged writer can only go down to the process's
//     oom_score_adj_min (its floor, set by whoever last wrote it with
//     CAP_SYS_RESOURCE — for what a user manager starts, user@.service's
//     OOMScoreAdjust=100). The floor cannot be read, so the lowest accepted
//     value is found by binary search (a write below it fails with EACCES;
//     oom_linux.go).
//   - MemoryLow is set on the systemd unit holding the processes (runtime
//     only; memorylow_linux.go). memory.low only protects as much as every
//     ancestor cgroup allows, so the effective protection is computed along
//     the whole chain from the real cgroup files, with the exact command
//     that lifts each ancestor that caps it (effective_linux.go).
//
// What was changed is remembered (previous oom_score_adj per pid and start
// time, previous MemoryLow per unit) in a state file in boxrun's runtime
// directory (state_linux.go) so that Undo can restore it
// (undo_linux.go).
//
// Boxes are package box's business: this package does not import box, and
// never touches a process inside a box. It reaches systemd through
// internal/systemd, cgroup files through internal/cgroupfs and
// /proc/PID/stat through internal/procfs.
package protect
