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
	version uint32 // format version of the file (formatV1 files have no seal block)

	// Guarded by Store.mu.
	offsets []int64 // offsets[i] is the file offset of the record of entry first+i
	size    int64   // end of the last whole record: where the next record goes
	synced  int64   // the file's data below this offset is durable
	gen     uint64  // bumped by every tail truncation into the segment
	removed bool    // unpublished by a deletion: the file is closed or about to be

	// sealMu serializes the writes of the seal block: sealing (background, Close) against
	// the rewrite of a tail truncation. sealEnd is the end offset recorded in the durable
	// seal block, 0 for none; it is written holding both sealMu and Store.mu.
	sealMu  sync.Mutex
	sealEnd int64

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

// wholeDurable reports whether the segment's content is known to be durable up to its
// end: version 1 segments that are not the last were fsynced when they rolled, version 2
// ones when their seal covers every record. Caller holds Store.mu (or owns the segment).
func (g *segment) wholeDurable() bool {
	return g.version == formatV1 || (g.sealEnd > 0 && g.sealEnd == g.size)
}

// Store is an append-only, segmented Raft log store. It implements raft.LogStore and
// raft.MonotonicLogStore. See the package documentation for the format and the
// durability contract.
//
// Locking: wmu serializes the mutating calls (StoreLogs, DeleteRange, Close), which do
// their file I/O holding only wmu, so a slow write or fsync does not block readers. mu
// guards the in-memory index (segs, first, last, closed and every segment's offsets,
// size, synced, gen and removed); mutators take it exclusively only to publish a change,
// readers hold it shared across their pread so a segment cannot be closed or truncated
// under them. spareMu guards the pointer to the pre-created next segment (only the
// background goroutine creates it, only a roll takes it). Lock order: wmu, then a
// segment's sealMu, then mu; spareMu is never held with another lock.
//
// One goroutine, started by Open and stopped by Close, works off raft's path: it
// pre-creates the next segment and seals the segments that rolled.
type Store struct {
	dir      string
	opts     Options
	log      *slog.Logger
	dirF     *os.File // the directory: holds the flock, fsynced after creating/removing files
	syncHook func(syncOp)

	wmu  sync.Mutex
	wbuf []byte  // encode buffer, guarded by wmu
	wofs []int64 // record offsets within wbuf, guarded by wmu

	mu     sync.RWMutex
	segs   []*segment
	first  uint64 // logical first index, 0 when the log is empty
	last   uint64 // 0 when the log is empty
	closed bool

	spareMu sync.Mutex
	spare   *os.File // spareName, header and directory entry durable; nil if none is ready

	wake  chan struct{} // capacity 1: there is background work (a roll happened)
	stopc chan struct{} // closed by Close to stop the background goroutine
	bgWG  sync.WaitGroup
	// bgBusy is true while the background goroutine works (tests wait for it to be idle).
	bgBusy atomic.Bool

	failed atomic.Pointer[error] // first I/O error of a mutation; set once
}

// syncOp names the step an fsync belongs to, for the tests' sync hook. The ones that
// start with "roll" or are opAppend run inside StoreLogs.
type syncOp string

const (
	opAppend       syncOp = "append"         // StoreLogs, NoSync false
	opRollV1       syncOp = "roll-v1"        // StoreLogs: a version-1 segment rolls
	opRollSpare    syncOp = "roll-spare"     // StoreLogs: no spare was ready, create one
	opRollSpareDir syncOp = "roll-spare-dir" //   and its directory entry
	opSpare        syncOp = "spare"          // background: pre-create the next segment
	opSpareDir     syncOp = "spare-dir"      //   and its directory entry
	opSealData     syncOp = "seal-data"      // background or Close: a rolled segment's data
	opSeal         syncOp = "seal"           //   then its seal block
	opSync         syncOp = "sync"           // Sync
	opClose        syncOp = "close"          // Close: the active segment (NoSync)
	opCloseDir     syncOp = "close-dir"      // Close: the spare's removal
	opDeleteDir    syncOp = "delete-dir"     // DeleteRange: removed segments
	opTruncSeal    syncOp = "truncate-seal"  // DeleteRange: the rewritten seal block
	opTruncate     syncOp = "truncate"       // DeleteRange: the cut segment
	opRecover      syncOp = "recover"        // Open: repairs
)

