package observe

import (
	"reflect"
	"testing"
	"time"
)

func TestCommandProfile(t *testing.T) {
	const mib = 1 << 20
	var p commandProfile
	if got := p.uses(0); len(got) != 0 {
		t.Fatalf("an empty profile: %v", got)
	}
	s := func(pid int, start uint64, comm string, rssMiB uint64, cpuMs int) procSample {
		return procSample{PID: pid, StartTime: start, Comm: comm, RSSBytes: rssMiB * mib, CPU: time.Duration(cpuMs) * time.Millisecond}
	}
	p.add([]procSample{s(10, 1, "cargo", 30, 100), s(11, 2, "sh", 1, 1), s(12, 3, "test-a", 50, 10)})
	p.add([]procSample{s(10, 1, "cargo", 40, 300), s(12, 3, "test-a", 120, 50), s(13, 4, "sh", 1, 1)})
	// 12 exited; its pid is reused by another process, of another name.
	p.add([]procSample{s(10, 1, "cargo", 35, 400), s(12, 9, "test-a", 80, 20), s(14, 5, "env", 2, 0)})
	// 14 exec'd: its last name counts.
	p.add([]procSample{s(14, 5, "test-b", 300, 900)})
	want := []CommandUse{
		{Comm: "test-b", Processes: 1, PeakBytes: 300 * mib, TypicalBytes: 300 * mib, CPU: 900 * time.Millisecond},
		{Comm: "test-a", Processes: 2, PeakBytes: 120 * mib, TypicalBytes: 120 * mib, CPU: 70 * time.Millisecond},
		{Comm: "cargo", Processes: 1, PeakBytes: 40 * mib, TypicalBytes: 40 * mib, CPU: 400 * time.Millisecond},
		{Comm: "sh", Processes: 2, PeakBytes: 1 * mib, TypicalBytes: 1 * mib, CPU: 2 * time.Millisecond},
	}
	if got := p.uses(0); !reflect.DeepEqual(got, want) {
		t.Errorf("uses(0) =\n%+v\nwant\n%+v", got, want)
	}
	if got := p.uses(2); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("uses(2) = %+v, want the two largest", got)
	}
}
