package commitlog

import (
	"bytes"
	"fmt"
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

// folioSlack allows for a large folio (up to 2 MiB on x86-64) straddling the end of
// a dropped range: the kernel keeps it whole until a later drop covers all of it.
const folioSlack = 2 << 20

// openDropLog opens a log in a fresh directory whose file system drops synced pages (else
// the test is skipped), with segments of segSize bytes and PageCacheKeep keep.
func openDropLog(t *testing.T, segSize, keep int64) (Config, *Log) {
	t.Helper()
	dir := t.TempDir()
	skipUnlessDropWorks(t, dir)
	cfg := testConfig(t, dir)
	cfg.CommitLogDir = filepath.Join(dir, "commitlog")
	cfg.MappedFileSizeCommitLog = segSize
	cfg.PageCacheKeep = keep
	return cfg, openLog(t, cfg)
}

// appendKiB appends n messages of 1 KiB bodies, one batch each, to queue 0 of topic.
func appendKiB(t *testing.T, l *Log, first uint64, n int) {
	t.Helper()
	body := bytes.Repeat([]byte("x"), 1024)
	for i := range n {
		m := tmsg("T", 0, string(body))
		mustAppend(t, l, first+uint64(i), tBaseTS+int64(i), m)
	}
}

// TestFlushDropsPageCacheBehindKeep: after a flush, the commitlog's flushed pages
// older than PageCacheKeep leave the page cache (sealed segments too), the last
// PageCacheKeep bytes stay, and every message still reads back intact. Fails without
// the drop-behind: the whole log stays resident.
func TestFlushDropsPageCacheBehindKeep(t *testing.T) {
	cfg, l := openDropLog(t, 8<<20, 4<<20)
	appendKiB(t, l, 1, 20<<10) // ~20 MiB + headers: three segments
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	end := l.MaxPhysOffset()
	limit := end - cfg.PageCacheKeep
	files, err := listFiles(cfg.CommitLogDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(files))
	}
	var below, kept int
	for _, start := range files {
		path := joinName(cfg.CommitLogDir, start)
		segEnd := start + cfg.MappedFileSizeCommitLog
		if lo, hi := start, min(segEnd, limit); hi > lo {
			below += residentPages(t, path, 0, hi-lo)
		}
		if lo, hi := max(start, limit+folioSlack), min(segEnd, end); hi > lo {
			kept += residentPages(t, path, lo-start, hi-start)
		}
	}
	if slackPages := int(folioSlack / pageSize); below > slackPages {
		t.Errorf("%d pages below flushed-PageCacheKeep still cached (allowed %d for a straddling folio)", below, slackPages)
	}
	if kept == 0 {
		t.Errorf("nothing of the last PageCacheKeep bytes is cached: the hot tail was dropped too")
	}
	// Everything reads back (through the mapping, faulting the pages in again).
	for off := int64(0); off < 20<<10; off += 997 {
		r := mustGet(t, l, "T", 0, off, 1, 1<<20, nil)
		ms := decodeAll(t, r)
		if len(ms) != 1 || ms[0].QueueOffset != off || len(ms[0].Body) != 1024 {
			t.Fatalf("read at queue offset %d: %d messages %+v", off, len(ms), ms)
		}
	}
}

// TestPageCacheKeepNegativeNeverDrops: PageCacheKeep < 0 leaves the cache to the kernel.
func TestPageCacheKeepNegativeNeverDrops(t *testing.T) {
	cfg, l := openDropLog(t, 8<<20, -1)
	appendKiB(t, l, 1, 6<<10)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	path := joinName(cfg.CommitLogDir, 0)
	if n, want := residentPages(t, path, 0, 4<<20), int((4<<20)/pageSize); n < want {
		t.Errorf("%d of %d pages of the first 4 MiB cached; want all (no drop)", n, want)
	}
}

// TestTruncateBelowDropMarkDropsAgain: a truncation below the drop mark moves it back,
// so the rewritten range is dropped by the next flush instead of staying cached.
func TestTruncateBelowDropMarkDropsAgain(t *testing.T) {
	cfg, l := openDropLog(t, 32<<20, 1<<20)
	appendKiB(t, l, 1, 8<<10)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	// Cut back to about 2 MiB (a record boundary: the start of message 2048).
	r := mustGet(t, l, "T", 0, 2048, 1, 1<<20, nil)
	cut := decodeAll(t, r)[0].PhysicalOffset
	r.Release()
	if err := l.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	seg := l.segmentFor(cut)
	if d := seg.start + seg.dropped.Load(); d > cut {
		t.Fatalf("drop mark %d above the truncation at %d", d, cut)
	}
	appendKiB(t, l, 20000, 8<<10)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	limit := l.MaxPhysOffset() - cfg.PageCacheKeep
	path := joinName(cfg.CommitLogDir, 0)
	if n, slack := residentPages(t, path, cut, limit), int(folioSlack/pageSize); n > slack {
		t.Errorf("%d rewritten pages below the keep window still cached (allowed %d)", n, slack)
	}
}

// TestConfigPageCacheKeepDefault: zero means DefaultPageCacheKeep.
func TestConfigPageCacheKeepDefault(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	if c.PageCacheKeep != DefaultPageCacheKeep {
		t.Fatalf("PageCacheKeep default %d, want %d", c.PageCacheKeep, DefaultPageCacheKeep)
	}
	if got := fmt.Sprint(DefaultPageCacheKeep); got != "268435456" {
		t.Fatalf("DefaultPageCacheKeep %s", got)
	}
}
