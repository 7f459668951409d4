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
	"strings"
	"time"
)

// recover rebuilds the in-memory index from the segment files, validating every record,
// and repairs what a crash may leave: a torn end of the log is cut, later segments
// going with it, a pre-created next segment is removed or, if a roll had started
// writing into it, taken into the log. Called once by Open, before the Store is shared.
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
	haveSpare := false
	for _, e := range entries {
		first, ok := parseSegmentName(e.Name())
		if !ok && e.Name() != spareName {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, filepath.Join(s.dir, e.Name()))
		}
		if !ok {
			haveSpare = true
			continue
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
	if haveSpare {
		first, ok, err := s.inspectSpare()
		if err != nil {
			return err
		}
		if ok {
			// A roll wrote into the spare but its rename did not reach the disk: the
			// spare is the segment that starts at its first entry, after all the others.
			spare := filepath.Join(s.dir, spareName)
			if n := len(files); n > 0 && first <= files[n-1].first {
				return fmt.Errorf("%w: %s holds entries from index %d, which is not after the last segment %s",
					ErrCorrupt, spare, first, filepath.Join(s.dir, files[n-1].name))
			}
			files = append(files, file{first, spareName})
		}
	}

	paths := make([]string, len(files))
	for i, fl := range files {
		paths[i] = filepath.Join(s.dir, fl.name)
	}
	for i, fl := range files {
		path := paths[i]
		isLast := i == len(files)-1
		sc, err := s.openSegment(path, fl.first, isLast)
		if err != nil {
			return err
		}
		g := sc.g
		if g == nil {
			continue // the last file, an interrupted creation: removed
		}
		if n := len(s.segs); n > 0 {
			if prev := s.segs[n-1]; g.first != prev.lastIndex()+1 {
				g.f.Close()
				// Only a gap can be a lost tail; an overlap never is.
				if prev.wholeDurable() || g.first <= prev.lastIndex() {
					return fmt.Errorf("%w: %s starts at index %d but the previous segment %s ends at %d",
						ErrCorrupt, path, g.first, prev.path, prev.lastIndex())
				}
				// prev was never sealed: a machine crash lost its last entries, whole
				// records, so the rest of the log does not follow it any more.
				why := fmt.Sprintf("the segment was not sealed and ends at index %d, but %s starts at %d",
					prev.lastIndex(), path, g.first)
				if err := s.cutLog(prev, prev.size, why, paths[i:]); err != nil {
					return err
				}
				break
			}
		}
		if sc.bad == "" && len(g.offsets) > 0 {
			s.segs = append(s.segs, g)
			continue
		}
		if isLast {
			if err := s.cutLastSegment(sc); err != nil {
				g.f.Close()
				return err
			}
			if len(g.offsets) > 0 {
				s.segs = append(s.segs, g)
			}
			continue
		}
		// A segment that rolled but was never sealed may have lost its tail in a machine
		// crash (NoSync): the log ends there.
		why := sc.bad
		if why == "" {
			why = "the segment was not sealed and holds no entries"
		}
		if err := s.cutLog(g, g.size, why, paths[i+1:]); err != nil {
			g.f.Close()
			return err
		}
		if len(g.offsets) > 0 {
			s.segs = append(s.segs, g)
		} else {
			g.f.Close()
		}
		break
	}

	if n := len(s.segs); n > 0 && filepath.Base(s.segs[n-1].path) == spareName {
		g := s.segs[n-1]
		path := filepath.Join(s.dir, segmentName(g.first))
		if err := renameNoReplace(g.path, path); err != nil {
			return fmt.Errorf("raftlog: rename the next segment %s, which holds entries, to %s: %w", g.path, path, err)
		}
		if err := s.syncDir(opRecover); err != nil {
			return fmt.Errorf("raftlog: sync directory %s after renaming %s: %w", s.dir, path, err)
		}
		s.log.Warn("raftlog: the next segment holds entries but its rename was lost; renamed it",
			"file", path, "first_index", g.first)
		g.path = path
	}
	if n := len(s.segs); n > 0 {
		s.first = s.segs[0].first
		s.last = s.segs[n-1].lastIndex()
	}
	s.log.Info("raftlog: opened", "dir", s.dir, "segments", len(s.segs), "first_index", s.first,
		"last_index", s.last, "took", time.Since(start))
	return nil
}

// scanned is what openSegment learns from a segment file.
type scanned struct {
	g        *segment // the whole records; nil if the file was removed
	bad      string   // why the bytes at g.size are not a record; "" if the file ends there
	fileSize int64
}

