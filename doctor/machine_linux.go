package doctor

// The machine doctor examines: its file system and the D-Bus questions it
// asks, live or from a fixture (internal/machinetest).

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"

	"github.com/boxrun/boxrun/internal/probe"
	"github.com/boxrun/boxrun/internal/systemd"
)

// SystemdProbe answers doctor's D-Bus questions.
type SystemdProbe interface {
	// Manager connects to the user (user=true) or system manager and
	// returns its version as its Version property says, unquoted
	// ("252.39-1~deb12u1"; "" when unknown).
	Manager(ctx context.Context, user bool) (string, error)
	// UnitProperty returns a unit property of the user or system manager
	// as text (strings unquoted).
	UnitProperty(ctx context.Context, user bool, unit, name string) (string, error)
}

// Machine is doctor's view of the machine.
type Machine struct {
	// FS is the file system rooted at "/".
	FS fs.FS
	// Getenv reads the environment.
	Getenv func(string) string
	// UID is the user boxrun runs as.
	UID int
	// Kernel is the kernel release (uname -r).
	Kernel string
	// Writable says why an FS name may not be written (access W_OK), nil
	// when it may.
	Writable func(name string) error
	// Readlink reads a symbolic link given by FS name; nil when links
	// cannot be read.
	Readlink func(name string) (string, error)
	// Systemd asks the managers; nil when none can be asked.
	Systemd SystemdProbe
	// LookPath finds a command on PATH; nil finds none.
	LookPath func(string) (string, error)
}

// LiveMachine is this machine. Close releases its D-Bus connections.
func LiveMachine() *Machine {
	return &Machine{
		FS:       os.DirFS("/"),
		Getenv:   os.Getenv,
		UID:      os.Getuid(),
		Kernel:   probe.Release(),
		Writable: func(name string) error { return unix.Access("/"+name, unix.W_OK) },
		LookPath: exec.LookPath,
		Readlink: func(name string) (string, error) { return os.Readlink("/" + name) },
		Systemd:  &liveSystemd{},
	}
}

// Close releases the machine's connections.
func (m *Machine) Close() error {
	if c, ok := m.Systemd.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// liveSystemd asks the real managers over their private sockets; the
// system manager's socket is root's only, so an unprivileged user asks it
// through the system bus when there is one. Its connections are kept in
// systemd.Conns, the cache editor protection uses too.
type liveSystemd struct {
	conns systemd.Conns
}

func (l *liveSystemd) conn(ctx context.Context, user bool) (*sd.Conn, error) {
	if !user && os.Geteuid() != 0 {
		return l.conns.SystemBusConn(ctx)
	}
	which := "system"
	if user {
		which = "user"
	}
	return l.conns.Get(ctx, which, systemd.Socket(user))
}

func (l *liveSystemd) Manager(ctx context.Context, user bool) (string, error) {
	c, err := l.conn(ctx, user)
	if err != nil {
		return "", err
	}
	v, err := c.GetManagerProperty("Version")
	if err != nil {
		return "", systemd.ExplainError(err)
	}
	return strings.Trim(v, `"`), nil
}

func (l *liveSystemd) UnitProperty(ctx context.Context, user bool, unit, name string) (string, error) {
	c, err := l.conn(ctx, user)
	if err != nil {
		return "", err
	}
	typ := systemd.UnitType(unit)
	var p *sd.Property
	if typ == "Unit" || name == "ActiveState" {
		p, err = c.GetUnitPropertyContext(ctx, unit, name)
	} else {
		p, err = c.GetUnitTypePropertyContext(ctx, unit, typ, name)
	}
	if err != nil {
		return "", systemd.ExplainError(err)
	}
	if s, ok := p.Value.Value().(string); ok {
		return s, nil
	}
	return p.Value.String(), nil
}

func (l *liveSystemd) Close() error { return l.conns.Close() }
