package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

var (
	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("raftlog: store is closed")
	// ErrCorrupt is wrapped by Open when a segment cannot be trusted: a bad record in a
	// sealed segment, a gap or a wrong index between entries, a foreign file. The message
	// names the file and offset.
	ErrCorrupt = errors.New("raftlog: corrupt log")
	// ErrNonContiguous is wrapped by StoreLogs when the entries do not follow the last
	// stored index one by one.
	ErrNonContiguous = errors.New("raftlog: non-contiguous append")
	// ErrUnsupportedRange is wrapped by DeleteRange for a range that is neither a prefix
	// nor a suffix of the log (it would leave a hole).
	ErrUnsupportedRange = errors.New("raftlog: delete range would leave a hole")
	// ErrFailed is wrapped by every mutating call after a write, sync, truncate or remove
	// failed: the files may no longer match memory, so the store refuses further changes.
	// Reopen it to recover from the files.
	ErrFailed = errors.New("raftlog: store unusable after an I/O error")
	// ErrLocked is wrapped by Open when another Store (in this or another process) has
	// the directory open.
	ErrLocked = errors.New("raftlog: directory is locked by another store")
)

// Compile-time checks.
var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)

// maxRetainedBuf bounds the encode buffer the Store keeps between StoreLogs calls; larger
// batches get a buffer of their own.
const maxRetainedBuf = 4 << 20

// segment is one <first index>.wal file.
type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64      // offsets[i] is the file offset of the record of entry first+i
	size    int64        // end of the last whole record: where the next record goes
	dropped atomic.Int64 // page cache below this offset has been dropped (dropCache)
}

// lastIndex is the index of the segment's last entry; the segment must not be empty.
func (g *segment) lastIndex() uint64 { return g.first + uint64(len(g.offsets)) - 1 }

// span returns the byte range of the record of the i-th entry.
func (g *segment) span(i int) (off, end int64) {
	off = g.offsets[i]
	if i+1 < len(g.offsets) {
		return off, g.offsets[i+1]
	}
	return off, g.size
}

// Store is an append-only, segmented Raft log store. It implements raft.LogStore and
// raft.MonotonicLogStore. See the package documentation for the format and the
// durability contract.
//
// Locking: wmu serializes the mutating calls (StoreLogs, DeleteRange, Close), which do
// their file I/O holding only wmu, so a slow write or fsync does not block readers. mu
// guards the in-memory index (segs, first, last, closed and every segment's offsets and
// size); mutators take it exclusively only to publish a change, readers hold it shared
// across their pread so a segment cannot be closed or truncated under them.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	dirF *os.File // the directory: holds the flock, fsynced after creating/removing files

	wmu  sync.Mutex
	wbuf []byte  // encode buffer, guarded by wmu
	wofs []int64 // record offsets within wbuf, guarded by wmu

	mu     sync.RWMutex
	segs   []*segment
	first  uint64 // logical first index, 0 when the log is empty
	last   uint64 // 0 when the log is empty
	closed bool

	failed atomic.Pointer[error] // first I/O error of a mutation; set once
}

// Open opens (creating it if missing) the log in dir, validating every segment. A torn
// tail of the last segment is cut off; any other damage is an error wrapping ErrCorrupt.
// Only one Store may have a directory open at a time.
func Open(dir string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: create directory %s: %w", dir, err)
	}
	dirF, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open directory %s: %w", dir, err)
	}
	if err := flock(dirF); err != nil {
		dirF.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("raftlog: lock %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("raftlog: lock %s: %w", dir, err)
	}
	s := &Store{
		dir:  dir,
		opts: opts,
		log:  opts.Logger,
		dirF: dirF,
	}
	if err := s.recover(); err != nil {
		for _, g := range s.segs {
			g.f.Close()
		}
		dirF.Close()
		return nil, err
	}
	return s, nil
}

func flock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// errFileClosed marks a sync that found its file already closed.
var errFileClosed = errors.New("file already closed")

// fdatasync flushes f's data (and the metadata needed to read it back, such as its size).
// It is safe to call while another goroutine closes f: the close waits for it, and a
// call that comes after the close returns errFileClosed.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return errFileClosed
	}
	return serr
}

