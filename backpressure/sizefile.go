package backpressure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"
)

// The sizes file keeps what a run learned of the sizes of its processes
// (Controller.Sizes) for the next run of the same project under the same
// policy (Config.Known). There is one file per project directory and
// policy, named by SizeFileName, so runs of different projects never write
// the same file. It is JSON:
//
//	{
//	  "version": 1,
//	  "dir": "/home/me/src/crate",
//	  "policy": "tests",
//	  "sizes": [
//	    {"comm": "crate-5f1e2d", "peak_bytes": 157286400, "learned": "2026-05-01T10:00:00Z"}
//	  ]
//	}
//
// This file only encodes and decodes it; the caller reads and writes it.

// SizeFileVersion is the version of the sizes file this code writes and
// reads.
const SizeFileVersion = 1

// Bounds of a sizes file: anything outside them is refused as corrupt.
const (
	// MaxSizeNames is the most command names a sizes file keeps (the
	// largest sizes), so that it cannot grow without bound.
	MaxSizeNames = 256
	// MaxSizeFileBytes is the largest sizes file read: 256 names take
	// some 30 KiB.
	MaxSizeFileBytes = 64 << 10
	// MaxSize is the largest size believed: 1 TiB.
	MaxSize = 1 << 40
	// maxCommLen bounds a command name; the kernel's are at most 15 bytes.
	maxCommLen = 64
)

// SizeLifetime is how long a learned size is believed: an entry learned
// longer ago is stale, left out when the file is decoded.
const SizeLifetime = 30 * 24 * time.Hour

// clockSkew is how far in the future a learned time may be (a clock set
// back) before the entry is refused as corrupt.
const clockSkew = 24 * time.Hour

// SizeFile is what the sizes file of one project directory and policy holds.
type SizeFile struct {
	// Dir is the project directory (the command's working directory,
	// absolute and clean) and Policy the policy's name: the pair the file
	// belongs to, recorded so that a file read for another pair is
	// refused.
	Dir, Policy string
	// Entries are the sizes, one per command name, sorted by name.
	Entries []SizeEntry
}

// SizeEntry is the typical peak of the leaves of one command name, and when
// a run last learned it.
type SizeEntry struct {
	Comm    string
	Peak    uint64
	Learned time.Time
}

// sizeFileJSON gives SizeFile its JSON names.
type sizeFileJSON struct {
	Version int             `json:"version"`
	Dir     string          `json:"dir"`
	Policy  string          `json:"policy"`
	Sizes   []sizeEntryJSON `json:"sizes"`
}

type sizeEntryJSON struct {
	Comm      string    `json:"comm"`
	PeakBytes uint64    `json:"peak_bytes"`
	Learned   time.Time `json:"learned"`
}

// SizeFileName is the name of the sizes file of a project directory and
// policy: a hash of the pair, so that any directory and policy name make
// a short file name, and two pairs never share one.
func SizeFileName(dir, policy string) string {
	sum := sha256.Sum256([]byte(dir + "\x00" + policy))
	return hex.EncodeToString(sum[:16]) + ".json"
}

// Known is the sizes of f as Config.Known takes them.
func (f SizeFile) Known() map[string]uint64 {
	known := make(map[string]uint64, len(f.Entries))
	for _, e := range f.Entries {
		known[e.Comm] = e.Peak
	}
	return known
}

// Update returns the file to keep after a run that started from f and
// ended knowing sizes (Controller.Sizes): the sizes the run learned, dated
// now, and the others with the date f has for them. A name neither
// learned nor in f, an empty or overlong name, one that is not UTF-8 (it
// could not be read back as it was) and a size of 0 or over MaxSize are
// left out. Of more than MaxSizeNames names the largest sizes are kept:
// they are the ones that decide what fits.
func (f SizeFile) Update(sizes map[string]Size, now time.Time) SizeFile {
	was := make(map[string]time.Time, len(f.Entries))
	for _, e := range f.Entries {
		was[e.Comm] = e.Learned
	}
	next := SizeFile{Dir: f.Dir, Policy: f.Policy}
	for comm, s := range sizes {
		if checkComm(comm) != nil || s.Peak == 0 || s.Peak > MaxSize {
			continue
		}
		learned, ok := now, true
		if !s.Learned {
			learned, ok = was[comm]
		}
		if ok {
			next.Entries = append(next.Entries, SizeEntry{Comm: comm, Peak: s.Peak, Learned: learned.UTC()})
		}
	}
	if len(next.Entries) > MaxSizeNames {
		sort.Slice(next.Entries, func(i, j int) bool {
			a, b := next.Entries[i], next.Entries[j]
			if a.Peak != b.Peak {
				return a.Peak > b.Peak
			}
			if !a.Learned.Equal(b.Learned) {
				return a.Learned.After(b.Learned)
			}
			return a.Comm < b.Comm
		})
		next.Entries = next.Entries[:MaxSizeNames]
	}
	sortEntries(next.Entries)
	return next
}

