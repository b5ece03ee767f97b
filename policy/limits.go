package policy

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ValueType is the kind of value a key of a policy takes, which decides how
// it is read, resolved, compared and written out.
type ValueType int

// The value types of the limits (Limits) and of the other keys of a policy.
const (
	// SizeValue is a memory size: bytes, a percentage of the machine's
	// memory or "max"; resolved to bytes, Unlimited for "max".
	SizeValue ValueType = iota + 1
	// CountValue is a number of at least 1, or "max" (Unlimited).
	CountValue
	// WeightValue is a weight from 1 to 10000.
	WeightValue
	// PercentValue is a share of one CPU in percent ("400%"), or "max";
	// resolved to microseconds of CPU time per second, Unlimited for "max".
	PercentValue
	// BoolValue is true or false.
	BoolValue
	// ScoreValue is an oom_score_adj, -1000 to 1000.
	ScoreValue
	// TextValue is a string: a description, a policy name, a word.
	TextValue
	// DurationValue is a Go duration ("2s").
	DurationValue
	// NamesValue is a list of names.
	NamesValue
)

// valueTypeNames names the value types. Read-only.
var valueTypeNames = [...]string{
	SizeValue: "size", CountValue: "count", WeightValue: "weight", PercentValue: "percent",
	BoolValue: "bool", ScoreValue: "score", TextValue: "text", DurationValue: "duration", NamesValue: "names",
}

