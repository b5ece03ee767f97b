package policy

// Setting is one row of the limits table with the value a box, or the
// slice that holds every box, is given: what a backend writes and what
// the read-back expects. Resolved.Settings and ResolvedSlice.Settings list
// them, so that the backends and the read-back walk one list of (row,
// value) pairs whichever of the two sets them.
type Setting struct {
	// Limit is the row: the key, cgroup file and systemd property.
	Limit
	// value is the value of a numeric limit, nil when unset.
	value *uint64
	// on is the value of a BoolValue limit.
	on bool
}

// of is l with r's value.
func (l Limit) of(r *Resolved) Setting {
	s := Setting{Limit: l}
	switch {
	case l.flag != nil:
		s.on = l.flag(r)
	case l.value != nil:
		s.value = l.value(r)
	}
	return s
}

// Settings returns every row of the limits table (Limits) with r's value,
// in the table's order; a row r leaves unset is there too, and says so
// through CgroupValue and SystemdValue.
func (r *Resolved) Settings() []Setting {
	var out []Setting
	for _, l := range Limits() {
		out = append(out, l.of(r))
	}
	return out
}

// sliceTable is the [slice] budget: a row of the limits table for each of
// its keys and where a ResolvedSlice keeps the value. Read-only.
var sliceTable = []struct {
	key   string
	value func(*ResolvedSlice) *uint64
}{
	{"memory.high", func(s *ResolvedSlice) *uint64 { return s.MemoryHigh }},
	{"memory.max", func(s *ResolvedSlice) *uint64 { return s.MemoryMax }},
	{"pids.max", func(s *ResolvedSlice) *uint64 { return s.PidsMax }},
	{"cpu.weight", func(s *ResolvedSlice) *uint64 { return s.CPUWeight }},
}

// Settings returns the rows of the limits table the [slice] budget has a
// key for, with s's values, in the order of the [slice] keys; a row s
// leaves unset is there too. nil for a nil s.
func (s *ResolvedSlice) Settings() []Setting {
	if s == nil {
		return nil
	}
	out := make([]Setting, 0, len(sliceTable))
	for _, row := range sliceTable {
		l, _ := lookupKey(row.key) // every key of sliceTable is a row (TestSliceSettings)
		out = append(out, Setting{Limit: l, value: row.value(s)})
	}
	return out
}

// CgroupValue returns the value as CgroupFile takes it ("8589934592",
// "max", "400000 100000", "default 50", "1"), and false when the setting
// leaves the file at the kernel's default (the key is unset, or
// memory.oom_group is false) or the limit has no cgroup file.
func (s Setting) CgroupValue() (string, bool) {
	switch {
	case s.CgroupFile == "":
		return "", false
	case s.flag != nil:
		if s.on {
			return "1", true
		}
		return "", false
	case s.value == nil:
		return "", false
	case s.text != nil:
		return s.text(*s.value), true
	}
	return cgroupValue(*s.value), true
}

// SystemdValue returns the value for SystemdProperty, a D-Bus "t"
// (uint64) for every property boxrun sets: Unlimited is systemd's
// infinity. It returns false when the key is unset or the limit has no
// systemd property.
func (s Setting) SystemdValue() (uint64, bool) {
	if s.SystemdProperty == "" || s.value == nil {
		return 0, false
	}
	return *s.value, true
}

// Unlimited reports whether the value is "max", the value a new cgroup
// starts with.
func (s Setting) Unlimited() bool { return s.value != nil && *s.value == Unlimited }
