package message

// Format: the stored-message record, RocketMQ commit-log format v1. See doc.go for the
// field table; this file is the only encoder and decoder of it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Wire constants of the stored-message format. They are part of the on-disk format and of
// the PULL reply body the RocketMQ clients decode: never change them.
const (
	// MagicMessage marks a message record (format v1, one-byte topic length).
	MagicMessage uint32 = 0xDAA320A7
	// MagicBlank marks the end-of-segment filler: TOTALSIZE 4 | MAGIC 4, covering the rest
	// of the segment.
	MagicBlank uint32 = 0xCBD43194

	// MaxTopicLen is the longest topic v1 can store (the Go client reads the length as one
	// byte; RocketMQ 4.x limits topics to 127 characters).
	MaxTopicLen = 127
	// MaxPropertiesLen is the longest properties string (PROPLEN is an int16).
	MaxPropertiesLen = 32767
	// DefaultMaxMessageSize is the default body limit (RocketMQ's maxMessageSize).
	DefaultMaxMessageSize = 4 << 20

	// BlankSize is the size of the smallest blank filler (TOTALSIZE + MAGIC).
	BlankSize = 8
	// RecordFixedSizeV4 is the size of a record with IPv4 hosts and empty body, topic and
	// properties (RocketMQ's 91-byte overhead).
	RecordFixedSizeV4 = 91
)

// SysFlag bits.
const (
	FlagCompressed  = 0x1
	FlagMultiTags   = 0x2
	TxNotType       = 0x0
	TxPreparedType  = 0x4
	TxCommitType    = 0x8
	TxRollbackType  = 0xC
	TxTypeMask      = 0xC
	FlagBornHostV6  = 0x10
	FlagStoreHostV6 = 0x20
)

// Byte offsets of the fixed leading fields of a record.
const (
	offTotalSize     = 0
	offMagic         = 4
	offBodyCRC       = 8
	offQueueID       = 12
	offFlag          = 16
	offQueueOffset   = 20
	offPhysOffset    = 28
	offSysFlag       = 36
	offBornTimestamp = 40
	offBornHost      = 48

	hostLenV4 = 8  // 4-byte address + int32 port
	hostLenV6 = 20 // 16-byte address + int32 port

	// Everything except the two hosts and the variable parts: 4 TOTALSIZE, 4 MAGIC,
	// 4 BODYCRC, 4 QUEUEID, 4 FLAG, 8 QUEUEOFFSET, 8 PHYSICALOFFSET, 4 SYSFLAG,
	// 8 BORNTIMESTAMP, 8 STORETIMESTAMP, 4 RECONSUMETIMES, 8 PREPARED_TX_OFFSET,
	// 4 BODYLEN, 1 TOPICLEN, 2 PROPLEN.
	fixedNoHosts = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 4 + 8 + 4 + 1 + 2
)

// Errors. Every error about a record's bytes wraps ErrCorrupt (or is ErrBlank/ErrTruncated);
// every error about a message a caller wants to append wraps one of the validation sentinels.
var (
	// ErrCorrupt marks an invalid record; the wrapping error says which check failed.
	ErrCorrupt = errors.New("message: corrupt record")
	// ErrZeroHeader marks a record header that is all zeros: the unwritten end of a
	// preallocated segment. Errors carrying it also match ErrCorrupt.
	ErrZeroHeader = errors.New("message: zero record header")
	// ErrBlank is the end-of-segment filler; RecordInfo.Size holds its size.
	ErrBlank = errors.New("message: blank record")
	// ErrTruncated means b ends before the record does.
	ErrTruncated = errors.New("message: truncated record")

	ErrInvalidTopic       = errors.New("message: invalid topic")
	ErrBodyTooLarge       = errors.New("message: message body too large")
	ErrEmptyBody          = errors.New("message: empty message body")
	ErrPropertiesTooLarge = errors.New("message: message properties too large")
	ErrInvalidProperties  = errors.New("message: invalid message properties")
	ErrInvalidQueueID     = errors.New("message: invalid queue id")
)

