package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var updateExport = flag.Bool("update-export", false, "rewrite testdata/export/*.golden")

func TestExportGolden(t *testing.T) {
	env := Env{MemoryBytes: 16 << 30}
	st := &Stack{Files: []*File{Builtin()}}
	for _, name := range []string{"tests", "strict", "check"} {
		pol, err := st.Resolve(name, nil, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range ExportFormats {
			t.Run(name+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				if err := pol.Export(&buf, format, env); err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", "export", name+"."+format+".golden")
				if *updateExport {
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./policy -run TestExportGolden -update-export)", err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Errorf("%s differs from %s:\n%s", format, golden, buf.String())
				}
			})
		}
	}
}

// TestExportOCIIsTheSpec reads the oci export back into runtime-spec's own
// type, refusing unknown fields, and checks the limits came through.
func TestExportOCIIsTheSpec(t *testing.T) {
	env := Env{MemoryBytes: 16 << 30}
	pol, err := (&Stack{Files: []*File{Builtin()}}).Resolve("strict", nil, env)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pol.Export(&buf, FormatOCI, env); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	var res specs.LinuxResources
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("the oci export is not a specs.LinuxResources: %v", err)
	}
	if res.Memory == nil || res.Memory.Limit == nil || uint64(*res.Memory.Limit) != *pol.MemoryMax {
		t.Errorf("memory limit %+v, want %d", res.Memory, *pol.MemoryMax)
	}
	if res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit != 512 {
		t.Errorf("pids %+v, want 512", res.Pids)
	}
	if res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 200_000 || *res.CPU.Period != CPUPeriodUSec {
		t.Errorf("cpu %+v, want 200000 per %d", res.CPU, CPUPeriodUSec)
	}
}

func TestExportUnknownFormat(t *testing.T) {
	pol, err := (&Stack{Files: []*File{Builtin()}}).Resolve("tests", nil, Env{MemoryBytes: 16 << 30})
	if err != nil {
		t.Fatal(err)
	}
	err = pol.Export(&bytes.Buffer{}, "yaml", Env{})
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), `"yaml"`) || !strings.Contains(err.Error(), "oci") {
		t.Errorf("err = %v; want ErrUnknownFormat naming the format and the known ones", err)
	}
}

func TestK8sQuantity(t *testing.T) {
	for in, want := range map[uint64]string{1 << 30: "1Gi", 3 << 29: "1536Mi", 4096: "4Ki", 1000: "1000", 12884901888: "12Gi"} {
		if got := k8sQuantity(in); got != want {
			t.Errorf("k8sQuantity(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestUnexpressed: each format says what it drops, oci included, through
// the one list the comments of systemd and k8s are made from.
func TestUnexpressed(t *testing.T) {
	env := Env{MemoryBytes: 16 << 30}
	st := &Stack{Files: []*File{Builtin()}}
	tests := []struct {
		policy, format string
		want           []string
	}{
		{"tests", FormatJSON, nil},
		{"tests", FormatOCI, []string{
			"oom_score_adj = 500 (the spec's process.oomScoreAdj, outside linux.resources)",
			"memory.backpressure (boxrun pauses processes itself)",
			"protect (run boxrun protect, or its user unit)",
			`leftovers = "kill" (a container's processes all end when it stops)`,
		}},
		{"check", FormatOCI, []string{
			"oom_score_adj = 700 (the spec's process.oomScoreAdj, outside linux.resources)",
			`leftovers = "kill" (a container's processes all end when it stops)`,
		}},
		{"tests", FormatSystemd, []string{
			"memory.backpressure (boxrun pauses processes itself)",
			"protect (run boxrun protect, or its user unit)",
			`leftovers = "kill" (a service's KillMode=control-group kills what is left when it stops)`,
		}},
		{"check", FormatK8s, []string{
			"pids.max (a node setting: the kubelet's podPidsLimit)",
			"cpu.weight (follows from requests.cpu)",
			"oom_score_adj (set by the kubelet from the QoS class)",
			"memory.swap.max (a node setting: memorySwap.swapBehavior)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.format, func(t *testing.T) {
			pol, err := st.Resolve(tt.policy, nil, env)
			if err != nil {
				t.Fatal(err)
			}
			got := pol.Unexpressed(tt.format)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Unexpressed(%s):\n%s\nwant:\n%s", tt.format, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.format == FormatSystemd || tt.format == FormatK8s {
				var buf bytes.Buffer
				if err := pol.Export(&buf, tt.format, env); err != nil {
					t.Fatal(err)
				}
				if want := "# Not expressible here: " + strings.Join(got, "; ") + ".\n"; !strings.Contains(buf.String(), want) {
					t.Errorf("the %s export does not say %q:\n%s", tt.format, want, buf.String())
				}
			}
		})
	}
}
