package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestLimitsTable checks the limits table against what the backends write
// today, spelled out by hand from box/systemd_linux.go (scopeProperties:
// MemoryHigh, MemoryMax, MemorySwapMax, TasksMax, CPUWeight,
// CPUQuotaPerSecUSec, IOWeight; memory.oom.group written by Place, never
// OOMPolicy=kill) and box/cgroupfs_linux.go (which wrote them through
// containerd's cgroup2.Resources and io.weight by hand; readback.go's
// expectedLimits names the same files), and
// helper_linux.go (/proc/self/oom_score_adj).
func TestLimitsTable(t *testing.T) {
	want := []struct {
		key, file, property, proc string
		typ                       ValueType
	}{
		{"memory.high", "memory.high", "MemoryHigh", "", SizeValue},
		{"memory.max", "memory.max", "MemoryMax", "", SizeValue},
		{"memory.swap.max", "memory.swap.max", "MemorySwapMax", "", SizeValue},
		{"memory.oom_group", "memory.oom.group", "", "", BoolValue},
		{"pids.max", "pids.max", "TasksMax", "", CountValue},
		{"cpu.weight", "cpu.weight", "CPUWeight", "", WeightValue},
		{"cpu.max", "cpu.max", "CPUQuotaPerSecUSec", "", PercentValue},
		{"io.weight", "io.weight", "IOWeight", "", WeightValue},
		{"oom_score_adj", "", "", "oom_score_adj", ScoreValue},
	}
	got := Limits()
	if len(got) != len(want) {
		t.Fatalf("Limits() has %d rows, want %d: %v", len(got), len(want), keysOf(got))
	}
	for i, w := range want {
		g := got[i]
		if g.Key != w.key || g.CgroupFile != w.file || g.SystemdProperty != w.property || g.ProcFile != w.proc || g.Type != w.typ {
			t.Errorf("row %d = {%s %q %q %q %s}, want {%s %q %q %q %s}", i,
				g.Key, g.CgroupFile, g.SystemdProperty, g.ProcFile, g.Type, w.key, w.file, w.property, w.proc, w.typ)
		}
	}
	limit := map[string]bool{}
	for _, w := range want {
		limit[w.key] = true
	}
	for _, k := range Keys() {
		n := 0
		for _, l := range got {
			if l.Key == k {
				n++
			}
		}
		if limit[k] && n != 1 || !limit[k] && n != 0 {
			t.Errorf("key %s has %d rows in Limits(), want it a limit: %v", k, n, limit[k])
		}
	}
}

// TestKeyTableRows checks that every row of the table can be read, copied,
// resolved and exported, so that a row is all a key needs.
func TestKeyTableRows(t *testing.T) {
	if !slices.Equal(policyKeys, keysOf(keyTable)) || len(policyKeys) == 0 {
		t.Fatalf("policyKeys %v are not the keys of keyTable", policyKeys)
	}
	for _, l := range keyTable {
		if l.set == nil || l.copy == nil {
			t.Errorf("%s: no set or copy", l.Key)
		}
		if l.Key != "extends" && (l.resolve == nil || l.json == nil) {
			t.Errorf("%s: no resolve or json", l.Key)
		}
		if (l.looser == nil) != (l.show == nil) {
			t.Errorf("%s: a looser without show, or the other way round", l.Key)
		}
		if l.CgroupFile != "" && l.value == nil && l.flag == nil {
			t.Errorf("%s: a cgroup file but no value", l.Key)
		}
	}
}

// limitSamples are a value of each type of limit, as written in TOML and
// in --set.
var limitSamples = map[ValueType]string{
	SizeValue:    `"1G"`,
	CountValue:   `100`,
	WeightValue:  `50`,
	PercentValue: `"50%"`,
	BoolValue:    `true`,
	ScoreValue:   `500`,
}