// EncodeSizeFile writes f as JSON, its entries sorted by name. It refuses a
// file that DecodeSizeFile would refuse.
func EncodeSizeFile(w io.Writer, f SizeFile) error {
	if err := checkEntries(f.Entries, time.Time{}); err != nil {
		return err
	}
	entries := append([]SizeEntry(nil), f.Entries...)
	sortEntries(entries)
	j := sizeFileJSON{Version: SizeFileVersion, Dir: f.Dir, Policy: f.Policy, Sizes: []sizeEntryJSON{}}
	for _, e := range entries {
		j.Sizes = append(j.Sizes, sizeEntryJSON{Comm: e.Comm, PeakBytes: e.Peak, Learned: e.Learned.UTC()})
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// DecodeSizeFile reads the sizes file of dir and policy. It refuses, with
// an error that says what is wrong, a file that is not one (not JSON, too
// large, fields it does not know), one of another version, one recording
// another directory or policy, and absurd entries: an empty or duplicate
// name, a size of 0 or over MaxSize, a learned time missing or more than a
// day ahead of now. Entries learned over SizeLifetime before now are left
// out; when that leaves none of several, the file is stale: an error too.
func DecodeSizeFile(r io.Reader, dir, policy string, now time.Time) (SizeFile, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSizeFileBytes+1))
	switch {
	case err != nil:
		return SizeFile{}, err
	case len(b) > MaxSizeFileBytes:
		return SizeFile{}, fmt.Errorf("over %d KiB, more than a sizes file ever holds", MaxSizeFileBytes>>10)
	case len(bytes.TrimSpace(b)) == 0:
		return SizeFile{}, errors.New("empty")
	}
	// The version first, so that a file of another version is refused as
	// that, not for fields this version does not know. Unmarshal also
	// refuses data after the JSON value.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return SizeFile{}, fmt.Errorf("not a sizes file: %w", err)
	}
	switch {
	case v.Version == nil:
		return SizeFile{}, errors.New("not a sizes file: no version")
	case *v.Version != SizeFileVersion:
		return SizeFile{}, fmt.Errorf("version %d; this boxrun reads version %d", *v.Version, SizeFileVersion)
	}
	var j sizeFileJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return SizeFile{}, fmt.Errorf("not a sizes file: %w", err)
	}
	switch {
	case j.Dir != dir:
		return SizeFile{}, fmt.Errorf("records directory %q, not %q", j.Dir, dir)
	case j.Policy != policy:
		return SizeFile{}, fmt.Errorf("records policy %q, not %q", j.Policy, policy)
	case len(j.Sizes) > MaxSizeNames:
		return SizeFile{}, fmt.Errorf("holds %d names; a sizes file keeps at most %d", len(j.Sizes), MaxSizeNames)
	}
	f := SizeFile{Dir: j.Dir, Policy: j.Policy}
	for _, e := range j.Sizes {
		f.Entries = append(f.Entries, SizeEntry{Comm: e.Comm, Peak: e.PeakBytes, Learned: e.Learned})
	}
	if err := checkEntries(f.Entries, now); err != nil {
		return SizeFile{}, err
	}
	return dropStale(f, now)
}

// dropStale leaves out the entries of f learned over SizeLifetime before
// now; a file of which none is left is stale, an error.
func dropStale(f SizeFile, now time.Time) (SizeFile, error) {
	fresh := f.Entries[:0:0]
	var newest time.Time
	for _, e := range f.Entries {
		if e.Learned.After(newest) {
			newest = e.Learned
		}
		if now.Sub(e.Learned) <= SizeLifetime {
			fresh = append(fresh, e)
		}
	}
	if len(f.Entries) > 0 && len(fresh) == 0 {
		return SizeFile{}, fmt.Errorf("stale: the sizes were last learned on %s, over %d days ago", newest.Format(time.DateOnly), SizeLifetime/(24*time.Hour))
	}
	f.Entries = fresh
	sortEntries(f.Entries)
	return f, nil
}

// checkEntries refuses absurd entries: an empty, overlong, non-UTF-8 or
// duplicate name, a size of 0 or over MaxSize, a learned time missing or
// (when now is not zero) more than clockSkew ahead of now.
func checkEntries(entries []SizeEntry, now time.Time) error {
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if err := checkComm(e.Comm); err != nil {
			return err
		}
		switch {
		case seen[e.Comm]:
			return fmt.Errorf("command name %q appears twice", e.Comm)
		case e.Peak == 0 || e.Peak > MaxSize:
			return fmt.Errorf("size of %q is %d bytes; a size is 1 byte to 1 TiB", e.Comm, e.Peak)
		case e.Learned.IsZero():
			return fmt.Errorf("size of %q has no learned time", e.Comm)
		case !now.IsZero() && e.Learned.After(now.Add(clockSkew)):
			return fmt.Errorf("size of %q was learned on %s, in the future", e.Comm, e.Learned.Format(time.DateOnly))
		}
		seen[e.Comm] = true
	}
	return nil
}

// checkComm refuses a command name that is empty, longer than maxCommLen
// or not UTF-8.
func checkComm(comm string) error {
	switch {
	case comm == "":
		return errors.New("an empty command name")
	case len(comm) > maxCommLen:
		return fmt.Errorf("command name %.20q... is %d bytes; at most %d", comm, len(comm), maxCommLen)
	case !utf8.ValidString(comm):
		return fmt.Errorf("command name %q is not UTF-8", comm)
	}
	return nil
}

func sortEntries(entries []SizeEntry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Comm < entries[j].Comm })
}
