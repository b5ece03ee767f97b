package report

import (
	"reflect"
	"testing"
)

func TestReconcileVictims(t *testing.T) {
	oomKill := func(pid int, comm string) Signal {
		return Signal{PID: pid, Comm: comm, Signal: "SIGKILL", Code: "SI_KERNEL", Kernel: true}
	}
	sampled := func(pid int, comm string, rss uint64, c string) OOMVictim {
		return OOMVictim{PID: pid, Comm: comm, RSSBytes: rss, InsideBox: true, Certainty: c}
	}
	logged := OOMVictim{PID: 50, Comm: "hog", RSSBytes: 400 << 20, InsideBox: true, Certainty: CertaintyKernelLog}
	tests := []struct {
		name    string
		run     Run
		victims []OOMVictim
	}{
		{
			// The CI failure: a hog that filled the box between two
			// samples was never seen; the last sample lost the command
			// itself, which exited 0 and was reaped.
			name: "the tracer names the victim the samples missed; the command that exited 0 is none",
			run: Run{PID: 10, Memory: Memory{Events: MemoryEvents{OOMKill: 1}},
				OOMVictims: []OOMVictim{sampled(10, "sh", 900<<10, CertaintyLikely)},
				Signals:    []Signal{oomKill(11, "guest.test")}},
			victims: []OOMVictim{{PID: 11, Comm: "guest.test", InsideBox: true, Certainty: CertaintySignalTracer}},
		},
		{
			name: "without the tracer, the command boxrun saw exit is still no victim",
			run: Run{PID: 10, Memory: Memory{Events: MemoryEvents{OOMKill: 1}},
				OOMVictims: []OOMVictim{sampled(10, "sh", 900<<10, CertaintyLikely)}},
		},
		{
			name: "a command killed by SIGKILL may be the victim",
			run: Run{PID: 10, Signal: "SIGKILL", Memory: Memory{Events: MemoryEvents{OOMKill: 1}},
				OOMVictims: []OOMVictim{sampled(10, "cargo", 90<<20, CertaintyVanished)}},
			victims: []OOMVictim{sampled(10, "cargo", 90<<20, CertaintyVanished)},
		},
		{
			name: "the tracer confirms a sampled victim and keeps its size",
			run: Run{PID: 10, Memory: Memory{Events: MemoryEvents{OOMKill: 1}},
				OOMVictims: []OOMVictim{sampled(12, "test", 60<<20, CertaintyLikely)},
				Signals:    []Signal{oomKill(12, "test")}},
			victims: []OOMVictim{sampled(12, "test", 60<<20, CertaintySignalTracer)},
		},
		{
			name: "the kernel log stays first; no more victims than kills",
			run: Run{PID: 10, Memory: Memory{Events: MemoryEvents{OOMKill: 2}},
				OOMVictims: []OOMVictim{logged, sampled(12, "a", 60<<20, CertaintyLikely), sampled(13, "b", 50<<20, CertaintyLikely)},
				Signals:    []Signal{oomKill(50, "hog"), oomKill(14, "c")}},
			victims: []OOMVictim{logged, {PID: 14, Comm: "c", InsideBox: true, Certainty: CertaintySignalTracer}},
		},
		{
			name: "a kernel SIGKILL with no OOM kill counted is not the OOM killer's",
			run:  Run{PID: 10, Signals: []Signal{oomKill(12, "test")}},
		},
		{
			name: "a SIGKILL a process sent is no OOM kill",
			run: Run{PID: 10, Memory: Memory{Events: MemoryEvents{OOMKill: 1}},
				OOMVictims: []OOMVictim{sampled(12, "test", 60<<20, CertaintyVanished)},
				Signals:    []Signal{{PID: 13, Comm: "x", Signal: "SIGKILL", Code: "SI_USER"}}},
			victims: []OOMVictim{sampled(12, "test", 60<<20, CertaintyVanished)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run
			ReconcileVictims(&r)
			if !reflect.DeepEqual(r.OOMVictims, tt.victims) {
				t.Errorf("victims %+v, want %+v", r.OOMVictims, tt.victims)
			}
		})
	}
}
