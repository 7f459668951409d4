package fsm

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/vmihailenco/msgpack/v5"
)

// CommandType is the first byte of raft.Log.Data; the rest is msgpack
// (vmihailenco/msgpack/v5).
type CommandType uint8

// Command types. The numbers are part of the raft log format: never reuse one.
const (
	CmdAppend        CommandType = 1 // a group-commit batch of messages -> one commitlog.Append
	CmdPutTopic      CommandType = 2
	CmdDeleteTopic   CommandType = 3
	CmdPutGroup      CommandType = 4
	CmdDeleteGroup   CommandType = 5
	CmdCommitOffsets CommandType = 6 // batched consumer offsets
	CmdSetMember     CommandType = 7 // raft server ID -> broker client address, broker id (for forwarding)

	CmdDeliverScheduled CommandType = 8  // due delayed messages of one level + that level's progress (flow.go)
	CmdEndTx            CommandType = 9  // resolve a half message: commit (write the real message) or roll back
	CmdTxCheck          CommandType = 10 // back-check counts and half-queue progress
)

func (t CommandType) String() string {
	switch t {
	case CmdAppend:
		return "Append"
	case CmdPutTopic:
		return "PutTopic"
	case CmdDeleteTopic:
		return "DeleteTopic"
	case CmdPutGroup:
		return "PutGroup"
	case CmdDeleteGroup:
		return "DeleteGroup"
	case CmdCommitOffsets:
		return "CommitOffsets"
	case CmdSetMember:
		return "SetMember"
	case CmdDeliverScheduled:
		return "DeliverScheduled"
	case CmdEndTx:
		return "EndTx"
	case CmdTxCheck:
		return "TxCheck"
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}

// Encode builds raft.Log.Data for a command: the type byte, then the msgpack
// encoding of v, which must be the command struct of t (a pointer or a value).
// CmdAppend takes an *AppendCommand and is encoded by EncodeAppend.
func Encode(t CommandType, v any) ([]byte, error) {
	ok := false
	switch t {
	case CmdAppend:
		switch c := v.(type) {
		case *AppendCommand:
			return EncodeAppend(c)
		case AppendCommand:
			return EncodeAppend(&c)
		}
	case CmdPutTopic:
		_, ok1 := v.(*PutTopicCommand)
		_, ok2 := v.(PutTopicCommand)
		ok = ok1 || ok2
	case CmdDeleteTopic:
		_, ok1 := v.(*DeleteTopicCommand)
		_, ok2 := v.(DeleteTopicCommand)
		ok = ok1 || ok2
	case CmdPutGroup:
		_, ok1 := v.(*PutGroupCommand)
		_, ok2 := v.(PutGroupCommand)
		ok = ok1 || ok2
	case CmdDeleteGroup:
		_, ok1 := v.(*DeleteGroupCommand)
		_, ok2 := v.(DeleteGroupCommand)
		ok = ok1 || ok2
	case CmdCommitOffsets:
		_, ok1 := v.(*CommitOffsetsCommand)
		_, ok2 := v.(CommitOffsetsCommand)
		ok = ok1 || ok2
	case CmdSetMember:
		_, ok1 := v.(*SetMemberCommand)
		_, ok2 := v.(SetMemberCommand)
		ok = ok1 || ok2
	case CmdDeliverScheduled:
		_, ok1 := v.(*DeliverScheduledCommand)
		_, ok2 := v.(DeliverScheduledCommand)
		ok = ok1 || ok2
	case CmdEndTx:
		_, ok1 := v.(*EndTxCommand)
		_, ok2 := v.(EndTxCommand)
		ok = ok1 || ok2
	case CmdTxCheck:
		_, ok1 := v.(*TxCheckCommand)
		_, ok2 := v.(TxCheckCommand)
		ok = ok1 || ok2
	default:
		return nil, fmt.Errorf("fsm: encode: %w: %d", ErrUnknownCommand, uint8(t))
	}
	if !ok {
		return nil, fmt.Errorf("fsm: encode %v: unexpected value type %T", t, v)
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %v: %w", t, err)
	}
	out := make([]byte, 1+len(b))
	out[0] = byte(t)
	copy(out[1:], b)
	return out, nil
}

// Format of a CmdAppend entry (the hot path: one raft entry carries a whole
// group-commit batch). After the type byte comes one msgpack bin32 value
// (0xC6, uint32 length) holding this binary layout, big-endian:
//
//	version      1      appendVersion (1)
//	storeTime    8      AppendCommand.StoreTimestamp
//	count        4      number of messages
//	headers      count * appendHeaderSize, per message:
//	  topicLen    2
//	  propsLen    4
//	  bodyLen     4
//	  queueId     4
//	  flag        4
//	  sysFlag     4
//	  bornTime    8
//	  bornHost    19    kind 1 (0 invalid, 4 IPv4, 6 IPv6) | address 16 (IPv4 in the first 4) | port 2
//	  storeHost   19
//	  reconsume   4
//	  preparedTx  8
//	strings      every message's topic then properties, concatenated
//	bodies       every message's body, concatenated
//
// Grouping the strings lets the decoder convert them with one allocation per
// entry; grouping the bodies lets them alias the entry (no copy: the
// commitlog copies them once into its write buffer).
const (
	appendVersion    = 1
	appendHeaderSize = 2 + 4 + 4 + 4 + 4 + 4 + 8 + hostSize + hostSize + 4 + 8
	hostSize         = 19
	appendPrefixSize = 1 + 5 + 1 + 8 + 4 // type, bin32 header, version, storeTime, count
	maxAppendPayload = math.MaxUint32
)

// EncodeAppend builds raft.Log.Data for an append batch with one allocation
// and one copy of each body.
func EncodeAppend(c *AppendCommand) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("fsm: encode append: nil command")
	}
	if len(c.Messages) > math.MaxInt32 {
		return nil, fmt.Errorf("fsm: encode append: %d messages", len(c.Messages))
	}
	size := appendPrefixSize
	for i, m := range c.Messages {
		if m == nil {
			return nil, fmt.Errorf("fsm: encode append: message %d is nil", i)
		}
		if len(m.Topic) > math.MaxUint16 {
			return nil, fmt.Errorf("fsm: encode append: message %d: topic of %d bytes", i, len(m.Topic))
		}
		if uint64(len(m.Properties)) > math.MaxUint32 || uint64(len(m.Body)) > math.MaxUint32 {
			return nil, fmt.Errorf("fsm: encode append: message %d too large", i)
		}
		size += appendHeaderSize + len(m.Topic) + len(m.Properties) + len(m.Body)
	}
	if uint64(size-6) > maxAppendPayload {
		return nil, fmt.Errorf("fsm: encode append: batch of %d bytes too large", size)
	}
	b := make([]byte, size)
	b[0] = byte(CmdAppend)
	b[1] = 0xC6
	binary.BigEndian.PutUint32(b[2:], uint32(size-6))
	b[6] = appendVersion
	binary.BigEndian.PutUint64(b[7:], uint64(c.StoreTimestamp))
	binary.BigEndian.PutUint32(b[15:], uint32(len(c.Messages)))
	h := appendPrefixSize
	s := h + len(c.Messages)*appendHeaderSize
	body := s
	for _, m := range c.Messages {
		body += len(m.Topic) + len(m.Properties)
	}
	for _, m := range c.Messages {
		hb := b[h : h+appendHeaderSize]
		binary.BigEndian.PutUint16(hb[0:], uint16(len(m.Topic)))
		binary.BigEndian.PutUint32(hb[2:], uint32(len(m.Properties)))
		binary.BigEndian.PutUint32(hb[6:], uint32(len(m.Body)))
		binary.BigEndian.PutUint32(hb[10:], uint32(m.QueueID))
		binary.BigEndian.PutUint32(hb[14:], uint32(m.Flag))
		binary.BigEndian.PutUint32(hb[18:], uint32(m.SysFlag))
		binary.BigEndian.PutUint64(hb[22:], uint64(m.BornTimestamp))
		putHost(hb[30:], m.BornHost)
		putHost(hb[30+hostSize:], m.StoreHost)
		binary.BigEndian.PutUint32(hb[68:], uint32(m.ReconsumeTimes))
		binary.BigEndian.PutUint64(hb[72:], uint64(m.PreparedTxOffset))
		h += appendHeaderSize
		s += copy(b[s:], m.Topic)
		s += copy(b[s:], m.Properties)
		body += copy(b[body:], m.Body)
	}
	return b, nil
}

