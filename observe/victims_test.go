package observe

import (
	"io/fs"
	"reflect"
	"testing"
	"time"

	"github.com/boxrun/boxrun/internal/procfs"
)

const mib = 1 << 20

func proc(pid int, comm string, rssMiB uint64) procSample {
	return procSample{PID: pid, StartTime: uint64(1000 + pid), Comm: comm, RSSBytes: rssMiB * mib}
}

func victim(p procSample, c Certainty) OOMVictim {
	return OOMVictim{PID: p.PID, Comm: p.Comm, AnonRSSBytes: p.RSSBytes, InsideBox: true, Certainty: c}
}

func TestExitFrom(t *testing.T) {
	p := proc(7, "rustc", 100)
	tests := []struct {
		name string
		st   procfs.Stat
		err  error
		want procExit
	}{
		{"reaped", procfs.Stat{}, fs.ErrNotExist, exitUnknown},
		{"pid reused", procfs.Stat{PID: 7, StartTime: 9999, ExitCode: 9}, nil, exitUnknown},
		{"zombie killed by SIGKILL", procfs.Stat{PID: 7, StartTime: p.StartTime, State: 'Z', ExitCode: 9}, nil, exitSIGKILL},
		{"zombie showing exit 0: exited, or its status hidden from this user", procfs.Stat{PID: 7, StartTime: p.StartTime, State: 'Z', ExitCode: 0}, nil, exitUnknown},
		{"zombie that exited 1", procfs.Stat{PID: 7, StartTime: p.StartTime, State: 'Z', ExitCode: 1 << 8}, nil, exitOther},
		{"zombie killed by SIGTERM", procfs.Stat{PID: 7, StartTime: p.StartTime, State: 'Z', ExitCode: 15}, nil, exitOther},
		{"still exiting, no status yet", procfs.Stat{PID: 7, StartTime: p.StartTime, State: 'R'}, nil, exitUnknown},
	}
	for _, tt := range tests {
		if got := exitFrom(p, tt.st, tt.err); got != tt.want {
			t.Errorf("%s: exitFrom = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeparted(t *testing.T) {
	a, b, c := proc(1, "sh", 1), proc(2, "cargo", 50), proc(3, "rustc", 900)
	reused := procSample{PID: 3, StartTime: 5, Comm: "ld", RSSBytes: mib}
	tests := []struct {
		name      string
		prev, cur []procSample
		want      []procSample
	}{
		{"nothing left", []procSample{a, b}, []procSample{a, b}, nil},
		{"largest first", []procSample{a, b, c}, []procSample{a}, []procSample{c, b}},
		{"a reused pid is another process", []procSample{a, c}, []procSample{a, reused}, []procSample{c}},
		{"new processes are not departures", []procSample{a}, []procSample{a, b}, nil},
	}
	for _, tt := range tests {
		if got := departed(tt.prev, tt.cur); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: departed = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestDecideVictims(t *testing.T) {
	small, big, huge := proc(10, "sh", 2), proc(11, "rustc", 300), proc(12, "bkt", 900)
	tests := []struct {
		name            string
		gone            []procSample
		exits           map[int]procExit
		kills           uint64
		want            []OOMVictim
		wantUnexplained uint64
	}{
		{"no kill: no victim", []procSample{big}, nil, 0, nil, 0},
		{"one vanished at one kill", []procSample{big}, nil, 1,
			[]OOMVictim{victim(big, CertaintyVanished)}, 0},
		{"one zombie killed by SIGKILL among vanished ones", []procSample{huge, big, small}, map[int]procExit{11: exitSIGKILL}, 1,
			[]OOMVictim{victim(big, CertaintyVanished)}, 0},
		{"more vanished than kills: the largest, likely", []procSample{small, huge, big}, nil, 1,
			[]OOMVictim{victim(huge, CertaintyLikely)}, 0},
		{"two kills, two vanished", []procSample{small, big}, nil, 2,
			[]OOMVictim{victim(big, CertaintyVanished), victim(small, CertaintyVanished)}, 0},
		{"two SIGKILLed for one kill: the larger, likely", []procSample{big, huge}, map[int]procExit{11: exitSIGKILL, 12: exitSIGKILL}, 1,
			[]OOMVictim{victim(huge, CertaintyLikely)}, 0},
		{"a SIGKILLed one, then the largest of the vanished", []procSample{small, big, huge}, map[int]procExit{10: exitSIGKILL}, 2,
			[]OOMVictim{victim(small, CertaintyVanished), victim(huge, CertaintyLikely)}, 0},
		{"one that exited by itself is no victim", []procSample{huge, big}, map[int]procExit{12: exitOther}, 1,
			[]OOMVictim{victim(big, CertaintyVanished)}, 0},
		{"nothing left the box yet", nil, nil, 1, nil, 1},
		{"fewer left than kills", []procSample{big}, nil, 3, []OOMVictim{victim(big, CertaintyVanished)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unexplained := decideVictims(tt.gone, tt.exits, tt.kills)
			if !reflect.DeepEqual(got, tt.want) || unexplained != tt.wantUnexplained {
				t.Errorf("decideVictims = %+v, %d unexplained; want %+v, %d", got, unexplained, tt.want, tt.wantUnexplained)
			}
		})
	}
}

// TestVictimTracker feeds the tracker samples in the order the Sampler
// takes them: processes, how the departed ones ended, then oom_kill.
func TestVictimTracker(t *testing.T) {
	sh, hog, cc := proc(1, "sh", 1), proc(2, "hog", 120), proc(3, "cc", 40)
	type step struct {
		at    time.Duration
		cur   []procSample
		exits map[int]procExit
		kills uint64
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name  string
		steps []step
		want  []OOMVictim
	}{
		{"the victim is gone in the sample that counts its kill", []step{
			{0, []procSample{sh, hog}, nil, 0},
			{ms(250), []procSample{sh}, nil, 1},
		}, []OOMVictim{victim(hog, CertaintyVanished)}},
		{"the kill is counted before the victim leaves", []step{
			{0, []procSample{sh, hog}, nil, 0},
			{ms(100), []procSample{sh, hog}, nil, 1},
			{ms(350), []procSample{sh}, map[int]procExit{2: exitSIGKILL}, 1},
		}, []OOMVictim{victim(hog, CertaintyVanished)}},
		{"processes exiting without a kill are no victims", []step{
			{0, []procSample{sh, hog, cc}, nil, 0},
			{ms(250), []procSample{sh, hog}, nil, 0},
			{ms(500), []procSample{sh, hog}, nil, 0},
		}, nil},
		{"a kill whose victim was never sampled is forgotten", []step{
			{0, []procSample{sh, hog}, nil, 0},
			{ms(100), []procSample{sh, hog}, nil, 1},
			{ms(5000), []procSample{sh}, nil, 1},
		}, nil},
		{"the box emptied: the largest of what left, likely", []step{
			{0, []procSample{sh, hog, cc}, nil, 0},
			{ms(250), nil, nil, 1},
		}, []OOMVictim{victim(hog, CertaintyLikely)}},
		{"sampled while it dies, its memory already freed: the size it held", []step{
			{0, []procSample{sh, hog}, nil, 0},
			{ms(20), []procSample{sh, {PID: hog.PID, StartTime: hog.StartTime, Comm: hog.Comm}}, nil, 1},
			{ms(40), []procSample{sh}, map[int]procExit{2: exitSIGKILL}, 1},
		}, []OOMVictim{victim(hog, CertaintyVanished)}},
		{"two kills in two samples", []step{
			{0, []procSample{sh, hog, cc}, nil, 0},
			{ms(250), []procSample{sh, cc}, nil, 1},
			{ms(500), []procSample{sh}, nil, 2},
		}, []OOMVictim{victim(hog, CertaintyVanished), victim(cc, CertaintyVanished)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr victimTracker
			for _, s := range tt.steps {
				tr.step(s.at, s.cur, s.exits, s.kills)
			}
			if !reflect.DeepEqual(tr.victims, tt.want) {
				t.Errorf("victims %+v, want %+v", tr.victims, tt.want)
			}
		})
	}
}

func TestMergeVictims(t *testing.T) {
	logged := OOMVictim{PID: 2, Comm: "hog", AnonRSSBytes: 110 * mib, InsideBox: true, Cgroup: "/box"}
	outside := OOMVictim{PID: 99, Comm: "code", AnonRSSBytes: 2000 * mib, Global: true}
	hog, cc := victim(proc(2, "hog", 120), CertaintyVanished), victim(proc(3, "cc", 40), CertaintyLikely)
	withCertainty := func(v OOMVictim, c Certainty) OOMVictim { v.Certainty = c; return v }
	tests := []struct {
		name             string
		fromLog, sampled []OOMVictim
		boxKills         uint64
		want             []OOMVictim
	}{
		{"no kill", nil, nil, 0, []OOMVictim{}},
		{"the kernel log alone", []OOMVictim{logged, outside}, nil, 1,
			[]OOMVictim{withCertainty(logged, CertaintyKernelLog), withCertainty(outside, CertaintyKernelLog)}},
		{"the kernel log first, the same process sampled", []OOMVictim{logged}, []OOMVictim{hog}, 1,
			[]OOMVictim{withCertainty(logged, CertaintyKernelLog)}},
		{"no kernel log: the samples", nil, []OOMVictim{hog}, 1, []OOMVictim{hog}},
		{"the log named one of two kills", []OOMVictim{logged}, []OOMVictim{hog, cc}, 2,
			[]OOMVictim{withCertainty(logged, CertaintyKernelLog), cc}},
		{"a kill outside does not count for the box", []OOMVictim{outside}, []OOMVictim{hog}, 1,
			[]OOMVictim{withCertainty(outside, CertaintyKernelLog), hog}},
		{"never more sampled victims than kills", nil, []OOMVictim{hog, cc}, 1, []OOMVictim{hog}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergeVictims(tt.fromLog, tt.sampled, tt.boxKills); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("mergeVictims = %+v, want %+v", got, tt.want)
			}
		})
	}
}
