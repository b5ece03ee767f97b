package signals

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFormat(t *testing.T) {
	f, err := os.Open("testdata/signal_generate-6.1.format")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := ParseFormat(f)
	if err != nil {
		t.Fatal(err)
	}
	want := Offsets{
		Sig: Field{8, 4, true}, Code: Field{16, 4, true}, Comm: Field{20, 16, false},
		PID: Field{36, 4, true}, Group: Field{40, 4, true}, Result: Field{44, 4, true},
	}
	if o != want {
		t.Errorf("offsets %+v, want %+v", o, want)
	}
}

func TestParseFormatErrors(t *testing.T) {
	full, _ := os.ReadFile("testdata/signal_generate-6.1.format")
	for _, tc := range []struct {
		name, text, field string
		line              int
	}{
		{"empty", "", "sig", 0},
		{"no result (an old kernel)", strings.Replace(string(full), "field:int result;", "field:int other;", 1), "result", 0},
		{"a bad offset", strings.Replace(string(full), "offset:8;", "offset:x;", 1), "sig", 9},
		{"misaligned", strings.Replace(string(full), "offset:36;", "offset:37;", 1), "pid", 0},
		{"comm of another size", strings.Replace(string(full), "size:16;", "size:32;", 1), "comm", 0},
		{"no offset", "\tfield:int sig;\tsize:4;\n", "sig", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFormat(strings.NewReader(tc.text))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FormatError", err)
			}
			if fe.Field != tc.field || fe.Line != tc.line {
				t.Errorf("error %q: field %q line %d, want %q line %d", err, fe.Field, fe.Line, tc.field, tc.line)
			}
		})
	}
}

func TestCodeName(t *testing.T) {
	for _, tc := range []struct {
		sig, code int
		want      string
		kernel    bool
	}{
		{9, 0, "SI_USER", false},
		{9, 0x80, "SI_KERNEL", true},
		{15, -6, "SI_TKILL", false},
		{15, -1, "SI_QUEUE", false},
		{11, 1, "SEGV_MAPERR", true},
		{11, 2, "SEGV_ACCERR", true},
		{7, 2, "BUS_ADRERR", true},
		{31, 1, "SYS_SECCOMP", true},
		{11, 9, "si_code 9", true},
		{9, -60, "si_code -60", false},
	} {
		if got := CodeName(tc.sig, tc.code); got != tc.want {
			t.Errorf("CodeName(%d, %d) = %q, want %q", tc.sig, tc.code, got, tc.want)
		}
		if got := FromKernel(tc.code); got != tc.kernel {
			t.Errorf("FromKernel(%d) = %v, want %v", tc.code, got, tc.kernel)
		}
	}
}

func TestTraced(t *testing.T) {
	m := Traced()
	for _, sig := range []int{1, 2, 3, 6, 9, 11, 15} {
		if m&(1<<sig) == 0 {
			t.Errorf("%s is not traced", SignalName(sig))
		}
	}
	for _, sig := range []int{0, 10, 12, 13, 14, 17, 19, 28} {
		if m&(1<<sig) != 0 {
			t.Errorf("signal %d is traced", sig)
		}
	}
}