// TestLimitRoundTrip writes every limit in a policy file and with --set,
// resolves it and checks it comes out the same way in the backends'
// values and in each export: a new row of a known type needs nothing else.
func TestLimitRoundTrip(t *testing.T) {
	env := Env{MemoryBytes: 16 << 30}
	for _, l := range Limits() {
		t.Run(l.Key, func(t *testing.T) {
			sample, ok := limitSamples[l.Type]
			if !ok {
				t.Fatalf("no sample value of type %s", l.Type)
			}
			src := fmt.Sprintf("[policies.p]\n%s = %s\n", l.Key, sample)
			f, err := Parse("p.toml", strings.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			st := &Stack{Files: []*File{f}}
			fromFile, err := st.Resolve("p", nil, env)
			if err != nil {
				t.Fatal(err)
			}
			if o := fromFile.Origins[l.Key]; o != (Origin{File: "p.toml", Line: 2}) {
				t.Errorf("origin %v, want p.toml:2", o)
			}
			empty := &Stack{Files: []*File{mustParse(t, "[policies.p]\n")}}
			fromSet, err := empty.Resolve("p", []string{l.Key + "=" + sample}, env)
			if err != nil {
				t.Fatal(err)
			}
			unset, err := empty.Resolve("p", nil, env)
			if err != nil {
				t.Fatal(err)
			}

			text, ok := settingOf(t, fromFile.Settings(), l.Key).CgroupValue()
			if ok != (l.CgroupFile != "") || text == "" && ok {
				t.Errorf("CgroupValue = %q, %v with cgroup file %q", text, ok, l.CgroupFile)
			}
			if again, _ := settingOf(t, fromSet.Settings(), l.Key).CgroupValue(); again != text {
				t.Errorf("CgroupValue from --set %q, from the file %q", again, text)
			}
			if _, ok := settingOf(t, unset.Settings(), l.Key).CgroupValue(); ok {
				t.Errorf("CgroupValue of an unset key is set")
			}
			v, ok := settingOf(t, fromFile.Settings(), l.Key).SystemdValue()
			if ok != (l.SystemdProperty != "") {
				t.Errorf("SystemdValue = %d, %v with property %q", v, ok, l.SystemdProperty)
			}
			if again, _ := settingOf(t, fromSet.Settings(), l.Key).SystemdValue(); again != v {
				t.Errorf("SystemdValue from --set %d, from the file %d", again, v)
			}
			if _, ok := settingOf(t, unset.Settings(), l.Key).SystemdValue(); ok {
				t.Errorf("SystemdValue of an unset key is set")
			}

			var js map[string]any
			var buf bytes.Buffer
			if err := fromFile.Export(&buf, FormatJSON, env); err != nil || json.Unmarshal(buf.Bytes(), &js) != nil {
				t.Fatalf("json export: %v\n%s", err, buf.String())
			}
			var before map[string]any
			buf.Reset()
			if err := unset.Export(&buf, FormatJSON, env); err != nil || json.Unmarshal(buf.Bytes(), &before) != nil {
				t.Fatalf("json export: %v\n%s", err, buf.String())
			}
			name := l.jsonName
			if name == "" {
				name = strings.ReplaceAll(l.Key, ".", "_")
			}
			if fmt.Sprint(js[name]) == fmt.Sprint(before[name]) {
				t.Errorf("json %s is %v, set or not", name, js[name])
			}
			buf.Reset()
			if err := fromFile.Export(&buf, FormatSystemd, env); err != nil {
				t.Fatal(err)
			}
			if l.unit != "" && !strings.Contains(buf.String(), "\n"+l.unit+"=") {
				t.Errorf("systemd export has no %s=:\n%s", l.unit, buf.String())
			}
		})
	}
}

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse("p.toml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLimitValues checks the values the backends write today for each
// limit: systemd_linux.go sends the resolved uint64 (infinity for "max"),
// cgroupfs_linux.go and readback.go write the numbers, "max", cpu.max per
// 100ms period and io.weight as "default N".
func TestLimitValues(t *testing.T) {
	env := Env{MemoryBytes: 16 << 30}
	tests := []struct {
		set      string
		cgroup   string
		systemd  uint64
		noSystem bool
	}{
		{"memory.high=50%", "8589934592", 8 << 30, false},
		{"memory.max=max", "max", Unlimited, false},
		{"memory.swap.max=0", "0", 0, false},
		{"memory.oom_group=true", "1", 0, true},
		{"pids.max=4096", "4096", 4096, false},
		{"pids.max=max", "max", Unlimited, false},
		{"cpu.weight=50", "50", 50, false},
		{"cpu.max=400%", "400000 100000", 4_000_000, false},
		{"cpu.max=1%", "1000 100000", 10_000, false},
		{"cpu.max=33.3%", "33300 100000", 333_000, false},
		{"cpu.max=max", "max 100000", Unlimited, false},
		{"io.weight=50", "default 50", 50, false},
	}
	st := &Stack{Files: []*File{mustParse(t, "[policies.p]\n")}}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			r, err := st.Resolve("p", []string{tt.set}, env)
			if err != nil {
				t.Fatal(err)
			}
			key, _, _ := strings.Cut(tt.set, "=")
			s := settingOf(t, r.Settings(), key)
			if got, ok := s.CgroupValue(); !ok || got != tt.cgroup {
				t.Errorf("CgroupValue = %q, %v, want %q", got, ok, tt.cgroup)
			}
			if got, ok := s.SystemdValue(); ok == tt.noSystem || got != tt.systemd {
				t.Errorf("SystemdValue = %d, %v, want %d", got, ok, tt.systemd)
			}
			if s.Unlimited() != strings.HasSuffix(tt.set, "=max") {
				t.Errorf("Unlimited = %v", s.Unlimited())
			}
		})
	}
	r, err := st.Resolve("p", []string{"memory.oom_group=false", "oom_score_adj=500"}, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Settings() {
		if v, ok := s.CgroupValue(); ok {
			t.Errorf("%s: CgroupValue = %q of memory.oom_group=false, oom_score_adj=500", s.Key, v)
		}
	}
}

