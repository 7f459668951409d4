package commitlog

// Format: index files. See doc.go ("Index files") for the layout; the constants below are
// part of it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Index defaults, RocketMQ's maxHashSlotNum and maxIndexNum, and the query default.
const (
	DefaultIndexMaxHashSlots  = 5_000_000
	DefaultIndexMaxIndexCount = 20_000_000
	DefaultIndexQueryMax      = 64
)

// On-disk layout of an index file.
const (
	indexMagic      uint32 = 0x524D5149 // "RMQI"
	indexVersion    uint32 = 1
	indexHeaderSize        = 64
	indexSlotSize          = 4
	indexEntrySize         = 24

	ihMagic      = 0
	ihVersion    = 4
	ihSlots      = 8
	ihMaxEntries = 12
	ihBeginTS    = 16
	ihEndTS      = 24
	ihBeginPhys  = 32
	ihEndPhys    = 40
	ihCount      = 48

	ieHash = 0
	iePhys = 4
	ieTS   = 12
	iePrev = 20

	indexSuffix = ".idx"
)

// ErrIndexOrder is returned by Index.Put for an entry below the highest indexed offset.
var ErrIndexOrder = errors.New("commitlog: index entries out of order")

// errIndexClosed is returned after Close.
var errIndexClosed = errors.New("commitlog: index closed")

// IndexConfig configures an Index. Zero values mean the defaults.
type IndexConfig struct {
	Dir           string       // storePathIndex (required)
	MaxHashSlots  int          // maxHashSlotNum, hash slots per file, default 5,000,000
	MaxIndexCount int          // maxIndexNum, entries per file, default 20,000,000
	Logger        *slog.Logger // nil = discard
}