func putHost(b []byte, ap netip.AddrPort) {
	a := ap.Addr()
	switch {
	case a.Is4():
		b[0] = 4
		a4 := a.As4()
		copy(b[1:], a4[:])
	case a.Is6():
		b[0] = 6
		a16 := a.As16()
		copy(b[1:], a16[:])
	default:
		b[0] = 0
		return
	}
	binary.BigEndian.PutUint16(b[17:], ap.Port())
}

func getHost(b []byte) (netip.AddrPort, error) {
	port := binary.BigEndian.Uint16(b[17:])
	switch b[0] {
	case 0:
		return netip.AddrPort{}, nil
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[1:5])), port), nil
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[1:17])), port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%w: host kind %d", ErrCorruptCommand, b[0])
}

// DecodeAppend decodes the body of a CmdAppend entry (data without the type
// byte). The messages' bodies alias data; topics and properties share one
// string allocation.
func DecodeAppend(data []byte) (*AppendCommand, error) {
	if len(data) < appendPrefixSize-1 || data[0] != 0xC6 {
		return nil, fmt.Errorf("%w: append: bad envelope", ErrCorruptCommand)
	}
	if n := binary.BigEndian.Uint32(data[1:]); uint64(n) != uint64(len(data)-5) {
		return nil, fmt.Errorf("%w: append: envelope says %d bytes, have %d", ErrCorruptCommand, n, len(data)-5)
	}
	p := data[5:]
	if p[0] != appendVersion {
		return nil, fmt.Errorf("%w: append: version %d", ErrCorruptCommand, p[0])
	}
	c := &AppendCommand{StoreTimestamp: int64(binary.BigEndian.Uint64(p[1:]))}
	count := uint64(binary.BigEndian.Uint32(p[9:]))
	p = p[13:]
	if count*appendHeaderSize > uint64(len(p)) {
		return nil, fmt.Errorf("%w: append: %d messages do not fit in %d bytes", ErrCorruptCommand, count, len(p))
	}
	n := int(count)
	hdrs := p[:n*appendHeaderSize]
	var strLen, bodyLen uint64
	for i := 0; i < n; i++ {
		hb := hdrs[i*appendHeaderSize:]
		strLen += uint64(binary.BigEndian.Uint16(hb)) + uint64(binary.BigEndian.Uint32(hb[2:]))
		bodyLen += uint64(binary.BigEndian.Uint32(hb[6:]))
	}
	rest := p[n*appendHeaderSize:]
	if strLen+bodyLen != uint64(len(rest)) {
		return nil, fmt.Errorf("%w: append: lengths sum to %d, have %d bytes", ErrCorruptCommand, strLen+bodyLen, len(rest))
	}
	strs := string(rest[:strLen])
	bodies := rest[strLen:]
	msgs := make([]commitlog.Message, n)
	c.Messages = make([]*commitlog.Message, n)
	var so, bo int
	for i := range msgs {
		hb := hdrs[i*appendHeaderSize : (i+1)*appendHeaderSize]
		m := &msgs[i]
		tl := int(binary.BigEndian.Uint16(hb))
		pl := int(binary.BigEndian.Uint32(hb[2:]))
		bl := int(binary.BigEndian.Uint32(hb[6:]))
		m.Topic = strs[so : so+tl]
		m.Properties = strs[so+tl : so+tl+pl]
		so += tl + pl
		m.Body = bodies[bo : bo+bl : bo+bl]
		bo += bl
		m.QueueID = int32(binary.BigEndian.Uint32(hb[10:]))
		m.Flag = int32(binary.BigEndian.Uint32(hb[14:]))
		m.SysFlag = int32(binary.BigEndian.Uint32(hb[18:]))
		m.BornTimestamp = int64(binary.BigEndian.Uint64(hb[22:]))
		var err error
		if m.BornHost, err = getHost(hb[30:]); err != nil {
			return nil, err
		}
		if m.StoreHost, err = getHost(hb[30+hostSize:]); err != nil {
			return nil, err
		}
		m.ReconsumeTimes = int32(binary.BigEndian.Uint32(hb[68:]))
		m.PreparedTxOffset = int64(binary.BigEndian.Uint64(hb[72:]))
		c.Messages[i] = m
	}
	return c, nil
}

