package signals

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// FormatFiles are where the kernel describes the signal_generate
// tracepoint's record, tracefs first.
var FormatFiles = []string{
	"/sys/kernel/tracing/events/signal/signal_generate/format",
	"/sys/kernel/debug/tracing/events/signal/signal_generate/format",
}

// Field is one field of a tracepoint's record.
type Field struct {
	Offset, Size int
	Signed       bool
}

// Offsets are the fields of signal_generate the BPF program reads: where
// they are in the record the kernel hands it, as its format file says.
type Offsets struct {
	Sig, Code, Comm, PID, Group, Result Field
}

// FormatError is a format file that does not describe the fields the
// tracer needs.
type FormatError struct {
	Line  int    // 0 when the whole file is at fault
	Field string // the field at fault, "" when none
	Msg   string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("signal_generate format")
	if e.Line > 0 {
		fmt.Fprintf(&b, ", line %d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ", field %s", e.Field)
	}
	return b.String() + ": " + e.Msg
}

// ParseFormat reads a tracepoint format file (…/events/signal/
// signal_generate/format) and returns the offsets of the fields the
// tracer reads. Lines look like
//
//	field:int sig;	offset:8;	size:4;	signed:1;
func ParseFormat(r io.Reader) (Offsets, error) {
	fields := map[string]Field{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		name, f, err := parseField(line)
		if err != nil {
			return Offsets{}, &FormatError{Line: n, Field: name, Msg: err.Error()}
		}
		fields[name] = f
	}
	if err := sc.Err(); err != nil {
		return Offsets{}, fmt.Errorf("reading the signal_generate format: %w", err)
	}
	var o Offsets
	for _, want := range []struct {
		name string
		size int // 0: any
		dst  *Field
	}{
		{"sig", 4, &o.Sig}, {"code", 4, &o.Code}, {"comm", 16, &o.Comm},
		{"pid", 4, &o.PID}, {"group", 4, &o.Group}, {"result", 4, &o.Result},
	} {
		f, ok := fields[want.name]
		if !ok {
			return Offsets{}, &FormatError{Field: want.name, Msg: "missing"}
		}
		if f.Size != want.size {
			return Offsets{}, &FormatError{Field: want.name, Msg: fmt.Sprintf("size %d, want %d", f.Size, want.size)}
		}
		// The program loads 4-byte words: the kernel refuses a load from
		// a tracepoint's record that is not aligned to its size.
		if f.Offset%4 != 0 || f.Offset < 0 || f.Offset > 1<<12 {
			return Offsets{}, &FormatError{Field: want.name, Msg: fmt.Sprintf("offset %d is not a multiple of 4 below 4096", f.Offset)}
		}
		*want.dst = f
	}
	return o, nil
}

// parseField parses "field:TYPE NAME;	offset:N;	size:N;	signed:N;",
// NAME possibly with an array length ("comm[16]").
func parseField(line string) (string, Field, error) {
	var f Field
	parts := strings.Split(line, ";")
	decl := strings.TrimSpace(strings.TrimPrefix(parts[0], "field:"))
	name := decl[strings.LastIndexAny(decl, " \t*")+1:]
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	if name == "" {
		return "", f, fmt.Errorf("no field name in %q", decl)
	}
	seen := 0
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return name, f, fmt.Errorf("%s:%s is not a number", k, v)
		}
		switch k {
		case "offset":
			f.Offset = n
			seen++
		case "size":
			f.Size = n
			seen++
		case "signed":
			f.Signed = n != 0
		}
	}
	if seen != 2 {
		return name, f, fmt.Errorf("no offset and size in %q", line)
	}
	return name, f, nil
}
