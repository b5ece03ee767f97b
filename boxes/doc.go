// Package boxes is about the boxes on this machine as a whole, rather than
// the one a run makes (that is package box):
//
//   - List (status_linux.go) finds the live boxes of this user — the
//     scopes the systemd managers know and the boxrun cgroups found by
//     walking the cgroup2 hierarchy — with their figures and who owns them
//     (the owner records box writes), for `boxrun status`;
//   - Collect (gc_linux.go) removes the boxes whose boxrun is gone, and the
//     cgroups of guards gone, for `boxrun gc`;
//   - AcquireSlot (slots_linux.go) bounds how many boxes of a policy run at
//     once, in the order they asked;
//   - MachineMemory and WaitForMemory (memory_linux.go) say how much
//     memory the boxes share and wait until a run's need is free.
package boxes
