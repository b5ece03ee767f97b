// Package observe watches a running box and acts on what it sees, without
// owning the box: box.Run calls a box.Observer as the command starts and
// exits, and cmd/boxrun hands it one or both of the two observers here.
//
//   - Sampler (stats*.go) samples the box's cgroup files (memory, pids, CPU)
//     while the command runs, reads memory.events and the kernel log at the
//     end to name OOM victims (victims*.go: the kernel log when it can be
//     read, the box's sampled processes when not), and profiles the
//     commands that ran (commands.go). Stats is what the report is made
//     from.
//   - Backpressure (backpressure_linux.go) feeds the pure controller in
//     package backpressure with observations of the box and carries out
//     what it decides: its pauser (pause_linux.go) keeps paused processes
//     in a frozen child cgroup, or stops them with SIGSTOP where there is no
//     freezer.
package observe
