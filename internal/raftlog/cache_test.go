package raftlog

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages reports how many of the pages of path in [from, to) are in the page
// cache (mincore over a read-only mapping).
func residentPages(t *testing.T, path string, from, to int64) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	ps := int64(os.Getpagesize())
	n := 0
	for i := from / ps; i < (to+ps-1)/ps && i < int64(len(vec)); i++ {
		if vec[i]&1 != 0 {
			n++
		}
	}
	return n
}

// folioSlack allows for a large folio (up to 2 MiB on x86-64) straddling the end of a
// dropped range: the kernel keeps it whole until a later drop covers all of it.
const folioSlack = 2 << 20

// skipUnlessDropWorks skips the test on a file system that keeps synced pages after
// POSIX_FADV_DONTNEED (tmpfs, some overlays): there is nothing to observe there.
func skipUnlessDropWorks(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "probe")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 1<<20, unix.FADV_DONTNEED); err != nil {
		t.Skipf("fadvise: %v", err)
	}
	if n := residentPages(t, path, 0, 1<<20); n > 0 {
		t.Skipf("the file system under %s keeps %d synced pages after POSIX_FADV_DONTNEED", dir, n)
	}
}

// TestSyncDropsDurablePagesFromCache: after Sync (NoSync) or a synced StoreLogs, the
// log's durable pages leave the page cache except the last cacheKeep bytes of the active
// segment, sealed segments leave it whole at the roll, and every entry still reads back.
func TestSyncDropsDurablePagesFromCache(t *testing.T) {
	dir := t.TempDir()
	skipUnlessDropWorks(t, dir)
	ps := int64(os.Getpagesize())

	for _, noSync := range []bool{true, false} {
		name := "NoSync"
		if !noSync {
			name = "Sync"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(dir, name)
			s := mustOpen(t, dir, Options{NoSync: noSync, SegmentSize: 24 << 20})
			defer s.Close()
			want := index()
			next := uint64(1)
			// 40 MiB in 64 KiB entries: one roll at 24 MiB.
			for next <= 640 {
				b := entries(next, 16, 1, 64<<10)
				mustStore(t, s, b)
				for _, l := range b {
					want[l.Index] = l
				}
				next += 16
			}
			if noSync {
				if err := s.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			waitSealed(t, s) // the background drops a rolled segment once it sealed it
			files := segmentFiles(t, dir)
			if len(files) != 2 {
				t.Fatalf("segments %v, want 2", files)
			}
			sealed := files[0]
			st, err := os.Stat(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if n := residentPages(t, sealed, 0, st.Size()); n > 0 {
				t.Errorf("sealed segment: %d of %d pages still cached after it was sealed", n, st.Size()/ps)
			}
			active := files[1]
			st, err = os.Stat(active)
			if err != nil {
				t.Fatal(err)
			}
			// With NoSync false the drop runs every dropEvery bytes, so up to that much
			// plus cacheKeep may still be cached.
			keep := int64(cacheKeep + folioSlack)
			if !noSync {
				keep += dropEvery
			}
			if n := residentPages(t, active, 0, st.Size()-keep); n > 0 {
				t.Errorf("active segment: %d pages below the kept tail still cached", n)
			}
			checkRange(t, s, 1, next-1, want)
		})
	}
}

// TestTruncateResetsDropMark: records written again after a tail truncation below the
// dropped mark are dropped by the next Sync too.
func TestTruncateResetsDropMark(t *testing.T) {
	dir := t.TempDir()
	skipUnlessDropWorks(t, dir)
	s := mustOpen(t, dir, Options{NoSync: true})
	defer s.Close()
	mustStore(t, s, entries(1, 64, 1, 64<<10)) // 4 MiB
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(17, 64); err != nil { // cut at 1 MiB
		t.Fatal(err)
	}
	want := index(entries(1, 16, 1, 64<<10))
	b := entries(17, 160, 2, 64<<10) // 10 MiB more, from the cut
	mustStore(t, s, b)
	for _, l := range b {
		want[l.Index] = l
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	path := segmentFiles(t, dir)[0]
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := residentPages(t, path, 0, st.Size()-cacheKeep-folioSlack); n > 0 {
		t.Errorf("%d pages below the kept tail still cached after truncate, append, Sync", n)
	}
	checkRange(t, s, 1, 176, want)
}
