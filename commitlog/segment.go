package commitlog

// Format: commitlog segments and consume-queue files are plain preallocated
// files named by the zero-padded 20-digit decimal byte offset of their first
// byte (commitlog: physical offset; consume queue: queue offset * 20). Each is
// mapped whole (MAP_SHARED) and written only through the mapping; the unused
// tail is zero.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
)

// mappedFile is one preallocated, memory-mapped file. The Log holds one
// reference for as long as the file belongs to it; readers take more with
// acquire and give them back with release. The mapping is undone when the
// last reference goes, so retention never unmaps memory under a reader.
type mappedFile struct {
	path  string
	start int64 // offset of data[0] in the file's address space
	size  int64
	f     *os.File
	data  []byte
	refs  atomic.Int64
	// removeOnFree deletes the file when the last reference goes.
	removeOnFree atomic.Bool
	// dropped is how far (from data[0], page-aligned) the page cache of the
	// file has been dropped by dropCache; a rewrite below it moves it back.
	dropped atomic.Int64
}

// fileName is the 20-digit zero-padded decimal RocketMQ uses.
func fileName(start int64) string {
	return fmt.Sprintf("%020d", start)
}

// openMappedFile opens (create=false) or creates and preallocates
// (create=true) the file at path and maps size bytes of it.
func openMappedFile(path string, start, size int64, create bool) (*mappedFile, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size() < size {
		if err := preallocate(f, size); err != nil {
			f.Close()
			return nil, err
		}
	}
	data, err := mmapFile(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	m := &mappedFile{path: path, start: start, size: size, f: f, data: data}
	m.refs.Store(1)
	return m, nil
}

func (m *mappedFile) end() int64 { return m.start + m.size }

// acquire takes a reference; it fails once the file has been freed.
func (m *mappedFile) acquire() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and frees the mapping with the last one.
func (m *mappedFile) release() {
	if m.refs.Add(-1) == 0 {
		_ = munmap(m.data)
		m.data = nil
		_ = m.f.Close()
		if m.removeOnFree.Load() {
			_ = os.Remove(m.path)
		}
	}
}

// destroy removes the file from disk now (open mappings stay valid) and drops
// the owner's reference.
func (m *mappedFile) destroy() error {
	err := os.Remove(m.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	m.release()
	return err
}

// sync writes back the byte range [from, to) (absolute offsets) and waits.
func (m *mappedFile) sync(from, to int64) error {
	from = max(from, m.start) - m.start
	to = min(to, m.end()) - m.start
	if err := msyncRange(m.data, from, to); err != nil {
		return fmt.Errorf("msync %s: %w", m.path, err)
	}
	return nil
}

// dropCache drops the cached pages of the file below the absolute offset
// end, from where the last call stopped. The range must be durable: the
// kernel keeps dirty pages, so an unflushed range would only stay cached.
// Callers serialize dropCache calls (the flush holds ckptMu); a concurrent
// rewrite that moved the mark back wins, so its pages are dropped next time.
func (m *mappedFile) dropCache(end int64) {
	from := m.dropped.Load()
	to := (min(end, m.end()) - m.start) &^ (pageSize - 1)
	if to <= from {
		return
	}
	dropPages(m.f, m.data, from, to)
	m.dropped.CompareAndSwap(from, to)
}

// undrop moves the drop mark back to the absolute offset off, so pages
// written again from there are dropped by a later dropCache.
func (m *mappedFile) undrop(off int64) {
	rel := (max(off, m.start) - m.start) &^ (pageSize - 1)
	for {
		d := m.dropped.Load()
		if d <= rel || m.dropped.CompareAndSwap(d, rel) {
			return
		}
	}
}

// zero makes the absolute range [from, to) zero (not synced).
func (m *mappedFile) zero(from, to int64) error {
	m.undrop(from)
	from = max(from, m.start) - m.start
	to = min(to, m.end()) - m.start
	if err := zeroRange(m.f, m.data, from, to); err != nil {
		return fmt.Errorf("zero %s: %w", m.path, err)
	}
	return nil
}

// listFiles returns the start offsets of the 20-digit files in dir, sorted.
// Other names are ignored. A missing dir is empty.
func listFiles(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		n := e.Name()
		if len(n) != 20 || e.IsDir() {
			continue
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 0 {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// findFile returns the index of the file holding absolute offset off, or -1.
func findFile(files []*mappedFile, off int64) int {
	i := sort.Search(len(files), func(i int) bool { return files[i].end() > off })
	if i < len(files) && files[i].start <= off {
		return i
	}
	return -1
}

func joinName(dir string, start int64) string { return filepath.Join(dir, fileName(start)) }
