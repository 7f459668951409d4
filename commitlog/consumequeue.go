package commitlog

// Format: consume queue files live in ConsumeQueueDir/<topic>/<queueId>/ and
// are named by the 20-digit byte offset of their first entry (queue offset *
// 20). Each file is MappedFileSizeConsumeQueue bytes (a multiple of 20),
// preallocated and zero beyond the last entry. Entry q (the queue offset) is
// at byte q*20, big-endian:
//
//	commitlog offset int64 | size int32 | tag hash int64
//
// An all-zero entry (size 0) is a hole: queue offsets below the first entry
// of a queue that was installed from a snapshot.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

type cqEntry struct {
	Phys int64
	Size int32
	Tag  int64
}

type consumeQueue struct {
	topic    string
	queueID  int32
	dir      string
	fileSize int64
	files    []*mappedFile
	min, max int64 // logical offsets: first available, next to write
	flushed  int64 // byte position known durable
}

func cqDir(root, topic string, qid int32) string {
	return filepath.Join(root, topic, strconv.Itoa(int(qid)))
}

func newConsumeQueue(root, topic string, qid int32, fileSize int64) *consumeQueue {
	return &consumeQueue{topic: topic, queueID: qid, dir: cqDir(root, topic, qid), fileSize: fileSize}
}

// load maps the queue's files and finds min and max from their contents.
func (cq *consumeQueue) load() error {
	starts, err := listFiles(cq.dir)
	if err != nil {
		return fmt.Errorf("commitlog: list consume queue %s: %w", cq.dir, err)
	}
	for _, s := range starts {
		path := joinName(cq.dir, s)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("commitlog: consume queue %s: %w", path, err)
		}
		size := st.Size()
		if size != cq.fileSize || s%CQEntrySize != 0 {
			return fmt.Errorf("commitlog: consume queue file %s: size %d, want %d: %w", path, size, cq.fileSize, errDamagedQueue)
		}
		if n := len(cq.files); n > 0 && cq.files[n-1].end() != s {
			return fmt.Errorf("commitlog: consume queue %s: gap before %s: %w", cq.dir, fileName(s), errDamagedQueue)
		}
		mf, err := openMappedFile(path, s, size, false)
		if err != nil {
			return fmt.Errorf("commitlog: consume queue: %w", err)
		}
		cq.files = append(cq.files, mf)
	}
	cq.max, cq.min = 0, 0
	if len(cq.files) == 0 {
		return nil
	}
	// max: one past the last entry with a size, searching back from the end.
	found := false
	for i := len(cq.files) - 1; i >= 0 && !found; i-- {
		f := cq.files[i]
		for p := f.size - CQEntrySize; p >= 0; p -= CQEntrySize {
			if binary.BigEndian.Uint32(f.data[p+8:]) != 0 {
				cq.max = (f.start+p)/CQEntrySize + 1
				found = true
				break
			}
		}
	}
	if !found {
		cq.min = cq.files[0].start / CQEntrySize
		cq.max = cq.min
		cq.flushed = cq.max * CQEntrySize
		return nil
	}
	// min: the first entry with a size.
	f := cq.files[0]
	cq.min = cq.max
	for p := int64(0); p < f.size; p += CQEntrySize {
		if binary.BigEndian.Uint32(f.data[p+8:]) != 0 {
			cq.min = (f.start + p) / CQEntrySize
			break
		}
	}
	cq.flushed = cq.max * CQEntrySize
	return nil
}

var errDamagedQueue = errors.New("commitlog: damaged consume queue")

func (cq *consumeQueue) entry(q int64) (cqEntry, bool) {
	pos := q * CQEntrySize
	i := findFile(cq.files, pos)
	if i < 0 {
		return cqEntry{}, false
	}
	f := cq.files[i]
	b := f.data[pos-f.start : pos-f.start+CQEntrySize]
	be := binary.BigEndian
	return cqEntry{Phys: int64(be.Uint64(b)), Size: int32(be.Uint32(b[8:])), Tag: int64(be.Uint64(b[12:]))}, true
}

