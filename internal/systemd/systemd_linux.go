// Package systemd is boxrun's one way to a systemd manager: the private
// socket of the system or a user manager, one dial (one D-Bus connection
// for calls and signals, within a deadline), a cache of connections by
// socket, and the few helpers every caller needs (errors systemd explains,
// unit types, which unit and manager own a cgroup), and the installer of
// user units (boxrun install user-unit). The backend, editor protection and
// doctor all connect through it. It never runs systemctl or systemd-run.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// JobTimeout bounds every wait for a systemd job.
const JobTimeout = 30 * time.Second

// dialTimeout bounds connecting to a manager.
const dialTimeout = 10 * time.Second

// ErrUnreachable is returned (wrapped) when a manager cannot be reached;
// the wrapping error says which and why.
var ErrUnreachable = errors.New("systemd manager unreachable")

// Socket is the private socket of the system manager, or of this user's
// manager: $XDG_RUNTIME_DIR/systemd/private, else /run/user/UID's.
func Socket(user bool) string {
	if !user {
		return "/run/systemd/private"
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = filepath.Join("/run/user", strconv.Itoa(os.Getuid()))
	}
	return filepath.Join(dir, "systemd", "private")
}

// UserSocket is the private socket of uid's user manager.
func UserSocket(uid int) string {
	if uid == os.Getuid() {
		return Socket(true)
	}
	return filepath.Join("/run/user", strconv.Itoa(uid), "systemd", "private")
}

// Dial connects to the manager at sock ("user" or "system" in which, for
// messages) within 10 s. go-systemd asks for two connections, one for
// method calls and one for signals; the manager's private socket carries
// both on one, in order (a job's reply before its JobRemoved), so the same
// connection serves both and the dial and authentication are paid once.
func Dial(ctx context.Context, which, sock string) (*sd.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	type result struct {
		conn *sd.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The connection's context must outlive the dial: godbus closes
		// the connection when it is cancelled.
		var shared *godbus.Conn
		c, err := sd.NewConnection(func() (*godbus.Conn, error) {
			if shared != nil {
				return shared, nil
			}
			conn, err := godbus.Dial("unix:path=" + sock)
			if err != nil {
				return nil, err
			}
			if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
				conn.Close()
				return nil, err
			}
			shared = conn
			return conn, nil
		})
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%w: connecting to the systemd %s manager at %s: %v", ErrUnreachable, which, sock, r.err)
		}
		return r.conn, nil
	case <-dctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("%w: the systemd %s manager at %s did not answer within %v", ErrUnreachable, which, sock, dialTimeout)
	}
}

// Trim drops the sentinel's text from an ErrUnreachable message, for
// callers that say it their own way.
func Trim(err error) string {
	return strings.TrimPrefix(err.Error(), ErrUnreachable.Error()+": ")
}

// SystemBus is the socket of the D-Bus system bus, through which a user
// who may not use the system manager's private socket (root's only) can
// still ask it.
const SystemBus = "/run/dbus/system_bus_socket"

// Conns are connections to managers, one per socket, dialled on first use
// and again when one was lost: boxrun's one connection cache, used by
// editor protection and doctor. Not safe for concurrent use.
type Conns struct {
	m map[string]*sd.Conn
}

// Get returns a connection to the manager at sock, its private socket.
func (c *Conns) Get(ctx context.Context, which, sock string) (*sd.Conn, error) {
	if conn, ok := c.m[sock]; ok && conn.Connected() {
		return conn, nil
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("no systemd %s manager socket at %s", which, sock)
	}
	conn, err := Dial(ctx, which, sock)
	if err != nil {
		return nil, errors.New(Trim(err))
	}
	c.keep(sock, conn)
	return conn, nil
}

// SystemBusConn returns a connection to the system manager through the
// system bus (SystemBus), for a user who may not use its private socket.
func (c *Conns) SystemBusConn(ctx context.Context) (*sd.Conn, error) {
	return c.bus(ctx, SystemBus)
}

// bus is SystemBusConn with the bus socket to look for: tests name one
// that is not there.
func (c *Conns) bus(ctx context.Context, sock string) (*sd.Conn, error) {
	if conn, ok := c.m[sock]; ok && conn.Connected() {
		return conn, nil
	}
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("the system manager's socket is root's, and there is no system bus at %s", sock)
	}
	conn, err := sd.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, err
	}
	c.keep(sock, conn)
	return conn, nil
}

// keep caches conn as the connection at sock.
func (c *Conns) keep(sock string, conn *sd.Conn) {
	if c.m == nil {
		c.m = map[string]*sd.Conn{}
	}
	c.m[sock] = conn
}

// Close closes every connection.
func (c *Conns) Close() error {
	for _, conn := range c.m {
		conn.Close()
	}
	c.m = nil
	return nil
}

// ExplainError turns a D-Bus error into "Name: message", the way systemd
// explains it.
func ExplainError(err error) error {
	var de godbus.Error
	if errors.As(err, &de) && len(de.Body) > 0 {
		if msg, ok := de.Body[0].(string); ok {
			return fmt.Errorf("%s: %s", de.Name, msg)
		}
	}
	return err
}

// IsNoSuchUnit reports whether systemd answered that the unit does not
// exist (it was never loaded, or was stopped and collected).
func IsNoSuchUnit(err error) bool {
	var de godbus.Error
	return errors.As(err, &de) && strings.HasSuffix(de.Name, ".NoSuchUnit")
}

// UnitType is the D-Bus interface suffix of a unit: "Scope" for x.scope.
func UnitType(unit string) string {
	ext := strings.TrimPrefix(path.Ext(unit), ".")
	if ext == "" {
		return "Unit"
	}
	return strings.ToUpper(ext[:1]) + ext[1:]
}

// SocketFor is the private socket of the manager ("system" or "user")
// owning a unit; owner is the uid of a user manager.
func SocketFor(manager string, owner int) string {
	if manager == "system" {
		return Socket(false)
	}
	return UserSocket(owner)
}