// datasync fdatasyncs f, telling the sync hook first.
func (s *Store) datasync(f *os.File, op syncOp) error {
	if s.syncHook != nil {
		s.syncHook(op)
	}
	return fdatasync(f)
}

// syncDir fsyncs the directory, telling the sync hook first.
func (s *Store) syncDir(op syncOp) error {
	if s.syncHook != nil {
		s.syncHook(op)
	}
	return s.dirF.Sync()
}

// Open opens (creating it if missing) the log in dir, validating every segment. A torn
// tail of the log is cut off; any other damage is an error wrapping ErrCorrupt. Only
// one Store may have a directory open at a time.
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
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		dirF:     dirF,
		syncHook: opts.syncHook,
		wake:     make(chan struct{}, 1),
		stopc:    make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		for _, g := range s.segs {
			g.f.Close()
		}
		dirF.Close()
		return nil, err
	}
	s.bgWG.Add(1)
	go s.background()
	return s, nil
}

func flock(f *os.File) error {
	ferr, err := fdRetry(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
	if err != nil {
		return err
	}
	return ferr
}

// fdRetry runs call on f's descriptor, again while it fails with EINTR, and returns its
// error; err is f.SyscallConn's or Control's (Control's: f was closed).
func fdRetry(f *os.File, call func(fd int) error) (callErr, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := rc.Control(func(fd uintptr) {
		for {
			if callErr = call(int(fd)); callErr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	return callErr, nil
}

// errFileClosed marks a sync that found its file already closed.
var errFileClosed = errors.New("file already closed")

// fdatasync flushes f's data (and the metadata needed to read it back, such as its size).
// It is safe to call while another goroutine closes f: the close waits for it, and a
// call that comes after the close returns errFileClosed.
func fdatasync(f *os.File) error {
	serr, err := fdRetry(f, unix.Fdatasync)
	if err != nil {
		return errFileClosed
	}
	return serr
}

// renameNoReplace renames from to to, failing if to exists where the file system can
// tell (renameat2 RENAME_NOREPLACE); elsewhere it is a plain rename.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return os.Rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
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
//
// A batch that does not fit in the active segment starts the next one: normally the
// segment the background goroutine pre-created, renamed, so that the roll costs no
// fsync of its own; sealing the rolled segment is left to the background.
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
		ng, err := s.roll(g, logs[0].Index)
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
		if err := s.datasync(g.f, opAppend); err != nil {
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
	if !s.opts.NoSync {
		g.synced = g.size
	}
	if s.last == 0 {
		s.first = logs[0].Index
	}
	s.last = logs[len(logs)-1].Index
	size := g.size
	s.mu.Unlock()
	if rolled {
		s.kick()
	}
	if !s.opts.NoSync && size-g.dropped.Load() >= dropEvery {
		g.dropCache(size - cacheKeep) // synced above
	}
	return nil
}

// roll returns the empty segment that entries from first go into: the pre-created
// spare, renamed to first's segment name, or, when the background has none ready, a
// segment created now. prev, the active segment, is left for the background goroutine to
// seal. Caller holds wmu.
//
// Nothing is fsynced here in the common case: the spare's header and directory entry
// are already durable, and the rename need not be, because recovery finds a spare that
// holds entries and takes it as the segment they start (see doc.go). The next spare's
// creation fsyncs the directory, which makes the rename durable before another segment
// can follow this one.
func (s *Store) roll(prev *segment, first uint64) (*segment, error) {
	if prev != nil && prev.version == formatV1 {
		// A version-1 segment has no seal block: recovery trusts every version-1 segment
		// but the last to be complete, so this one must be durable before a later one
		// exists, as the code that wrote it did. It happens once, after an upgrade.
		if err := s.datasync(prev.f, opRollV1); err != nil {
			return nil, fmt.Errorf("raftlog: sync version-1 segment %s before roll: %w", prev.path, err)
		}
		s.mu.Lock()
		prev.synced = prev.size
		s.mu.Unlock()
	}
	path := filepath.Join(s.dir, segmentName(first))
	s.spareMu.Lock()
	spare := s.spare
	s.spare = nil
	s.spareMu.Unlock()
	if spare == nil {
		// Rolling faster than the background prepares segments (or it failed): create
		// this one under its final name, the way the background would, without waiting
		// for the background's spare to be ready.
		f, err := s.createSegmentFile(path, false, opRollSpare, opRollSpareDir)
		if err != nil {
			return nil, err
		}
		s.log.Debug("raftlog: new segment, created during the roll", "file", path, "first_index", first)
		return &segment{first: first, path: path, f: f, version: formatVersion, size: dataStartV2}, nil
	}
	if err := renameNoReplace(filepath.Join(s.dir, spareName), path); err != nil {
		spare.Close()
		return nil, fmt.Errorf("raftlog: rename the next segment to %s: %w", path, err)
	}
	s.log.Debug("raftlog: new segment", "file", path, "first_index", first)
	return &segment{first: first, path: path, f: spare, version: formatVersion, size: dataStartV2}, nil
}

// createSegmentFile creates an empty version-2 segment file at path whose header and
// directory entry are durable, so that recovery can tell an interrupted creation (a
// file of at most a header's size) from a damaged segment. With prealloc the file is
// first allocated to SegmentSize, where the file system supports it.
func (s *Store) createSegmentFile(path string, prealloc bool, fileOp, dirOp syncOp) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("raftlog: create segment %s: %w", path, err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(path) // best effort: recovery removes a segment that holds nothing anyway
		return nil, err
	}
	h := fileHeader()
	if _, err := f.WriteAt(h[:], 0); err != nil {
		return fail(fmt.Errorf("raftlog: write header of segment %s: %w", path, err))
	}
	if prealloc {
		if err := fallocate(f, s.opts.SegmentSize); err != nil {
			return fail(fmt.Errorf("raftlog: preallocate segment %s: %w", path, err))
		}
	}
	if err := s.datasync(f, fileOp); err != nil {
		return fail(fmt.Errorf("raftlog: sync header of segment %s: %w", path, err))
	}
	if err := s.syncDir(dirOp); err != nil {
		return fail(fmt.Errorf("raftlog: sync directory %s after creating %s: %w", s.dir, path, err))
	}
	return f, nil
}

// fallocate allocates f's blocks up to size, extending it (the new range reads as
// zeros). A file system that cannot is left alone: preallocation only saves work.
func fallocate(f *os.File, size int64) error {
	ferr, err := fdRetry(f, func(fd int) error { return unix.Fallocate(fd, 0, 0, size) })
	if err != nil {
		return err
	}
	if errors.Is(ferr, unix.EOPNOTSUPP) || errors.Is(ferr, unix.ENOSYS) {
		return nil
	}
	return ferr
}

// kick tells the background goroutine there is work, without waiting.
func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// background is the Store's goroutine: after Open and after every roll it pre-creates
// the next segment, then seals the segments that rolled. It stops when Close closes
// stopc.
func (s *Store) background() {
	defer s.bgWG.Done()
	for {
		s.bgBusy.Store(true)
		if s.failed.Load() == nil {
			s.prepareSpare()
			if err := s.sealRolled(); err != nil {
				s.fail(err)
			}
		}
		s.bgBusy.Store(false)
		select {
		case <-s.stopc:
			return
		case <-s.wake:
		}
	}
}

// prepareSpare creates the next segment if there is none ready. Only the background
// goroutine creates spareName, and it does so without holding spareMu, so that a roll
// never waits for it.
//
// With NoSync false the spare is preallocated: an fdatasync after an append into
// allocated blocks of a file that does not grow journals less (measured on ext4,
// BenchmarkStoreLogsRoll). With NoSync it would only cost the unused tail.
func (s *Store) prepareSpare() {
	s.spareMu.Lock()
	ready := s.spare != nil
	s.spareMu.Unlock()
	if ready {
		return
	}
	f, err := s.createSegmentFile(filepath.Join(s.dir, spareName), !s.opts.NoSync, opSpare, opSpareDir)
	if err != nil {
		// Not fatal: the next roll creates its segment itself, and fails the store if it
		// cannot.
		s.log.Warn("raftlog: cannot pre-create the next segment", "dir", s.dir, "error", err)
		return
	}
	s.spareMu.Lock()
	s.spare = f
	s.spareMu.Unlock()
}

// sealRolled seals, oldest first, every segment but the last whose seal does not cover
// all of it: it makes the segment's data durable (unless StoreLogs or Sync already did),
// writes the seal block and makes that durable, then drops the segment from the page
// cache. It stops at the first failure, so that sealed segments always precede the
// unsealed ones, which recovery relies on. Segments deleted meanwhile are skipped.
func (s *Store) sealRolled() error {
	type job struct {
		g      *segment
		size   int64
		last   uint64
		gen    uint64
		synced int64
	}
	s.mu.RLock()
	var jobs []job
	for i := 0; i+1 < len(s.segs); i++ {
		if g := s.segs[i]; g.version != formatV1 && g.sealEnd < g.size {
			jobs = append(jobs, job{g, g.size, g.lastIndex(), g.gen, g.synced})
		}
	}
	s.mu.RUnlock()
	for _, j := range jobs {
		g := j.g
		if j.synced < j.size {
			if err := s.datasync(g.f, opSealData); err != nil {
				if errors.Is(err, errFileClosed) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("raftlog: sync rolled segment %s before sealing it: %w", g.path, err)
			}
			s.markSynced(g, j.gen, j.size)
		}
		sealed, err := s.writeSeal(g, j.gen, seal{first: g.first, last: j.last, end: j.size})
		if err != nil {
			return err
		}
		if !sealed {
			continue
		}
		// All of it, from offset 0: the seal block's page was written again after the
		// durable data around it was dropped. Past the end, to take the last partial page.
		g.dropped.Store(0)
		g.dropCache(j.size + pageSize)
	}
	return nil
}

// writeSeal writes and syncs g's seal block and reports whether it did: not when g was
// deleted or truncated since gen was read.
func (s *Store) writeSeal(g *segment, gen uint64, sl seal) (bool, error) {
	g.sealMu.Lock()
	defer g.sealMu.Unlock()
	s.mu.RLock()
	stale := g.removed || g.gen != gen
	s.mu.RUnlock()
	if stale {
		return false, nil
	}
	b := sealBlock(sl)
	if _, err := g.f.WriteAt(b[:], fileHeaderSize); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return false, nil // deleted meanwhile: deletions do not wait for sealMu
		}
		return false, fmt.Errorf("raftlog: write seal of segment %s: %w", g.path, err)
	}
	if err := s.datasync(g.f, opSeal); err != nil {
		if errors.Is(err, errFileClosed) {
			return false, nil
		}
		return false, fmt.Errorf("raftlog: sync seal of segment %s: %w", g.path, err)
	}
	s.mu.Lock()
	g.sealEnd = sl.end
	s.mu.Unlock()
	s.log.Debug("raftlog: sealed segment", "file", g.path, "last_index", sl.last, "size", sl.end)
	return true, nil
}

// markSynced records that g's data below end is durable, unless a truncation into g
// since gen was read makes that unknown.
func (s *Store) markSynced(g *segment, gen uint64, end int64) {
	s.mu.Lock()
	if g.gen == gen && end > g.synced {
		g.synced = end
	}
	s.mu.Unlock()
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
// whatever NoSync says. The pre-created next segment is not touched.
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
	markRemoved(dropped)
	s.mu.Unlock()
	// Oldest first, so an interrupted removal leaves a contiguous suffix of the log.
	return s.removeSegments(dropped)
}

// markRemoved flags segments that were just unpublished. Caller holds mu.
func markRemoved(segs []*segment) {
	for _, g := range segs {
		g.removed = true
	}
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
	markRemoved(dropped)
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
	if i > 0 {
		// The cut segment's seal block may be rewritten below: keep the background from
		// sealing it meanwhile with its old size.
		g.sealMu.Lock()
		defer g.sealMu.Unlock()
	}

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
		g.synced = min64(g.synced, cut)
		g.gen++
		if g.dropped.Load() > cut {
			g.dropped.Store(cut &^ (pageSize - 1)) // records written there are cached again
		}
	}
	markRemoved(dropped)
	s.last = min - 1
	sealEnd := g.sealEnd
	s.mu.Unlock()

	// Newest first, and durable before the cut: at every point of an interrupted
	// truncation the files on disk still form a contiguous log.
	slices.Reverse(dropped)
	if err := s.removeSegments(dropped); err != nil {
		return err
	}
	if cut < 0 {
		s.log.Debug("raftlog: truncated tail", "dir", s.dir, "last_index", min-1, "removed_segments", len(dropped))
		return nil
	}
	if sealEnd > cut {
		// The seal covers records that are about to go: seal the part that stays first
		// (it is durable, being below the old seal), so that the seal never claims more
		// than the file holds.
		b := sealBlock(seal{first: g.first, last: min - 1, end: cut})
		if _, err := g.f.WriteAt(b[:], fileHeaderSize); err != nil {
			return s.fail(fmt.Errorf("raftlog: rewrite seal of segment %s before truncating it: %w", g.path, err))
		}
		if err := s.datasync(g.f, opTruncSeal); err != nil {
			return s.fail(fmt.Errorf("raftlog: sync seal of segment %s before truncating it: %w", g.path, err))
		}
		s.mu.Lock()
		g.sealEnd = cut
		s.mu.Unlock()
	}
	if err := g.f.Truncate(cut); err != nil {
		return s.fail(fmt.Errorf("raftlog: truncate segment %s at offset %d: %w", g.path, cut, err))
	}
	if err := s.datasync(g.f, opTruncate); err != nil {
		return s.fail(fmt.Errorf("raftlog: sync segment %s after truncate: %w", g.path, err))
	}
	s.log.Debug("raftlog: truncated tail", "dir", s.dir, "last_index", min-1, "removed_segments", len(dropped))
	return nil
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
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
	if err := s.syncDir(opDeleteDir); err != nil {
		return s.fail(fmt.Errorf("raftlog: sync directory %s after removing segments: %w", s.dir, err))
	}
	return nil
}