// put writes entry q, creating files as needed. q must be max (append), below
// max (rewrite during recovery) or anything when the queue is empty.
func (cq *consumeQueue) put(q int64, e cqEntry) error {
	if q < 0 {
		return fmt.Errorf("commitlog: consume queue %s: negative offset %d", cq.dir, q)
	}
	empty := cq.max == cq.min
	if q > cq.max && !empty {
		return fmt.Errorf("commitlog: consume queue %s: offset %d leaves a gap after max %d", cq.dir, q, cq.max)
	}
	pos := q * CQEntrySize
	i := findFile(cq.files, pos)
	if i < 0 {
		if empty {
			// Drop files that hold no entry; start afresh at q's file.
			for _, f := range cq.files {
				_ = f.destroy()
			}
			cq.files = nil
		}
		start := pos - pos%cq.fileSize
		if n := len(cq.files); n > 0 && cq.files[n-1].end() != start {
			return fmt.Errorf("commitlog: consume queue %s: offset %d is not in the next file", cq.dir, q)
		}
		if err := os.MkdirAll(cq.dir, 0o755); err != nil {
			return fmt.Errorf("commitlog: create consume queue dir: %w", err)
		}
		mf, err := openMappedFile(joinName(cq.dir, start), start, cq.fileSize, true)
		if err != nil {
			return fmt.Errorf("commitlog: create consume queue file: %w", err)
		}
		cq.files = append(cq.files, mf)
		i = len(cq.files) - 1
	}
	f := cq.files[i]
	b := f.data[pos-f.start : pos-f.start+CQEntrySize]
	be := binary.BigEndian
	be.PutUint64(b, uint64(e.Phys))
	be.PutUint32(b[8:], uint32(e.Size))
	be.PutUint64(b[12:], uint64(e.Tag))
	if empty {
		cq.min = q
	}
	if q >= cq.max {
		cq.max = q + 1
	}
	if pos < cq.flushed {
		cq.flushed = pos
	}
	return nil
}

// truncateFrom removes every entry pointing at or past phys, and the files
// left without entries (except the first).
func (cq *consumeQueue) truncateFrom(phys int64) error {
	changed := false
	for cq.max > cq.min {
		e, ok := cq.entry(cq.max - 1)
		if !ok || e.Phys < phys {
			break
		}
		pos := (cq.max - 1) * CQEntrySize
		f := cq.files[findFile(cq.files, pos)]
		clear(f.data[pos-f.start : pos-f.start+CQEntrySize])
		cq.max--
		changed = true
	}
	if !changed {
		return nil
	}
	end := cq.max * CQEntrySize
	for len(cq.files) > 1 && cq.files[len(cq.files)-1].start >= end {
		if err := cq.files[len(cq.files)-1].destroy(); err != nil {
			return fmt.Errorf("commitlog: delete consume queue file: %w", err)
		}
		cq.files = cq.files[:len(cq.files)-1]
	}
	cq.flushed = min(cq.flushed, end)
	return nil
}

// deleteBefore drops whole files whose entries all point below minPhys (never
// the last file) and moves min to the first entry at or after minPhys.
// It returns the number of files deleted.
func (cq *consumeQueue) deleteBefore(minPhys int64) (int, error) {
	n := 0
	for len(cq.files) > 1 {
		f := cq.files[0]
		lastQ := f.end()/CQEntrySize - 1
		e, _ := cq.entry(lastQ)
		if lastQ >= cq.max || e.Phys+int64(e.Size) > minPhys || e.Size == 0 {
			break
		}
		if err := f.destroy(); err != nil {
			return n, fmt.Errorf("commitlog: delete consume queue file: %w", err)
		}
		cq.files = cq.files[1:]
		n++
	}
	lo := max(cq.min, cq.files0Start())
	hi := cq.max
	q := lo + int64(sort.Search(int(hi-lo), func(i int) bool {
		e, _ := cq.entry(lo + int64(i))
		return e.Size != 0 && e.Phys >= minPhys
	}))
	cq.min = q
	return n, nil
}

func (cq *consumeQueue) files0Start() int64 {
	if len(cq.files) == 0 {
		return cq.max
	}
	return cq.files[0].start / CQEntrySize
}

// sync writes back the entries not yet durable.
func (cq *consumeQueue) sync() error {
	end := cq.max * CQEntrySize
	for _, f := range cq.files {
		if f.end() <= cq.flushed || f.start >= end {
			continue
		}
		if err := f.sync(cq.flushed, end); err != nil {
			return err
		}
	}
	cq.flushed = end
	return nil
}

func (cq *consumeQueue) dirtyPages() int64 {
	return (cq.max*CQEntrySize)/pageSize - cq.flushed/pageSize
}

func (cq *consumeQueue) close() {
	for _, f := range cq.files {
		f.release()
	}
	cq.files = nil
}

func (cq *consumeQueue) destroy() error {
	var first error
	for _, f := range cq.files {
		if err := f.destroy(); err != nil && first == nil {
			first = err
		}
	}
	cq.files = nil
	if err := os.RemoveAll(cq.dir); err != nil && first == nil {
		first = err
	}
	return first
}
