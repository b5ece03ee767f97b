package procfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLocks(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []Lock
		awaited  map[int]bool
		waitsFor map[int][]int
		err      string
	}{
		{name: "empty", in: "", awaited: map[int]bool{}},
		{
			name: "a flock with a waiter",
			in: "1: FLOCK  ADVISORY  WRITE 7581 fe:00:9994449 0 EOF\n" +
				"1: -> FLOCK  ADVISORY  WRITE 7622 fe:00:9994449 0 EOF\n",
			want:     []Lock{{ID: 1, Class: "FLOCK", PID: 7581}, {ID: 1, Blocked: true, Class: "FLOCK", PID: 7622}},
			awaited:  map[int]bool{7581: true},
			waitsFor: map[int][]int{7622: {7581}},
		},
		{
			name: "held without waiters, two waiters on another",
			in: "1: POSIX  ADVISORY  READ 10 08:01:12 0 EOF\n" +
				"2: FLOCK  ADVISORY  WRITE 20 08:01:13 0 EOF\n" +
				"2: -> FLOCK  ADVISORY  WRITE 21 08:01:13 0 EOF\n" +
				"2: -> FLOCK  ADVISORY  WRITE 22 08:01:13 0 EOF\n",
			want: []Lock{{ID: 1, Class: "POSIX", PID: 10}, {ID: 2, Class: "FLOCK", PID: 20},
				{ID: 2, Blocked: true, Class: "FLOCK", PID: 21}, {ID: 2, Blocked: true, Class: "FLOCK", PID: 22}},
			awaited:  map[int]bool{20: true},
			waitsFor: map[int][]int{21: {20}, 22: {20}},
		},
		{
			name: "an open file description lock has no process",
			in: "3: OFDLCK ADVISORY  WRITE -1 00:2e:2 0 EOF\n" +
				"3: -> OFDLCK ADVISORY  WRITE -1 00:2e:2 0 EOF\n",
			want:    []Lock{{ID: 3, Class: "OFDLCK", PID: -1}, {ID: 3, Blocked: true, Class: "OFDLCK", PID: -1}},
			awaited: map[int]bool{},
		},
		{
			name: "a waiter whose holder has no process here",
			in: "5: OFDLCK ADVISORY  WRITE -1 00:2e:4 0 EOF\n" +
				"5: -> FLOCK  ADVISORY  WRITE 31 00:2e:4 0 EOF\n",
			want:     []Lock{{ID: 5, Class: "OFDLCK", PID: -1}, {ID: 5, Blocked: true, Class: "FLOCK", PID: 31}},
			awaited:  map[int]bool{},
			waitsFor: map[int][]int{31: {}},
		},
		{
			name:    "a lease",
			in:      "4: LEASE  ACTIVE    READ 300 00:2e:3 0 EOF\n",
			want:    []Lock{{ID: 4, Class: "LEASE", PID: 300}},
			awaited: map[int]bool{},
		},
		{name: "no number", in: "FLOCK ADVISORY WRITE 1 0:0:1 0 EOF\n", err: "does not start with a lock number"},
		{name: "too short", in: "1: FLOCK ADVISORY\n", err: "too few fields"},
		{name: "no pid", in: "1: FLOCK ADVISORY WRITE x 0:0:1 0 EOF\n", err: "no process id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLocks(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseLocks: err %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLocks = %+v, want %+v", got, tt.want)
			}
			if a := Awaited(got); !reflect.DeepEqual(a, tt.awaited) {
				t.Errorf("Awaited = %v, want %v", a, tt.awaited)
			}
			want := tt.waitsFor
			if want == nil {
				want = map[int][]int{}
			}
			if w := WaitsFor(got); !reflect.DeepEqual(w, want) {
				t.Errorf("WaitsFor = %v, want %v", w, want)
			}
		})
	}
}