// String names the type: "size", "count", "weight", "percent", ...
func (t ValueType) String() string {
	if t > 0 && int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Limit is one row of the limits table: a key of a [policies.NAME] table
// (and of --set) that limits the box, where the backends write it, and how
// its value is read, resolved and written out. Limits returns the rows.
// Inside the package the other keys of a policy (description, protect, ...)
// are rows of the same type without a file or property, so that every key
// is read, copied, resolved, tightened and exported through one table.
type Limit struct {
	// Key is the key as written in TOML and --set ("memory.max").
	Key string
	// CgroupFile is the cgroup v2 file of the box the limit is written to
	// ("memory.max"), "" for oom_score_adj (see ProcFile).
	CgroupFile string
	// SystemdProperty is the property of the transient scope that carries
	// the limit ("MemoryMax", "CPUQuotaPerSecUSec"), "" when the systemd
	// backend sets none: memory.oom_group is written to memory.oom.group
	// by boxrun itself (OOMPolicy=kill would also have systemd SIGTERM the
	// box), and a scope has no OOMScoreAdjust.
	SystemdProperty string
	// ProcFile is the file under /proc/PID of the command the limit is
	// written to ("oom_score_adj"), for a limit of the process rather than
	// of its cgroup; "" for the others.
	ProcFile string
	// Type is the kind of value the key takes.
	Type ValueType

	// unit is the setting of a systemd unit file for the key ("CPUQuota"),
	// for Export and for hints at systemd's names; "" when none.
	unit string
	// jsonName is the field of the json export; "" means Key with "_"
	// for ".".
	jsonName string

	// set validates v and stores it in p. It does not record the origin.
	set func(p *Policy, v *tomlValue) error
	// copy copies the value from src to dst.
	copy func(dst, src *Policy)
	// resolve sets the field of r from p, defaults included; on error it
	// also returns the value as written, for the ParseError. nil for
	// extends, which Stack.merge has applied.
	resolve func(s *Stack, r *Resolved, p *Policy, env Env) (string, error)
	// json is the value in the json export; nil leaves the key out.
	json func(r *Resolved) any
	// value is the resolved value of a numeric limit, nil when unset.
	value func(r *Resolved) *uint64
	// flag is the resolved value of a BoolValue key.
	flag func(r *Resolved) bool
	// text spells a value as the cgroup file takes it; nil is cgroupValue.
	text func(v uint64) string
	// unitValue spells the resolved value for the unit setting; false
	// when unset.
	unitValue func(r *Resolved) (string, bool)
	// fromUnit turns systemd's spelling of a value of the unit setting
	// into boxrun's; nil keeps it as it is.
	fromUnit func(string) string
	// looser reports whether r's value is looser than base's: base sets
	// it and r leaves it unset or sets it looser. nil for the keys a
	// project file may set as it likes (see Project).
	looser func(r, base *Resolved) bool
	// show formats the value p sets as written, for Ignored.Value, and as
	// resolved against env; set with looser.
	show func(p *Policy, env Env) (written, resolved string)
}

// keyTable is every key of a [policies.NAME] table, in the order they are
// documented: the limits, which Limits returns, and the keys that say how
// boxrun treats the box without limiting it — description, extends,
// memory.backpressure, leftovers, leftovers_grace, protect, max_concurrent
// and start_when_available — which have no cgroup file or systemd property
// but are read, copied, resolved and exported the same way, so that no
// code walks the keys of a policy twice. Rows of one value type are made by
// the same function (sizeKey, numberKey, boolKey); cpu.max, oom_score_adj
// and the other keys spell out what is their own. Read-only.
var keyTable = []Limit{
	textKey("description", descriptionValue, func(p *Policy) *string { return &p.Description },
		func(r *Resolved) *string { return &r.Description }, ""),
	{Key: "extends", Type: TextValue,
		set:  func(p *Policy, v *tomlValue) (err error) { p.Extends, err = extendsValue(v); return err },
		copy: func(dst, src *Policy) { dst.Extends = src.Extends }},
	sizeKey("memory.high", positiveSize, func(p *Policy) **Size { return &p.MemoryHigh },
		func(r *Resolved) **uint64 { return &r.MemoryHigh }).
		writes("memory.high", "MemoryHigh", "MemoryHigh").
		tightens(func(r, base *Resolved) bool { // the kernel throttles at the lower of the two
			return base.MemoryHigh != nil && effectiveHigh(r) > effectiveHigh(base)
		}),
	sizeKey("memory.max", positiveSize, func(p *Policy) **Size { return &p.MemoryMax },
		func(r *Resolved) **uint64 { return &r.MemoryMax }).
		writes("memory.max", "MemoryMax", "MemoryMax"),
	sizeKey("memory.swap.max", sizeOrZero, func(p *Policy) **Size { return &p.MemorySwapMax },
		func(r *Resolved) **uint64 { return &r.MemorySwapMax }).
		writes("memory.swap.max", "MemorySwapMax", "MemorySwapMax"),
	boolKey("memory.oom_group", func(p *Policy) **bool { return &p.MemoryOOMGroup },
		func(r *Resolved) *bool { return &r.MemoryOOMGroup }).
		writes("memory.oom.group", "", "OOMPolicy").
		fromSystemd(oomPolicyToGroup),
	boolKey("memory.backpressure", func(p *Policy) **bool { return &p.MemoryBackpressure },
		func(r *Resolved) *bool { return &r.MemoryBackpressure }),
	numberKey("pids.max", CountValue, countLimit, func(p *Policy) **uint64 { return &p.PidsMax },
		func(r *Resolved) **uint64 { return &r.PidsMax }).
		writes("pids.max", "TasksMax", "TasksMax"),
	numberKey("cpu.weight", WeightValue, weight, func(p *Policy) **uint64 { return &p.CPUWeight },
		func(r *Resolved) **uint64 { return &r.CPUWeight }).
		writes("cpu.weight", "CPUWeight", "CPUWeight").
		fromSystemd(nil),
	cpuMaxKey,
	numberKey("io.weight", WeightValue, weight, func(p *Policy) **uint64 { return &p.IOWeight },
		func(r *Resolved) **uint64 { return &r.IOWeight }).
		writes("io.weight", "IOWeight", "IOWeight").
		fromSystemd(nil).
		spells(func(w uint64) string { return "default " + strconv.FormatUint(w, 10) }),
	oomScoreAdjKey,
	textKey("leftovers", leftovers, func(p *Policy) *string { return &p.Leftovers },
		func(r *Resolved) *string { return &r.Leftovers }, defaultLeftovers),
	{Key: "leftovers_grace", Type: DurationValue, jsonName: "leftovers_grace_seconds",
		set:  pointerSet(func(p *Policy) **time.Duration { return &p.LeftoversGrace }, grace),
		copy: func(dst, src *Policy) { dst.LeftoversGrace = src.LeftoversGrace },
		resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
			r.LeftoversGrace = defaultGrace
			if p.LeftoversGrace != nil {
				r.LeftoversGrace = *p.LeftoversGrace
			}
			return "", nil
		},
		json: func(r *Resolved) any { return r.LeftoversGrace.Seconds() }},
	protectKey,
	maxConcurrentKey,
	sizeKey("start_when_available", availableValue, func(p *Policy) **Size { return &p.StartWhenAvailable },
		func(r *Resolved) **uint64 { return &r.StartWhenAvailable }).
		tightens(func(r, base *Resolved) bool { return below(r.StartWhenAvailable, base.StartWhenAvailable) }), // higher waits for more
}

// policyKeys are the keys of a [policies.NAME] table, as written in TOML and
// in --set, in the order they are documented: those of keyTable. Read-only.
var policyKeys = keysOf(keyTable)

