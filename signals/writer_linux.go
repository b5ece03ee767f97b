package signals

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Writer appends records to the file of each user below its root (Root):
// ROOT/UID/signals.jsonl, mode 0600 in a directory of mode 0700, both
// owned by that user, so that only the box's owner reads who signalled
// its processes. A file over MaxBytes is renamed to signals.jsonl.1,
// replacing the one before: a user keeps at most twice MaxBytes.
type Writer struct {
	Root     string
	MaxBytes int64
}

// DefaultMaxBytes bounds a user's file: some ten thousand records.
const DefaultMaxBytes = 4 << 20

// Prepare makes the root: root-owned, 0711, so that each user reaches
// their own directory in it and lists nobody's; /run/boxrun above it too
// (root's runtime state there is in files of mode 0600).
func (w *Writer) Prepare() error {
	for _, d := range []string{filepath.Dir(w.Root), w.Root} {
		if err := os.Mkdir(d, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("making %s: %w", d, err)
		}
		fi, err := os.Lstat(d)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || st.Uid != 0 {
			return fmt.Errorf("%s is not a directory of root's (a link, or another owner): refusing to write records there", d)
		}
		if fi.Mode().Perm() != 0o711 {
			if err := os.Chmod(d, 0o711); err != nil {
				return fmt.Errorf("making %s reachable for users: %w", d, err)
			}
		}
	}
	return nil
}

// Append writes rec to uid's file.
func (w *Writer) Append(uid int, rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	dir := filepath.Join(w.Root, strconv.Itoa(uid))
	if err := w.userDir(dir, uid); err != nil {
		return err
	}
	file := filepath.Join(dir, File)
	if fi, err := os.Lstat(file); err == nil && fi.Mode().IsRegular() && w.MaxBytes > 0 && fi.Size()+int64(len(line)) > w.MaxBytes {
		if err := os.Rename(file, file+".1"); err != nil {
			return fmt.Errorf("rotating %s: %w", file, err)
		}
	}
	// The directory is the user's: never follow a link they put there,
	// never write to a file they linked in.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || st.Nlink != 1 {
		return fmt.Errorf("%s is not a plain file: not writing to it", file)
	}
	if int(st.Uid) != uid {
		if err := f.Chown(uid, -1); err != nil {
			return err
		}
	}
	_, err = f.Write(append(line, '\n'))
	return err
}

// userDir makes uid's directory, 0700 and owned by uid.
func (w *Writer) userDir(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid {
		if err := os.Lchown(dir, uid, -1); err != nil {
			return err
		}
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}
