// Package doctor says what works on this machine and why: `boxrun doctor`,
// one check per line, each failed check with the fix. It owns the checks
// — the kernel and systemd versions, the cgroup v2 hierarchy, the systemd managers, which backend
// --backend auto would pick, the controllers boxes can use, memory
// protection, swap, PSI, the kernel features boxrun falls back from,
// containers, the editor's protection groups and systemd-oomd — and the
// Machine they look at.
//
// Every check is a function of a Machine: a file system rooted at "/" and
// a small interface for the questions asked over D-Bus, so that the
// verdicts are tested against the fixture machines of internal/machinetest.
// Doctor predicts what a run does from the same pieces the run uses:
// kernel and systemd features from internal/probe, the cgroupfs backend's
// own check (box.ProbeCgroupfs), container detection
// (container.Detect) and protection (package protect). It changes
// nothing on the machine.
package doctor
