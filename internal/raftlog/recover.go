package raftlog

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// recover rebuilds the in-memory index from the segment files, validating every record.
// Called once by Open, before the Store is shared.
func (s *Store) recover() error {
	start := time.Now()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("raftlog: list directory %s: %w", s.dir, err)
	}
	type file struct {
		first uint64
		name  string
	}
	var files []file
	for _, e := range entries {
		first, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(s.dir, e.Name()))
		}
		files = append(files, file{first, e.Name()})
	}
	// Zero-padded names sort like their indexes; ReadDir already sorts by name, but do
	// not depend on it.
	slices.SortFunc(files, func(a, b file) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})

	for i, fl := range files {
		path := filepath.Join(s.dir, fl.name)
		if n := len(s.segs); n > 0 {
			if prev := s.segs[n-1]; fl.first != prev.lastIndex()+1 {
				return fmt.Errorf("%w: %s starts at index %d but the previous segment %s ends at %d",
					ErrCorrupt, path, fl.first, prev.path, prev.lastIndex())
			}
		}
		g, err := s.openSegment(path, fl.first, i == len(files)-1)
		if err != nil {
			return err
		}
		if g != nil {
			s.segs = append(s.segs, g)
		}
	}
	if n := len(s.segs); n > 0 {
		s.first = s.segs[0].first
		s.last = s.segs[n-1].lastIndex()
	}
	s.log.Info("raftlog: opened", "dir", s.dir, "segments", len(s.segs), "first_index", s.first,
		"last_index", s.last, "took", time.Since(start))
	return nil
}

// openSegment opens and validates one segment file and returns it ready for use, or nil
// when it was the last file and held no entries (it is then removed). Only the last file
// may have a torn tail, which is cut off; damage anywhere else wraps ErrCorrupt.
func (s *Store) openSegment(path string, first uint64, isLast bool) (g *segment, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open segment %s: %w", path, err)
	}
	defer func() {
		if g == nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("raftlog: stat segment %s: %w", path, err)
	}
	size := st.Size()

	// Header.
	hlen := min(size, fileHeaderSize)
	h := make([]byte, hlen)
	if _, err := f.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("raftlog: read header of segment %s: %w", path, err)
	}
	if herr := checkFileHeader(h, first); herr != nil {
		// A create interrupted before its header was durable leaves a last file of at most
		// a header's size whose bytes are each either zero or the expected one. Anything
		// else is not ours or is damaged.
		if isLast && size <= fileHeaderSize && tornHeader(h, first) {
			return nil, s.removeEmptyLast(path, "its creation was interrupted")
		}
		return nil, fmt.Errorf("%w: %s offset 0: %v", ErrCorrupt, path, herr)
	}

	// Records.
	r := bufio.NewReaderSize(io.NewSectionReader(f, fileHeaderSize, size-fileHeaderSize), 1<<20)
	g = &segment{first: first, path: path, f: f}
	off := int64(fileHeaderSize)
	var hdr [recordHeaderSize]byte
	var payload []byte
	bad := "" // why the record at off is unusable, if it is
	for off < size {
		if size-off < recordHeaderSize {
			bad = fmt.Sprintf("%d trailing bytes, too short for a record header", size-off)
			break
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			g = nil
			return nil, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
		}
		n, sum := int64(le.Uint32(hdr[0:4])), le.Uint32(hdr[4:8])
		if n < payloadFixedSize {
			bad = fmt.Sprintf("record length %d is below the minimum %d", n, payloadFixedSize)
			break
		}
		if n > size-off-recordHeaderSize {
			bad = fmt.Sprintf("record length %d runs past the end of the file (%d bytes left)", n, size-off-recordHeaderSize)
			break
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			g = nil
			return nil, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
		}
		if got := crc32.Checksum(payload, castagnoli); got != sum {
			bad = fmt.Sprintf("checksum %#08x, computed %#08x", sum, got)
			break
		}
		// From here the record is intact as written, so a problem is not a torn write:
		// it is an error even in the last segment.
		idx, perr := checkPayload(payload)
		if perr != nil {
			g = nil
			return nil, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, path, off, perr)
		}
		if want := first + uint64(len(g.offsets)); idx != want {
			g = nil
			return nil, fmt.Errorf("%w: %s offset %d: entry has index %d, expected %d", ErrCorrupt, path, off, idx, want)
		}
		g.offsets = append(g.offsets, off)
		off += recordHeaderSize + n
	}
	g.size = off

	if bad != "" {
		if !isLast {
			g = nil
			return nil, fmt.Errorf("%w: %s offset %d (sealed segment): %s", ErrCorrupt, path, off, bad)
		}
		// A crash mid-write: keep the whole records, cut the rest.
		if err := f.Truncate(off); err != nil {
			g = nil
			return nil, fmt.Errorf("raftlog: truncate torn tail of segment %s at offset %d: %w", path, off, err)
		}
		if err := fdatasync(f); err != nil {
			g = nil
			return nil, fmt.Errorf("raftlog: sync segment %s after truncating its torn tail: %w", path, err)
		}
		s.log.Warn("raftlog: cut torn tail of the last segment", "file", path, "offset", off,
			"cut_bytes", size-off, "reason", bad, "entries_kept", len(g.offsets))
	}
	if len(g.offsets) == 0 {
		if !isLast {
			g = nil
			return nil, fmt.Errorf("%w: %s: sealed segment holds no entries", ErrCorrupt, path)
		}
		g = nil
		return nil, s.removeEmptyLast(path, "it holds no entries")
	}
	return g, nil
}

// tornHeader reports whether h (at most a header long) could be a partly written header
// for first: every byte is zero or the expected one.
func tornHeader(h []byte, first uint64) bool {
	want := fileHeader(first)
	for i, b := range h {
		if b != 0 && b != want[i] {
			return false
		}
	}
	return true
}

// removeEmptyLast removes a last segment file that holds no entries. Only new segments
// are created empty and they always come last, so nothing is lost.
func (s *Store) removeEmptyLast(path, why string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftlog: remove empty segment %s: %w", path, err)
	}
	if err := s.dirF.Sync(); err != nil {
		return fmt.Errorf("raftlog: sync directory %s after removing %s: %w", s.dir, path, err)
	}
	s.log.Warn("raftlog: removed empty last segment", "file", path, "why", why)
	return nil
}