func (c *IndexConfig) setDefaults() {
	if c.MaxHashSlots == 0 {
		c.MaxHashSlots = DefaultIndexMaxHashSlots
	}
	if c.MaxIndexCount == 0 {
		c.MaxIndexCount = DefaultIndexMaxIndexCount
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports the first invalid field. Zero counts are valid (defaults).
func (c IndexConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("commitlog: IndexConfig.Dir is required")
	}
	const maxCount = 1<<31 - 1
	if c.MaxHashSlots < 0 || c.MaxHashSlots > maxCount {
		return fmt.Errorf("commitlog: IndexConfig.MaxHashSlots %d outside 1..%d", c.MaxHashSlots, maxCount)
	}
	if c.MaxIndexCount < 0 || c.MaxIndexCount > maxCount/indexEntrySize {
		return fmt.Errorf("commitlog: IndexConfig.MaxIndexCount %d outside 1..%d", c.MaxIndexCount, maxCount/indexEntrySize)
	}
	return nil
}

// indexFile is one mapped index file.
type indexFile struct {
	name       string
	path       string
	f          *os.File
	b          []byte
	slots      uint32
	maxEntries uint32
	count      uint32
	beginPhys  int64
	beginTS    int64
	endPhys    int64
	endTS      int64
	dirty      atomic.Bool // written since the last msync
	seq        int         // collision suffix of the name, for ordering
}

func (x *indexFile) entriesOff() int { return indexHeaderSize + int(x.slots)*indexSlotSize }

func (x *indexFile) entry(n uint32) []byte {
	off := x.entriesOff() + int(n-1)*indexEntrySize
	return x.b[off : off+indexEntrySize]
}

func (x *indexFile) slot(h uint32) []byte {
	off := indexHeaderSize + int(h%x.slots)*indexSlotSize
	return x.b[off : off+indexSlotSize]
}

func (x *indexFile) setCount(n uint32) {
	x.count = n
	binary.BigEndian.PutUint32(x.b[ihCount:], n)
}

// syncHeader rewrites the begin/end fields from the first and last counted entries.
func (x *indexFile) syncHeader() {
	be := binary.BigEndian
	if x.count == 0 {
		x.beginPhys, x.beginTS, x.endPhys, x.endTS = -1, 0, -1, 0
	} else {
		first, last := x.entry(1), x.entry(x.count)
		x.beginPhys = int64(be.Uint64(first[iePhys:]))
		x.beginTS = int64(be.Uint64(first[ieTS:]))
		x.endPhys = int64(be.Uint64(last[iePhys:]))
		x.endTS = int64(be.Uint64(last[ieTS:]))
	}
	be.PutUint64(x.b[ihBeginTS:], uint64(x.beginTS))
	be.PutUint64(x.b[ihEndTS:], uint64(x.endTS))
	be.PutUint64(x.b[ihBeginPhys:], uint64(x.beginPhys))
	be.PutUint64(x.b[ihEndPhys:], uint64(x.endPhys))
}

func (x *indexFile) close() error {
	var err error
	if x.b != nil {
		err = unix.Munmap(x.b)
		x.b = nil
	}
	if x.f != nil {
		if cerr := x.f.Close(); err == nil {
			err = cerr
		}
		x.f = nil
	}
	return err
}

// Index is a hash index from "topic#key" to physical offsets, in the spirit of RocketMQ's
// IndexFile: a series of mmap'd files under IndexConfig.Dir, each with a header, a table of
// hash slots and a chained entry array (layout in doc.go). Put is for one writer (dispatch);
// Query may run concurrently with it. Methods are safe for concurrent use.
type Index struct {
	cfg    IndexConfig
	log    *slog.Logger
	mu     sync.RWMutex
	files  []*indexFile // oldest first
	closed bool
}

// OpenIndex opens or creates the index files in cfg.Dir and recovers their state: the entry
// count in each header is the truth; entries past it are ignored, slots pointing past it are
// rebuilt from the counted entries, and files with no entries are removed.
func OpenIndex(cfg IndexConfig) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: index: create dir: %w", err)
	}
	ix := &Index{cfg: cfg, log: cfg.Logger}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("commitlog: index: read dir: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), indexSuffix) {
			continue
		}
		x, err := ix.openFile(e.Name())
		if err != nil {
			ix.closeFiles()
			return nil, err
		}
		if x.count == 0 {
			ix.log.Info("index: removing empty file", "file", x.name)
			x.close()
			if err := os.Remove(x.path); err != nil {
				ix.closeFiles()
				return nil, fmt.Errorf("commitlog: index: remove empty %s: %w", x.name, err)
			}
			continue
		}
		ix.files = append(ix.files, x)
	}
	slices.SortFunc(ix.files, func(a, b *indexFile) int {
		if a.beginPhys != b.beginPhys {
			if a.beginPhys < b.beginPhys {
				return -1
			}
			return 1
		}
		return a.seq - b.seq
	})
	return ix, nil
}

// indexFileName derives a file name from its first entry: the store time in UTC as
// yyyyMMddHHmmssSSS, the physical offset in 20 digits, and a sequence number that only
// differs from 0 when several files start at the same entry position.
func indexFileName(storeTS, phys int64, seq int) string {
	t := time.UnixMilli(storeTS).UTC()
	return fmt.Sprintf("%s%03d_%020d_%d%s", t.Format("20060102150405"), t.Nanosecond()/1e6, phys, seq, indexSuffix)
}

func indexFileSize(slots, maxEntries uint32) int64 {
	return indexHeaderSize + int64(slots)*indexSlotSize + int64(maxEntries)*indexEntrySize
}