// openSegment opens one segment file and reads every record. Damage where the file is
// known to be durable — below the end its valid seal block records, or anywhere in a
// version-1 segment that is not the last — and records that are intact but wrong wrap
// ErrCorrupt; so does a bad header, except in the last file when it is an interrupted
// creation (the file is then removed and the segment is nil). Damage elsewhere, which a
// crash can leave, is reported in bad, for the caller to cut.
func (s *Store) openSegment(path string, first uint64, isLast bool) (sc scanned, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return sc, fmt.Errorf("raftlog: open segment %s: %w", path, err)
	}
	defer func() {
		if sc.g == nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return sc, fmt.Errorf("raftlog: stat segment %s: %w", path, err)
	}
	size := st.Size()

	// Header and seal block.
	h := make([]byte, min(size, dataStartV2))
	if _, err := f.ReadAt(h, 0); err != nil {
		return sc, fmt.Errorf("raftlog: read header of segment %s: %w", path, err)
	}
	v, herr := checkFileHeader(h[:min(len(h), fileHeaderSize)], first)
	if herr == nil && v == formatVersion && size < dataStartV2 {
		herr = fmt.Errorf("file is %d bytes, shorter than the %d-byte header and seal block", size, dataStartV2)
	}
	if herr != nil {
		// A creation interrupted before its header was durable leaves a last file of at
		// most a header's size whose bytes are each either zero or the expected one.
		// Anything else is not ours or is damaged.
		if isLast && size <= dataStartV2 && tornHeader(h, first) {
			return sc, s.removeEmptyLast(path, "its creation was interrupted")
		}
		return sc, fmt.Errorf("%w: %s offset 0: %v", ErrCorrupt, path, herr)
	}
	g := &segment{first: first, path: path, f: f, version: v}
	var sl seal
	durable := int64(0) // damage below this offset is corruption
	switch {
	case v == formatV1 && !isLast:
		durable = size
	case v == formatVersion:
		var state int
		sl, state = parseSealBlock(h[fileHeaderSize:dataStartV2])
		switch state {
		case sealValid:
			if sl.first != first {
				return sc, fmt.Errorf("%w: %s offset %d: seal says first index %d, file name says %d",
					ErrCorrupt, path, fileHeaderSize, sl.first, first)
			}
			if sl.last < sl.first || sl.end <= dataStartV2 {
				return sc, fmt.Errorf("%w: %s offset %d: seal of entries %d..%d ending at offset %d is impossible",
					ErrCorrupt, path, fileHeaderSize, sl.first, sl.last, sl.end)
			}
			g.sealEnd = sl.end
			durable = sl.end
		case sealInvalid:
			// Most likely a crash while the seal was written: the data it was about to
			// vouch for was durable, but nothing says so now.
			s.log.Warn("raftlog: unreadable seal block, treating the segment as not sealed",
				"file", path, "offset", fileHeaderSize)
		}
	}

	// Records.
	start := dataStart(v)
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 1<<20)
	off := start
	var hdr [recordHeaderSize]byte
	var payload []byte
	bad := "" // why the record at off is unusable, if it is
	for off < size {
		if size-off < recordHeaderSize {
			if zero, err := zeroTail(r, size-off); err != nil {
				return sc, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
			} else if !zero {
				bad = fmt.Sprintf("%d trailing bytes, too short for a record header", size-off)
			}
			break
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return sc, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
		}
		n, sum := int64(le.Uint32(hdr[0:4])), le.Uint32(hdr[4:8])
		if n == 0 && sum == 0 {
			// The preallocated part of the file (zeros up to its end) is not a record.
			zero, err := zeroTail(r, size-off-recordHeaderSize)
			if err != nil {
				return sc, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
			}
			if !zero {
				bad = "a zero record header followed by data"
			}
			break
		}
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
			return sc, fmt.Errorf("raftlog: read segment %s at offset %d: %w", path, off, err)
		}
		if got := crc32.Checksum(payload, castagnoli); got != sum {
			bad = fmt.Sprintf("checksum %#08x, computed %#08x", sum, got)
			break
		}
		// From here the record is intact as written, so a problem is not a torn write:
		// it is an error wherever it is.
		idx, perr := checkPayload(payload)
		if perr != nil {
			return sc, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, path, off, perr)
		}
		if want := first + uint64(len(g.offsets)); idx != want {
			return sc, fmt.Errorf("%w: %s offset %d: entry has index %d, expected %d", ErrCorrupt, path, off, idx, want)
		}
		g.offsets = append(g.offsets, off)
		off += recordHeaderSize + n
	}
	g.size = off
	if bad != "" && off < durable {
		return sc, fmt.Errorf("%w: %s offset %d (sealed segment): %s", ErrCorrupt, path, off, bad)
	}
	if off < durable {
		return sc, fmt.Errorf("%w: %s (sealed segment): the file ends at offset %d, before the sealed end %d",
			ErrCorrupt, path, off, durable)
	}
	if g.sealEnd > 0 {
		// The seal must end at the end of its last entry.
		k := sl.last - first + 1
		var end int64 = -1
		switch {
		case k < uint64(len(g.offsets)):
			end = g.offsets[k]
		case k == uint64(len(g.offsets)):
			end = g.size
		}
		if end != sl.end {
			return sc, fmt.Errorf("%w: %s offset %d (sealed segment): seal says entries %d..%d end at offset %d, the records disagree",
				ErrCorrupt, path, fileHeaderSize, sl.first, sl.last, sl.end)
		}
	}
	g.synced = durable
	return scanned{g: g, bad: bad, fileSize: size}, nil
}