// settingOf returns the setting of key among settings.
func settingOf(t *testing.T, settings []Setting, key string) Setting {
	t.Helper()
	i := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == key })
	if i < 0 {
		t.Fatalf("no setting of %s", key)
	}
	return settings[i]
}

// TestResolvedSettings: a Resolved has one setting per row of the limits
// table, in the table's order.
func TestResolvedSettings(t *testing.T) {
	got := keysOf(limitsOf((&Resolved{}).Settings()))
	if want := keysOf(Limits()); !slices.Equal(got, want) {
		t.Errorf("Settings() keys %v, want the table's %v", got, want)
	}
}

// TestSliceSettings: the [slice] budget's settings are the table's rows
// of its keys, each with the slice's own value, written to the same file
// and property a box's is; unset keys say so, and a nil slice has none.
func TestSliceSettings(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	s := &ResolvedSlice{MemoryHigh: u(800 << 20), MemoryMax: u(Unlimited), PidsMax: u(8192)}
	want := []struct {
		key, file, property, cgroup string
		systemd                     uint64
		set, unlimited              bool
	}{
		{"memory.high", "memory.high", "MemoryHigh", "838860800", 800 << 20, true, false},
		{"memory.max", "memory.max", "MemoryMax", "max", Unlimited, true, true},
		{"pids.max", "pids.max", "TasksMax", "8192", 8192, true, false},
		{"cpu.weight", "cpu.weight", "CPUWeight", "", 0, false, false},
	}
	got := s.Settings()
	if !slices.Equal(keysOf(limitsOf(got)), sliceKeys) || len(got) != len(want) {
		t.Fatalf("Settings() keys %v, want the [slice] keys %v", keysOf(limitsOf(got)), sliceKeys)
	}
	for i, w := range want {
		g := got[i]
		text, ok := g.CgroupValue()
		v, sok := g.SystemdValue()
		if g.Key != w.key || g.CgroupFile != w.file || g.SystemdProperty != w.property || text != w.cgroup || ok != w.set ||
			v != w.systemd || sok != w.set || g.Unlimited() != w.unlimited {
			t.Errorf("%s: {%s %s %q %v %d %v %v}, want %+v", g.Key, g.CgroupFile, g.SystemdProperty, text, ok, v, sok, g.Unlimited(), w)
		}
	}
	if (*ResolvedSlice)(nil).Settings() != nil {
		t.Errorf("a nil slice has settings")
	}
}

func limitsOf(settings []Setting) []Limit {
	out := make([]Limit, len(settings))
	for i, s := range settings {
		out[i] = s.Limit
	}
	return out
}