func (ix *Index) openFile(name string) (*indexFile, error) {
	path := filepath.Join(ix.cfg.Dir, name)
	seq := 0
	if parts := strings.Split(strings.TrimSuffix(name, indexSuffix), "_"); len(parts) == 3 {
		seq, _ = strconv.Atoi(parts[2])
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("commitlog: index: open %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("commitlog: index: stat %s: %w", name, err)
	}
	bad := func(format string, args ...any) (*indexFile, error) {
		f.Close()
		return nil, fmt.Errorf("commitlog: index: %s: %w: %s", name, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if st.Size() < indexHeaderSize {
		return bad("%d bytes, shorter than the %d-byte header", st.Size(), indexHeaderSize)
	}
	var h [indexHeaderSize]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("commitlog: index: read header %s: %w", name, err)
	}
	be := binary.BigEndian
	if m := be.Uint32(h[ihMagic:]); m != indexMagic {
		return bad("magic 0x%08X, want 0x%08X", m, indexMagic)
	}
	if v := be.Uint32(h[ihVersion:]); v != indexVersion {
		return bad("version %d, want %d", v, indexVersion)
	}
	slots, maxEntries, count := be.Uint32(h[ihSlots:]), be.Uint32(h[ihMaxEntries:]), be.Uint32(h[ihCount:])
	if slots == 0 || maxEntries == 0 || count > maxEntries {
		return bad("slots %d, max entries %d, count %d", slots, maxEntries, count)
	}
	if size := indexFileSize(slots, maxEntries); size != st.Size() || size > math.MaxInt {
		return bad("size %d, header says %d", st.Size(), size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("commitlog: index: mmap %s: %w", name, err)
	}
	x := &indexFile{name: name, path: path, f: f, b: b, slots: slots, maxEntries: maxEntries, count: count, seq: seq}
	x.syncHeader()
	ix.repair(x)
	return x, nil
}

// repair makes the slots agree with the counted entries. A crash may leave a slot pointing
// at an entry past the count (Put writes entry, slot, count in that order; Truncate lowers
// the count first) or a chain link that is not older than its entry; either way the slots
// and links are rebuilt from entries 1..count, which the count vouches for.
func (ix *Index) repair(x *indexFile) {
	be := binary.BigEndian
	ok := true
	for off := indexHeaderSize; off < x.entriesOff(); off += indexSlotSize {
		if be.Uint32(x.b[off:]) > x.count {
			ok = false
			break
		}
	}
	for n := uint32(1); ok && n <= x.count; n++ {
		if be.Uint32(x.entry(n)[iePrev:]) >= n {
			ok = false
		}
	}
	if ok {
		return
	}
	ix.log.Warn("index: rebuilding hash slots after an unclean stop", "file", x.name, "entries", x.count)
	clear(x.b[indexHeaderSize:x.entriesOff()])
	for n := uint32(1); n <= x.count; n++ {
		e := x.entry(n)
		s := x.slot(be.Uint32(e[ieHash:]))
		be.PutUint32(e[iePrev:], be.Uint32(s))
		be.PutUint32(s, n)
	}
	x.dirty.Store(true)
}

// keyHash is FNV-1a (32 bit) of topic + "#" + key, computed without building the string.
func keyHash(topic, key string) uint32 {
	const prime = 16777619
	h := uint32(2166136261)
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint32(topic[i])) * prime
	}
	h = (h ^ '#') * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * prime
	}
	return h
}