// zeroTail reads the next n bytes of r and reports whether they are all zero.
func zeroTail(r io.Reader, n int64) (bool, error) {
	buf := make([]byte, min(n, 64<<10))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			return false, err
		}
		for _, b := range buf[:k] {
			if b != 0 {
				return false, nil
			}
		}
		n -= k
	}
	return true, nil
}

// cutLastSegment repairs the last segment after a crash: a torn tail is cut back to the
// last whole record and the file synced, a segment left without entries is removed.
func (s *Store) cutLastSegment(sc scanned) error {
	g := sc.g
	if sc.bad != "" {
		if err := g.f.Truncate(g.size); err != nil {
			return fmt.Errorf("raftlog: truncate torn tail of segment %s at offset %d: %w", g.path, g.size, err)
		}
		if err := s.datasync(g.f, opRecover); err != nil {
			return fmt.Errorf("raftlog: sync segment %s after truncating its torn tail: %w", g.path, err)
		}
		s.log.Warn("raftlog: cut torn tail of the last segment", "file", g.path, "offset", g.size,
			"cut_bytes", sc.fileSize-g.size, "reason", sc.bad, "entries_kept", len(g.offsets))
	}
	if len(g.offsets) == 0 {
		g.f.Close()
		return s.removeEmptyLast(g.path, "it holds no entries")
	}
	return nil
}

// cutLog ends the log at offset cut of g, a segment that was never sealed, after a
// machine crash took what followed (with NoSync its data may not have reached the disk
// although later segments' did): the later files are removed, newest first, then g is
// cut there (or removed, when nothing is left of it). The result is a prefix of what was
// stored. A later file that is sealed proves g was durable when it was sealed, so the
// damage is not a crash's: that is an error wrapping ErrCorrupt, and nothing is removed.
func (s *Store) cutLog(g *segment, cut int64, why string, later []string) error {
	for _, p := range later {
		if err := checkUnsealed(p); err != nil {
			return fmt.Errorf("%w: %s offset %d: %s, but the later %v", ErrCorrupt, g.path, cut, why, err)
		}
	}
	for _, p := range slices.Backward(later) {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("raftlog: remove segment %s after the end of the log: %w", p, err)
		}
	}
	if len(later) > 0 {
		if err := s.syncDir(opRecover); err != nil {
			return fmt.Errorf("raftlog: sync directory %s after removing segments: %w", s.dir, err)
		}
	}
	if err := g.f.Truncate(cut); err != nil {
		return fmt.Errorf("raftlog: truncate segment %s at offset %d: %w", g.path, cut, err)
	}
	if err := s.datasync(g.f, opRecover); err != nil {
		return fmt.Errorf("raftlog: sync segment %s after truncating it: %w", g.path, err)
	}
	names := make([]string, len(later))
	for i, p := range later {
		names[i] = filepath.Base(p)
	}
	s.log.Warn("raftlog: cut the log in a segment that was not sealed; removed the later segments",
		"file", g.path, "offset", cut, "reason", why, "entries_kept", len(g.offsets),
		"removed", strings.Join(names, ","))
	if len(g.offsets) == 0 {
		if err := os.Remove(g.path); err != nil {
			return fmt.Errorf("raftlog: remove empty segment %s: %w", g.path, err)
		}
		if err := s.syncDir(opRecover); err != nil {
			return fmt.Errorf("raftlog: sync directory %s after removing %s: %w", s.dir, g.path, err)
		}
	}
	return nil
}

