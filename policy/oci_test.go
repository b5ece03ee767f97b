package policy

import (
	"encoding/json"
	"testing"
)

func TestLinuxResources(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name string
		in   Resolved
		want string // JSON of the spec struct, the form runtimes read
	}{
		{
			name: "nothing set",
			in:   Resolved{},
			want: `{}`,
		},
		{
			name: "memory with unlimited swap",
			in: Resolved{
				MemoryHigh: u(6 * gib), MemoryMax: u(8 * gib), MemorySwapMax: u(Unlimited),
				Origins: map[string]Origin{"memory.oom_group": {OriginBuiltin, 0}},
			},
			want: `{"memory":{"limit":8589934592,"swap":-1},"unified":{"memory.high":"6442450944","memory.oom.group":"0"}}`,
		},
		{
			name: "no swap: memory+swap equals memory",
			in:   Resolved{MemoryMax: u(4 * gib), MemorySwapMax: u(0), MemoryOOMGroup: true},
			want: `{"memory":{"limit":4294967296,"swap":4294967296},"unified":{"memory.oom.group":"1"}}`,
		},
		{
			name: "swap limit with memory.max",
			in:   Resolved{MemoryMax: u(4 * gib), MemorySwapMax: u(gib)},
			want: `{"memory":{"limit":4294967296,"swap":5368709120}}`,
		},
		{
			name: "swap limit without memory.max goes to unified",
			in:   Resolved{MemorySwapMax: u(gib)},
			want: `{"unified":{"memory.swap.max":"1073741824"}}`,
		},
		{
			name: "swap limit with unlimited memory.max goes to unified",
			in:   Resolved{MemoryMax: u(Unlimited), MemorySwapMax: u(gib)},
			want: `{"memory":{"limit":-1},"unified":{"memory.swap.max":"1073741824"}}`,
		},
		{
			name: "memory+swap that would overflow goes to unified",
			in:   Resolved{MemoryMax: u(MaxSizeBytes), MemorySwapMax: u(gib)},
			want: `{"memory":{"limit":9223372036854775807},"unified":{"memory.swap.max":"1073741824"}}`,
		},
		{
			name: "unlimited memory.high",
			in:   Resolved{MemoryHigh: u(Unlimited)},
			want: `{"unified":{"memory.high":"max"}}`,
		},
		{
			name: "pids",
			in:   Resolved{PidsMax: u(4096)},
			want: `{"pids":{"limit":4096}}`,
		},
		{
			name: "unlimited pids",
			in:   Resolved{PidsMax: u(Unlimited)},
			want: `{"pids":{"limit":-1}}`,
		},
		{
			name: "cpu weight and quota",
			in:   Resolved{CPUWeight: u(50), CPUQuotaPerSecUSec: u(4_000_000)},
			want: `{"cpu":{"shares":` + jsonUint(cpuWeightToShares(50)) + `,"quota":400000,"period":100000}}`,
		},
		{
			name: "fractional quota",
			in:   Resolved{CPUQuotaPerSecUSec: u(25_000)},
			want: `{"cpu":{"quota":2500,"period":100000}}`,
		},
		{
			name: "unlimited quota",
			in:   Resolved{CPUQuotaPerSecUSec: u(Unlimited)},
			want: `{"cpu":{"quota":-1,"period":100000}}`,
		},
		{
			name: "io weight",
			in:   Resolved{IOWeight: u(100)},
			want: `{"blockIO":{"weight":20}}`,
		},
		{
			name: "settings without a cgroup file are not mapped",
			in:   Resolved{OOMScoreAdj: ptr(500), MemoryBackpressure: true, Leftovers: "keep", Protect: []string{"editors"}},
			want: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.in.LinuxResources())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("LinuxResources =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func jsonUint(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCPUWeightToShares checks that every cpu.weight survives the trip
// through CPU.Shares and the runtimes' conversion back, and pins the
// well-known points of that conversion.
func TestCPUWeightToShares(t *testing.T) {
	for _, p := range []struct{ shares, weight uint64 }{{2, 1}, {1024, 100}, {262144, 10000}} {
		if got := cpuSharesToWeight(p.shares); got != p.weight {
			t.Errorf("cpuSharesToWeight(%d) = %d, want %d", p.shares, got, p.weight)
		}
	}
	for w := uint64(minWeight); w <= maxWeight; w++ {
		s := cpuWeightToShares(w)
		if s < 2 || s > 262144 {
			t.Fatalf("cpuWeightToShares(%d) = %d, out of the cgroup v1 range", w, s)
		}
		if back := cpuSharesToWeight(s); back != w {
			t.Fatalf("cpuWeightToShares(%d) = %d, which converts back to %d", w, s, back)
		}
	}
	// The linear inverse the runtimes no longer use would not round-trip.
	linear := 2 + (50-1)*262142/9999
	if back := cpuSharesToWeight(uint64(linear)); back == 50 {
		t.Errorf("linear inverse of 50 = %d converts back to 50; the comment on LinuxResources is wrong", linear)
	}
}

// TestIOWeightToBlkio checks that every io.weight maps to the blkio weight
// whose conversion is nearest, within the documented 5.
func TestIOWeightToBlkio(t *testing.T) {
	for w := uint64(minWeight); w <= maxWeight; w++ {
		b := ioWeightToBlkio(w)
		if b < 10 || b > 1000 {
			t.Fatalf("ioWeightToBlkio(%d) = %d, out of the blkio range", w, b)
		}
		dist := func(b uint16) uint64 {
			got := blkioToIOWeight(b)
			if got > w {
				return got - w
			}
			return w - got
		}
		if d := dist(b); d > 5 {
			t.Fatalf("ioWeightToBlkio(%d) = %d, which converts to %d", w, b, blkioToIOWeight(b))
		}
		for other := uint16(10); other <= 1000; other++ {
			if dist(other) < dist(b) {
				t.Fatalf("ioWeightToBlkio(%d) = %d, but %d converts closer", w, b, other)
			}
		}
	}
}