// IsMonotonic implements raft.MonotonicLogStore and returns true: StoreLogs refuses an
// append that leaves a gap after the last stored index. Raft (1.7.3) relies on such gaps
// when the store is not monotonic: after a follower installs a snapshot it only compacts
// its old log (compactLogs) and then appends from snapshot index + 1, which for a follower
// whose log ended before the snapshot is a gap this store would reject on every retry.
// With IsMonotonic true raft instead calls removeOldLogs after installing a snapshot or
// restoring a user snapshot, which is DeleteRange(FirstIndex, LastIndex): here that is the
// cheap "delete everything" case (remove the files), after which any start index is
// accepted.
func (s *Store) IsMonotonic() bool { return true }

// FirstIndex returns the first index in the log, 0 if it is empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.first, nil
}

// LastIndex returns the last index in the log, 0 if it is empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.last, nil
}

// GetLog reads the entry at index into out, or returns raft.ErrLogNotFound. The returned
// Data and Extensions are freshly allocated and owned by the caller.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.last == 0 || index < s.first || index > s.last {
		return raft.ErrLogNotFound
	}
	g := s.segs[s.segmentOf(index)]
	off, end := g.span(int(index - g.first))
	rec := make([]byte, end-off)
	if _, err := g.f.ReadAt(rec, off); err != nil {
		return fmt.Errorf("raftlog: read entry %d from segment %s at offset %d: %w", index, g.path, off, err)
	}
	if err := decodeRecord(rec, out); err != nil {
		return fmt.Errorf("%w: segment %s offset %d (entry %d): %v", ErrCorrupt, g.path, off, index, err)
	}
	if out.Index != index {
		return fmt.Errorf("%w: segment %s offset %d holds entry %d, expected %d", ErrCorrupt, g.path, off, out.Index, index)
	}
	return nil
}

// segmentOf returns the position in s.segs of the segment holding index, which must be in
// the log. Caller holds mu.
func (s *Store) segmentOf(index uint64) int {
	n := len(s.segs)
	if s.segs[n-1].first <= index {
		return n - 1
	}
	return sort.Search(n, func(i int) bool { return s.segs[i].first > index }) - 1
}