func keysOf(rows []Limit) []string {
	keys := make([]string, len(rows))
	for i, l := range rows {
		keys[i] = l.Key
	}
	return keys
}

// Limits returns the rows of the limits table, in the order of Keys: every
// key of a policy that limits the box, with the cgroup file and the systemd
// property it is written to. A backend applies a Resolved policy by writing,
// for each of its Settings, CgroupValue to CgroupFile or SystemdValue to
// SystemdProperty.
func Limits() []Limit {
	var out []Limit
	for _, l := range keyTable {
		if l.CgroupFile != "" || l.SystemdProperty != "" || l.ProcFile != "" {
			out = append(out, l)
		}
	}
	return out
}

// lookupKey returns the row of key, one of policyKeys.
func lookupKey(key string) (Limit, bool) {
	i := slices.IndexFunc(keyTable, func(l Limit) bool { return l.Key == key })
	if i < 0 {
		return Limit{}, false
	}
	return keyTable[i], true
}

// writes names where the backends write the limit, and its unit setting.
func (l Limit) writes(cgroupFile, systemdProperty, unit string) Limit {
	l.CgroupFile, l.SystemdProperty, l.unit = cgroupFile, systemdProperty, unit
	return l
}

// tightens replaces how a project file's value is found looser.
func (l Limit) tightens(looser func(r, base *Resolved) bool) Limit {
	l.looser = looser
	return l
}

// fromSystemd replaces how systemd's spelling of a value is read.
func (l Limit) fromSystemd(f func(string) string) Limit {
	l.fromUnit = f
	return l
}

// spells replaces how a value is written to the cgroup file.
func (l Limit) spells(text func(uint64) string) Limit {
	l.text = text
	return l
}

// sizeKey is a key that takes a memory size, read by parse, kept in the
// field pf of Policy and resolved to bytes in rf of Resolved.
func sizeKey(key string, parse func(*tomlValue) (Size, error), pf func(*Policy) **Size, rf func(*Resolved) **uint64) Limit {
	l := numeric(key, SizeValue, rf)
	l.set = pointerSet(pf, parse)
	l.copy = func(dst, src *Policy) { *pf(dst) = *pf(src) }
	l.resolve = func(_ *Stack, r *Resolved, p *Policy, env Env) (string, error) {
		sz := *pf(p)
		if sz == nil {
			return "", nil
		}
		b, err := sz.Resolve(env)
		if err != nil {
			return sz.String(), err
		}
		*rf(r) = &b
		return "", nil
	}
	l.show = func(p *Policy, env Env) (string, string) {
		sz := *pf(p)
		b, _ := sz.Resolve(env) // already resolved once without error
		written := strconv.Quote(sz.String())
		if sz.Percent != 0 {
			written += " (" + FormatBytes(b) + ")"
		}
		return written, describeSize(sz, b)
	}
	return l
}

// numberKey is a key that takes a count or a weight, read by parse, kept
// in the field pf of Policy and rf of Resolved.
func numberKey(key string, typ ValueType, parse func(*tomlValue) (uint64, error), pf func(*Policy) **uint64, rf func(*Resolved) **uint64) Limit {
	l := numeric(key, typ, rf)
	l.set = pointerSet(pf, parse)
	l.copy = func(dst, src *Policy) { *pf(dst) = *pf(src) }
	l.resolve = func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
		*rf(r) = clonePtr(*pf(p))
		return "", nil
	}
	l.show = func(p *Policy, _ Env) (string, string) { return showCount(**pf(p)) }
	return l
}

// numeric is what the keys resolved to a *uint64 in rf of Resolved share:
// their value, json and unit setting, and that lower is tighter.
func numeric(key string, typ ValueType, rf func(*Resolved) **uint64) Limit {
	value := func(r *Resolved) *uint64 { return *rf(r) }
	return Limit{Key: key, Type: typ, value: value,
		json: func(r *Resolved) any { return limitOrMax(value(r)) },
		unitValue: func(r *Resolved) (string, bool) {
			if v := value(r); v != nil {
				return systemdValue(*v), true
			}
			return "", false
		},
		fromUnit: infinityToMax,
		looser:   func(r, base *Resolved) bool { return above(value(r), value(base)) },
	}
}

// boolKey is a key that takes true or false, kept in the field pf of
// Policy and rf of Resolved (false when unset).
func boolKey(key string, pf func(*Policy) **bool, rf func(*Resolved) *bool) Limit {
	return Limit{Key: key, Type: BoolValue,
		set:  pointerSet(pf, boolValue),
		copy: func(dst, src *Policy) { *pf(dst) = *pf(src) },
		resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
			*rf(r) = *pf(p) != nil && **pf(p)
			return "", nil
		},
		json: func(r *Resolved) any { return *rf(r) },
		flag: func(r *Resolved) bool { return *rf(r) },
	}
}

