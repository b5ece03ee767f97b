package backpressure

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	day      = 24 * time.Hour
	tNow     = time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	lastWeek = tNow.Add(-7 * day)
)

// sizeJSON is a sizes file of /src/crate and policy tests with the given
// entries, each a JSON object.
func sizeJSON(entries ...string) string {
	return `{"version": 1, "dir": "/src/crate", "policy": "tests", "sizes": [` + strings.Join(entries, ", ") + `]}`
}

func entryJSON(comm string, peak uint64, learned time.Time) string {
	return fmt.Sprintf(`{"comm": %q, "peak_bytes": %d, "learned": %q}`, comm, peak, learned.Format(time.RFC3339))
}

func TestDecodeSizeFile(t *testing.T) {
	tooMany := make([]string, MaxSizeNames+1)
	for i := range tooMany {
		tooMany[i] = entryJSON(fmt.Sprintf("t%d", i), mib, lastWeek)
	}
	tests := []struct {
		name    string
		file    string
		want    []SizeEntry
		wantErr string // a part of the error; "" for none
	}{
		{"a good file", sizeJSON(entryJSON("job", 60*mib, lastWeek), entryJSON("cc", 5*mib, tNow)),
			[]SizeEntry{{"cc", 5 * mib, tNow}, {"job", 60 * mib, lastWeek}}, ""},
		{"no sizes yet", sizeJSON(), nil, ""},
		{"a stale entry is left out", sizeJSON(entryJSON("job", 60*mib, lastWeek), entryJSON("old", 5*mib, tNow.Add(-31*day))),
			[]SizeEntry{{"job", 60 * mib, lastWeek}}, ""},
		{"30 days old is not stale yet", sizeJSON(entryJSON("job", 60*mib, tNow.Add(-30*day))),
			[]SizeEntry{{"job", 60 * mib, tNow.Add(-30 * day)}}, ""},
		{"a clock a little behind is no error", sizeJSON(entryJSON("job", 60*mib, tNow.Add(time.Hour))),
			[]SizeEntry{{"job", 60 * mib, tNow.Add(time.Hour)}}, ""},
		{"every entry stale: the file is", sizeJSON(entryJSON("job", 60*mib, tNow.Add(-40*day)), entryJSON("cc", mib, tNow.Add(-31*day))),
			nil, "stale: the sizes were last learned on 2026-04-30, over 30 days ago"},
		{"empty", "", nil, "empty"},
		{"cut short", sizeJSON(entryJSON("job", 60*mib, lastWeek))[:40], nil, "not a sizes file: unexpected end of JSON input"},
		{"not JSON", "job 60M\n", nil, "not a sizes file: invalid character"},
		{"no version", `{"dir": "/src/crate", "policy": "tests", "sizes": []}`, nil, "not a sizes file: no version"},
		{"another version", `{"version": 2, "project": {"dir": "/src/crate"}}`, nil, "version 2; this boxrun reads version 1"},
		{"a field it does not know", `{"version": 1, "dir": "/src/crate", "policy": "tests", "sizes": [], "extra": 1}`, nil, `unknown field "extra"`},
		{"data after the end", sizeJSON() + "{}", nil, "not a sizes file: invalid character '{' after top-level value"},
		{"another directory", strings.Replace(sizeJSON(), "/src/crate", "/src/other", 1), nil, `records directory "/src/other", not "/src/crate"`},
		{"another policy", strings.Replace(sizeJSON(), `"tests"`, `"build"`, 1), nil, `records policy "build", not "tests"`},
		{"a size of zero", sizeJSON(entryJSON("job", 0, lastWeek)), nil, `size of "job" is 0 bytes; a size is 1 byte to 1 TiB`},
		{"a size over 1 TiB", sizeJSON(entryJSON("job", MaxSize+1, lastWeek)), nil, `size of "job" is 1099511627777 bytes`},
		{"a negative size", sizeJSON(`{"comm": "job", "peak_bytes": -1, "learned": "2026-05-01T00:00:00Z"}`), nil, "not a sizes file: json: cannot unmarshal number -1"},
		{"an empty name", sizeJSON(entryJSON("", mib, lastWeek)), nil, "an empty command name"},
		{"a name twice", sizeJSON(entryJSON("job", mib, lastWeek), entryJSON("job", 2*mib, lastWeek)), nil, `command name "job" appears twice`},
		{"no learned time", sizeJSON(`{"comm": "job", "peak_bytes": 1048576}`), nil, `size of "job" has no learned time`},
		{"learned in the future", sizeJSON(entryJSON("job", mib, tNow.Add(3*day))), nil, `size of "job" was learned on 2026-06-03, in the future`},
		{"too many names", sizeJSON(tooMany...), nil, "holds 257 names; a sizes file keeps at most 256"},
		{"too large to be one", sizeJSON() + strings.Repeat(" ", MaxSizeFileBytes), nil, "over 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeSizeFile(strings.NewReader(tt.file), "/src/crate", "tests", tNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Dir != "/src/crate" || f.Policy != "tests" || !sameEntries(f.Entries, tt.want) {
				t.Errorf("decoded %+v, want entries %+v", f, tt.want)
			}
		})
	}
}