func TestBoxOf(t *testing.T) {
	for _, tc := range []struct{ path, box, unit string }{
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/boxrun-tests-0a1b2c3d.scope", "/user.slice/user-1000.slice/user@1000.service/app.slice/boxrun-tests-0a1b2c3d.scope", "boxrun-tests-0a1b2c3d.scope"},
		{"/boxrun.slice/boxrun-my-policy-deadbeef.scope/boxrun.paused", "/boxrun.slice/boxrun-my-policy-deadbeef.scope", "boxrun-my-policy-deadbeef.scope"},
		{"/itbox/boxrun-tests-0000ffff", "/itbox/boxrun-tests-0000ffff", ""},
		{"/user.slice/user-1000.slice/session-3.scope", "", "session-3.scope"},
		{"/boxrun-tests-0A1B2C3D.scope", "", "boxrun-tests-0A1B2C3D.scope"}, // ids are lowercase
		{"/boxrun-tests.scope", "", "boxrun-tests.scope"},
		{"/boxrun--0a1b2c3d", "", ""},
		{"", "", ""},
	} {
		if got := BoxOf(LiveCgroup(tc.path + " (deleted)")); got != tc.box {
			t.Errorf("BoxOf(LiveCgroup(%q (deleted))) = %q, want %q", tc.path, got, tc.box)
		}
		if got := BoxOf(tc.path); got != tc.box {
			t.Errorf("BoxOf(%q) = %q, want %q", tc.path, got, tc.box)
		}
		if got := UnitOf(tc.path); got != tc.unit {
			t.Errorf("UnitOf(%q) = %q, want %q", tc.path, got, tc.unit)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	b := make([]byte, EventSize)
	bo := binary.NativeEndian
	bo.PutUint64(b[evTime:], uint64(5*time.Second))
	bo.PutUint64(b[evPidTgid:], 1234<<32|1236)
	bo.PutUint64(b[evUidGid:], 1000<<32|1000)
	bo.PutUint64(b[evCgroup:], 4242)
	bo.PutUint32(b[evSig:], 9)
	bo.PutUint32(b[evCode:], 0x80)
	bo.PutUint32(b[evPID:], 77)
	bo.PutUint32(b[evGroup:], 1)
	bo.PutUint32(b[evResult:], 2)
	copy(b[evTargetComm:], "sleep")
	copy(b[evSenderComm:], "a-fifteen-chars")
	e, err := DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Monotonic != 5*time.Second || e.Sig != 9 || e.Code != 0x80 || !e.Group || e.Result != 2 ||
		e.Target.PID != 77 || e.Target.Comm != "sleep" || e.Sender.PID != 1234 || e.Sender.TID != 1236 ||
		e.Sender.UID != 1000 || e.Sender.CgroupID != 4242 || e.Sender.Comm != "a-fifteen-chars" {
		t.Errorf("decoded %+v", e)
	}
	r := NewRecord(e, time.Unix(100, 0))
	if r.Signal != "SIGKILL" || r.CodeName != "SI_KERNEL" || !r.Kernel || r.Result != "already_pending" || r.Target.UID != -1 {
		t.Errorf("record %+v", r)
	}
	if _, err := DecodeEvent(b[:40]); err == nil {
		t.Error("a short event decoded")
	}
}

const recordsText = `{"time":"2026-12-06T10:00:01Z","signal":"SIGKILL","signo":9,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"delivered","target":{"pid":100,"comm":"sleep","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":"boxrun-tests-0a1b2c3d.scope"},"sender":{"pid":200,"comm":"kill","uid":1000,"cgroup":"/user.slice/user-1000.slice/session-3.scope","unit":"session-3.scope"}}
{"time":"2026-12-06T10:00:02Z","signal":"SIGKILL","signo":9,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"already_pending","target":{"pid":101,"comm":"timeout","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":""},"sender":{"pid":101,"comm":"timeout","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":"boxrun-tests-0a1b2c3d.scope"}}
{"time":"2026-12-06T10:00:02.5Z","signal":"SIGKILL","signo":9,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"delivered","target":{"pid":101,"comm":"timeout","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":""},"sender":{"pid":101,"comm":"timeout","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":"boxrun-tests-0a1b2c3d.scope"}}
not json
{"time":"2026-12-06T10:00:03Z","signal":"SIGTERM","signo":15,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"ignored","target":{"pid":102,"comm":"sh","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope/child","unit":""},"sender":{"pid":1,"comm":"systemd","uid":0,"cgroup":"/init.scope","unit":"init.scope"}}
{"time":"2026-12-06T10:00:04Z","signal":"SIGKILL","signo":9,"si_code":128,"code":"SI_KERNEL","kernel":true,"group":true,"result":"delivered","target":{"pid":103,"comm":"hog","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope/child","unit":""},"sender":{"pid":103,"comm":"hog","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope/child","unit":"boxrun-tests-0a1b2c3d.scope"}}
{"time":"2026-12-06T11:00:00Z","signal":"SIGKILL","signo":9,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"delivered","target":{"pid":100,"comm":"sleep","uid":1000,"cgroup":"/a/boxrun-tests-0a1b2c3d.scope","unit":""},"sender":{"pid":300,"comm":"pkill","uid":1000,"cgroup":"","unit":""}}
{"time":"2026-12-06T10:00:05Z","signal":"SIGINT","signo":2,"si_code":0,"code":"SI_USER","kernel":false,"group":true,"result":"delivered","target":{"pid":104,"comm":"cargo","uid":1000,"cgroup":"/a/boxrun-tests-99999999.scope","unit":""},"sender":{"pid":5,"comm":"bash","uid":1000,"cgroup":"","unit":""}}
`

func TestMatch(t *testing.T) {
	recs, bad, err := ParseRecords(strings.NewReader(recordsText))
	if err != nil || bad != 1 || len(recs) != 7 {
		t.Fatalf("parsed %d records, %d bad, %v; want 7, 1 bad", len(recs), bad, err)
	}
	from, _ := time.Parse(time.RFC3339, "2026-12-06T10:00:00Z")
	to := from.Add(10 * time.Second)
	in := InBox(recs, "/a/boxrun-tests-0a1b2c3d.scope", 0, from, to)
	var pids []int
	for _, r := range in {
		pids = append(pids, r.Target.PID)
	}
	// Not: the ignored SIGTERM, the kill an hour later, another box.
	if want := []int{100, 101, 101, 103}; !equal(pids, want) {
		t.Errorf("in the box: pids %v, want %v", pids, want)
	}
	if in := InBox(recs, "", 104, from, to); len(in) != 1 || in[0].Signal != "SIGINT" {
		t.Errorf("by pid: %+v", in)
	}
	r, ok := SenderOf(in, 101, 9)
	if !ok || r.Result != "delivered" || r.Sender.Comm != "timeout" {
		t.Errorf("SenderOf timeout: %+v, %v", r, ok)
	}
	if _, ok := SenderOf(in, 101, 15); ok {
		t.Error("SenderOf found a SIGTERM that was not sent")
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	if _, traced, err := ReadDir(dir + "/none"); traced || err != nil {
		t.Errorf("a missing directory: traced %v, %v", traced, err)
	}
	lines := strings.SplitAfter(recordsText, "\n")
	os.WriteFile(dir+"/"+File+".1", []byte(lines[0]), 0o600)
	os.WriteFile(dir+"/"+File, []byte(lines[1]), 0o600)
	recs, traced, err := ReadDir(dir)
	if !traced || err != nil || len(recs) != 2 || recs[0].Target.PID != 100 || recs[1].Target.PID != 101 {
		t.Errorf("ReadDir: %+v, %v, %v", recs, traced, err)
	}
}
