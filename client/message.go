package client

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/message"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// MessageQueue names one queue of a topic on one broker group: Topic, BrokerName, QueueID.
// It is RocketMQ's MessageQueue as the remoting bodies carry it; its String is
// "topic@brokerName:queueId".
type MessageQueue = rmqbody.MessageQueue

func sortQueues(qs []MessageQueue) { slices.SortFunc(qs, MessageQueue.Compare) }

// Message is what a producer sends.
type Message struct {
	Topic string
	Body  []byte
	// Tags is the message's tag (one word; consumers filter on it).
	Tags string
	// Keys are indexed by the broker for QueryMessageByKey; no spaces inside a key.
	Keys []string
	// ShardingKey makes the default selector pick the queue by its hash, so messages with
	// one key keep their order (and retries go to the same queue).
	ShardingKey string
	// DelayLevel 1..18 delays delivery (1s 5s 10s 30s 1m ... 2h); 0 = none.
	DelayLevel int
	// Flag is an opaque user int stored with the message.
	Flag int32
	// Properties are user properties; keys must not collide with the system keys
	// (TAGS, KEYS, UNIQ_KEY, ...), which are set from the fields above.
	Properties map[string]string
}

// MessageExt is a message as consumed.
type MessageExt struct {
	Message
	MsgID          string // UNIQ_KEY, or OffsetMsgID when the producer set none
	OffsetMsgID    string // store host + physical offset
	Queue          MessageQueue
	QueueOffset    int64
	PhysicalOffset int64
	StoreHost      string
	BornHost       string
	BornTimestamp  time.Time
	StoreTimestamp time.Time
	ReconsumeTimes int
	SysFlag        int32
	// PreparedTxOffset is the half message's offset for transaction checks.
	PreparedTxOffset int64
}

// Property returns a system or user property of the stored message.
func (m *MessageExt) Property(key string) string { return m.Properties[key] }

var systemKeys = map[string]bool{
	message.PropertyTags: true, message.PropertyKeys: true, message.PropertyUniqKey: true,
	message.PropertyDelayLevel: true, message.PropertyTransactionPrepared: true,
	message.PropertyProducerGroup: true, message.PropertyShardingKey: true,
	message.PropertyWaitStoreMsgOK: true,
}

// validate checks m before it is sent; maxBody <= 0 means 4 MiB.
func (m *Message) validate(maxBody int) error {
	if err := message.ValidateTopic(m.Topic); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if isReservedTopic(m.Topic) {
		return fmt.Errorf("%w: topic %q is reserved", ErrInvalidMessage, m.Topic)
	}
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: empty body", ErrInvalidMessage)
	}
	if maxBody <= 0 {
		maxBody = message.DefaultMaxMessageSize
	}
	if len(m.Body) > maxBody {
		return fmt.Errorf("%w: body of %d bytes exceeds the limit of %d", ErrInvalidMessage, len(m.Body), maxBody)
	}
	if m.DelayLevel < 0 || m.DelayLevel > 18 {
		return fmt.Errorf("%w: DelayLevel %d outside 0..18", ErrInvalidMessage, m.DelayLevel)
	}
	for _, k := range m.Keys {
		if k == "" || strings.ContainsAny(k, " \x01\x02") {
			return fmt.Errorf("%w: key %q is empty or holds a space or separator", ErrInvalidMessage, k)
		}
	}
	if strings.ContainsAny(m.Tags, " \x01\x02|") {
		return fmt.Errorf("%w: tag %q holds a space, '|' or separator", ErrInvalidMessage, m.Tags)
	}
	for k := range m.Properties {
		if systemKeys[k] {
			return fmt.Errorf("%w: property %q is a system key; use the Message field", ErrInvalidMessage, k)
		}
	}
	return nil
}

func isReservedTopic(t string) bool {
	return t == "TBW102" || strings.HasPrefix(t, "%RETRY%") || strings.HasPrefix(t, "%DLQ%") ||
		t == "SCHEDULE_TOPIC_XXXX" || strings.HasPrefix(t, "RMQ_SYS_")
}

// properties builds the wire property string of m with the given UNIQ_KEY and extra
// system properties.
func (m *Message) properties(uniq string, extra ...string) (string, error) {
	if len(m.Properties) == 0 && len(extra) == 0 {
		// The common case: only the Message fields, in sorted key order, no map.
		var delay string
		if m.DelayLevel > 0 {
			delay = strconv.Itoa(m.DelayLevel)
		}
		s, err := message.BuildSortedProperties(
			message.PropertyDelayLevel, delay,
			message.PropertyKeys, strings.Join(m.Keys, message.KeySeparator),
			message.PropertyShardingKey, m.ShardingKey,
			message.PropertyTags, m.Tags,
			message.PropertyUniqKey, uniq)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalidMessage, err)
		}
		return s, nil
	}
	p := make(map[string]string, len(m.Properties)+6)
	for k, v := range m.Properties {
		p[k] = v
	}
	if m.Tags != "" {
		p[message.PropertyTags] = m.Tags
	}
	if len(m.Keys) > 0 {
		p[message.PropertyKeys] = strings.Join(m.Keys, message.KeySeparator)
	}
	if m.DelayLevel > 0 {
		p[message.PropertyDelayLevel] = strconv.Itoa(m.DelayLevel)
	}
	if m.ShardingKey != "" {
		p[message.PropertyShardingKey] = m.ShardingKey
	}
	if uniq != "" {
		p[message.PropertyUniqKey] = uniq
	}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	s, err := message.BuildProperties(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return s, nil
}

