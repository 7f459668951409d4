package raftlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// The on-disk format is described byte by byte in doc.go; keep the two in step.

const (
	segmentExt     = ".wal"
	segmentNameLen = 20 + len(segmentExt)

	// spareName is the pre-created next segment: it becomes <first index>.wal when the
	// active segment rolls. It does not parse as a segment name.
	spareName = "next" + segmentExt

	fileHeaderSize = 32 // the header proper, in both versions
	sealBlockSize  = 32 // version 2: the seal block after the header
	dataStartV1    = fileHeaderSize
	dataStartV2    = fileHeaderSize + sealBlockSize
	formatVersion  = 2 // the version this build writes
	formatV1       = 1 // read, never written

	recordHeaderSize = 8  // payload length uint32 + CRC32-C of the payload uint32
	payloadFixedSize = 38 // index, term, type, flags, appended-at (sec, nsec), data and extensions lengths

	flagData       = 1 << 0 // Data is non-nil (it may still be empty)
	flagExtensions = 1 << 1 // Extensions is non-nil (it may still be empty)
	flagAppendedAt = 1 << 2 // AppendedAt is not the zero time
	knownFlags     = flagData | flagExtensions | flagAppendedAt

	// maxPayloadSize is the largest payload the uint32 length field can describe.
	maxPayloadSize = math.MaxUint32
)

var (
	fileMagic  = [8]byte{'R', 'A', 'F', 'T', 'M', 'Q', 'L', 'G'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	le         = binary.LittleEndian
)

// segmentName is the file name of the segment whose first entry has index first.
func segmentName(first uint64) string {
	return fmt.Sprintf("%020d%s", first, segmentExt)
}

// parseSegmentName returns the first index encoded in a segment file name, and false for
// any name that is not exactly 20 decimal digits followed by ".wal".
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segmentNameLen || !strings.HasSuffix(name, segmentExt) {
		return 0, false
	}
	digits := name[:20]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// fileHeader returns the first dataStartV2 bytes of a new (version 2) segment: the header,
// which does not depend on the segment's first index, and an all-zero seal block.
func fileHeader() [dataStartV2]byte {
	var h [dataStartV2]byte
	copy(h[0:8], fileMagic[:])
	le.PutUint32(h[8:12], formatVersion)
	// h[12:28] reserved, zero (version 1 had the first index at 16:24)
	le.PutUint32(h[28:32], crc32.Checksum(h[:28], castagnoli))
	return h
}

// fileHeaderV1 returns the 32-byte header of a version-1 segment whose first entry has
// index first. This build only reads version 1; tests write it.
func fileHeaderV1(first uint64) [fileHeaderSize]byte {
	var h [fileHeaderSize]byte
	copy(h[0:8], fileMagic[:])
	le.PutUint32(h[8:12], formatV1)
	le.PutUint64(h[16:24], first)
	le.PutUint32(h[28:32], crc32.Checksum(h[:28], castagnoli))
	return h
}

// checkFileHeader validates the 32-byte segment header against the first index of the
// file name and returns the format version.
func checkFileHeader(h []byte, first uint64) (uint32, error) {
	if len(h) < fileHeaderSize {
		return 0, fmt.Errorf("file is %d bytes, shorter than the %d-byte segment header", len(h), fileHeaderSize)
	}
	if string(h[0:8]) != string(fileMagic[:]) {
		return 0, fmt.Errorf("bad magic %q, want %q: not a raftlog segment", h[0:8], fileMagic[:])
	}
	v := le.Uint32(h[8:12])
	if v != formatV1 && v != formatVersion {
		return 0, fmt.Errorf("unsupported format version %d (this build reads versions %d and %d)", v, formatV1, formatVersion)
	}
	if got, want := le.Uint32(h[28:32]), crc32.Checksum(h[:28], castagnoli); got != want {
		return 0, fmt.Errorf("header checksum %#08x, computed %#08x", got, want)
	}
	if le.Uint32(h[12:16]) != 0 || le.Uint32(h[24:28]) != 0 {
		return 0, fmt.Errorf("reserved header bytes are not zero")
	}
	idx := le.Uint64(h[16:24])
	switch {
	case v == formatV1 && idx != first:
		return 0, fmt.Errorf("header says first index %d, file name says %d", idx, first)
	case v == formatVersion && idx != 0:
		return 0, fmt.Errorf("reserved header bytes are not zero")
	}
	return v, nil
}

// dataStart is where the records of a segment of format version v begin.
func dataStart(v uint32) int64 {
	if v == formatV1 {
		return dataStartV1
	}
	return dataStartV2
}

// seal is the content of a valid seal block: the segment's records first..last end at
// offset end and were durable before the block was written.
type seal struct {
	first, last uint64
	end         int64
}

var sealMagic = [4]byte{'S', 'E', 'A', 'L'}

// sealBlock encodes a seal block (file offsets 32..63 of a version-2 segment).
func sealBlock(sl seal) [sealBlockSize]byte {
	var b [sealBlockSize]byte
	le.PutUint64(b[0:8], sl.first)
	le.PutUint64(b[8:16], sl.last)
	le.PutUint64(b[16:24], uint64(sl.end))
	copy(b[24:28], sealMagic[:])
	le.PutUint32(b[28:32], crc32.Checksum(b[:28], castagnoli))
	return b
}

// Seal block states.
const (
	sealNone    = iota // all zero: never sealed
	sealValid          // magic and checksum match
	sealInvalid        // anything else: a torn seal write, or damage
)

// parseSealBlock decodes a seal block and tells which state it is in.
func parseSealBlock(b []byte) (seal, int) {
	zero := true
	for _, c := range b {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		return seal{}, sealNone
	}
	if len(b) != sealBlockSize || string(b[24:28]) != string(sealMagic[:]) ||
		le.Uint32(b[28:32]) != crc32.Checksum(b[:28], castagnoli) {
		return seal{}, sealInvalid
	}
	return seal{first: le.Uint64(b[0:8]), last: le.Uint64(b[8:16]), end: int64(le.Uint64(b[16:24]))}, sealValid
}

// recordSize is the encoded size of l: record header plus payload.
func recordSize(l *raft.Log) (int, error) {
	n := uint64(payloadFixedSize) + uint64(len(l.Data)) + uint64(len(l.Extensions))
	if n > maxPayloadSize {
		return 0, fmt.Errorf("raftlog: entry %d is %d bytes, more than the %d a record can hold", l.Index, n, uint64(maxPayloadSize))
	}
	return recordHeaderSize + int(n), nil
}

// putRecord encodes l into rec, which must be exactly recordSize(l) bytes long. Every byte
// of rec is written (rec may be a reused buffer).
func putRecord(rec []byte, l *raft.Log) {
	p := rec[recordHeaderSize:]
	le.PutUint64(p[0:8], l.Index)
	le.PutUint64(p[8:16], l.Term)
	p[16] = byte(l.Type)
	var flags byte
	if l.Data != nil {
		flags |= flagData
	}
	if l.Extensions != nil {
		flags |= flagExtensions
	}
	var sec int64
	var nsec uint32
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
		sec = l.AppendedAt.Unix()
		nsec = uint32(l.AppendedAt.Nanosecond())
	}
	p[17] = flags
	le.PutUint64(p[18:26], uint64(sec))
	le.PutUint32(p[26:30], nsec)
	le.PutUint32(p[30:34], uint32(len(l.Data)))
	le.PutUint32(p[34:38], uint32(len(l.Extensions)))
	n := copy(p[payloadFixedSize:], l.Data)
	copy(p[payloadFixedSize+n:], l.Extensions)
	le.PutUint32(rec[0:4], uint32(len(p)))
	le.PutUint32(rec[4:8], crc32.Checksum(p, castagnoli))
}

