/*
Package commitlog is raftmq's storage engine: every byte on disk except Raft's own files. It
stores messages in RocketMQ's commit-log format so that a PULL reply is a run of stored records
sent as they are, and it knows nothing of Raft. The same sequence of Log.Append calls produces
byte-identical commitlog and consume-queue files on every replica: everything that varies (store
timestamp, store host, raft index) is passed in by the caller, and nothing on the append path
reads a clock or randomness.

This comment is the on-disk format specification. All integers are big-endian and signed unless
marked otherwise. The constants it names are frozen: changing one changes the format.

# Directory layout

Under Config.RootDir (storePathRootDir) by default:

	commitlog/                      segments, named by their first physical offset, and at most one
	                                preallocated spare for the next segment (prealloc.go; removed
	                                at Close and by recovery)
	consumequeue/<topic>/<queueId>/ consume-queue files, named by byte offset of their first entry
	index/                          index files (see Index files)
	checkpoint                      see checkpoint.go
	journal                         see checkpoint.go
	abort                           present while a Log is open; found at Open = unclean stop
	reset                           present only while Reset runs; Open finishes the Reset (raw.go)

Commitlog segments and consume-queue files are preallocated, mapped whole and named by the
zero-padded 20-digit decimal offset of their first byte (for example 00000000001073741824); the
unused tail of a file is zero. The format comment at the top of segment.go is authoritative for
segments, that of consumequeue.go for consume queues.

# Message records (format v1)

A commitlog segment is a sequence of records laid end to end, then optionally one blank
filler, then zeros. A record's physical offset is its byte offset in the whole log (segment
name + position). A record never spans two segments. Each record is:

	offset  size      field               notes
	0       4         TOTALSIZE           size of the whole record, this field included
	4       4         MAGIC               MagicMessage 0xDAA320A7 (v1: one-byte topic length)
	8       4         BODYCRC             CRC-32/IEEE of BODY, & 0x7FFFFFFF (RocketMQ UtilAll.crc32)
	12      4         QUEUEID
	16      4         FLAG                the producer's flag, opaque
	20      8         QUEUEOFFSET         index of the record's entry in its consume queue
	28      8         PHYSICALOFFSET      the record's own physical offset
	36      4         SYSFLAG             see below
	40      8         BORNTIMESTAMP       producer time, ms since the epoch
	48      8 or 20   BORNHOST            IPv4: 4 address bytes + int32 port; IPv6: 16 + int32 port
	        8         STORETIMESTAMP      leader time when the batch was stored, ms
	        8 or 20   STOREHOST           the broker's advertised ip:port (clients connect to it)
	        4         RECONSUMETIMES
	        8         PREPARED_TX_OFFSET
	        4         BODYLEN             >= 0
	        BODYLEN   BODY                zlib data when SYSFLAG bit 0 is set; stored as received
	        1         TOPICLEN            1..MaxTopicLen (127)
	        TOPICLEN  TOPIC               [%|a-zA-Z0-9_-]
	        2         PROPLEN             0..MaxPropertiesLen (32767), read unsigned
	        PROPLEN   PROPERTIES          "k\x01v\x02k\x01v", optional trailing \x02, stored verbatim

With IPv4 hosts the fixed part is RecordFixedSizeV4 = 91 bytes, so TOTALSIZE = 91 + BODYLEN +
TOPICLEN + PROPLEN; each IPv6 host adds 12. TOTALSIZE must equal that sum exactly: RocketMQ's Go
client decodes a PULL body field by field and never uses TOTALSIZE to skip.

SYSFLAG bits: 0x1 FlagCompressed (body is zlib), 0x2 FlagMultiTags, bits 0x4|0x8 TxTypeMask
(0 not transactional, 0x4 prepared, 0x8 commit, 0xC rollback), 0x10 FlagBornHostV6 and 0x20
FlagStoreHostV6 (the host is in the 20-byte form). Other bits are kept verbatim. EncodeRecord
sets the two host bits from the addresses it is given: an IPv4 or IPv4-mapped IPv6 address is
stored in the IPv4 form, any other valid address in the IPv6 form (zone dropped), an invalid
(zero) address as 0.0.0.0:0.

The CRC covers the body only. Every other field is checked structurally by ParseRecordInfo /
ParseRecordView, which a record must pass to be recovered, dispatched or served:

  - MAGIC is MagicMessage (MagicBlank: the filler; all-zero size and magic: ErrZeroHeader, the
    unwritten end of a segment; anything else: ErrCorrupt);
  - TOTALSIZE >= 91 and >= the fixed part implied by SYSFLAG, and TOTALSIZE <= the bytes
    available (else ErrTruncated);
  - BODYLEN, TOPICLEN and PROPLEN each fit in what is left of TOTALSIZE, and TOTALSIZE equals
    the sum of the field lengths;
  - PROPLEN <= 32767; TOPICLEN 1..127 and the topic charset;
  - both host ports in 0..65535, and an IPv6-form host is not an IPv4-mapped address (the
    encoder never writes one), so that decoding and re-encoding a valid record is exact;
  - BODYCRC equals the CRC of BODY.

Failures wrap ErrCorrupt with the failed check in the message. Golden records are in
testdata/record_v1.golden (IPv4 hosts) and testdata/record_v6.golden (IPv6 hosts).

# Blank filler

When the next record does not fit in the rest of a segment, the rest of the segment is covered
by one blank record and the record goes to the start of the next segment:

	0   4   TOTALSIZE   bytes from here to the end of the segment (>= BlankSize, 8)
	4   4   MAGIC       MagicBlank 0xCBD43194
	8   ...             undefined (zeros in practice)

# Properties, tags, keys and message ids

Properties are "key\x01value" pairs joined by \x02; Java 4.9 writes no trailing \x02, the Go
client does, and both are accepted and stored as received. A repeated key reads as its last
value. Message.Validate rejects pairs without exactly one \x01 or with an empty key;
BuildProperties writes keys sorted. The keys are RocketMQ's MessageConst names (PropertyTags
"TAGS", PropertyKeys "KEYS" (space-separated), PropertyUniqKey "UNIQ_KEY", PropertyDelayLevel
"DELAY", PropertyRealTopic "REAL_TOPIC", PropertyRealQueueID "REAL_QID", ...).

The tag hash stored in consume-queue entries is TagsHashCode(TAGS): Java's String.hashCode over
the UTF-16 code units of the whole TAGS value (int32 arithmetic, widened to int64), 0 when there
is no tag. Entries of SCHEDULE_TOPIC_XXXX store the delivery time there instead.

The offset message id of a record is the uppercase hex of STOREHOST's address (4 or 16 bytes),
its port as int32 and PHYSICALOFFSET as int64: 32 characters for IPv4, 56 for IPv6
(OffsetMsgID, ParseOffsetMsgID accepts either case). It is derived, never stored.

# Consume-queue entries

A consume queue is an array of 20-byte entries (CQEntrySize); entry q is the record with
QUEUEOFFSET q of that topic and queue:

	0   8   commitlog (physical) offset of the record
	8   4   TOTALSIZE of the record
	12  8   tag hash (TagsHashCode of TAGS, or the delivery time for SCHEDULE_TOPIC_XXXX)

An all-zero entry is a hole. consumequeue.go documents files and holes.

# Index files

The index maps "topic#key" to physical offsets for QUERY_MESSAGE / query by key. The Log puts
one entry for every key of the KEYS property and one for UNIQ_KEY of each dispatched record
(rollback records are not indexed). Entries are put in non-decreasing physical-offset order.
Files live in IndexConfig.Dir (storePathIndex), one file at a time is written, and a new file is
started when the current one holds MaxIndexCount (maxIndexNum) entries. A file is named after its
first entry:

	<store time of the first entry, UTC, yyyyMMddHHmmssSSS>_<its physical offset, 20 digits>_<n>.idx

n is 0 unless a file with the same first entry already exists (a single message with more keys
than a file holds); files are ordered by (physical offset, n). Names depend only on the entries,
never on the wall clock. Each file is a sparse file mapped whole:

	header   64 bytes
	slots    slotCount * 4 bytes
	entries  maxEntries * 24 bytes

The header:

	0   4   magic       0x524D5149 "RMQI"
	4   4   version     1
	8   4   slotCount   uint32, MaxHashSlots (maxHashSlotNum) when the file was created
	12  4   maxEntries  uint32, MaxIndexCount when the file was created
	16  8   beginTimestamp   store time of entry 1
	24  8   endTimestamp     store time of the last entry
	32  8   beginPhysOffset  physical offset of entry 1
	40  8   endPhysOffset    physical offset of the last entry
	48  4   entryCount  uint32; entries 1..entryCount are valid
	52  12  reserved, zero

Slot s (at 64 + 4*s) holds the number (1-based) of the newest entry whose key hash h has
h % slotCount == s, or 0. Entry n (at 64 + 4*slotCount + 24*(n-1)):

	0   4   key hash         uint32, FNV-1a (32-bit) of topic + "#" + key
	4   8   physical offset  of the record
	12  8   store timestamp  of the record, ms
	20  4   previous entry   uint32, the slot's previous head (an older entry, or 0)

A query walks the slot's chain newest first in each file, newest file first, keeping entries
whose hash matches and whose store time is in range; callers verify the key against the record
because different keys can share a hash. Put writes the entry, then the slot, then the header
fields, and the count last. The count is the truth: on open, slots pointing past the count (or
links not pointing backwards) make the slots and links be rebuilt from entries 1..count, and a
file with no entries is removed. Truncate(off) lowers the count before it resets each removed
entry's slot to the entry's previous link and zeroes the entry, newest first, so the file is
byte-identical to one that never had those entries.

# Checkpoint and batch journal

The checkpoint file records the durable state recovery starts from (applied raft index, durable
commitlog end, consume-queue and index progress); the journal is a ring recording the raft index
and end offset of each appended batch, so recovery can cut the log back to a whole batch. Both
formats are specified in the comment at the top of checkpoint.go.
*/
package commitlog