// StoreLog appends one entry.
func (s *Store) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs appends entries with one write to the active segment followed, unless
// NoSync, by one fdatasync. The first entry must follow the last stored index (any index
// when the log is empty; an index past the end restarts the log there, see below) and the
// others must follow each other, else the error wraps ErrNonContiguous and nothing is
// written.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}

	// Validate and size the batch before touching anything.
	next := s.last + 1
	if logs[0] == nil {
		return fmt.Errorf("raftlog: entry 0 of the batch is nil")
	}
	if logs[0].Index == 0 {
		return fmt.Errorf("%w: index 0 is not a valid Raft index", ErrNonContiguous)
	}
	// A batch starting past the end is Raft saying the log restarts there: it appends
	// beyond its last entry only when a snapshot covers the gap. That happens when a node
	// crashed after saving an installed snapshot but before removeOldLogs deleted the old
	// log (raft does not retry that at start). Everything stored is then at or below the
	// snapshot, so it goes, as removeOldLogs would have done; refusing the append would
	// leave the follower failing every AppendEntries forever.
	restart := s.last != 0 && logs[0].Index > s.last+1
	if s.last == 0 || restart {
		next = logs[0].Index
	}
	total := 0
	for i, l := range logs {
		if l == nil {
			return fmt.Errorf("raftlog: entry %d of the batch is nil", i)
		}
		if want := next + uint64(i); l.Index != want {
			return fmt.Errorf("%w: entry %d of the batch has index %d, expected %d (last stored index %d)",
				ErrNonContiguous, i, l.Index, want, s.last)
		}
		n, err := recordSize(l)
		if err != nil {
			return err
		}
		total += n
	}

	if restart {
		s.log.Warn("raftlog: append past the end of the log; discarding the log below it, which a snapshot covers",
			"dir", s.dir, "last_index", s.last, "append_index", logs[0].Index)
		if err := s.deleteAll(); err != nil {
			return err
		}
	}

	// Encode.
	buf := s.wbuf
	if cap(buf) < total {
		buf = make([]byte, total)
	}
	buf = buf[:total]
	ofs := s.wofs[:0]
	pos := 0
	for _, l := range logs {
		n := recordHeaderSize + payloadFixedSize + len(l.Data) + len(l.Extensions)
		putRecord(buf[pos:pos+n], l)
		ofs = append(ofs, int64(pos))
		pos += n
	}
	if cap(buf) <= maxRetainedBuf {
		s.wbuf = buf
	}
	s.wofs = ofs

	// Pick (or start) the segment. A batch larger than SegmentSize still goes whole into
	// one segment.
	var g *segment
	if n := len(s.segs); n > 0 {
		g = s.segs[n-1]
	}
	rolled := false
	if g == nil || (len(g.offsets) > 0 && g.size+int64(total) > s.opts.SegmentSize) {
		ng, err := s.newSegment(g, logs[0].Index)
		if err != nil {
			return s.fail(err)
		}
		g, rolled = ng, true
	}

	if _, err := g.f.WriteAt(buf, g.size); err != nil {
		if rolled {
			g.f.Close()
		}
		return s.fail(fmt.Errorf("raftlog: write segment %s: %w", g.path, err))
	}
	if !s.opts.NoSync {
		if err := fdatasync(g.f); err != nil {
			if rolled {
				g.f.Close()
			}
			return s.fail(fmt.Errorf("raftlog: sync segment %s: %w", g.path, err))
		}
	}

	// Publish.
	s.mu.Lock()
	if rolled {
		s.segs = append(s.segs, g)
	}
	base := g.size
	for _, o := range ofs {
		g.offsets = append(g.offsets, base+o)
	}
	g.size += int64(total)
	if s.last == 0 {
		s.first = logs[0].Index
	}
	s.last = logs[len(logs)-1].Index
	size := g.size
	s.mu.Unlock()
	if !s.opts.NoSync && size-g.dropped.Load() >= dropEvery {
		g.dropCache(size - cacheKeep) // synced above
	}
	return nil
}

// newSegment seals prev (if any) and creates an empty segment starting at first, its
// header on disk and its directory entry durable. Caller holds wmu.
//
// prev is fsynced even with NoSync: recovery treats every segment but the last as sealed
// and complete, so prev's data must be durable before a later segment can exist.
func (s *Store) newSegment(prev *segment, first uint64) (*segment, error) {
	if prev != nil && s.opts.NoSync {
		if err := fdatasync(prev.f); err != nil {
			return nil, fmt.Errorf("raftlog: sync segment %s before roll: %w", prev.path, err)
		}
	}
	if prev != nil {
		prev.dropCache(prev.size + pageSize) // past the end, to take the last partial page
	}
	path := filepath.Join(s.dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("raftlog: create segment %s: %w", path, err)
	}
	h := fileHeader(first)
	if _, err := f.WriteAt(h[:], 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("raftlog: write header of segment %s: %w", path, err)
	}
	// The header is made durable before any record is written, so that recovery can tell
	// an interrupted create (a last file of at most a header's size) from a damaged one.
	if err := fdatasync(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("raftlog: sync header of segment %s: %w", path, err)
	}
	if err := s.dirF.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("raftlog: sync directory %s after creating %s: %w", s.dir, path, err)
	}
	s.log.Debug("raftlog: new segment", "file", path, "first_index", first)
	return &segment{first: first, path: path, f: f, size: fileHeaderSize}, nil
}

