package policy

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Unlimited is the value of a limit set to "max".
const Unlimited = math.MaxUint64

// MaxSizeBytes is the largest byte count a size may spell out. Larger sizes
// would not fit the int64 fields of the OCI runtime spec (and would collide
// with Unlimited); use "max" for no limit.
const MaxSizeBytes = math.MaxInt64

// pageSize is the granularity percentages of memory are rounded down to.
const pageSize = 4096

// maxSizeLen bounds the length of a size string, so that an absurd input
// (a megabyte of digits) cannot make parsing slow.
const maxSizeLen = 64

const sizeHint = "(use 512M, 8G, 60% or max)"

// Size is a memory size as written in a policy: a number of bytes, a
// percentage of the machine's memory (Env.MemoryBytes), or "max". Exactly one of
// the fields is meaningful: Max if it is true, else Percent if it is not
// zero, else Bytes.
type Size struct {
	// Bytes is an absolute size in bytes, at most MaxSizeBytes.
	Bytes uint64
	// Percent is a share of the machine's memory, in (0, 100].
	Percent float64
	// Max is true for "max", no limit.
	Max bool
}

// String spells the size the way a user would write it, in a form ParseSize
// reads back to the same Size: "max", "60%", "8G", "1536M" or a plain
// number of bytes when no unit divides it exactly.
func (s Size) String() string {
	switch {
	case s.Max:
		return "max"
	case s.Percent != 0:
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	case s.Bytes == 0:
		return "0"
	}
	for _, u := range sizeUnits {
		if s.Bytes%u.mult == 0 {
			return strconv.FormatUint(s.Bytes/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(s.Bytes, 10)
}

// Resolve returns the size in bytes for env: Unlimited for "max", the
// percentage of env.MemoryBytes rounded down to a multiple of 4096 for a
// percentage, and Bytes otherwise. It fails when a percentage is used and
// env.MemoryBytes is zero (unknown), or when the percentage comes to less
// than one page.
func (s Size) Resolve(env Env) (uint64, error) {
	switch {
	case s.Max:
		return Unlimited, nil
	case s.Percent == 0:
		return s.Bytes, nil
	case env.MemoryBytes == 0:
		return 0, fmt.Errorf("%s is a share of memory, but the memory size is unknown (use a size like 8G)", s)
	}
	f := math.Floor(s.Percent / 100 * float64(env.MemoryBytes))
	var b uint64
	if f >= MaxSizeBytes {
		b = MaxSizeBytes
	} else {
		b = uint64(f)
	}
	b -= b % pageSize
	if b == 0 {
		return 0, fmt.Errorf("%s of %s is less than one page (4K)", s, FormatBytes(env.MemoryBytes))
	}
	return b, nil
}

// sizeUnits are the unit suffixes, largest first; all are powers of 1024.
var sizeUnits = [...]struct {
	name string
	mult uint64
}{
	{"T", 1 << 40},
	{"G", 1 << 30},
	{"M", 1 << 20},
	{"K", 1 << 10},
}

// unitMultiplier returns the multiplier for a unit suffix: K, M, G, T, their
// KiB spellings, B or nothing, in any case.
func unitMultiplier(unit string) (uint64, bool) {
	switch strings.ToLower(unit) {
	case "", "b":
		return 1, true
	case "k", "kib":
		return 1 << 10, true
	case "m", "mib":
		return 1 << 20, true
	case "g", "gib":
		return 1 << 30, true
	case "t", "tib":
		return 1 << 40, true
	}
	return 0, false
}

// unitSpellings are units of other tools, and the unit of boxrun each
// means: decimal units (GB, which boxrun reads as 1024³ like the kernel's
// and systemd's G), Kubernetes' binary ones (Gi), and words.
var unitSpellings = map[string]string{
	"kb": "K", "mb": "M", "gb": "G", "tb": "T",
	"ki": "K", "mi": "M", "gi": "G", "ti": "T",
	"kbytes": "K", "mbytes": "M", "gbytes": "G", "tbytes": "T",
	"bytes": "", "byte": "",
}

// suggestSize returns the size that t, a number with a unit ParseSize does
// not read, probably meant: "4GB", "4gb" and "4Gi" give "4G" (otherUnit:
// the unit was another tool's), "4 G" gives "4G". It reports false when the
// unit is no unit of memory.
func suggestSize(t string) (fixed string, otherUnit, ok bool) {
	intPart, fracPart, ok := splitNumber(t)
	if !ok {
		return "", false, false
	}
	n := len(intPart)
	if fracPart != "" {
		n += 1 + len(fracPart)
	}
	num, unit := t[:n], strings.ToLower(strings.TrimSpace(t[n:]))
	if u, ok := unitSpellings[unit]; ok {
		return num + u, true, true
	}
	if unit == "%" { // "60 %"
		return num + "%", false, true
	}
	if _, ok := unitMultiplier(unit); ok && unit != strings.ToLower(t[n:]) { // only the space was wrong
		return num + strings.ToUpper(unit[:min(1, len(unit))]), false, true
	}
	return "", false, false
}

// ParseSize parses a memory size: a number of bytes with an optional unit
// (K, M, G, T or KiB, MiB, GiB, TiB, all powers of 1024, in any case; B or no
// unit for bytes), a percentage of the available memory ("60%", more than 0
// and at most 100) or "max" (in any case). Surrounding spaces are ignored.
// The number may have a fraction ("1.5G"); the result is rounded down to
// whole bytes. "0" is a valid size here; callers reject it where it is not
// useful. Negative sizes, sizes above MaxSizeBytes and anything else are
// errors that quote the input.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "max") {
		return Size{Max: true}, nil
	}
	if len(t) > maxSizeLen {
		return Size{}, fmt.Errorf("%s is not a size %s", quote(s), sizeHint)
	}
	if strings.HasPrefix(t, "-") {
		if _, _, ok := splitNumber(t[1:]); ok {
			return Size{}, fmt.Errorf("%s is negative (use a positive size like 8G, or max)", quote(s))
		}
		return Size{}, fmt.Errorf("%s is not a size %s", quote(s), sizeHint)
	}
	intPart, fracPart, ok := splitNumber(t)
	if !ok {
		return Size{}, fmt.Errorf("%s is not a size %s", quote(s), sizeHint)
	}
	unit := t[len(intPart)+len(fracPart):]
	if fracPart != "" {
		unit = unit[1:] // the decimal point
	}
	if unit == "%" {
		p, err := strconv.ParseFloat(t[:len(t)-1], 64)
		if err != nil {
			return Size{}, fmt.Errorf("%s is not a size %s", quote(s), sizeHint)
		}
		switch {
		case p == 0:
			return Size{}, fmt.Errorf("%s is not a useful share of memory (use a percentage above 0%%, or max)", quote(s))
		case p > 100:
			return Size{}, fmt.Errorf("%s is more than 100%% of memory", quote(s))
		}
		return Size{Percent: p}, nil
	}
	mult, ok := unitMultiplier(unit)
	if !ok {
		if fixed, otherUnit, ok := suggestSize(t); ok {
			why := ""
			if otherUnit {
				why = " K, M, G and T are powers of 1024"
			}
			return Size{}, fmt.Errorf("%s is not a size (did you mean %q?%s)", quote(s), fixed, why)
		}
		return Size{}, fmt.Errorf("%s is not a size %s", quote(s), sizeHint)
	}
	// bytes = floor((intPart.fracPart) * mult), computed exactly.
	n, _ := new(big.Int).SetString(intPart+fracPart, 10)
	n.Mul(n, new(big.Int).SetUint64(mult))
	if fracPart != "" {
		n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(fracPart))), nil))
	}
	if !n.IsUint64() || n.Uint64() > MaxSizeBytes {
		return Size{}, fmt.Errorf("%s is too large (the largest size is %dT; use max for no limit)", quote(s), uint64(MaxSizeBytes)>>40)
	}
	return Size{Bytes: n.Uint64()}, nil
}