// Sync makes every entry stored before the call durable: it fdatasyncs every segment
// whose data is not known to be durable yet (the active one, and with NoSync those that
// rolled since their last sync) and drops what it synced from the page cache. It is
// meant for a periodic loop when NoSync is set and may run concurrently with the other
// methods.
func (s *Store) Sync() error {
	type job struct {
		g    *segment
		size int64
		gen  uint64
		last bool
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	var jobs []job
	for i, g := range s.segs {
		if g.synced < g.size {
			jobs = append(jobs, job{g, g.size, g.gen, i == len(s.segs)-1})
		}
	}
	s.mu.RUnlock()
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	for _, j := range jobs {
		if err := s.datasync(j.g.f, opSync); err != nil {
			if errors.Is(err, errFileClosed) {
				// Closed since we looked: either the store was closed (Close synced it) or
				// the segment was deleted (nothing left to sync).
				s.mu.RLock()
				closed := s.closed
				s.mu.RUnlock()
				if closed {
					return ErrClosed
				}
				continue
			}
			// After a failed fsync the kernel may have dropped the dirty pages: retrying
			// could report success for lost data, so the store stops accepting writes.
			return s.fail(fmt.Errorf("raftlog: sync segment %s: %w", j.g.path, err))
		}
		s.markSynced(j.g, j.gen, j.size)
		if j.last {
			j.g.dropCache(j.size - cacheKeep)
		} else {
			j.g.dropCache(j.size + pageSize)
		}
	}
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

// Close stops the background goroutine, seals the segments that rolled and are not
// sealed yet, syncs the active segment (when NoSync is set), removes the pre-created
// next segment and closes every file. Later calls to any method, Close included, return
// ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stopc)
	s.bgWG.Wait()

	var errs []error
	if s.failed.Load() == nil {
		if err := s.sealRolled(); err != nil {
			errs = append(errs, s.fail(err))
		}
	}
	s.mu.Lock()
	segs := s.segs
	s.segs = nil
	s.mu.Unlock()
	if n := len(segs); n > 0 && s.opts.NoSync && s.failed.Load() == nil {
		if g := segs[n-1]; g.synced < g.size {
			if err := s.datasync(g.f, opClose); err != nil {
				errs = append(errs, fmt.Errorf("raftlog: sync segment %s on close: %w", g.path, err))
			}
		}
	}
	s.spareMu.Lock()
	spare := s.spare
	s.spare = nil
	s.spareMu.Unlock()
	if spare != nil {
		spare.Close()
		path := filepath.Join(s.dir, spareName)
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("raftlog: remove the next segment %s on close: %w", path, err))
		} else if err := s.syncDir(opCloseDir); err != nil {
			errs = append(errs, fmt.Errorf("raftlog: sync directory %s after removing %s: %w", s.dir, path, err))
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