// textKey is a key that takes a string, read by parse, kept in the field
// pf of Policy and rf of Resolved (def when unset).
func textKey(key string, parse func(*tomlValue) (string, error), pf func(*Policy) *string, rf func(*Resolved) *string, def string) Limit {
	return Limit{Key: key, Type: TextValue,
		set:  func(p *Policy, v *tomlValue) (err error) { *pf(p), err = parse(v); return err },
		copy: func(dst, src *Policy) { *pf(dst) = *pf(src) },
		resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
			*rf(r) = def
			if *pf(p) != "" {
				*rf(r) = *pf(p)
			}
			return "", nil
		},
		json: func(r *Resolved) any { return *rf(r) },
	}
}

// cpuMaxKey is cpu.max, kept in a Policy as a percentage or "max" in two
// fields, resolved to microseconds per second and written to cgroupfs per
// period of CPUPeriodUSec.
var cpuMaxKey = Limit{Key: "cpu.max", CgroupFile: "cpu.max", SystemdProperty: "CPUQuotaPerSecUSec", Type: PercentValue,
	unit: "CPUQuota", jsonName: "cpu_max_usec_per_sec",
	set: func(p *Policy, v *tomlValue) error {
		pct, unlimited, err := cpuMax(v)
		if err == nil {
			p.CPUMaxPercent, p.CPUMaxUnlimited = nil, unlimited
			if !unlimited {
				p.CPUMaxPercent = &pct
			}
		}
		return err
	},
	copy: func(dst, src *Policy) {
		dst.CPUMaxPercent, dst.CPUMaxUnlimited = src.CPUMaxPercent, src.CPUMaxUnlimited
	},
	resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
		switch {
		case p.CPUMaxUnlimited:
			r.CPUQuotaPerSecUSec = ptr(uint64(Unlimited))
		case p.CPUMaxPercent != nil:
			// 100% of one CPU is 1s of CPU time per second, 1_000_000µs;
			// rounding, not truncating, keeps "33.3%" at 333_000µs.
			r.CPUQuotaPerSecUSec = ptr(uint64(math.Round(*p.CPUMaxPercent * 10000)))
		}
		return "", nil
	},
	json:  func(r *Resolved) any { return limitOrMax(r.CPUQuotaPerSecUSec) },
	value: func(r *Resolved) *uint64 { return r.CPUQuotaPerSecUSec },
	text:  cpuMaxText,
	unitValue: func(r *Resolved) (string, bool) {
		switch q := r.CPUQuotaPerSecUSec; {
		case q == nil:
			return "", false
		case *q == Unlimited:
			return "", true
		default:
			return strconv.FormatFloat(float64(*q)/10000, 'f', -1, 64) + "%", true
		}
	},
	fromUnit: infinityToMax,
	looser:   func(r, base *Resolved) bool { return above(r.CPUQuotaPerSecUSec, base.CPUQuotaPerSecUSec) },
	show: func(p *Policy, _ Env) (string, string) {
		if p.CPUMaxUnlimited {
			return `"max"`, "max"
		}
		s := strconv.FormatFloat(*p.CPUMaxPercent, 'f', -1, 64) + "%"
		return strconv.Quote(s), s
	},
}

// cpuMaxText is the cpu.max file's content for a quota of perSec
// microseconds per second: "QUOTA PERIOD" per CPUPeriodUSec, the quota at
// least the kernel's 1ms; "max PERIOD" for Unlimited.
func cpuMaxText(perSec uint64) string {
	if perSec == Unlimited {
		return "max " + strconv.Itoa(CPUPeriodUSec)
	}
	return fmt.Sprintf("%d %d", max(perSec*CPUPeriodUSec/1_000_000, 1000), CPUPeriodUSec)
}

