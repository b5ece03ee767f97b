package backpressure

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// SizesVersion is the version of the sizes file format.
const SizesVersion = 1

// MaxSuites is how many suites (project directory and policy) a sizes file
// remembers; the least recently run are forgotten first.
const MaxSuites = 64

// sizesMaxAge is how long a suite's sizes are trusted: a project changes.
const sizesMaxAge = 30 * 24 * time.Hour

// Sizes is what runs learned of the processes of each suite, so that the
// next run of the same suite starts with known sizes (Config.Known): the
// typical peak of a leaf process by command name, per project directory and
// policy.
type Sizes struct {
	Version int                   `json:"version"`
	Suites  map[string]SuiteSizes `json:"suites"`
}

// SuiteSizes is what one suite's runs learned.
type SuiteSizes struct {
	// Dir and Policy name the suite: the directory boxrun ran in and the
	// policy's name.
	Dir    string `json:"dir"`
	Policy string `json:"policy"`
	// Updated is when a run last learned something.
	Updated time.Time `json:"updated"`
	// Peaks are the typical peaks in bytes, by command name.
	Peaks map[string]uint64 `json:"peaks"`
}

// suiteKey names a suite in Sizes.Suites.
func suiteKey(dir, policy string) string { return policy + "\x00" + dir }

// ReadSizes parses a sizes file. A file of another version, or one that
// does not parse, is an error: the caller ignores it with a warning and
// starts afresh.
func ReadSizes(r io.Reader) (*Sizes, error) {
	var s Sizes
	dec := json.NewDecoder(io.LimitReader(r, 4<<20))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not a sizes file: %w", err)
	}
	if s.Version != SizesVersion {
		return nil, fmt.Errorf("sizes file version %d, this boxrun reads %d", s.Version, SizesVersion)
	}
	for k, su := range s.Suites {
		if k != suiteKey(su.Dir, su.Policy) {
			return nil, fmt.Errorf("sizes file: suite %q does not match its directory and policy", k)
		}
	}
	return &s, nil
}

// Lookup returns the sizes learned for the suite of dir and policy, nil
// when there are none or they are older than 30 days at now.
func (s *Sizes) Lookup(dir, policy string, now time.Time) map[string]uint64 {
	if s == nil {
		return nil
	}
	su, ok := s.Suites[suiteKey(dir, policy)]
	if !ok || now.Sub(su.Updated) > sizesMaxAge || len(su.Peaks) == 0 {
		return nil
	}
	return su.Peaks
}

// Record stores what a run of the suite learned, forgetting the least
// recently updated suites beyond MaxSuites. Nothing learned changes nothing.
func (s *Sizes) Record(dir, policy string, peaks map[string]uint64, now time.Time) {
	if len(peaks) == 0 {
		return
	}
	if s.Suites == nil {
		s.Suites = map[string]SuiteSizes{}
	}
	s.Version = SizesVersion
	s.Suites[suiteKey(dir, policy)] = SuiteSizes{Dir: dir, Policy: policy, Updated: now, Peaks: peaks}
	if len(s.Suites) <= MaxSuites {
		return
	}
	keys := make([]string, 0, len(s.Suites))
	for k := range s.Suites {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return s.Suites[keys[i]].Updated.After(s.Suites[keys[j]].Updated) })
	for _, k := range keys[MaxSuites:] {
		delete(s.Suites, k)
	}
}

// Write writes the sizes file.
func (s *Sizes) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
