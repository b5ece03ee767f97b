package policy

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	const (
		K = 1 << 10
		M = 1 << 20
		G = 1 << 30
		T = 1 << 40
	)
	tests := []struct {
		name    string
		in      string
		want    Size
		wantErr string
	}{
		{name: "zero is a valid size", in: "0", want: Size{Bytes: 0}},
		{name: "plain bytes", in: "4096", want: Size{Bytes: 4096}},
		{name: "bytes suffix", in: "100B", want: Size{Bytes: 100}},
		{name: "K", in: "1K", want: Size{Bytes: K}},
		{name: "KiB", in: "1KiB", want: Size{Bytes: K}},
		{name: "M", in: "512M", want: Size{Bytes: 512 * M}},
		{name: "MiB", in: "512MiB", want: Size{Bytes: 512 * M}},
		{name: "G", in: "8G", want: Size{Bytes: 8 * G}},
		{name: "lower case g", in: "8g", want: Size{Bytes: 8 * G}},
		{name: "lower case gib", in: "8gib", want: Size{Bytes: 8 * G}},
		{name: "T", in: "1T", want: Size{Bytes: T}},
		{name: "TiB", in: "2TiB", want: Size{Bytes: 2 * T}},
		{name: "fraction", in: "1.5G", want: Size{Bytes: 1536 * M}},
		{name: "fraction rounds down", in: "1.5", want: Size{Bytes: 1}},
		{name: "fraction of K", in: "0.5K", want: Size{Bytes: 512}},
		{name: "exact tiny fraction", in: "0.0000000000009094947017729282379150390625T", want: Size{Bytes: 1}},
		{name: "spaces around", in: " 4G ", want: Size{Bytes: 4 * G}},
		{name: "largest", in: "9223372036854775807", want: Size{Bytes: MaxSizeBytes}},
		{name: "largest in T", in: "8388607T", want: Size{Bytes: 8388607 * T}},
		{name: "percent", in: "60%", want: Size{Percent: 60}},
		{name: "100 percent", in: "100%", want: Size{Percent: 100}},
		{name: "fractional percent", in: "0.5%", want: Size{Percent: 0.5}},
		{name: "max", in: "max", want: Size{Max: true}},
		{name: "MAX", in: "MAX", want: Size{Max: true}},
		{name: "max with spaces", in: " max ", want: Size{Max: true}},

		{name: "empty", in: "", wantErr: `"" is not a size (use 512M, 8G, 60% or max)`},
		{name: "blank", in: "  ", wantErr: `"  " is not a size (use 512M, 8G, 60% or max)`},
		{name: "unknown unit", in: "12Q", wantErr: `"12Q" is not a size (use 512M, 8G, 60% or max)`},
		{name: "negative", in: "-1G", wantErr: `"-1G" is negative (use a positive size like 8G, or max)`},
		{name: "negative percent", in: "-5%", wantErr: `"-5%" is negative (use a positive size like 8G, or max)`},
		{name: "negative max", in: "-max", wantErr: `"-max" is not a size (use 512M, 8G, 60% or max)`},
		{name: "overflow", in: "99999999T", wantErr: `"99999999T" is too large (the largest size is 8388607T; use max for no limit)`},
		{name: "just over the largest", in: "9223372036854775808", wantErr: `"9223372036854775808" is too large (the largest size is 8388607T; use max for no limit)`},
		{name: "just over the largest T", in: "8388608T", wantErr: `"8388608T" is too large (the largest size is 8388607T; use max for no limit)`},
		{name: "zero percent", in: "0%", wantErr: `"0%" is not a useful share of memory (use a percentage above 0%, or max)`},
		{name: "101 percent", in: "101%", wantErr: `"101%" is more than 100% of memory`},
		{name: "just over 100 percent", in: "100.5%", wantErr: `"100.5%" is more than 100% of memory`},
		// Decimal units are ambiguous (GB is 1000³ or 1024³ depending on
		// who wrote it): refused, with the unit boxrun reads as 1024³.
		{name: "decimal units are ambiguous", in: "1GB", wantErr: `"1GB" is not a size (did you mean "1G"? K, M, G and T are powers of 1024)`},
		{name: "decimal unit in lower case", in: "4gb", wantErr: `"4gb" is not a size (did you mean "4G"? K, M, G and T are powers of 1024)`},
		{name: "decimal unit with a fraction", in: "1.5MB", wantErr: `"1.5MB" is not a size (did you mean "1.5M"? K, M, G and T are powers of 1024)`},
		{name: "Kubernetes unit", in: "512Mi", wantErr: `"512Mi" is not a size (did you mean "512M"? K, M, G and T are powers of 1024)`},
		{name: "space before unit", in: "4 G", wantErr: `"4 G" is not a size (did you mean "4G"?)`},
		{name: "space before a binary unit", in: "4 GiB", wantErr: `"4 GiB" is not a size (did you mean "4G"?)`},
		{name: "space before percent", in: "60 %", wantErr: `"60 %" is not a size (did you mean "60%"?)`},
		{name: "a unit of something else", in: "4Hz", wantErr: `"4Hz" is not a size (use 512M, 8G, 60% or max)`},
		{name: "no integer part", in: ".5G", wantErr: `".5G" is not a size (use 512M, 8G, 60% or max)`},
		{name: "no fraction digits", in: "5.G", wantErr: `"5.G" is not a size (use 512M, 8G, 60% or max)`},
		{name: "two points", in: "1.5.5G", wantErr: `"1.5.5G" is not a size (use 512M, 8G, 60% or max)`},
		{name: "exponent", in: "1e3", wantErr: `"1e3" is not a size (use 512M, 8G, 60% or max)`},
		{name: "plus sign", in: "+4G", wantErr: `"+4G" is not a size (use 512M, 8G, 60% or max)`},
		{name: "nan percent", in: "nan%", wantErr: `"nan%" is not a size (use 512M, 8G, 60% or max)`},
		{name: "inf", in: "inf", wantErr: `"inf" is not a size (use 512M, 8G, 60% or max)`},
		{name: "bare percent sign", in: "%", wantErr: `"%" is not a size (use 512M, 8G, 60% or max)`},
		{name: "unit only", in: "G", wantErr: `"G" is not a size (use 512M, 8G, 60% or max)`},
		{name: "very long", in: strings.Repeat("9", 100), wantErr: `"9999999999999999999999999999999999999999"... is not a size (use 512M, 8G, 60% or max)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseSize(%q) = %+v, %v; want error %s", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			// String spells it back in a form that parses to the same Size.
			again, err := ParseSize(got.String())
			if err != nil || again != got {
				t.Errorf("ParseSize(%q.String() = %q) = %+v, %v; want %+v", tt.in, got.String(), again, err, got)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{Size{Max: true}, "max"},
		{Size{Percent: 60}, "60%"},
		{Size{Percent: 12.5}, "12.5%"},
		{Size{Bytes: 0}, "0"},
		{Size{Bytes: 100}, "100"},
		{Size{Bytes: 1536 << 20}, "1536M"},
		{Size{Bytes: 8 << 30}, "8G"},
		{Size{Bytes: 3 << 40}, "3T"},
		{Size{Bytes: 1025}, "1025"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{100, "100B"},
		{1023, "1023B"},
		{1024, "1K"},
		{1536, "1.5K"},
		{512 << 20, "512M"},
		{1<<30 - 1, "1.0G"}, // rounded up into the next unit, not "1024.0M"
		{1<<20 + 1<<20*99/100, "2.0M"},
		{1<<20 + 1<<20*94/100, "1.9M"},
		{10307919872, "9.6G"}, // 60% of 16G
		{8 << 30, "8G"},
		{7*(1<<30) + 970*(1<<20), "7.9G"},
		{1 << 40, "1T"},
		{MaxSizeBytes, "8388608.0T"},
		{Unlimited, "max"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSizeResolve(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name    string
		size    Size
		env     Env
		want    uint64
		wantErr string
	}{
		{name: "bytes ignore env", size: Size{Bytes: 12345}, env: Env{}, want: 12345},
		{name: "max", size: Size{Max: true}, env: Env{}, want: Unlimited},
		{name: "60% of 16G, page aligned", size: Size{Percent: 60}, env: Env{MemoryBytes: 16 * gib}, want: 10307919872},
		{name: "75% of 64G", size: Size{Percent: 75}, env: Env{MemoryBytes: 64 * gib}, want: 48 * gib},
		{name: "100% of an odd size rounds down to a page", size: Size{Percent: 100}, env: Env{MemoryBytes: 10000}, want: 8192},
		{name: "unknown memory", size: Size{Percent: 60}, env: Env{}, wantErr: "60% is a share of memory, but the memory size is unknown (use a size like 8G)"},
		{name: "less than a page", size: Size{Percent: 1}, env: Env{MemoryBytes: 100 << 10}, wantErr: "1% of 100K is less than one page (4K)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.size.Resolve(tt.env)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Resolve = %d, %v; want error %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