// Message is what a caller appends. Properties is the raw RocketMQ property string
// ("k\x01v\x02k\x01v", with or without a trailing \x02), stored verbatim so that the bytes
// written are exactly the bytes received.
type Message struct {
	Topic         string
	QueueID       int32
	Flag          int32
	SysFlag       int32 // FlagBornHostV6/FlagStoreHostV6 are recomputed from the hosts on encode
	BornTimestamp int64 // ms
	// BornHost and StoreHost are stored as IPv4 (8 bytes) when the address is IPv4 or
	// IPv4-mapped IPv6, else as IPv6 (20 bytes, zone dropped). An invalid (zero) AddrPort
	// is stored as 0.0.0.0:0.
	BornHost         netip.AddrPort
	StoreHost        netip.AddrPort // set by the caller (the leader's advertised address)
	ReconsumeTimes   int32
	PreparedTxOffset int64
	Body             []byte
	Properties       string
}

// MessageExt is a decoded record.
type MessageExt struct {
	Message
	StoreSize      int32
	BodyCRC        int32
	QueueOffset    int64
	PhysicalOffset int64
	StoreTimestamp int64
}

// hostLen is the stored size of a host and whether it is IPv6.
func hostLen(a netip.AddrPort) (int, bool) {
	ad := a.Addr()
	if !ad.IsValid() || ad.Is4() || ad.Is4In6() {
		return hostLenV4, false
	}
	return hostLenV6, true
}

// EncodedSize is the size of m's record.
func (m *Message) EncodedSize() int {
	b, _ := hostLen(m.BornHost)
	s, _ := hostLen(m.StoreHost)
	return fixedNoHosts + b + s + len(m.Body) + len(m.Topic) + len(m.Properties)
}

// putHost writes a host (address then int32 port) and returns the bytes written.
func putHost(dst []byte, a netip.AddrPort) int {
	ad := a.Addr()
	if !ad.IsValid() {
		clear(dst[:hostLenV4])
		return hostLenV4
	}
	if ad.Is4() || ad.Is4In6() {
		ip := ad.Unmap().As4()
		copy(dst, ip[:])
		binary.BigEndian.PutUint32(dst[4:], uint32(a.Port()))
		return hostLenV4
	}
	ip := ad.As16()
	copy(dst, ip[:])
	binary.BigEndian.PutUint32(dst[16:], uint32(a.Port()))
	return hostLenV6
}

// EncodeRecord writes m's record into dst (for example straight into mmap'd memory) with the
// given queue offset, physical offset and store timestamp and returns the bytes written. It
// does not allocate. It writes nothing and returns 0 when len(dst) < m.EncodedSize() or when m
// cannot be represented at all (topic empty or longer than MaxTopicLen, properties longer than
// MaxPropertiesLen); call Validate first for the full set of rules.
func EncodeRecord(dst []byte, m *Message, queueOffset, physOffset, storeTimestamp int64) int {
	n := m.EncodedSize()
	if len(dst) < n || len(m.Topic) == 0 || len(m.Topic) > MaxTopicLen ||
		len(m.Properties) > MaxPropertiesLen || n > 1<<31-1 {
		return 0
	}
	dst = dst[:n]
	be := binary.BigEndian
	sysFlag := m.SysFlag &^ (FlagBornHostV6 | FlagStoreHostV6)
	if _, v6 := hostLen(m.BornHost); v6 {
		sysFlag |= FlagBornHostV6
	}
	if _, v6 := hostLen(m.StoreHost); v6 {
		sysFlag |= FlagStoreHostV6
	}
	be.PutUint32(dst[offTotalSize:], uint32(n))
	be.PutUint32(dst[offMagic:], MagicMessage)
	be.PutUint32(dst[offBodyCRC:], BodyCRC(m.Body))
	be.PutUint32(dst[offQueueID:], uint32(m.QueueID))
	be.PutUint32(dst[offFlag:], uint32(m.Flag))
	be.PutUint64(dst[offQueueOffset:], uint64(queueOffset))
	be.PutUint64(dst[offPhysOffset:], uint64(physOffset))
	be.PutUint32(dst[offSysFlag:], uint32(sysFlag))
	be.PutUint64(dst[offBornTimestamp:], uint64(m.BornTimestamp))
	p := offBornHost
	p += putHost(dst[p:], m.BornHost)
	be.PutUint64(dst[p:], uint64(storeTimestamp))
	p += 8
	p += putHost(dst[p:], m.StoreHost)
	be.PutUint32(dst[p:], uint32(m.ReconsumeTimes))
	p += 4
	be.PutUint64(dst[p:], uint64(m.PreparedTxOffset))
	p += 8
	be.PutUint32(dst[p:], uint32(len(m.Body)))
	p += 4
	p += copy(dst[p:], m.Body)
	dst[p] = byte(len(m.Topic))
	p++
	p += copy(dst[p:], m.Topic)
	be.PutUint16(dst[p:], uint16(len(m.Properties)))
	p += 2
	copy(dst[p:], m.Properties)
	return n
}

