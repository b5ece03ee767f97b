package observe

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseOOMKills(t *testing.T) {
	const scope = "/boxrun.slice/boxrun-it-3f2a9c1d.scope"
	const userScope = "/user.slice/user-1000.slice/user@1000.service/boxrun.slice/boxrun-tests-1a2b3c4d.scope"
	const codeCg = "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-code-11902.scope"
	tests := []struct {
		name     string
		log      string
		box      string
		boxKills uint64
		want     []OOMVictim
	}{
		{"memory cgroup kill in the box (kmsg, 6.1)", readFixture(t, "kmsg-memcg-oom.txt"), scope, 1,
			[]OOMVictim{{PID: 812, Comm: "guest.test", AnonRSSBytes: 127284 * 1024, InsideBox: true, Cgroup: scope, LimitCgroup: scope}}},
		{"the same kill seen from another box", readFixture(t, "kmsg-memcg-oom.txt"), "/boxrun.slice/boxrun-it-00000000.scope", 0,
			[]OOMVictim{{PID: 812, Comm: "guest.test", AnonRSSBytes: 127284 * 1024, Cgroup: scope, LimitCgroup: scope}}},
		{"no box: every victim is outside", readFixture(t, "kmsg-memcg-oom.txt"), "", 0,
			[]OOMVictim{{PID: 812, Comm: "guest.test", AnonRSSBytes: 127284 * 1024, Cgroup: scope, LimitCgroup: scope}}},
		{"box path relative to a cgroup namespace", readFixture(t, "kmsg-memcg-oom.txt"), "/boxrun-it-3f2a9c1d.scope", 1,
			[]OOMVictim{{PID: 812, Comm: "guest.test", AnonRSSBytes: 127284 * 1024, InsideBox: true, Cgroup: scope, LimitCgroup: scope}}},
		{"global OOM takes the editor, then a test (dmesg)", readFixture(t, "dmesg-global-oom.txt"), userScope, 1,
			[]OOMVictim{
				{PID: 11914, Comm: "code", AnonRSSBytes: 1402312 * 1024, Global: true, Cgroup: codeCg},
				{PID: 437542, Comm: "bkt", AnonRSSBytes: 921648 * 1024, Global: true, InsideBox: true, Cgroup: userScope},
			}},
		{"memory.oom.group kills the whole box", readFixture(t, "kmsg-oom-group.txt"), "/boxrun-it-77aa01fe", 3,
			[]OOMVictim{
				{PID: 1209, Comm: "guest.test", AnonRSSBytes: 127012 * 1024, InsideBox: true, Cgroup: "/boxrun-it-77aa01fe", LimitCgroup: "/boxrun-it-77aa01fe"},
				{PID: 1207, Comm: "sh", AnonRSSBytes: 88 * 1024, InsideBox: true, Cgroup: "/boxrun-it-77aa01fe"},
				{PID: 1208, Comm: "sleep", AnonRSSBytes: 84 * 1024, InsideBox: true, Cgroup: "/boxrun-it-77aa01fe"},
			}},
		{"the slice around the box at its limit", "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/boxrun.slice,task_memcg=" + scope + ",task=guest.test,pid=900,uid=0\n" +
			"3,2,3,-;Memory cgroup out of memory: Killed process 900 (guest.test) total-vm:9kB, anon-rss:4kB, file-rss:0kB\n", scope, 1,
			[]OOMVictim{{PID: 900, Comm: "guest.test", AnonRSSBytes: 4096, InsideBox: true, Cgroup: scope, LimitCgroup: "/boxrun.slice"}}},
		{"journalctl -k, no summary line, box lost a process", "Feb 16 20:56:46 host kernel: Memory cgroup out of memory: Killed process 48211 (bkt-3f2a) total-vm:9000kB, anon-rss:6396313kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12kB oom_score_adj:500\n", userScope, 1,
			[]OOMVictim{{PID: 48211, Comm: "bkt-3f2a", AnonRSSBytes: 6396313 * 1024, InsideBox: true}}},
		{"no summary line and the box lost nothing", "Out of memory: Killed process 11914 (code) total-vm:1kB, anon-rss:2kB, file-rss:0kB\n", userScope, 0,
			[]OOMVictim{{PID: 11914, Comm: "code", AnonRSSBytes: 2048, Global: true}}},
		{"comm with spaces and parentheses", "Out of memory: Killed process 7 (Web Content (x)) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n", "", 0,
			[]OOMVictim{{PID: 7, Comm: "Web Content (x)", AnonRSSBytes: 1024, Global: true}}},
		{"a program's message in /dev/kmsg is not the kernel's", "12,342,4098944245,-;x: Out of memory: Killed process 4242 (fake) total-vm:1kB, anon-rss:8kB, file-rss:0kB\n", "", 0, nil},
		{"nothing about OOM", "6,1,2,-;usb 1-1: new high-speed USB device\n[ 1.0] oom_reaper: reaped process 5 (x), now anon-rss:0kB\n", scope, 0, nil},
		{"garbage", "\x00\xff;;;,,[]]Killed process x (y) total-vm:zkB\n", scope, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOOMKills(strings.NewReader(tt.log), tt.box, tt.boxKills)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnderCgroup(t *testing.T) {
	tests := []struct {
		cg, box string
		want    bool
	}{
		{"/a/boxrun-x-1.scope", "/a/boxrun-x-1.scope", true},
		{"/a/boxrun-x-1.scope/child", "/a/boxrun-x-1.scope", true},
		{"/a/boxrun-x-12.scope", "/a/boxrun-x-1", false},
		{"/a/boxrun-x-1.scope", "/boxrun-x-1.scope", true}, // cgroup namespace
		{"/a/b", "", false},
		{"/a/b", "/", false},
		{"/a/b", "b", false},
	}
	for _, tt := range tests {
		if got := underCgroup(tt.cg, tt.box); got != tt.want {
			t.Errorf("underCgroup(%q, %q) = %v", tt.cg, tt.box, got)
		}
	}
}

func TestSampleBufKeepsPeaksAndBoundsSize(t *testing.T) {
	var b sampleBuf
	const n = 5*maxSamples + 7
	for i := 0; i < n; i++ {
		mem := uint64(i % 100)
		if i == 3333 {
			mem = 1 << 40 // a short spike must survive the merging
		}
		b.add(Sample{At: durationMS(i), MemoryBytes: mem, Pids: uint64(i)})
	}
	all := b.all()
	if len(all) > maxSamples || len(all) < maxSamples/4 {
		t.Fatalf("%d samples kept of %d, want at most %d and not far fewer", len(all), n, maxSamples)
	}
	var peak uint64
	for i, s := range all {
		peak = max(peak, s.MemoryBytes)
		if i > 0 && s.At <= all[i-1].At {
			t.Fatalf("samples out of order at %d: %v after %v", i, s.At, all[i-1].At)
		}
	}
	if peak != 1<<40 {
		t.Errorf("the spike was lost: peak %d", peak)
	}
	if last := all[len(all)-1]; last.Pids != n-1 {
		t.Errorf("last point holds pids %d, want the last reading %d", last.Pids, n-1)
	}
	var few sampleBuf
	few.add(Sample{MemoryBytes: 5})
	if got := few.all(); len(got) != 1 || got[0].MemoryBytes != 5 {
		t.Errorf("one sample: %+v", got)
	}
}

func TestMemoryEventsFrom(t *testing.T) {
	if ev := memoryEventsFrom(map[string]uint64{"high": 3, "oom_kill": 2, "oom_group_kill": 1}); ev != (MemoryEvents{High: 3, OOMKill: 2, OOMGroupKill: 1}) {
		t.Errorf("memoryEventsFrom = %+v", ev)
	}
}