func (ix *Index) createFile(storeTS, phys int64) (*indexFile, error) {
	slots, maxEntries := uint32(ix.cfg.MaxHashSlots), uint32(ix.cfg.MaxIndexCount)
	size := indexFileSize(slots, maxEntries)
	var name, path string
	var f *os.File
	seq := 0
	for ; ; seq++ {
		name = indexFileName(storeTS, phys, seq)
		path = filepath.Join(ix.cfg.Dir, name)
		var err error
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("commitlog: index: create %s: %w", name, err)
		}
	}
	fail := func(step string, err error) (*indexFile, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("commitlog: index: %s %s: %w", step, name, err)
	}
	// Sparse: only the pages that hold slots and entries in use take disk space.
	if err := f.Truncate(size); err != nil {
		return fail("size", err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	be := binary.BigEndian
	be.PutUint32(b[ihMagic:], indexMagic)
	be.PutUint32(b[ihVersion:], indexVersion)
	be.PutUint32(b[ihSlots:], slots)
	be.PutUint32(b[ihMaxEntries:], maxEntries)
	x := &indexFile{name: name, path: path, f: f, b: b, slots: slots, maxEntries: maxEntries, seq: seq}
	x.dirty.Store(true)
	x.syncHeader()
	if err := indexSyncDir(ix.cfg.Dir); err != nil {
		x.close()
		os.Remove(path)
		return nil, fmt.Errorf("commitlog: index: sync dir after creating %s: %w", name, err)
	}
	ix.log.Debug("index: new file", "file", name)
	return x, nil
}

func indexSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Put indexes one key of a message: topic + "#" + key at physOffset with its store time.
// Entries must arrive in non-decreasing physOffset order (several keys of one message share
// an offset); a lower offset returns ErrIndexOrder. A new file is started when the last one
// is full. Empty keys are ignored. Put only hashes topic and key and never keeps them, so
// callers may pass strings that alias mapped memory (recovery does).
func (ix *Index) Put(topic, key string, physOffset, storeTimestamp int64) error {
	if key == "" {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return errIndexClosed
	}
	if end := ix.endPhysLocked(); physOffset < end {
		return fmt.Errorf("%w: offset %d below indexed end %d", ErrIndexOrder, physOffset, end)
	}
	var x *indexFile
	if n := len(ix.files); n > 0 && ix.files[n-1].count < ix.files[n-1].maxEntries {
		x = ix.files[n-1]
	} else {
		var err error
		if x, err = ix.createFile(storeTimestamp, physOffset); err != nil {
			return err
		}
		ix.files = append(ix.files, x)
	}
	be := binary.BigEndian
	h := keyHash(topic, key)
	n := x.count + 1
	s := x.slot(h)
	e := x.entry(n)
	// Entry first, then the slot, then the header; the count last makes it visible.
	be.PutUint32(e[ieHash:], h)
	be.PutUint64(e[iePhys:], uint64(physOffset))
	be.PutUint64(e[ieTS:], uint64(storeTimestamp))
	be.PutUint32(e[iePrev:], be.Uint32(s))
	be.PutUint32(s, n)
	if x.count == 0 {
		x.beginPhys, x.beginTS = physOffset, storeTimestamp
		be.PutUint64(x.b[ihBeginTS:], uint64(storeTimestamp))
		be.PutUint64(x.b[ihBeginPhys:], uint64(physOffset))
	}
	x.endPhys, x.endTS = physOffset, storeTimestamp
	be.PutUint64(x.b[ihEndTS:], uint64(storeTimestamp))
	be.PutUint64(x.b[ihEndPhys:], uint64(physOffset))
	x.setCount(n)
	x.dirty.Store(true)
	return nil
}

// Query returns the physical offsets of messages whose key hash matches topic + "#" + key and
// whose store time is in [begin, end] ms, newest first, at most max (max <= 0 means
// DefaultIndexQueryMax). Hash collisions are possible: callers verify the key by reading the
// record.
func (ix *Index) Query(topic, key string, max int, begin, end int64) ([]int64, error) {
	if max <= 0 {
		max = DefaultIndexQueryMax
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, errIndexClosed
	}
	be := binary.BigEndian
	h := keyHash(topic, key)
	var out []int64
	for i := len(ix.files) - 1; i >= 0 && len(out) < max; i-- {
		x := ix.files[i]
		n := be.Uint32(x.slot(h))
		for n != 0 && n <= x.count && len(out) < max {
			e := x.entry(n)
			prev := be.Uint32(e[iePrev:])
			if be.Uint32(e[ieHash:]) == h {
				phys := int64(be.Uint64(e[iePhys:]))
				ts := int64(be.Uint64(e[ieTS:]))
				if ts >= begin && ts <= end && (len(out) == 0 || out[len(out)-1] != phys) {
					out = append(out, phys)
				}
			}
			if prev >= n { // a link must go back; stop rather than loop on damage
				ix.log.Warn("index: broken chain", "file", x.name, "entry", n, "prev", prev)
				break
			}
			n = prev
		}
	}
	return out, nil
}

func (ix *Index) endPhysLocked() int64 {
	for i := len(ix.files) - 1; i >= 0; i-- {
		if ix.files[i].count > 0 {
			return ix.files[i].endPhys
		}
	}
	return -1
}

// EndPhysOffset is the highest physical offset indexed, or -1 when the index is empty.
// Recovery re-dispatches records after it.
func (ix *Index) EndPhysOffset() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.endPhysLocked()
}

