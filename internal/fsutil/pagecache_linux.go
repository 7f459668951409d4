package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ResidentPages counts the pages of path in [from, to) that are in the page cache (mincore
// over a fresh read-only mapping, which sees the file's cache, not a caller's mapping). For
// tests of code that drops pages from the cache.
func ResidentPages(path string, from, to int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() == 0 {
		return 0, nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(m) //nolint:errcheck // read-only mapping
	ps := int64(os.Getpagesize())
	vec := make([]byte, (int64(len(m))+ps-1)/ps)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("mincore %s: %w", path, errno)
	}
	n := 0
	for i := from / ps; i < (to+ps-1)/ps && i < int64(len(vec)); i++ {
		if vec[i]&1 != 0 {
			n++
		}
	}
	return n, nil
}

// DropsCleanPages reports whether the file system under dir drops synced pages on
// POSIX_FADV_DONTNEED (tmpfs and some overlays keep them), with the reason when it does not.
func DropsCleanPages(dir string) (bool, string, error) {
	path := filepath.Join(dir, "fadvise-probe")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		return false, "", err
	}
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return false, "", err
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 1<<20, unix.FADV_DONTNEED); err != nil {
		return false, fmt.Sprintf("fadvise: %v", err), nil
	}
	n, err := ResidentPages(path, 0, 1<<20)
	if err != nil {
		return false, "", err
	}
	if n > 0 {
		return false, fmt.Sprintf("the file system under %s keeps %d synced pages after POSIX_FADV_DONTNEED", dir, n), nil
	}
	return true, "", nil
}