// sameEntries compares entries, times by the instant.
func sameEntries(a, b []SizeEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Comm != b[i].Comm || a[i].Peak != b[i].Peak || !a[i].Learned.Equal(b[i].Learned) {
			return false
		}
	}
	return true
}

func TestEncodeSizeFile(t *testing.T) {
	tests := []struct {
		name    string
		f       SizeFile
		wantErr string
	}{
		{"entries come back sorted by name", SizeFile{Dir: "/src/crate", Policy: "tests",
			Entries: []SizeEntry{{"job", 60 * mib, lastWeek}, {"cc", 5 * mib, tNow}}}, ""},
		{"no entries", SizeFile{Dir: "/src/crate", Policy: "tests"}, ""},
		{"a size of zero is refused", SizeFile{Dir: "/src/crate", Policy: "tests",
			Entries: []SizeEntry{{"job", 0, lastWeek}}}, `size of "job" is 0 bytes`},
		{"a name twice is refused", SizeFile{Dir: "/src/crate", Policy: "tests",
			Entries: []SizeEntry{{"job", mib, lastWeek}, {"job", mib, tNow}}}, `"job" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodeSizeFile(&buf, tt.f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), `"version": 1`) {
				t.Errorf("no version in %s", buf.String())
			}
			got, err := DecodeSizeFile(&buf, tt.f.Dir, tt.f.Policy, tNow)
			if err != nil {
				t.Fatalf("decoding what was encoded: %v", err)
			}
			want := append([]SizeEntry(nil), tt.f.Entries...)
			sortEntries(want)
			if !sameEntries(got.Entries, want) {
				t.Errorf("round trip gave %+v, want %+v", got.Entries, want)
			}
		})
	}
}

func TestSizeFileName(t *testing.T) {
	pairs := [][2]string{
		{"/src/crate", "tests"},
		{"/src/crate", "build"},
		{"/src/other", "tests"},
		// The separator keeps these apart.
		{"/src/a", "b"},
		{"/src/ab", ""},
	}
	names := map[string][2]string{}
	for _, p := range pairs {
		n := SizeFileName(p[0], p[1])
		if n != SizeFileName(p[0], p[1]) {
			t.Errorf("SizeFileName%q is not stable", p)
		}
		if len(n) != 37 || !strings.HasSuffix(n, ".json") || strings.ContainsAny(n, "/\x00") {
			t.Errorf("SizeFileName%q = %q, want 32 hex digits and .json", p, n)
		}
		if q, ok := names[n]; ok {
			t.Errorf("SizeFileName%q = SizeFileName%q = %q", p, q, n)
		}
		names[n] = p
	}
}

func TestSizeFileUpdate(t *testing.T) {
	old := SizeFile{Dir: "/src/crate", Policy: "tests", Entries: []SizeEntry{
		{"job", 60 * mib, lastWeek}, {"link", 300 * mib, lastWeek.Add(-day)}, {"gone", mib, lastWeek},
	}}
	many := map[string]Size{}
	var want []SizeEntry
	for i := 0; i < MaxSizeNames+10; i++ {
		comm := fmt.Sprintf("t%03d", i)
		many[comm] = Size{Peak: uint64(i+1) * mib, Learned: true}
		if i >= 10 {
			want = append(want, SizeEntry{comm, uint64(i+1) * mib, tNow})
		}
	}
	tests := []struct {
		name  string
		sizes map[string]Size
		want  []SizeEntry
	}{
		{"learned sizes are dated now, known ones keep their date, forgotten ones go",
			map[string]Size{"job": {40 * mib, true}, "link": {300 * mib, false}, "cc": {5 * mib, true}},
			[]SizeEntry{{"cc", 5 * mib, tNow}, {"job", 40 * mib, tNow}, {"link", 300 * mib, lastWeek.Add(-day)}}},
		{"a size neither learned nor in the file is left out",
			map[string]Size{"new": {5 * mib, false}},
			nil},
		{"names and sizes the file could not hold are left out",
			map[string]Size{"": {mib, true}, "bad\xff": {mib, true}, strings.Repeat("x", 65): {mib, true}, "zero": {0, true}, "huge": {MaxSize + 1, true}, "ok": {mib, true}},
			[]SizeEntry{{"ok", mib, tNow}}},
		{"of too many names the largest are kept", many, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := old.Update(tt.sizes, tNow)
			if got.Dir != old.Dir || got.Policy != old.Policy || !sameEntries(got.Entries, tt.want) {
				t.Errorf("Update gave %+v, want entries %+v", got, tt.want)
			}
			if err := EncodeSizeFile(new(bytes.Buffer), got); err != nil {
				t.Errorf("the updated file cannot be written: %v", err)
			}
		})
	}
	if known := old.Known(); !reflect.DeepEqual(known, map[string]uint64{"job": 60 * mib, "link": 300 * mib, "gone": mib}) {
		t.Errorf("Known() = %v", known)
	}
}