// checkUnsealed returns nil if path is a version-2 segment (or an interrupted creation of
// one) whose seal block is all zero: a segment a crash may have left after a torn one.
// Otherwise the error says what it is.
func checkUnsealed(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("segment %s cannot be read: %w", path, err)
	}
	defer f.Close()
	h := make([]byte, dataStartV2)
	n, err := io.ReadFull(f, h)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("segment %s cannot be read: %w", path, err)
	}
	h = h[:n]
	if n < dataStartV2 {
		if tornHeader(h, 0) {
			return nil
		}
		return fmt.Errorf("file %s is not a segment (%d bytes)", path, n)
	}
	if v, err := checkFileHeader(h[:fileHeaderSize], 0); err != nil || v != formatVersion {
		return fmt.Errorf("file %s is not a version-%d segment", path, formatVersion)
	}
	if _, state := parseSealBlock(h[fileHeaderSize:]); state != sealNone {
		return fmt.Errorf("segment %s is sealed", path)
	}
	return nil
}

// inspectSpare looks at the pre-created next segment left behind by a crash. If it holds
// a whole first record, a roll had started the segment beginning there, and its index is
// returned; otherwise the file holds nothing and is removed. A file that is not a fresh
// version-2 segment wraps ErrCorrupt.
func (s *Store) inspectSpare() (uint64, bool, error) {
	path := filepath.Join(s.dir, spareName)
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("raftlog: open the next segment %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("raftlog: stat the next segment %s: %w", path, err)
	}
	size := st.Size()
	h := make([]byte, min(size, dataStartV2+recordHeaderSize))
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, false, fmt.Errorf("raftlog: read the next segment %s: %w", path, err)
	}
	if size < dataStartV2 {
		if tornHeader(h, 0) {
			return 0, false, s.removeSpare(path, "its creation was interrupted")
		}
		return 0, false, fmt.Errorf("%w: %s offset 0: file is %d bytes, not a segment", ErrCorrupt, path, size)
	}
	if v, err := checkFileHeader(h[:fileHeaderSize], 0); err != nil || v != formatVersion {
		if err == nil {
			err = fmt.Errorf("format version %d", v)
		}
		return 0, false, fmt.Errorf("%w: %s offset 0: not a fresh version-%d segment: %v", ErrCorrupt, path, formatVersion, err)
	}
	if _, state := parseSealBlock(h[fileHeaderSize:dataStartV2]); state != sealNone {
		return 0, false, fmt.Errorf("%w: %s offset %d: the next segment has a seal block", ErrCorrupt, path, fileHeaderSize)
	}
	// The first record, if whole.
	if size < dataStartV2+recordHeaderSize {
		return 0, false, s.removeSpare(path, "it holds no entries")
	}
	n := int64(le.Uint32(h[dataStartV2 : dataStartV2+4]))
	if n < payloadFixedSize || n > size-dataStartV2-recordHeaderSize {
		return 0, false, s.removeSpare(path, "it holds no entries")
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, dataStartV2+recordHeaderSize); err != nil {
		return 0, false, fmt.Errorf("raftlog: read the next segment %s at offset %d: %w", path, dataStartV2, err)
	}
	if crc32.Checksum(payload, castagnoli) != le.Uint32(h[dataStartV2+4:dataStartV2+8]) {
		return 0, false, s.removeSpare(path, "it holds no entries")
	}
	idx, err := checkPayload(payload)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %s offset %d: %v", ErrCorrupt, path, dataStartV2, err)
	}
	if idx == 0 {
		return 0, false, fmt.Errorf("%w: %s offset %d: entry has index 0", ErrCorrupt, path, dataStartV2)
	}
	return idx, true, nil
}

// removeSpare removes a pre-created next segment that holds no entries.
func (s *Store) removeSpare(path, why string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftlog: remove the next segment %s: %w", path, err)
	}
	if err := s.syncDir(opRecover); err != nil {
		return fmt.Errorf("raftlog: sync directory %s after removing %s: %w", s.dir, path, err)
	}
	s.log.Info("raftlog: removed the pre-created next segment left by a crash", "file", path, "why", why)
	return nil
}

// tornHeader reports whether h (at most a header and seal block long) could be a partly
// written header: every byte is zero or the expected one, for a version-2 segment or a
// version-1 segment starting at first.
func tornHeader(h []byte, first uint64) bool {
	if len(h) > dataStartV2 {
		return false
	}
	v2 := fileHeader()
	if torn(h, v2[:]) {
		return true
	}
	v1 := fileHeaderV1(first)
	return len(h) <= fileHeaderSize && torn(h, v1[:])
}

func torn(h, want []byte) bool {
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
	if err := s.syncDir(opRecover); err != nil {
		return fmt.Errorf("raftlog: sync directory %s after removing %s: %w", s.dir, path, err)
	}
	s.log.Warn("raftlog: removed empty last segment", "file", path, "why", why)
	return nil
}
