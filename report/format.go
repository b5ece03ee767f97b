package report

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatSize formats a byte count the way policies write sizes, in powers
// of 1024: "7.9G", "12G", "512M", "900B". Below 100 of a unit it keeps one
// decimal, dropped when it is zero; from 100 on it rounds to whole units.
func FormatSize(b uint64) string {
	units := []string{"B", "K", "M", "G", "T", "P", "E"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatUint(b, 10) + "B"
	}
	r := math.Round(v*10) / 10
	if v >= 100 {
		r = math.Round(v)
	}
	if r >= 1024 && i < len(units)-1 {
		r, i = 1, i+1
	}
	if r == math.Trunc(r) {
		return strconv.FormatFloat(r, 'f', 0, 64) + units[i]
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + units[i]
}

// FormatDuration formats a duration for people: "850ms" below a second,
// "14.1s" below a minute, "3m12s" below an hour, then "1h02m".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		tenths := (d + 50*time.Millisecond) / (100 * time.Millisecond)
		if tenths < 600 {
			return strconv.FormatFloat(float64(tenths)/10, 'f', 1, 64) + "s"
		}
	}
	if d < time.Hour {
		s := int64((d + 500*time.Millisecond) / time.Second)
		if s < 3600 {
			return strconv.FormatInt(s/60, 10) + "m" + pad2(s%60) + "s"
		}
	}
	m := int64((d + 30*time.Second) / time.Minute)
	return strconv.FormatInt(m/60, 10) + "h" + pad2(m%60) + "m"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// formatCount writes n with thousands separators: "1,204".
func formatCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// plural returns "1 process" or "3 processes".
func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatCount(n) + " " + many
}

// sparkBlocks are the eight heights of a sparkline, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as at most width block characters, lowest ▁ to
// highest █, scaled from zero to the largest value. With more values than
// width, each character shows the largest value of its share, so that a
// peak is never lost. It returns "" for fewer than two values.
func Sparkline(values []uint64, width int) string {
	if len(values) < 2 || width < 1 {
		return ""
	}
	cols := values
	if len(values) > width {
		cols = make([]uint64, width)
		for i := range cols {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			for _, v := range values[lo:hi] {
				cols[i] = max(cols[i], v)
			}
		}
	}
	var top uint64
	for _, v := range cols {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range cols {
		level := 0
		if top > 0 {
			level = int(math.Round(float64(v) / float64(top) * float64(len(sparkBlocks)-1)))
		}
		b.WriteRune(sparkBlocks[level])
	}
	return b.String()
}
