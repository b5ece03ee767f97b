package protect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boxrun/boxrun/internal/cgroupfs"
	"github.com/boxrun/boxrun/internal/procfs"
	"github.com/boxrun/boxrun/internal/systemd"
)

// Restored is one value Undo restored or left alone.
type Restored struct {
	// What names it: "code (pid 1234) oom_score_adj" or "app.slice MemoryLow".
	What string `json:"what"`
	// From and To are the values before and after the undo.
	From string `json:"from"`
	To   string `json:"to"`
	// Skipped says why it was left alone ("" when restored).
	Skipped string `json:"skipped,omitempty"`
}

// Undo restores what protection changed, as remembered in the
// state file: a value is put back only where it is still what boxrun set
// (someone else's later change wins). What could not be restored for a
// passing reason (a manager that does not answer) stays in the state file.
func Undo(ctx context.Context, statePath string, timeout time.Duration) ([]Restored, error) {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	unlock, err := lockState(statePath)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := loadState(statePath)
	if err != nil {
		return nil, err
	}
	p := NewProtector(Options{Timeout: timeout})
	defer p.Close()
	var out []Restored
	keep := &protectState{Version: stateVersion}
	for _, e := range st.Processes {
		r := Restored{What: fmt.Sprintf("%s (pid %d) oom_score_adj", e.Comm, e.PID), From: strconv.Itoa(e.After), To: strconv.Itoa(e.Before)}
		cur, err := procfs.ReadStat(e.PID)
		switch {
		case err != nil || cur.StartTime != e.StartTime:
			r.Skipped = "the process has exited"
		default:
			v, err := p.oom.Get(e.PID)
			switch {
			case err != nil:
				r.Skipped = "the process has exited"
			case v != e.After:
				r.Skipped = fmt.Sprintf("changed since to %d", v)
				r.From = strconv.Itoa(v)
			default:
				if err := p.oom.Set(e.PID, e.Before); err != nil {
					r.Skipped = err.Error()
					keep.Processes = append(keep.Processes, e)
				}
			}
		}
		out = append(out, r)
	}
	mount, _ := cgroupfs.ReadMount(os.DirFS("/"))
	for _, e := range st.Units {
		name := e.Unit
		if name == "" {
			name = e.Cgroup
		}
		r := Restored{What: name + " MemoryLow", From: systemdSize(e.After), To: systemdSize(e.Before)}
		if e.Manager == "" {
			r.What = name + " memory.low"
			full := filepath.Join(mount.Path, e.Cgroup, "memory.low")
			v, ok := readCgroupValue(os.DirFS("/"), cgroupfs.FSPath(mount.Path, e.Cgroup, "memory.low"))
			switch {
			case !insideMount(mount.Path, e.Cgroup):
				// A state file can be edited: a recorded cgroup such as
				// /../../tmp/x must not make this write elsewhere.
				r.Skipped = "the recorded cgroup " + strconv.Quote(e.Cgroup) + " is not below the cgroup2 mount"
			case mount.Path == "" || !ok:
				r.Skipped = "the cgroup is gone"
			case v != e.After:
				r.Skipped = "changed since to " + systemdSize(v)
			default:
				if err := os.WriteFile(full, []byte(strconv.FormatUint(e.Before, 10)), 0); err != nil {
					r.Skipped = err.Error()
					keep.Units = append(keep.Units, e)
				}
			}
			out = append(out, r)
			continue
		}
		r.Skipped = p.undoUnit(ctx, e, timeout)
		if r.Skipped != "" && !strings.HasPrefix(r.Skipped, "changed since") && !strings.HasPrefix(r.Skipped, "the unit") {
			keep.Units = append(keep.Units, e)
		}
		out = append(out, r)
	}
	return out, saveState(statePath, keep)
}

// undoUnit puts a unit's MemoryLow back; it returns why not, or "".
func (p *Protector) undoUnit(ctx context.Context, e stateUnit, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := p.conn(ctx, e.Manager, systemd.SocketFor(e.Manager, e.UID))
	if err != nil {
		return err.Error()
	}
	prop, err := c.GetUnitPropertyContext(ctx, e.Unit, "ActiveState")
	if err != nil {
		return "the unit is gone"
	}
	if s, _ := prop.Value.Value().(string); s != "active" && s != "activating" && s != "reloading" {
		return "the unit is no longer running (" + s + ")"
	}
	v, err := getMemoryLow(ctx, c, e.Unit)
	if err != nil {
		return err.Error()
	}
	if v != e.After {
		return "changed since to " + systemdSize(v)
	}
	if err := setMemoryLow(ctx, c, e.Unit, e.Before); err != nil {
		return err.Error()
	}
	return ""
}

// insideMount reports whether the cgroup path cg, joined onto the cgroup2
// mount, stays below it.
func insideMount(mount, cg string) bool {
	if mount == "" || !strings.HasPrefix(cg, "/") {
		return false
	}
	full := filepath.Join(mount, cg)
	return full != mount && strings.HasPrefix(full, mount+"/")
}