// checkPayload validates the structure of a payload whose checksum already matched and
// returns the entry's index.
func checkPayload(p []byte) (uint64, error) {
	if len(p) < payloadFixedSize {
		return 0, fmt.Errorf("payload is %d bytes, below the minimum %d", len(p), payloadFixedSize)
	}
	flags := p[17]
	if flags&^knownFlags != 0 {
		return 0, fmt.Errorf("unknown flags %#02x", flags)
	}
	sec, nsec := int64(le.Uint64(p[18:26])), le.Uint32(p[26:30])
	if nsec >= uint32(time.Second) {
		return 0, fmt.Errorf("appended-at nanoseconds %d out of range", nsec)
	}
	if flags&flagAppendedAt == 0 && (sec != 0 || nsec != 0) {
		return 0, fmt.Errorf("appended-at set without its flag")
	}
	dl, el := uint64(le.Uint32(p[30:34])), uint64(le.Uint32(p[34:38]))
	if payloadFixedSize+dl+el != uint64(len(p)) {
		return 0, fmt.Errorf("data (%d) and extensions (%d) lengths do not add up to the payload length %d", dl, el, len(p))
	}
	if flags&flagData == 0 && dl != 0 {
		return 0, fmt.Errorf("nil data with length %d", dl)
	}
	if flags&flagExtensions == 0 && el != 0 {
		return 0, fmt.Errorf("nil extensions with length %d", el)
	}
	return le.Uint64(p[0:8]), nil
}

// decodeRecord verifies a whole record (header and payload) and decodes it into out. Data
// and Extensions alias rec, which the caller must not reuse.
func decodeRecord(rec []byte, out *raft.Log) error {
	if len(rec) < recordHeaderSize {
		return fmt.Errorf("record is %d bytes, shorter than its header", len(rec))
	}
	p := rec[recordHeaderSize:]
	if n := le.Uint32(rec[0:4]); uint64(n) != uint64(len(p)) {
		return fmt.Errorf("record length field %d, expected %d", n, len(p))
	}
	if got, want := le.Uint32(rec[4:8]), crc32.Checksum(p, castagnoli); got != want {
		return fmt.Errorf("checksum %#08x, computed %#08x", got, want)
	}
	idx, err := checkPayload(p)
	if err != nil {
		return err
	}
	flags := p[17]
	dl := int(le.Uint32(p[30:34]))
	l := raft.Log{
		Index: idx,
		Term:  le.Uint64(p[8:16]),
		Type:  raft.LogType(p[16]),
	}
	if flags&flagData != 0 {
		l.Data = p[payloadFixedSize : payloadFixedSize+dl : payloadFixedSize+dl]
	}
	if flags&flagExtensions != 0 {
		l.Extensions = p[payloadFixedSize+dl : len(p) : len(p)]
	}
	if flags&flagAppendedAt != 0 {
		l.AppendedAt = time.Unix(int64(le.Uint64(p[18:26])), int64(le.Uint32(p[26:30])))
	}
	*out = l
	return nil
}