// splitNumber splits the decimal number at the start of s into its integer
// digits and its fraction digits (without the point). It reports false when
// s does not start with a digit or the point is not followed by a digit.
func splitNumber(s string) (intPart, fracPart string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	intPart = s[:i]
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return "", "", false
		}
		fracPart = s[i+1 : j]
	}
	return intPart, fracPart, true
}

// FormatBytes formats a byte count for people: "max" for Unlimited, whole
// units when exact ("512M", "8G"), otherwise one decimal, rounded ("7.9G",
// "1.0G" for one byte less than 1G), and "100B" below one KiB.
func FormatBytes(b uint64) string {
	if b == Unlimited {
		return "max"
	}
	for i, u := range sizeUnits {
		if b < u.mult {
			continue
		}
		whole, rem := b/u.mult, b%u.mult
		if rem == 0 {
			return strconv.FormatUint(whole, 10) + u.name
		}
		tenths := (rem*10 + u.mult/2) / u.mult // rem < 2^40, so rem*10 cannot overflow
		if tenths == 10 {
			whole, tenths = whole+1, 0
		}
		if whole == 1024 && i > 0 {
			return "1.0" + sizeUnits[i-1].name
		}
		return strconv.FormatUint(whole, 10) + "." + strconv.FormatUint(tenths, 10) + u.name
	}
	return strconv.FormatUint(b, 10) + "B"
}

// quote quotes s for an error message, shortening very long values.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		cut := limit
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
