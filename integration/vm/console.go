package vm

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// console collects QEMU's serial output, copies it to an optional live writer and
// notes when the harness's markers arrive.
type console struct {
	token string
	live  io.Writer

	mu        sync.Mutex
	buf       []byte
	scanned   int // bytes of buf already searched for markers
	started   time.Time
	ended     time.Time
	initError string
	changed   chan struct{} // receives (non-blocking) after a marker was seen
}

func newConsole(token string, live io.Writer) *console {
	return &console{token: token, live: live, changed: make(chan struct{}, 1)}
}

// Write implements io.Writer for QEMU's stdout.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	c.scan()
	c.mu.Unlock()
	// After the scan, so that a live writer reacting to a line sees the markers noted.
	if c.live != nil {
		_, _ = c.live.Write(p) // a failing live log must not stop the VM
	}
	return len(p), nil
}

// scan looks for complete marker lines in the unscanned part of buf.
func (c *console) scan() {
	for {
		nl := bytes.IndexByte(c.buf[c.scanned:], '\n')
		if nl < 0 {
			return
		}
		line := string(c.buf[c.scanned : c.scanned+nl])
		c.scanned += nl + 1
		seen := false
		now := time.Now()
		if c.started.IsZero() && strings.Contains(line, markerStart+c.token) {
			c.started, seen = now, true
		}
		if c.ended.IsZero() && strings.Contains(line, markerEnd+c.token) {
			c.ended, seen = now, true
		}
		if c.initError == "" {
			if i := strings.Index(line, markerInitError); i >= 0 {
				c.initError = strings.TrimSpace(line[i+len(markerInitError):])
				seen = true
			}
		}
		if seen {
			select {
			case c.changed <- struct{}{}:
			default:
			}
		}
	}
}

// state returns the marker times and the init error seen so far.
func (c *console) state() (started, ended time.Time, initError string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started, c.ended, c.initError
}

// text returns the console so far with \r\n turned into \n.
func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ReplaceAll(string(c.buf), "\r\n", "\n")
}

// parseOutput extracts the command's output and exit code from a normalised console.
// ok is false when the start marker or a complete end marker is missing.
func parseOutput(text, token string) (output string, exitCode int, ok bool) {
	start := markerStart + token
	i := strings.Index(text, start)
	if i < 0 {
		return "", 0, false
	}
	rest := text[i+len(start):]
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return "", 0, false
	}
	rest = rest[nl+1:]
	end := markerEnd + token + " rc="
	j := strings.Index(rest, end)
	if j < 0 {
		return "", 0, false
	}
	codeText := rest[j+len(end):]
	if k := strings.IndexAny(codeText, "\r\n"); k >= 0 {
		codeText = codeText[:k]
	}
	code, err := strconv.Atoi(strings.TrimSpace(codeText))
	if err != nil {
		return "", 0, false
	}
	return rest[:j], code, true
}

// outputSoFar returns what the command printed after the start marker, for a
// command that never reached its end marker ("" before the start marker).
func outputSoFar(text, token string) string {
	start := markerStart + token
	i := strings.Index(text, start)
	if i < 0 {
		return ""
	}
	rest := text[i+len(start):]
	if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
		return rest[nl+1:]
	}
	return ""
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	text = strings.TrimRight(text, "\n")
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// limitedBuffer keeps the last max bytes written to it (for the helpers' stderr).
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
