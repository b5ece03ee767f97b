package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"
)

func TestSockets(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	uid := os.Getuid()
	tests := []struct{ got, want string }{
		{Socket(false), "/run/systemd/private"},
		{Socket(true), "/run/user/4242/systemd/private"},
		{UserSocket(uid), "/run/user/4242/systemd/private"},
		{UserSocket(uid + 1), "/run/user/" + strconv.Itoa(uid+1) + "/systemd/private"},
		{SocketFor("system", uid), "/run/systemd/private"},
		{SocketFor("user", uid+1), "/run/user/" + strconv.Itoa(uid+1) + "/systemd/private"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: %q, want %q", i, tt.got, tt.want)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got, want := Socket(true), filepath.Join("/run/user", strconv.Itoa(uid), "systemd", "private"); got != want {
		t.Errorf("without XDG_RUNTIME_DIR: %q, want %q", got, want)
	}
}

func TestUnitType(t *testing.T) {
	for unit, want := range map[string]string{"a.scope": "Scope", "boxrun.slice": "Slice", "x.service": "Service", "odd": "Unit"} {
		if got := UnitType(unit); got != want {
			t.Errorf("UnitType(%q) = %q, want %q", unit, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	de := godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []any{"Unit x.scope not loaded."}}
	if got := ExplainError(fmt.Errorf("getting: %w", de)).Error(); got != "org.freedesktop.systemd1.NoSuchUnit: Unit x.scope not loaded." {
		t.Errorf("ExplainError = %q", got)
	}
	sock := filepath.Join(t.TempDir(), "private")
	_, err := Dial(context.Background(), "user", sock)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), sock) {
		t.Fatalf("Dial of a missing socket: %v; want ErrUnreachable naming the socket", err)
	}
	if got := Trim(err); strings.HasPrefix(got, ErrUnreachable.Error()) {
		t.Errorf("Trim kept the sentinel: %q", got)
	}
	var c Conns
	if _, err := c.Get(context.Background(), "user", sock); err == nil || !strings.Contains(err.Error(), "no systemd user manager socket at "+sock) {
		t.Errorf("Conns.Get of a missing socket: %v", err)
	}
	bus := filepath.Join(t.TempDir(), "system_bus_socket")
	if _, err := c.bus(context.Background(), bus); err == nil || !strings.Contains(err.Error(), "no system bus at "+bus) {
		t.Errorf("Conns.bus without a bus: %v; want an error naming the bus socket", err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}
