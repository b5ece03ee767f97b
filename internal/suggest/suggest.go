// Package suggest finds what a user probably meant by a word boxrun does not
// know: a mistyped policy key, policy name or command. It is the one place
// that decides how near is near enough for a "did you mean" hint, so that the
// policy files, --set, -p and the command line all suggest alike.
package suggest

import (
	"strings"
	"unicode/utf8"
)

// Distance returns the number of edits that turn a into b: inserting,
// deleting or replacing one rune, or swapping two adjacent ones (the
// optimal string alignment distance). Case counts; Closest folds it.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows of the table: two back (for swaps), one back, current.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// MaxDistance is how many edits a word of n runes may be away from a
// candidate and still count as a typo of it: 1 up to 5 runes, 2 up to 10,
// 3 beyond. (At 3 edits for 10 runes, memory.max would pass for a typo of
// memory.low.)
func MaxDistance(n int) int {
	switch {
	case n <= 5:
		return 1
	case n <= 10:
		return 2
	}
	return 3
}

// maxWordLen bounds the words compared, so that an absurd input (a
// megabyte-long policy name) costs nothing.
const maxWordLen = 256

// maxCandidates bounds the candidates Closest looks through: a file that
// defines thousands of policies, each with a broken extends, must not
// cost thousands of distances per error, and among so many names a guess
// is as likely wrong as right.
const maxCandidates = 1000

// Closest returns the candidates nearest to word when they are near enough
// to be what was meant: at most MaxDistance edits away, and fewer edits than
// either word has runes, so that a short word is never "corrected" into an
// unrelated one ("x" is not a typo of "gc"). Case does not count. Equally
// near candidates are all returned, in the order given; nil when none is
// near, when word is empty or very long, when word is a candidate, or
// when there are more than 1000 candidates.
func Closest(word string, candidates []string) []string {
	n := utf8.RuneCountInString(word)
	if n == 0 || len(word) > maxWordLen || len(candidates) > maxCandidates {
		return nil
	}
	w := strings.ToLower(word)
	limit := MaxDistance(n)
	best := limit
	var out []string
	for _, c := range candidates {
		if c == word {
			return nil
		}
		m := utf8.RuneCountInString(c)
		if len(c) > maxWordLen || m-n > limit || n-m > limit {
			continue // each edit changes the length by one at most
		}
		d := Distance(w, strings.ToLower(c))
		if d > limit || d >= n || d >= m {
			continue
		}
		switch {
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	return out
}

// Or joins alternatives for a message: "a", "a or b", "a, b or c".
func Or(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
