// Package raftlog is an append-only, segmented Raft log store: a raft.LogStore (and
// raft.MonotonicLogStore) for github.com/hashicorp/raft that writes each StoreLogs batch
// with one write and at most one fdatasync, instead of a B+tree transaction. A segment
// roll costs StoreLogs no fsync: the next segment is pre-created and the rolled one sealed
// by a background goroutine.
//
// # Files
//
// A log directory holds segment files named <first index>.wal, the index of the segment's
// first entry as 20 zero-padded decimal digits (00000000000000000001.wal), and at most
// one next.wal, the pre-created next segment (see Rolls). Other files are ignored.
// Segments are contiguous: each starts at the index following the last entry of the
// previous one. Only the last segment (the active one) is appended to; a new one is
// started when a batch would take it past Options.SegmentSize (a batch is never split,
// so one batch larger than SegmentSize makes one large segment). The directory itself is
// flock'ed while a Store has it open.
//
// # Segment format (version 2, all integers little-endian)
//
// File header, 32 bytes:
//
//	offset size  field
//	0      8     magic "RAFTMQLG"
//	8      4     format version, uint32 = 2
//	12     16    reserved, zero (version 1 has the first index at 16..23, see below)
//	28     4     CRC32-C (Castagnoli) of bytes 0..27
//
// The header does not depend on the segment's first index, so a segment can be created
// before that index is known; the file name carries it, and the first record's index
// must equal it. Then the seal block, 32 bytes, all zero until the segment is sealed:
//
//	offset size  field
//	32     8     first index, uint64 (must equal the file name)
//	40     8     last index L, uint64
//	48     8     end offset E, uint64: the records first..L end exactly at E
//	56     4     "SEAL"
//	60     4     CRC32-C of bytes 32..59
//
// A valid seal block says that the file's bytes below E were durable before the block
// was written (see Durability). A block that is neither all zero nor valid (a crash
// while it was written) counts as no seal.
//
// Then records from offset 64, back to back. A record is an 8-byte header and a
// payload:
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
// file name's first index. There is no trailer. After the last record the file either
// ends or, when it was preallocated, holds zeros up to its end (a record header is never
// zero, since N >= 38).
//
// Version 1 (written by earlier builds, still read, never written): the same 32-byte
// header with version 1 and the first index, which must equal the file name, at 16..23;
// no seal block; records from offset 32. A version-1 segment that is not the last was
// fdatasync'ed before the next segment was created, so it counts as sealed whole. A
// version-1 log is upgraded in place: its segments stay as they are, the active one is
// fdatasync'ed when it rolls (once) and new segments are version 2. A build that reads
// only version 1 cannot open the directory afterwards.
//
// What a round trip preserves: every field; nil and empty Data (and Extensions) are told
// apart; AppendedAt keeps its instant to the nanosecond (any time.Time, not only the
// UnixNano range) and the zero time stays the zero time, but the location becomes
// time.Local and the monotonic clock reading is dropped, as with any serialization.
//
// # Background goroutine
//
// Open starts one goroutine and Close stops and joins it. After Open and after every
// roll it (1) pre-creates next.wal if there is none ready and (2) seals every segment
// but the last that is not sealed, oldest first. Neither runs in StoreLogs, i.e. in
// raft's main loop. It never takes the Store's write lock; an I/O error while sealing
// fails the store (ErrFailed), one while pre-creating is only logged (the next roll
// creates its segment itself).
//
// # Durability contract
//
// With NoSync false, StoreLogs returns only after its entries are written and
// fdatasync'ed: they survive a crash. With NoSync true, StoreLogs returns once they are in
// the page cache; they reach the disk at the next Sync, at Close, or when the background
// seals the segment after it rolled, so a crash (of the machine, not of the process) may
// lose a suffix of the entries stored since. Sync fdatasyncs every segment not known to
// be durable (the active one and those that rolled since), not only the active one.
// Either way a crash never leaves a log that does not open, and recovery never leaves a
// hole; the steps and their order:
//
//   - Pre-creating (background): create next.wal, write the header and a zero seal
//     block, with NoSync false fallocate it to SegmentSize, fdatasync it, fsync the
//     directory.
//   - Roll (StoreLogs): rename next.wal to <first index>.wal (renameat2 NOREPLACE) and
//     write the batch into it; no fsync of its own (with NoSync false, the batch's own
//     fdatasync covers the records). The rename need not be durable: the file's data
//     and its next.wal name are, and recovery takes a next.wal that holds entries as
//     the segment they start. The next directory fsync (the next pre-creation, any
//     deletion) makes the rename durable, and it comes before any later segment can
//     exist. When no next.wal is ready the roll creates <first index>.wal itself, as
//     above but without preallocation (the one case that fsyncs in StoreLogs). When the
//     previous segment is version 1 it is fdatasync'ed first.
//   - Seal (background, after each roll; and Close): fdatasync the rolled segment
//     unless its data is known durable (always with NoSync false), then write its seal
//     block (first, last, end) and fdatasync again, then drop it from the page cache.
//     Sealing goes oldest first and stops at a failure, so sealed segments always
//     precede unsealed ones. A sealed segment is not truncated: with preallocation its
//     zero tail (at most one batch) stays.
//   - Tail truncation (DeleteRange reaching the last index): later segments are removed
//     newest first and the directory fsynced; if the seal of the segment holding the
//     first deleted index covers that index, the seal is rewritten to end there (entries
//     up to min-1) and fdatasync'ed; then the segment is ftruncate'd and fdatasync'ed.
//     The seal never claims more than the file holds.
//   - Head compaction and deleting everything: whole segments are removed oldest first,
//     then the directory is fsynced. A partly compacted segment is not rewritten: its
//     older entries reappear after a restart (see Store.DeleteRange for why that is safe).
//     next.wal is not touched.
//   - Close: seals what rolled, fdatasyncs the active segment (NoSync), removes next.wal
//     and fsyncs the directory. A clean shutdown leaves every segment but the last sealed.
//
// The seal and header writes rely on what the whole design relies on: a crash during a
// write may leave any mix of old and new bytes in the range written, but does not damage
// bytes outside it.
//
// # Recovery
//
// Open reads the header of every file, and every record of every segment, checking
// length, checksum, payload structure and index.
//
// A segment is trusted up to its durable end: E for a version-2 segment with a valid
// seal, the end of the file for a version-1 segment that is not the last, nothing
// otherwise. Any damage below the durable end — a bad record, zeros, the file ending
// before E, a seal that does not match the records or the file name — and anywhere a
// record whose checksum matches but whose index or structure is wrong, a bad header
// (but see below), an overlap between segments, a gap after a segment sealed whole, a
// foreign file with a segment's name: Open fails with an error wrapping ErrCorrupt that
// names the file and offset. Data below a durable end is never dropped silently.
//
// Past the durable end a crash may have left a torn write: the first record that is not
// whole and valid ends the segment's records, and so does an all-zero rest of the file
// (the preallocated tail, which is not a torn write and is kept).
//
//   - In the last segment a torn tail is cut back to the last whole record, fdatasync'ed
//     and the cut logged (file, offset, bytes cut). A last file that holds no whole
//     record, or no more than a partly written header of zeros and expected bytes (an
//     interrupted creation), is removed.
//   - In any other segment (one that rolled and whose seal does not cover it all yet:
//     possible with NoSync after a machine crash that wrote later segments' pages but
//     not all of this one's), a torn tail, an empty segment, or a gap before the next segment (whole entries
//     lost) ends the log there: every later file is removed, newest first, the directory
//     fsynced, and the segment cut (or removed if nothing is left), and the cut is
//     logged (file, offset, removed files). The result is a prefix of what was stored.
//     But if a later file is sealed (or is not an unsealed version-2 segment) the damage
//     cannot be a crash's — sealing a segment requires every earlier one sealed — and
//     Open fails with ErrCorrupt, removing nothing.
//   - next.wal holding no whole first record (fresh, preallocated, or interrupted) is
//     removed. One holding entries (a roll whose rename did not reach the disk) must
//     start after every segment; it is validated as the last segment, and if it is
//     still part of the log after the rules above, renamed to its segment name and the
//     directory fsynced.
//
// Note that damage past the durable end is indistinguishable from a crash's and is cut,
// with everything after it, like one. That covers the tail of the last segment, as it
// always did, and a rolled segment between its roll and its seal: with NoSync false
// that window is one small fdatasync long (the data is already durable), with NoSync
// the time to fdatasync the rolled segment.
//
// # Page cache
//
// The log is written once and read back only when a follower is too far behind for
// raft's log cache, or at a restart. Once a range is durable the Store asks the kernel to
// drop it from the page cache (POSIX_FADV_DONTNEED): after each Sync for all of the active
// segment but its last MiB and for rolled segments whole, every 8 MiB with NoSync false,
// and a segment whole once the background sealed it. The page cache then serves what is
// read (a broker's commitlog) instead of holding a second copy of every message. Reads of
// a dropped range go to the disk.
package raftlog
