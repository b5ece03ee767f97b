package systemd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// InstallUserUnit writes a unit file into the user manager's unit
// directory (file is its absolute path there), reloads the manager,
// enables the unit and (re)starts it, waiting for the start job — all
// over the user manager's private D-Bus socket. Nothing is written when
// the manager cannot be reached.
func InstallUserUnit(ctx context.Context, file, content string) error {
	return installUnit(ctx, true, file, content)
}

// InstallSystemUnit is InstallUserUnit for the system manager
// (/etc/systemd/system), as root.
func InstallSystemUnit(ctx context.Context, file, content string) error {
	return installUnit(ctx, false, file, content)
}

// UninstallUserUnit stops and disables the unit of file, removes the file
// and reloads the user manager. It reports whether there was anything to
// remove.
func UninstallUserUnit(ctx context.Context, file string) (bool, error) {
	return uninstallUnit(ctx, true, file)
}

// UninstallSystemUnit is UninstallUserUnit for the system manager.
func UninstallSystemUnit(ctx context.Context, file string) (bool, error) {
	return uninstallUnit(ctx, false, file)
}

// manager names a manager in messages: which for Dial, the journalctl
// flag that shows its units' logs, and what to do when its socket is
// missing.
func manager(user bool) (which, journal, missing string) {
	if user {
		return "user", "--user ", "log in through a session, or sudo loginctl enable-linger $USER"
	}
	return "system", "", "is systemd running? (without systemd, run boxrun's service command in the background yourself)"
}

func installUnit(ctx context.Context, user bool, file, content string) error {
	ctx, cancel := context.WithTimeout(ctx, JobTimeout)
	defer cancel()
	which, journal, missing := manager(user)
	sock := Socket(user)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("no systemd %s manager socket at %s: %s", which, sock, missing)
	}
	c, err := Dial(ctx, which, sock)
	if err != nil {
		return errors.New(Trim(err))
	}
	defer c.Close()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("writing the unit: %w", err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing the unit: %w", err)
	}
	name := filepath.Base(file)
	if err := c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reloading the %s manager: %w", which, ExplainError(err))
	}
	if _, _, err := c.EnableUnitFilesContext(ctx, []string{name}, false, true); err != nil {
		return fmt.Errorf("enabling %s: %w", name, ExplainError(err))
	}
	ch := make(chan string, 1) // buffered: go-systemd sends while holding a lock
	if _, err := c.RestartUnitContext(ctx, name, "replace", ch); err != nil {
		return fmt.Errorf("starting %s: %w", name, ExplainError(err))
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("starting %s: job %s (see: journalctl %s-u %s)", name, res, journal, name)
		}
	case <-ctx.Done():
		return fmt.Errorf("starting %s: no answer from systemd within %v (see: journalctl %s-u %s)", name, JobTimeout, journal, name)
	}
	return nil
}

func uninstallUnit(ctx context.Context, user bool, file string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, JobTimeout)
	defer cancel()
	which, _, _ := manager(user)
	_, statErr := os.Stat(file)
	existed := statErr == nil
	name := filepath.Base(file)
	sock := Socket(user)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		if !existed {
			return false, nil
		}
		return existed, fmt.Errorf("no systemd %s manager socket at %s to stop %s: remove %s by hand once it is stopped", which, sock, name, file)
	}
	c, err := Dial(ctx, which, sock)
	if err != nil {
		return existed, errors.New(Trim(err))
	}
	defer c.Close()
	ch := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, name, "replace", ch); err != nil {
		if !IsNoSuchUnit(err) {
			return existed, fmt.Errorf("stopping %s: %w", name, ExplainError(err))
		}
	} else {
		select {
		case <-ch:
		case <-ctx.Done():
			return existed, fmt.Errorf("stopping %s: no answer from systemd within %v", name, JobTimeout)
		}
	}
	if changes, err := c.DisableUnitFilesContext(ctx, []string{name}, false); err != nil {
		if !IsNoSuchUnit(err) && existed {
			return existed, fmt.Errorf("disabling %s: %w", name, ExplainError(err))
		}
	} else if len(changes) > 0 {
		existed = true
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return existed, fmt.Errorf("removing %s: %w", file, err)
	}
	if err := c.ReloadContext(ctx); err != nil {
		return existed, fmt.Errorf("reloading the %s manager: %w", which, ExplainError(err))
	}
	return existed, nil
}
