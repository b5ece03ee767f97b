package doctor

import (
	"context"
	"io/fs"
	"strconv"
	"strings"

	"github.com/boxrun/boxrun/signals"
)

// tracerUnit is the signal tracer's system unit (boxrun install
// signal-tracer).
const tracerUnit = "boxrun-signals.service"

// checkSignalTracer: will a report name who sent the signal that killed a
// process of the box? It does when the signal tracer records for this user
// (its directory under /run/boxrun/signals exists) or runs.
func (d *checker) checkSignalTracer() Check {
	c := Check{ID: "signal-tracer"}
	dir := signals.Dir(d.m.UID)
	if fi, err := fs.Stat(d.m.FS, strings.TrimPrefix(dir, "/")); err == nil && fi.IsDir() {
		c.Status, c.Summary = CheckOK, "the signal tracer records for you ("+dir+"): reports name who sends a fatal signal to a process of the box"
		return c
	}
	if d.m.Systemd != nil {
		ctx, cancel := context.WithTimeout(d.ctx, d.opt.Timeout)
		defer cancel()
		if st, err := d.m.Systemd.UnitProperty(ctx, false, tracerUnit, "ActiveState"); err == nil && st == "active" {
			c.Status, c.Summary = CheckOK, tracerUnit+" is active; it has recorded no signal for uid "+strconv.Itoa(d.m.UID)+" since boot"
			return c
		}
	}
	c.Status = CheckWarn
	c.Summary = "no signal tracer: a report can say a process was killed by SIGKILL, not who sent it"
	c.Fix = "sudo boxrun install signal-tracer (or, from a package, sudo systemctl enable --now " + tracerUnit + ")"
	return c
}