// EncodeBlank fills dst (len(dst) >= BlankSize) with a blank record of size len(dst): the
// end-of-segment filler. Only the 8 header bytes are written; the rest of dst is left as is.
// It does nothing when len(dst) < BlankSize or len(dst) does not fit an int32.
func EncodeBlank(dst []byte) {
	if len(dst) < BlankSize || len(dst) > 1<<31-1 {
		return
	}
	binary.BigEndian.PutUint32(dst[offTotalSize:], uint32(len(dst)))
	binary.BigEndian.PutUint32(dst[offMagic:], MagicBlank)
}

// BodyCRC is the BODYCRC of a body: CRC-32 (IEEE) & 0x7FFFFFFF, as RocketMQ's UtilAll.crc32.
func BodyCRC(body []byte) uint32 {
	return crc32.ChecksumIEEE(body) & 0x7FFFFFFF
}

// RecordInfo is what recovery and dispatch need from a record, parsed and validated without
// copying the body.
type RecordInfo struct {
	Size           int32
	Topic          string
	QueueID        int32
	QueueOffset    int64
	PhysicalOffset int64
	SysFlag        int32
	StoreTimestamp int64
	Properties     string // raw; use GetProperty and friends
	BornTimestamp  int64
	BodyLen        int32
}

// RecordView is a parsed and validated record whose Topic, Body and Properties alias the
// parsed bytes: valid only as long as they are. ParseRecordView does not allocate.
type RecordView struct {
	Size           int32
	BodyCRC        int32
	QueueID        int32
	Flag           int32
	QueueOffset    int64
	PhysicalOffset int64
	SysFlag        int32
	BornTimestamp  int64
	BornHost       netip.AddrPort
	StoreTimestamp int64
	StoreHost      netip.AddrPort
	ReconsumeTimes int32
	PreparedTxOff  int64
	Body           []byte
	Topic          []byte
	Properties     []byte
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// ParseRecordInfo parses and validates the record at the start of b: magic, TOTALSIZE equal to
// the sum of the field lengths, every length inside b, BODYCRC, topic length and charset,
// properties length, host ports and canonical host encoding. A blank filler returns ErrBlank
// with RecordInfo.Size set to its declared size (which may exceed len(b)). b shorter than the
// record returns ErrTruncated; anything invalid returns an error wrapping ErrCorrupt (and
// ErrZeroHeader as well for an all-zero header). The only allocations are the Topic and
// Properties strings; ParseRecordView makes none.
func ParseRecordInfo(b []byte) (RecordInfo, error) {
	v, err := ParseRecordView(b)
	if err != nil {
		return RecordInfo{Size: v.Size}, err
	}
	return RecordInfo{
		Size:           v.Size,
		Topic:          string(v.Topic),
		QueueID:        v.QueueID,
		QueueOffset:    v.QueueOffset,
		PhysicalOffset: v.PhysicalOffset,
		SysFlag:        v.SysFlag,
		StoreTimestamp: v.StoreTimestamp,
		Properties:     string(v.Properties),
		BornTimestamp:  v.BornTimestamp,
		BodyLen:        int32(len(v.Body)),
	}, nil
}

// ParseRecordView is ParseRecordInfo without copies: the slices in the result alias b.
func ParseRecordView(b []byte) (RecordView, error) {
	var v RecordView
	if len(b) < BlankSize {
		return v, fmt.Errorf("%w: %d bytes, need at least %d for a record header", ErrTruncated, len(b), BlankSize)
	}
	be := binary.BigEndian
	size := int32(be.Uint32(b[offTotalSize:]))
	magic := be.Uint32(b[offMagic:])
	switch magic {
	case MagicMessage:
	case MagicBlank:
		if size < BlankSize {
			return v, corrupt("blank record size %d < %d", size, BlankSize)
		}
		v.Size = size
		return v, ErrBlank
	default:
		if size == 0 && magic == 0 {
			return v, fmt.Errorf("%w: %w: size and magic are 0", ErrCorrupt, ErrZeroHeader)
		}
		return v, corrupt("bad magic 0x%08X (size %d)", magic, size)
	}
	if size < RecordFixedSizeV4 {
		return v, corrupt("total size %d < minimum %d", size, RecordFixedSizeV4)
	}
	if int64(size) > int64(len(b)) {
		return v, fmt.Errorf("%w: total size %d, only %d bytes available", ErrTruncated, size, len(b))
	}
	r := b[:size]
	v.Size = size
	v.BodyCRC = int32(be.Uint32(r[offBodyCRC:]))
	v.QueueID = int32(be.Uint32(r[offQueueID:]))
	v.Flag = int32(be.Uint32(r[offFlag:]))
	v.QueueOffset = int64(be.Uint64(r[offQueueOffset:]))
	v.PhysicalOffset = int64(be.Uint64(r[offPhysOffset:]))
	v.SysFlag = int32(be.Uint32(r[offSysFlag:]))
	v.BornTimestamp = int64(be.Uint64(r[offBornTimestamp:]))

	bornLen, storeLen := hostLenV4, hostLenV4
	if v.SysFlag&FlagBornHostV6 != 0 {
		bornLen = hostLenV6
	}
	if v.SysFlag&FlagStoreHostV6 != 0 {
		storeLen = hostLenV6
	}
	fixed := fixedNoHosts + bornLen + storeLen
	if int(size) < fixed {
		return v, corrupt("total size %d < fixed part %d (sysflag 0x%X)", size, fixed, v.SysFlag)
	}
	p := offBornHost
	var err error
	if v.BornHost, err = parseHost(r[p:p+bornLen], "born"); err != nil {
		return v, err
	}
	p += bornLen
	v.StoreTimestamp = int64(be.Uint64(r[p:]))
	p += 8
	if v.StoreHost, err = parseHost(r[p:p+storeLen], "store"); err != nil {
		return v, err
	}
	p += storeLen
	v.ReconsumeTimes = int32(be.Uint32(r[p:]))
	p += 4
	v.PreparedTxOff = int64(be.Uint64(r[p:]))
	p += 8

	// Variable parts. fixed <= size guarantees the 4+1+2 length bytes are counted; each
	// length is checked against what is left before it is used.
	bodyLen := int64(int32(be.Uint32(r[p:])))
	p += 4
	left := int64(len(r)-p) - 1 - 2 // minus TOPICLEN and PROPLEN
	if bodyLen < 0 || bodyLen > left {
		return v, corrupt("body length %d outside record (%d bytes left)", bodyLen, left)
	}
	v.Body = r[p : p+int(bodyLen) : p+int(bodyLen)]
	p += int(bodyLen)
	topicLen := int(r[p])
	p++
	left = int64(len(r)-p) - 2
	if int64(topicLen) > left {
		return v, corrupt("topic length %d outside record (%d bytes left)", topicLen, left)
	}
	v.Topic = r[p : p+topicLen : p+topicLen]
	p += topicLen
	propLen := int(be.Uint16(r[p:]))
	p += 2
	if propLen > MaxPropertiesLen {
		return v, corrupt("properties length %d > %d", propLen, MaxPropertiesLen)
	}
	if propLen != len(r)-p {
		return v, corrupt("total size %d != sum of field lengths %d", size, p+propLen)
	}
	v.Properties = r[p : p+propLen : p+propLen]
	if err := checkTopicBytes(v.Topic); err != nil {
		return v, corrupt("%v", err)
	}
	if crc := BodyCRC(v.Body); uint32(v.BodyCRC) != crc {
		return v, corrupt("body crc 0x%08X, computed 0x%08X", uint32(v.BodyCRC), crc)
	}
	return v, nil
}

// parseHost decodes a stored host of 8 or 20 bytes, rejecting what EncodeRecord never writes
// (a port outside 0..65535, an IPv4-mapped address in the IPv6 form) so that decoding and
// re-encoding a valid record gives the same bytes.
func parseHost(h []byte, which string) (netip.AddrPort, error) {
	port := int32(binary.BigEndian.Uint32(h[len(h)-4:]))
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, corrupt("%s host port %d outside 0..65535", which, port)
	}
	var a netip.Addr
	if len(h) == hostLenV4 {
		a = netip.AddrFrom4([4]byte(h[:4]))
	} else {
		a = netip.AddrFrom16([16]byte(h[:16]))
		if a.Is4In6() {
			return netip.AddrPort{}, corrupt("%s host %s is IPv4-mapped but stored as IPv6", which, a)
		}
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// DecodeRecord fully decodes and validates the record at the start of b and returns it with
// its size. Body and properties are copied out of b. Errors are those of ParseRecordInfo.
func DecodeRecord(b []byte) (*MessageExt, int, error) {
	v, err := ParseRecordView(b)
	if err != nil {
		return nil, int(v.Size), err
	}
	m := &MessageExt{
		Message: Message{
			Topic:            string(v.Topic),
			QueueID:          v.QueueID,
			Flag:             v.Flag,
			SysFlag:          v.SysFlag,
			BornTimestamp:    v.BornTimestamp,
			BornHost:         v.BornHost,
			StoreHost:        v.StoreHost,
			ReconsumeTimes:   v.ReconsumeTimes,
			PreparedTxOffset: v.PreparedTxOff,
			Body:             append([]byte(nil), v.Body...),
			Properties:       string(v.Properties),
		},
		StoreSize:      v.Size,
		BodyCRC:        v.BodyCRC,
		QueueOffset:    v.QueueOffset,
		PhysicalOffset: v.PhysicalOffset,
		StoreTimestamp: v.StoreTimestamp,
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	return m, int(v.Size), nil
}

// Limits are the validation limits of Message.Validate. The zero value means defaults.
type Limits struct {
	MaxMessageSize int // body bytes, default DefaultMaxMessageSize (broker.conf maxMessageSize)
}

// Validate checks m before anything is written: topic (ValidateTopic), queue id >= 0,
// non-empty body of at most l.MaxMessageSize bytes, properties shorter than 32 KiB and well
// formed (ValidateProperties). Errors wrap ErrInvalidTopic, ErrInvalidQueueID, ErrEmptyBody,
// ErrBodyTooLarge, ErrPropertiesTooLarge or ErrInvalidProperties and name the size and limit.
func (m *Message) Validate(l Limits) error {
	if err := ValidateTopic(m.Topic); err != nil {
		return err
	}
	if m.QueueID < 0 {
		return fmt.Errorf("%w: %d, must be >= 0", ErrInvalidQueueID, m.QueueID)
	}
	limit := l.MaxMessageSize
	if limit <= 0 {
		limit = DefaultMaxMessageSize
	}
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: topic %q", ErrEmptyBody, m.Topic)
	}
	if len(m.Body) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d (maxMessageSize)", ErrBodyTooLarge, len(m.Body), limit)
	}
	if len(m.Properties) > MaxPropertiesLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPropertiesTooLarge, len(m.Properties), MaxPropertiesLen)
	}
	return ValidateProperties(m.Properties)
}