// DeleteRange deletes the entries min..max inclusive. Raft uses it in two ways, and the
// range must be one of them (or cover the whole log):
//
//   - Head compaction after a snapshot, min <= FirstIndex: segments whose entries are all
//     <= max are removed; a segment only partly covered stays on disk and FirstIndex
//     becomes max+1 in memory. After a restart its older entries are visible again. That
//     is safe for Raft: they are entries at or below a snapshot, so committed, and a
//     committed entry never changes, so they are exactly what Raft stored; Raft only
//     reads them to replicate (they are valid) and deletes them again at its next
//     compaction. A tail truncation can never reach them (it only removes uncommitted
//     entries), and deleting the whole log removes their files.
//   - Tail truncation on a conflict, max >= LastIndex: the segment holding min is cut at
//     min's record, later segments are removed.
//
// Deleting everything removes every segment; the next append may then start at any
// index. A range strictly inside the log returns an error wrapping ErrUnsupportedRange.
// A range outside the log is a no-op. Deletions are durable when DeleteRange returns,
// whatever NoSync says.
func (s *Store) DeleteRange(min, max uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if min > max || s.last == 0 || max < s.first || min > s.last {
		return nil
	}
	switch {
	case min <= s.first && max >= s.last:
		return s.deleteAll()
	case min <= s.first:
		return s.deleteHead(max)
	case max >= s.last:
		return s.truncateTail(min)
	default:
		return fmt.Errorf("%w: cannot delete [%d, %d] from the log [%d, %d]; only a prefix or a suffix can be deleted",
			ErrUnsupportedRange, min, max, s.first, s.last)
	}
}

// deleteAll removes every segment. Caller holds wmu.
func (s *Store) deleteAll() error {
	s.mu.Lock()
	dropped := s.segs
	s.segs = nil
	s.first, s.last = 0, 0
	s.mu.Unlock()
	// Oldest first, so an interrupted removal leaves a contiguous suffix of the log.
	return s.removeSegments(dropped)
}

// deleteHead removes entries up to max, which is below the last index. Caller holds wmu.
func (s *Store) deleteHead(max uint64) error {
	k := 0
	for k < len(s.segs) && s.segs[k].lastIndex() <= max {
		k++
	}
	s.mu.Lock()
	dropped := slices.Clone(s.segs[:k])
	s.segs = slices.Clone(s.segs[k:])
	s.first = max + 1
	s.mu.Unlock()
	if len(dropped) == 0 {
		return nil
	}
	s.log.Debug("raftlog: compacted head", "dir", s.dir, "first_index", max+1, "removed_segments", len(dropped))
	return s.removeSegments(dropped)
}

// truncateTail removes entries from min (above the first index) to the end. Caller holds
// wmu.
func (s *Store) truncateTail(min uint64) error {
	k := s.segmentOf(min)
	g := s.segs[k]
	i := int(min - g.first)

	s.mu.Lock()
	var dropped []*segment
	var cut int64 = -1
	if i == 0 {
		// min starts segment k (k > 0, since min > first >= segs[0].first): drop it whole.
		dropped = slices.Clone(s.segs[k:])
		s.segs = slices.Clone(s.segs[:k])
	} else {
		dropped = slices.Clone(s.segs[k+1:])
		s.segs = slices.Clone(s.segs[:k+1])
		cut = g.offsets[i]
		g.offsets = g.offsets[:i]
		g.size = cut
		if g.dropped.Load() > cut {
			g.dropped.Store(cut &^ (pageSize - 1)) // records written there are cached again
		}
	}
	s.last = min - 1
	s.mu.Unlock()

	// Newest first, and durable before the cut: at every point of an interrupted
	// truncation the files on disk still form a contiguous log.
	slices.Reverse(dropped)
	if err := s.removeSegments(dropped); err != nil {
		return err
	}
	if cut >= 0 {
		if err := g.f.Truncate(cut); err != nil {
			return s.fail(fmt.Errorf("raftlog: truncate segment %s at offset %d: %w", g.path, cut, err))
		}
		if err := fdatasync(g.f); err != nil {
			return s.fail(fmt.Errorf("raftlog: sync segment %s after truncate: %w", g.path, err))
		}
	}
	s.log.Debug("raftlog: truncated tail", "dir", s.dir, "last_index", min-1, "removed_segments", len(dropped))
	return nil
}

