//go:build linux

package commitlog

import (
	"errors"
	"fmt"
	"os"

	"github.com/raftmq/raftmq/internal/fsutil"
	"golang.org/x/sys/unix"
)

var pageSize = int64(os.Getpagesize())

// mmapFile maps size bytes of f read-write and shared.
func mmapFile(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s (%d bytes): %w", f.Name(), size, err)
	}
	return b, nil
}

func munmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// msyncRange writes back the pages of b[from:to] (rounded out to pages) and
// waits: MS_SYNC on Linux is an fdatasync of that range.
func msyncRange(b []byte, from, to int64) error {
	if to <= from {
		return nil
	}
	start := from &^ (pageSize - 1)
	if to > int64(len(b)) {
		to = int64(len(b))
	}
	return unix.Msync(b[start:to], unix.MS_SYNC)
}

// dropPages drops b[from:to] (page-aligned offsets into f, mapped whole as b)
// from this process's page tables and the clean pages of that range from the
// page cache. On a shared file mapping MADV_DONTNEED loses no data: a later
// access faults the page in again from the page cache or the file. Best
// effort: a file system that ignores POSIX_FADV_DONTNEED keeps its pages.
func dropPages(f *os.File, b []byte, from, to int64) {
	if to > int64(len(b)) {
		to = int64(len(b)) &^ (pageSize - 1)
	}
	if to <= from {
		return
	}
	_ = unix.Madvise(b[from:to], unix.MADV_DONTNEED)
	_ = unix.Fadvise(int(f.Fd()), from, to-from, unix.FADV_DONTNEED)
}

// preallocate reserves size bytes for f so later writes through the mapping
// need no block allocation and fdatasync no size metadata. It falls back to
// ftruncate where fallocate is not supported.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return f.Truncate(size)
	}
	return fmt.Errorf("fallocate %s (%d bytes): %w", f.Name(), size, err)
}

// zeroRange makes b[from:to] zero. Whole pages are punched out of f and
// allocated again (cheap even for a 1 GiB tail, and still preallocated);
// partial pages, or file systems without hole punching, are zeroed through
// the mapping. The caller syncs.
func zeroRange(f *os.File, b []byte, from, to int64) error {
	if to > int64(len(b)) {
		to = int64(len(b))
	}
	if to <= from {
		return nil
	}
	pstart := (from + pageSize - 1) &^ (pageSize - 1)
	pend := to &^ (pageSize - 1)
	if pend-pstart >= 16*pageSize {
		// Only punch pages that may hold data: skip if already zero is not
		// knowable cheaply, so punch the whole page range.
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, pstart, pend-pstart)
		if err == nil {
			if err := unix.Fallocate(int(f.Fd()), 0, pstart, pend-pstart); err != nil {
				return fmt.Errorf("fallocate %s after punch: %w", f.Name(), err)
			}
			clear(b[from:pstart])
			clear(b[pend:to])
			return nil
		}
	}
	clear(b[from:to])
	return nil
}

// statfsUsage is the default Config.DiskUsage: the used fraction of the file
// system holding path, as df computes it (used / (used + available to users)).
func statfsUsage(path string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	avail := float64(st.Bavail) * float64(st.Bsize)
	if used+avail == 0 {
		return 0, nil
	}
	return used / (used + avail), nil
}

func fsyncDir(dir string) error { return fsutil.SyncDir(dir) }
