package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Offset message ids (RocketMQ's offsetMsgId): the uppercase hex of the store host's address
// (4 or 16 bytes), its port as an int32 and the record's physical offset as an int64, all big
// endian: 32 characters for IPv4, 56 for IPv6.
const (
	OffsetMsgIDLenV4 = 2 * (4 + 4 + 8)
	OffsetMsgIDLenV6 = 2 * (16 + 4 + 8)
)

// ErrInvalidMsgID marks a string that is not an offset message id.
var ErrInvalidMsgID = errors.New("message: invalid offset message id")

const hexUpper = "0123456789ABCDEF"

// AppendOffsetMsgID appends the offset message id of (storeHost, physOffset) to dst. The host
// is encoded as in a record: IPv4 (or IPv4-mapped) as 4 bytes, IPv6 as 16, invalid as 0.0.0.0:0.
func AppendOffsetMsgID(dst []byte, storeHost netip.AddrPort, physOffset int64) []byte {
	var raw [16 + 4 + 8]byte
	n := putHost(raw[:], storeHost)
	binary.BigEndian.PutUint64(raw[n:], uint64(physOffset))
	for _, c := range raw[:n+8] {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&0xF])
	}
	return dst
}

// OffsetMsgID returns the offset message id of (storeHost, physOffset).
func OffsetMsgID(storeHost netip.AddrPort, physOffset int64) string {
	var buf [OffsetMsgIDLenV6]byte
	return string(AppendOffsetMsgID(buf[:0], storeHost, physOffset))
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// ParseOffsetMsgID parses a 32- (IPv4) or 56-character (IPv6) offset message id, in either
// case, into the store host and physical offset. Errors wrap ErrInvalidMsgID.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != OffsetMsgIDLenV4 && len(id) != OffsetMsgIDLenV6 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q has %d characters, want %d or %d",
			ErrInvalidMsgID, id, len(id), OffsetMsgIDLenV4, OffsetMsgIDLenV6)
	}
	var raw [16 + 4 + 8]byte
	for i := 0; i < len(id); i += 2 {
		hi, ok1 := unhex(id[i])
		lo, ok2 := unhex(id[i+1])
		if !ok1 || !ok2 {
			return netip.AddrPort{}, 0, fmt.Errorf("%w: %q: non-hex character at %d", ErrInvalidMsgID, id, i)
		}
		raw[i/2] = hi<<4 | lo
	}
	ipLen := 4
	if len(id) == OffsetMsgIDLenV6 {
		ipLen = 16
	}
	port := int32(binary.BigEndian.Uint32(raw[ipLen:]))
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q: port %d outside 0..65535", ErrInvalidMsgID, id, port)
	}
	off := int64(binary.BigEndian.Uint64(raw[ipLen+4:]))
	var a netip.Addr
	if ipLen == 4 {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		a = netip.AddrFrom16([16]byte(raw[:16]))
	}
	return netip.AddrPortFrom(a, uint16(port)), off, nil
}
