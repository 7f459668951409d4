// Package fsutil holds the small durable-file helpers every package that keeps state on disk
// needs: replacing a file atomically and syncing a directory.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that after a crash the file holds either its old
// or its new bytes, never a mix: it writes path+".tmp", fsyncs it, renames it over path and
// fsyncs the directory. The directory is created if missing. On error the temporary file is
// removed and path is unchanged; a temporary file left by a crash is overwritten by the next
// write. Callers must not write the same path from two goroutines at once.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	err = writeSyncClose(f, data, perm)
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("rename %s to %s: %w", tmp, path, err)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return nil
}

func writeSyncClose(f *os.File, data []byte, perm os.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// SyncDir fsyncs a directory, making the creation, removal or renaming of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