// Decode decodes raft.Log.Data into its type and command struct (a pointer:
// *AppendCommand, *PutTopicCommand, ...). Unknown types return an error
// wrapping ErrUnknownCommand, undecodable bodies one wrapping
// ErrCorruptCommand.
func Decode(data []byte) (CommandType, any, error) {
	if len(data) == 0 {
		return 0, nil, fmt.Errorf("%w: empty entry", ErrCorruptCommand)
	}
	t := CommandType(data[0])
	var v any
	switch t {
	case CmdAppend:
		c, err := DecodeAppend(data[1:])
		if err != nil {
			return t, nil, err
		}
		return t, c, nil
	case CmdPutTopic:
		v = new(PutTopicCommand)
	case CmdDeleteTopic:
		v = new(DeleteTopicCommand)
	case CmdPutGroup:
		v = new(PutGroupCommand)
	case CmdDeleteGroup:
		v = new(DeleteGroupCommand)
	case CmdCommitOffsets:
		v = new(CommitOffsetsCommand)
	case CmdSetMember:
		v = new(SetMemberCommand)
	case CmdDeliverScheduled:
		v = new(DeliverScheduledCommand)
	case CmdEndTx:
		v = new(EndTxCommand)
	case CmdTxCheck:
		v = new(TxCheckCommand)
	default:
		return t, nil, fmt.Errorf("%w: %d", ErrUnknownCommand, uint8(t))
	}
	if err := msgpack.Unmarshal(data[1:], v); err != nil {
		return t, nil, fmt.Errorf("%w: %v: %v", ErrCorruptCommand, t, err)
	}
	return t, v, nil
}