// BeginPhysOffset is the lowest physical offset indexed, or -1 when the index is empty.
func (ix *Index) BeginPhysOffset() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.files) == 0 {
		return -1
	}
	return ix.files[0].beginPhys
}

// Truncate removes every entry with physOffset >= off: whole files that begin at or after
// off are deleted; in the file holding off, entries are removed from the last backwards,
// each one lowering the count first and then resetting its slot to the entry's previous
// link, so that the index is exactly what it was before those entries were put.
func (ix *Index) Truncate(off int64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return errIndexClosed
	}
	be := binary.BigEndian
	for len(ix.files) > 0 {
		x := ix.files[len(ix.files)-1]
		if x.count > 0 && x.endPhys < off {
			return nil
		}
		if x.count == 0 || x.beginPhys >= off {
			if err := ix.removeFile(x); err != nil {
				return err
			}
			ix.files = ix.files[:len(ix.files)-1]
			continue
		}
		for x.count > 0 {
			n := x.count
			e := x.entry(n)
			if int64(be.Uint64(e[iePhys:])) < off {
				break
			}
			x.setCount(n - 1)
			s := x.slot(be.Uint32(e[ieHash:]))
			if be.Uint32(s) == n {
				be.PutUint32(s, be.Uint32(e[iePrev:]))
			} else {
				ix.log.Warn("index: slot did not point at the removed entry", "file", x.name, "entry", n)
			}
			clear(e)
		}
		x.syncHeader()
		x.dirty.Store(true)
		return nil
	}
	return nil
}

func (ix *Index) removeFile(x *indexFile) error {
	if err := x.close(); err != nil {
		return fmt.Errorf("commitlog: index: close %s: %w", x.name, err)
	}
	if err := os.Remove(x.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("commitlog: index: remove %s: %w", x.name, err)
	}
	ix.log.Info("index: removed file", "file", x.name)
	return nil
}

// DeleteBefore removes whole files whose last entry is below off (retention: the commitlog
// before off is gone). Entries of a file that also holds offsets >= off are kept.
func (ix *Index) DeleteBefore(off int64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return errIndexClosed
	}
	for len(ix.files) > 0 && ix.files[0].endPhys < off {
		if err := ix.removeFile(ix.files[0]); err != nil {
			return err
		}
		ix.files = ix.files[1:]
	}
	return nil
}

// Flush writes the modified files back to disk (msync) and waits. It holds only the read
// lock: queries go on, Put waits.
func (ix *Index) Flush() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return errIndexClosed
	}
	return ix.flushLocked()
}

func (ix *Index) flushLocked() error {
	for _, x := range ix.files {
		if !x.dirty.Load() {
			continue
		}
		if err := unix.Msync(x.b, unix.MS_SYNC); err != nil {
			return fmt.Errorf("commitlog: index: msync %s: %w", x.name, err)
		}
		x.dirty.Store(false)
	}
	return nil
}

// Close flushes and unmaps every file. It is idempotent.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	err := ix.flushLocked()
	if cerr := ix.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (ix *Index) closeFiles() error {
	var err error
	for _, x := range ix.files {
		if cerr := x.close(); cerr != nil && err == nil {
			err = fmt.Errorf("commitlog: index: close %s: %w", x.name, cerr)
		}
	}
	ix.files = nil
	return err
}