// oomScoreAdjKey is oom_score_adj: not a cgroup file but the command's own,
// which a project file may only raise.
var oomScoreAdjKey = Limit{Key: "oom_score_adj", ProcFile: "oom_score_adj", Type: ScoreValue, unit: "OOMScoreAdjust",
	set:  pointerSet(func(p *Policy) **int { return &p.OOMScoreAdj }, oomScoreAdj),
	copy: func(dst, src *Policy) { dst.OOMScoreAdj = src.OOMScoreAdj },
	resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
		r.OOMScoreAdj = clonePtr(p.OOMScoreAdj)
		return "", nil
	},
	json: func(r *Resolved) any { return r.OOMScoreAdj },
	unitValue: func(r *Resolved) (string, bool) {
		if r.OOMScoreAdj == nil {
			return "", false
		}
		return strconv.Itoa(*r.OOMScoreAdj), true
	},
	looser: func(r, base *Resolved) bool {
		return base.OOMScoreAdj != nil && (r.OOMScoreAdj == nil || *r.OOMScoreAdj < *base.OOMScoreAdj)
	},
	show: func(p *Policy, _ Env) (string, string) {
		s := strconv.Itoa(*p.OOMScoreAdj)
		return s, s
	},
}

// protectKey is protect: every name must be a protection group of the
// stack, and an empty list (protect = []) clears an inherited one.
var protectKey = Limit{Key: "protect", Type: NamesValue,
	set: func(p *Policy, v *tomlValue) (err error) {
		p.Protect, err = nameList(v, "protection group name", `["editors"]`)
		return err
	},
	copy: func(dst, src *Policy) { dst.Protect = slices.Clone(src.Protect) },
	resolve: func(s *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
		if len(p.Protect) > 0 {
			groups := s.ProtectGroups()
			for _, g := range p.Protect {
				if _, ok := groups[g]; !ok {
					known := slices.Collect(maps.Keys(groups))
					sort.Strings(known)
					return g, fmt.Errorf("unknown protection group %q (%s)", g, nameHint(g, known))
				}
			}
		}
		r.Protect = slices.Clone(p.Protect)
		return "", nil
	},
	json: func(r *Resolved) any {
		if r.Protect == nil {
			return []string{}
		}
		return r.Protect
	},
	looser: func(r, base *Resolved) bool { return len(base.Protect) > 0 && len(r.Protect) == 0 },
	show: func(p *Policy, _ Env) (string, string) {
		s := "[" + strings.Join(quoteAll(p.Protect), ", ") + "]"
		return s, s
	},
}

// maxConcurrentKey is max_concurrent, where 0 is "max": no limit.
var maxConcurrentKey = Limit{Key: "max_concurrent", Type: CountValue,
	set:  pointerSet(func(p *Policy) **int { return &p.MaxConcurrent }, maxConcurrent),
	copy: func(dst, src *Policy) { dst.MaxConcurrent = src.MaxConcurrent },
	resolve: func(_ *Stack, r *Resolved, p *Policy, _ Env) (string, error) {
		if p.MaxConcurrent != nil {
			r.MaxConcurrent = *p.MaxConcurrent
		}
		return "", nil
	},
	json: func(r *Resolved) any { return r.MaxConcurrent },
	looser: func(r, base *Resolved) bool {
		return base.MaxConcurrent > 0 && (r.MaxConcurrent == 0 || r.MaxConcurrent > base.MaxConcurrent)
	},
	show: func(p *Policy, _ Env) (string, string) {
		if *p.MaxConcurrent == 0 {
			return `"max"`, "max"
		}
		s := strconv.Itoa(*p.MaxConcurrent)
		return s, s
	},
}

// pointerSet returns the set of a key read by parse and kept in the
// pointer field f of Policy.
func pointerSet[T any](f func(*Policy) **T, parse func(*tomlValue) (T, error)) func(*Policy, *tomlValue) error {
	return func(p *Policy, v *tomlValue) error {
		x, err := parse(v)
		if err == nil {
			*f(p) = &x
		}
		return err
	}
}

// positiveSize reads a size that may not be zero bytes.
func positiveSize(v *tomlValue) (Size, error) { return sizeValue(v, false) }

// sizeOrZero reads a size that may be zero bytes.
func sizeOrZero(v *tomlValue) (Size, error) { return sizeValue(v, true) }

// above reports whether v is looser than b where lower is tighter: b is
// set and v is unset or higher (Unlimited is the highest).
func above(v, b *uint64) bool { return b != nil && (v == nil || *v > *b) }

// below reports whether v is looser than b where higher is tighter.
func below(v, b *uint64) bool { return b != nil && (v == nil || *v < *b) }

// showCount formats a count or weight as written and as resolved.
func showCount(n uint64) (string, string) {
	if n == Unlimited {
		return `"max"`, "max"
	}
	s := strconv.FormatUint(n, 10)
	return s, s
}

// oomPolicyToGroup reads systemd's OOMPolicy as memory.oom_group.
func oomPolicyToGroup(v string) string {
	switch strings.ToLower(v) {
	case "kill":
		return "true"
	case "continue", "stop":
		return "false"
	}
	return v
}
