package raftlog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// residentPages counts the pages of path in [from, to) in the page cache.
func residentPages(t *testing.T, path string, from, to int64) int {
	t.Helper()
	n, err := fsutil.ResidentPages(path, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// skipUnlessDropWorks skips on a file system that keeps synced pages after
// POSIX_FADV_DONTNEED (tmpfs, some overlays): there is nothing to observe there.
func skipUnlessDropWorks(t *testing.T, dir string) {
	t.Helper()
	ok, why, err := fsutil.DropsCleanPages(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip(why)
	}
}

// folioSlack allows for a large folio (up to 2 MiB on x86-64) straddling the end of a
// dropped range: the kernel keeps it whole until a later drop covers all of it.
const folioSlack = 2 << 20

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
