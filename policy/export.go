package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Export formats, for Export.
const (
	FormatJSON    = "json"
	FormatOCI     = "oci"
	FormatSystemd = "systemd"
	FormatK8s     = "k8s"
)

// ExportFormats lists the formats Export writes.
var ExportFormats = []string{FormatJSON, FormatOCI, FormatSystemd, FormatK8s}

// ErrUnknownFormat is returned (wrapped) by Export for a format it does not
// know.
var ErrUnknownFormat = fmt.Errorf("unknown export format")

// Export writes the resolved policy so that the same limits can follow a
// suite into other tools:
//
//   - json: boxrun's own resolved policy (sizes in bytes, null for unset).
//   - oci: the OCI runtime-spec linux.resources object (see LinuxResources);
//     what it cannot express (Unexpressed) is the caller's to say, since
//     JSON has no comments.
//   - systemd: resource settings for a unit drop-in or systemctl
//     set-property, with what systemd cannot express said in comments.
//   - k8s: a Kubernetes container's resources (YAML), likewise.
//
// env is what percentages were resolved against, named in the headers.
func (r *Resolved) Export(w io.Writer, format string, env Env) error {
	switch format {
	case FormatJSON:
		return writeJSON(w, r.exportJSON())
	case FormatOCI:
		return writeJSON(w, r.LinuxResources())
	case FormatSystemd:
		_, err := io.WriteString(w, r.systemdDropIn(env))
		return err
	case FormatK8s:
		_, err := io.WriteString(w, r.k8sResources(env))
		return err
	}
	return fmt.Errorf("%w %q (use %s)", ErrUnknownFormat, format, strings.Join(ExportFormats, ", "))
}

func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// limitOrMax is a limit for JSON: nil, "max", or the number.
func limitOrMax(v *uint64) any {
	switch {
	case v == nil:
		return nil
	case *v == Unlimited:
		return "max"
	}
	return *v
}

// exportJSON is the json format: the name, then every key but extends in
// the order of Keys, named with "_" for "." ("memory_high"). Limits are
// bytes or counts; nil is "not set", and "max" is spelled "max".
func (r *Resolved) exportJSON() jsonObject {
	out := jsonObject{{"name", r.Name}}
	for _, l := range keyTable {
		if l.json == nil {
			continue
		}
		name := l.jsonName
		if name == "" {
			name = strings.ReplaceAll(l.Key, ".", "_")
		}
		out = append(out, jsonField{name, l.json(r)})
	}
	return out
}

// jsonObject is a JSON object that keeps its fields in order.
type jsonObject []jsonField

// jsonField is one field of a jsonObject.
type jsonField struct {
	name  string
	value any
}

// MarshalJSON writes the fields in order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range o {
		name, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, name...), ':'), value...)
	}
	return append(b, '}'), nil
}

// resolvedFor says what percentages were resolved against.
func resolvedFor(env Env) string {
	if env.MemoryBytes == 0 {
		return ""
	}
	return fmt.Sprintf(", percentages resolved for %s of memory", FormatBytes(env.MemoryBytes))
}

// systemdValue spells a byte or count limit as systemd reads it.
func systemdValue(v uint64) string {
	if v == Unlimited {
		return "infinity"
	}
	return strconv.FormatUint(v, 10)
}

func (r *Resolved) systemdDropIn(env Env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# boxrun policy %q as systemd resource settings%s.\n", r.Name, resolvedFor(env))
	b.WriteString("# A drop-in for a service (e.g. ~/.config/systemd/user/NAME.service.d/boxrun.conf);\n")
	b.WriteString("# for a scope, put the same lines but OOMScoreAdjust under [Scope], or pass\n")
	b.WriteString("# them to systemd-run -p / systemctl set-property.\n[Service]\n")
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	for _, l := range keyTable {
		if l.unit == "" || l.unitValue == nil {
			continue
		}
		if v, ok := l.unitValue(r); ok {
			line(l.unit, v)
		}
	}
	// memory.oom_group's OOMPolicy comes last, and unset too: boxrun's
	// default (false, "continue") is not a unit's ("stop").
	if r.MemoryOOMGroup {
		line("OOMPolicy", "kill")
	} else {
		line("OOMPolicy", "continue")
	}
	b.WriteString("# Not expressible here: " + strings.Join(r.Unexpressed(FormatSystemd), "; ") + ".\n")
	return b.String()
}

