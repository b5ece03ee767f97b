package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/boxrun/boxrun/box"
	"github.com/boxrun/boxrun/observe"
	"github.com/boxrun/boxrun/policy"
	"github.com/boxrun/boxrun/report"
)

// progressInterval is how often --progress redraws its line: at most 4×/s.
const progressInterval = 250 * time.Millisecond

// progress is the --progress status line: one line on stderr, redrawn while
// the command runs and cleared when it exits. It is an Observer; its
// figures come from the Sampler's latest sample, so it reads no file
// itself.
type progress struct {
	w      io.Writer
	width  func() int
	pol    *policy.Resolved
	latest func() (observe.Sample, bool)

	mu      sync.Mutex
	start   time.Time
	stop    chan struct{}
	done    chan struct{}
	running bool
}

// Started begins redrawing the line.
func (p *progress) Started(dir string, pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return
	}
	p.running, p.start = true, time.Now()
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop(p.stop, p.done)
}

func (p *progress) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fmt.Fprint(p.w, "\r"+p.line(time.Since(p.start))+"\x1b[K")
		}
	}
}

// line is the status line, cut to the terminal's width so that it never
// wraps (a wrapped line cannot be redrawn in place).
func (p *progress) line(elapsed time.Duration) string {
	s := "boxrun: " + p.pol.Name + " · " + report.FormatDuration(elapsed.Round(100*time.Millisecond))
	if smp, ok := p.latest(); ok {
		s += " · memory " + report.FormatSize(smp.MemoryBytes)
		if m := p.pol.MemoryMax; m != nil && *m != policy.Unlimited {
			s += " of " + report.FormatSize(*m)
		}
		s += fmt.Sprintf(" · pids %d", smp.Pids)
	}
	if w := p.width() - 1; w > 0 && len([]rune(s)) > w {
		s = string([]rune(s)[:w])
	}
	return s
}

// Exited stops redrawing and clears the line.
func (p *progress) Exited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	p.running = false
	close(p.stop)
	<-p.done
	fmt.Fprint(p.w, "\r\x1b[K")
}

var _ box.Observer = (*progress)(nil)