// topicChars is the allowed topic charset [%|a-zA-Z0-9_-].
var topicChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['%'], t['|'], t['_'], t['-'] = true, true, true, true
	return t
}()

const topicRule = "1..127 characters of [%|a-zA-Z0-9_-]"

func checkTopicBytes(t []byte) error {
	if len(t) == 0 || len(t) > MaxTopicLen {
		return fmt.Errorf("topic length %d, must be %s", len(t), topicRule)
	}
	for i, c := range t {
		if !topicChars[c] {
			return fmt.Errorf("topic byte 0x%02X at %d, must be %s", c, i, topicRule)
		}
	}
	return nil
}

// ValidateTopic checks that topic is 1..127 characters of [%|a-zA-Z0-9_-].
func ValidateTopic(topic string) error {
	if len(topic) == 0 || len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %q has %d characters, must be %s", ErrInvalidTopic, topic, len(topic), topicRule)
	}
	for i := 0; i < len(topic); i++ {
		if !topicChars[topic[i]] {
			return fmt.Errorf("%w: %q has %q at %d, must be %s", ErrInvalidTopic, topic, topic[i], i, topicRule)
		}
	}
	return nil
}

// StoreTimestampOf reads the STORETIMESTAMP of the record that b starts with, without
// validating the rest; false when b is too short to hold it.
func StoreTimestampOf(b []byte) (int64, bool) {
	if len(b) < offBornHost+hostLenV4+8 {
		return 0, false
	}
	p := offBornHost + hostLenV4
	if int32(binary.BigEndian.Uint32(b[offSysFlag:]))&FlagBornHostV6 != 0 {
		p = offBornHost + hostLenV6
	}
	if len(b) < p+8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[p:])), true
}