// removeSegments closes and removes segments in the given order, then fsyncs the
// directory. The segments must already be unpublished. Caller holds wmu.
func (s *Store) removeSegments(segs []*segment) error {
	if len(segs) == 0 {
		return nil
	}
	var firstErr error
	for _, g := range segs {
		g.f.Close()
		if err := os.Remove(g.path); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("raftlog: remove segment %s: %w", g.path, err)
		}
	}
	if firstErr != nil {
		return s.fail(firstErr)
	}
	if err := s.dirF.Sync(); err != nil {
		return s.fail(fmt.Errorf("raftlog: sync directory %s after removing segments: %w", s.dir, err))
	}
	return nil
}

// Sync makes every entry stored before the call durable: it fdatasyncs the active
// segment (sealed segments were synced when they were sealed). It is meant for a
// periodic loop when NoSync is set and may run concurrently with the other methods.
func (s *Store) Sync() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	var g *segment
	var size int64
	if n := len(s.segs); n > 0 {
		g = s.segs[n-1]
		size = g.size
	}
	s.mu.RUnlock()
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	if g == nil {
		return nil
	}
	if err := fdatasync(g.f); err != nil {
		if errors.Is(err, errFileClosed) {
			// Closed since we looked: either the store was closed (Close synced it) or
			// the segment was deleted (nothing left to sync); a roll synced it.
			s.mu.RLock()
			closed := s.closed
			s.mu.RUnlock()
			if closed {
				return ErrClosed
			}
			return nil
		}
		// After a failed fsync the kernel may have dropped the dirty pages: retrying
		// could report success for lost data, so the store stops accepting writes.
		return s.fail(fmt.Errorf("raftlog: sync segment %s: %w", g.path, err))
	}
	g.dropCache(size - cacheKeep)
	return nil
}

const (
	// cacheKeep is how much of the active segment's durable tail stays in the page cache
	// when the rest is dropped.
	cacheKeep = 1 << 20
	// dropEvery is how much durable data accumulates in the page cache, with NoSync
	// false, before StoreLogs drops it (one fadvise per dropEvery bytes, not per call).
	dropEvery = 8 << 20
)

// dropCache tells the kernel to evict the segment's cached pages below end, which must
// be durable: the kernel drops only clean pages, so a range still being written back
// would just stay. The log is written once and read back only for a follower too far
// behind for raft's log cache, or at a restart, while a broker's page cache is what
// consumers read the commitlog from: cached log pages would double the memory a broker
// needs for the same hit rate, and on a VM every new page-cache page costs the host a
// fault (docs/BENCHMARKS.md, round 6). Best effort: a file system that ignores
// POSIX_FADV_DONTNEED (tmpfs) keeps its pages. It may run concurrently with StoreLogs;
// dropped only moves back on a truncation.
func (g *segment) dropCache(end int64) {
	from := g.dropped.Load()
	if end <= from {
		return
	}
	rc, err := g.f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		// The kernel drops whole pages only: a page straddling end stays, and dropped
		// stops at its start so that the next call takes it.
		_ = unix.Fadvise(int(fd), from, end-from, unix.FADV_DONTNEED)
	})
	g.dropped.Store(end &^ (pageSize - 1))
}

var pageSize = int64(os.Getpagesize())

// Close syncs the active segment (when NoSync is set) and closes every file. Later calls
// to any method, Close included, return ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	segs := s.segs
	s.segs = nil
	s.mu.Unlock()

	var errs []error
	if n := len(segs); n > 0 && s.opts.NoSync && s.failed.Load() == nil {
		g := segs[n-1]
		if err := fdatasync(g.f); err != nil {
			errs = append(errs, fmt.Errorf("raftlog: sync segment %s on close: %w", g.path, err))
		}
	}
	for _, g := range segs {
		if err := g.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raftlog: close segment %s: %w", g.path, err))
		}
	}
	if err := s.dirF.Close(); err != nil {
		errs = append(errs, fmt.Errorf("raftlog: close directory %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}

// writable returns the error a mutating call must fail with, if any. Caller holds wmu.
func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	return nil
}

// fail records err as the store's failure (the first one wins) and returns it.
func (s *Store) fail(err error) error {
	s.failed.CompareAndSwap(nil, &err)
	s.log.Error("raftlog: I/O error, store refuses further writes until reopened", "dir", s.dir, "error", err)
	return err
}