// Unexpressed lists the settings of r that format cannot express, each
// with what does the job instead ("protect (run boxrun protect, or its user
// unit)"); nil for json, which holds everything. Export writes them as a
// comment in the formats that have comments (systemd, k8s); for oci, whose
// JSON has none, the caller should tell the user.
func (r *Resolved) Unexpressed(format string) []string {
	var lost []string
	boxrunOnly := func() {
		if r.MemoryBackpressure {
			lost = append(lost, "memory.backpressure (boxrun pauses processes itself)")
		}
		if len(r.Protect) > 0 {
			lost = append(lost, "protect (run boxrun protect, or its user unit)")
		}
		if r.MaxConcurrent > 0 || r.StartWhenAvailable != nil {
			lost = append(lost, "max_concurrent and start_when_available (boxrun waits before starting)")
		}
	}
	switch format {
	case FormatSystemd:
		boxrunOnly()
		lost = append(lost, fmt.Sprintf("leftovers = %q (a service's KillMode=control-group kills what is left when it stops)", r.Leftovers))
	case FormatOCI:
		if r.OOMScoreAdj != nil {
			lost = append(lost, fmt.Sprintf("oom_score_adj = %d (the spec's process.oomScoreAdj, outside linux.resources)", *r.OOMScoreAdj))
		}
		boxrunOnly()
		lost = append(lost, fmt.Sprintf("leftovers = %q (a container's processes all end when it stops)", r.Leftovers))
	case FormatK8s:
		if r.MemoryHigh != nil {
			lost = append(lost, "memory.high (the kubelet's MemoryQoS derives its own)")
		}
		if r.PidsMax != nil {
			lost = append(lost, "pids.max (a node setting: the kubelet's podPidsLimit)")
		}
		if r.CPUWeight != nil {
			lost = append(lost, "cpu.weight (follows from requests.cpu)")
		}
		if r.OOMScoreAdj != nil {
			lost = append(lost, "oom_score_adj (set by the kubelet from the QoS class)")
		}
		if r.MemorySwapMax != nil {
			lost = append(lost, "memory.swap.max (a node setting: memorySwap.swapBehavior)")
		}
		if r.MemoryBackpressure {
			lost = append(lost, "memory.backpressure")
		}
	}
	return lost
}

// k8sQuantity spells bytes as a Kubernetes quantity: the largest binary
// unit that divides it exactly.
func k8sQuantity(v uint64) string {
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatUint(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(v, 10)
}

func (r *Resolved) k8sResources(env Env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# boxrun policy %q as a Kubernetes container's resources%s.\n", r.Name, resolvedFor(env))
	var limits []string
	if r.MemoryMax != nil && *r.MemoryMax != Unlimited {
		limits = append(limits, fmt.Sprintf("    memory: %q", k8sQuantity(*r.MemoryMax)))
	}
	if q := r.CPUQuotaPerSecUSec; q != nil && *q != Unlimited {
		limits = append(limits, fmt.Sprintf("    cpu: %q", strconv.FormatUint((*q+500)/1000, 10)+"m"))
	}
	if lost := r.Unexpressed(FormatK8s); len(lost) > 0 {
		b.WriteString("# Not expressible here: " + strings.Join(lost, "; ") + ".\n")
	}
	b.WriteString("resources:\n")
	if len(limits) == 0 {
		b.WriteString("  limits: {}\n")
		return b.String()
	}
	b.WriteString("  limits:\n" + strings.Join(limits, "\n") + "\n")
	return b.String()
}
