// Package raftlog is an append-only, segmented Raft log store: a raft.LogStore (and
// raft.MonotonicLogStore) for github.com/hashicorp/raft that writes each StoreLogs batch
// with one write and at most one fdatasync, instead of a B+tree transaction.
//
// # Files
//
// A log directory holds segment files named <first index>.wal, the index of the segment's
// first entry as 20 zero-padded decimal digits (00000000000000000001.wal). Other files are
// ignored. Segments are contiguous: each starts at the index following the last entry of
// the previous one. Only the last segment (the active one) is appended to; it is sealed
// and a new one started when a batch would take it past Options.SegmentSize (a batch is
// never split, so one batch larger than SegmentSize makes one large segment). The
// directory itself is flock'ed while a Store has it open.
//
// # Segment format (version 1, all integers little-endian)
//
// File header, 32 bytes:
//
//	offset size  field
//	0      8     magic "RAFTMQLG"
//	8      4     format version, uint32 = 1
//	12     4     reserved, zero
//	16     8     first index, uint64 (must equal the file name)
//	24     4     reserved, zero
//	28     4     CRC32-C (Castagnoli) of bytes 0..27
//
// Then records, back to back until the end of the file. A record is an 8-byte header and
// a payload:
//
//	offset size  field
//	0      4     payload length N, uint32 (N >= 38)
//	4      4     CRC32-C (Castagnoli) of the N payload bytes
//	8      N     payload:
//	  +0   8       Index, uint64
//	  +8   8       Term, uint64
//	  +16  1       Type (raft.LogType)
//	  +17  1       flags: bit 0 Data is non-nil, bit 1 Extensions is non-nil,
//	               bit 2 AppendedAt is set; other bits must be zero
//	  +18  8       AppendedAt seconds since the Unix epoch, int64 (0 if bit 2 is clear)
//	  +26  4       AppendedAt nanoseconds within the second, uint32 < 1e9 (0 if bit 2 is clear)
//	  +30  4       D = len(Data), uint32
//	  +34  4       E = len(Extensions), uint32
//	  +38  D       Data
//	  +38+D E      Extensions
//
// N must equal 38+D+E. The entries of a segment have consecutive indexes starting at the
// header's first index. There is no preallocation and no trailer: the file ends after its
// last record.
//
// What a round trip preserves: every field; nil and empty Data (and Extensions) are told
// apart; AppendedAt keeps its instant to the nanosecond (any time.Time, not only the
// UnixNano range) and the zero time stays the zero time, but the location becomes
// time.Local and the monotonic clock reading is dropped, as with any serialization.
//
// # Durability contract
//
// With NoSync false, StoreLogs returns only after its entries are written and
// fdatasync'ed: they survive a crash. With NoSync true, StoreLogs returns once they are in
// the page cache; they reach the disk at the next Sync, segment roll or Close, so a crash
// (of the machine, not of the process) may lose a suffix of the entries stored since the
// last of those. Either way a crash never leaves a log that does not open: structural
// changes are always synced whatever NoSync says, in an order that keeps the files a
// contiguous log at every step:
//
//   - Roll: the old segment is fdatasync'ed, the new one is created, its header written
//     and fdatasync'ed and the directory fsynced, before any record goes into it.
//   - Tail truncation (DeleteRange reaching the last index): later segments are removed
//     newest first and the directory fsynced, then the segment holding the first deleted
//     index is ftruncate'd and fdatasync'ed.
//   - Head compaction and deleting everything: whole segments are removed oldest first,
//     then the directory is fsynced. A partly compacted segment is not rewritten: its
//     older entries reappear after a restart (see Store.DeleteRange for why that is safe).
//
// # Recovery
//
// Open reads every record of every segment and checks its length, checksum, payload
// structure and index. The last segment may end in a torn write (a crash during a
// StoreLogs): it is cut back to its last whole record, fdatasync'ed and the cut logged
// (file, offset, bytes cut). A last file that holds no whole record, or no more than a
// partly written header of zeros and expected bytes (a crash during a roll), is removed.
// Anything else — a bad record in a sealed segment, a record whose checksum matches but
// whose index or structure is wrong, a gap between segments, a foreign file with a
// segment's name — makes Open fail with an error wrapping ErrCorrupt that names the file
// and offset: data in the middle of the log is never dropped silently.
//
// Note that a damaged record inside the last segment is indistinguishable from a torn
// write and is cut, with everything after it, like one.
//
// # Page cache
//
// The log is written once and read back only when a follower is too far behind for
// raft's log cache, or at a restart. Once a range is durable the Store asks the kernel to
// drop it from the page cache (POSIX_FADV_DONTNEED): after each Sync for all of the active
// segment but its last MiB, every 8 MiB with NoSync false, and a sealed segment whole at
// its roll. The page cache then serves what is read (a broker's commitlog) instead of
// holding a second copy of every message. Reads of a dropped range go to the disk.
package raftlog