// ---- UNIQ_KEY ----

// uniqPrefix is ip(4) + pid(2) + a random stand-in for Java's class-loader hash(4), in hex.
var uniqPrefix = func() string {
	var b [10]byte
	ip := localIP()
	copy(b[:4], ip.AsSlice())
	binary.BigEndian.PutUint16(b[4:6], uint16(os.Getpid()))
	_, _ = rand.Read(b[6:10])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}()

var uniqCounter atomic.Uint32

// uniqMonth caches the start of the current month (the UNIQ_KEY's time base) and of the next.
var uniqMonth atomic.Pointer[[2]time.Time]

// newUniqID returns a 32-hex-character message id: the process prefix, the milliseconds
// since the start of the month and a 16-bit counter (RocketMQ's MessageClientIDSetter).
func newUniqID() string {
	now := time.Now()
	m := uniqMonth.Load()
	if m == nil || now.Before(m[0]) || !now.Before(m[1]) {
		start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
		m = &[2]time.Time{start, start.AddDate(0, 1, 0)}
		uniqMonth.Store(m)
	}
	var b [6]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Sub(m[0]).Milliseconds()))
	binary.BigEndian.PutUint16(b[4:], uint16(uniqCounter.Add(1)))
	const upperHex = "0123456789ABCDEF"
	var out [32]byte
	copy(out[:20], uniqPrefix) // upper-case hex already
	for i, c := range b {
		out[20+2*i], out[21+2*i] = upperHex[c>>4], upperHex[c&15]
	}
	return string(out[:])
}

// localIP is the first non-loopback IPv4 address, else 127.0.0.1.
func localIP() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
				if v4 := n.IP.To4(); v4 != nil {
					return netip.AddrFrom4([4]byte(v4))
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// ---- bodies ----

func compress(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxInflate bounds an inflated body (no zip bombs).
const maxInflate = 64 << 20

func inflate(body []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflate+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxInflate {
		return nil, fmt.Errorf("inflated body exceeds %d bytes", maxInflate)
	}
	return out, nil
}

// encodeBatchBody encodes SEND_BATCH_MESSAGE's body: repeated TOTALSIZE | MAGIC 0 |
// BODYCRC 0 | FLAG | BODYLEN + body | PROPLEN int16 + properties.
func encodeBatchBody(bodies [][]byte, flags []int32, props []string) []byte {
	n := 0
	for i := range bodies {
		n += 22 + len(bodies[i]) + len(props[i])
	}
	out := make([]byte, 0, n)
	for i := range bodies {
		total := 22 + len(bodies[i]) + len(props[i])
		out = binary.BigEndian.AppendUint32(out, uint32(total))
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, uint32(flags[i]))
		out = binary.BigEndian.AppendUint32(out, uint32(len(bodies[i])))
		out = append(out, bodies[i]...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(props[i])))
		out = append(out, props[i]...)
	}
	return out
}

// decodeMessages decodes a PULL body (concatenated stored records) for queue mq.
func decodeMessages(body []byte, mq MessageQueue) ([]*MessageExt, error) {
	var out []*MessageExt
	for len(body) > 0 {
		rec, n, err := message.DecodeRecord(body)
		if err != nil {
			return out, fmt.Errorf("client: decode message at byte %d: %w", len(body), err)
		}
		body = body[n:]
		m, err := fromRecord(rec)
		if err != nil {
			return out, err
		}
		m.Queue = mq
		out = append(out, m)
	}
	return out, nil
}

func fromRecord(rec *message.MessageExt) (*MessageExt, error) {
	props := message.ParseProperties(rec.Properties)
	body := rec.Body
	if rec.SysFlag&message.FlagCompressed != 0 {
		b, err := inflate(body)
		if err != nil {
			return nil, fmt.Errorf("client: inflate body at offset %d: %w", rec.PhysicalOffset, err)
		}
		body = b
	}
	m := &MessageExt{
		Message: Message{
			Topic:       rec.Topic,
			Body:        body,
			Tags:        props[message.PropertyTags],
			ShardingKey: props[message.PropertyShardingKey],
			Flag:        rec.Flag,
			Properties:  props,
		},
		OffsetMsgID:      message.OffsetMsgID(rec.StoreHost, rec.PhysicalOffset),
		Queue:            MessageQueue{Topic: rec.Topic, QueueID: int(rec.QueueID)},
		QueueOffset:      rec.QueueOffset,
		PhysicalOffset:   rec.PhysicalOffset,
		StoreHost:        rec.StoreHost.String(),
		BornHost:         rec.BornHost.String(),
		BornTimestamp:    time.UnixMilli(rec.BornTimestamp),
		StoreTimestamp:   time.UnixMilli(rec.StoreTimestamp),
		ReconsumeTimes:   int(rec.ReconsumeTimes),
		SysFlag:          rec.SysFlag,
		PreparedTxOffset: rec.PreparedTxOffset,
	}
	if k := props[message.PropertyKeys]; k != "" {
		message.SplitKeys(k, func(key string) { m.Keys = append(m.Keys, key) })
	}
	if d := props[message.PropertyDelayLevel]; d != "" {
		m.DelayLevel, _ = strconv.Atoi(d)
	}
	m.MsgID = props[message.PropertyUniqKey]
	if m.MsgID == "" {
		m.MsgID = m.OffsetMsgID
	}
	return m, nil
}
