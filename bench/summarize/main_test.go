package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	log := `root|     x_test.go:1: figures: bench: {"bench":"launch","mode":"root","boxrun_over_bare":2.5}
    integration_test.go:239: figures: bench: {"bench":"launch","mode":"root","boxrun_over_bare":2.5}
    integration_test.go:239: figures: unboxed 4.2s; kill-only box: 19 failed, 19 OOM kills; backpressure: 0 failed, 0 OOM kills, 9.2s (2.17x unboxed)
    integration_test.go:239: figures: max_concurrent = 3, 10 runs at once
BenchmarkText-2   	  195307	      7025 ns/op	    8081 B/op	      44 allocs/op
`
	r, err := parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bench["launch"]) != 1 || r.Bench["launch"][0]["boxrun_over_bare"] != 2.5 {
		t.Errorf("bench = %v; want the launch line once", r.Bench)
	}
	if m := r.Micro["Text"]; m.NsPerOp != 7025 || m.BytesPerOp != 8081 || m.AllocsPerOp != 44 {
		t.Errorf("micro = %+v; want BenchmarkText's figures", r.Micro)
	}
	if len(r.Backpressure) != 1 || !strings.Contains(r.Backpressure[0], "2.17x") {
		t.Errorf("backpressure = %q", r.Backpressure)
	}
	if _, err := parse(strings.NewReader("nothing here\n")); err == nil {
		t.Error("a log without figures was accepted")
	}
	if _, err := parse(strings.NewReader("figures: bench: {not json\n")); err == nil {
		t.Error("a broken bench line was accepted")
	}
}

// TestTableNative: bench/native.sh's rows (strings, as its summary prints
// them) come out in the native table's columns.
func TestTableNative(t *testing.T) {
	log := `cgroupfs|     bench_native_test.go:1: figures: bench: {"bench":"native","mode":"cgroupfs","pattern":"lock","box":"100M","tasks_passed":"16/16","oom_kills":"0","longest_pause":"4.2s","paused":"9","wall":"12.0s","vs_unboxed":"1.80x","bounds":"ok (pause < 10s, <= 2x)"}
`
	r, err := parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	table(&out, r)
	if want := "cgroupfs | lock | 100M | 16/16 | 0 | 4.2s | 9 | 12.0s | 1.80x | ok (pause < 10s, <= 2x)"; !strings.Contains(out.String(), want) {
		t.Errorf("table:\n%s\nwant a row %q", out.String(), want)
	}
}
