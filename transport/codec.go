package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// DefaultMaxFrameSize is the default limit on a frame's declared length, as
// in RocketMQ's NettyDecoder.
const DefaultMaxFrameSize = 16 << 20

const (
	// maxHeaderLen is what fits in the 24 low bits of the header-length word.
	maxHeaderLen = 1<<24 - 1
	// binaryFixedLen is the fixed part of a ROCKETMQ binary header:
	// code 2, language 1, version 2, opaque 4, flag 4, remarkLen 4, extLen 4.
	binaryFixedLen = 21
	// scratchKeep is the largest decode/encode scratch buffer kept for reuse.
	scratchKeep = 64 << 10
)

// malformed returns an error wrapping ErrMalformedFrame that says what was
// wrong.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedFrame, fmt.Sprintf(format, args...))
}

// AppendFrame appends c encoded as one frame (in c.SerializeType) to dst.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	return appendFrame(dst, c, c.Opaque, c.Flag, c.SerializeType)
}

// EncodeFrame returns c encoded as one frame.
func EncodeFrame(c *Command) ([]byte, error) {
	return AppendFrame(nil, c)
}

// appendFrame encodes c with the given opaque, flag and header encoding,
// which override c's own fields (so that a shared Command is never mutated).
func appendFrame(dst []byte, c *Command, opaque, flag int32, st SerializeType) ([]byte, error) {
	dst, err := appendFrameHead(dst, c, opaque, flag, st)
	if err != nil {
		return dst, err
	}
	return append(dst, c.Body...), nil
}

// putPrefix writes the length word and the header-length word.
func putPrefix(p []byte, total, hlen int, st SerializeType) {
	binary.BigEndian.PutUint32(p, uint32(total))
	binary.BigEndian.PutUint32(p[4:], uint32(st)<<24|uint32(hlen))
}

// appendHeader appends only the header of c.
func appendHeader(dst []byte, c *Command, opaque, flag int32, st SerializeType) ([]byte, error) {
	switch st {
	case SerializeJSON:
		return appendJSONHeader(dst, c, opaque, flag), nil
	case SerializeRocketMQ:
		return appendBinaryHeader(dst, c, opaque, flag)
	}
	return dst, fmt.Errorf("transport: encode: unknown serialize type %d", st)
}

// sortedKeys returns the keys of m in order, using buf when it is big enough.
func sortedKeys(m map[string]string, buf []string) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendBinaryHeader(dst []byte, c *Command, opaque, flag int32) ([]byte, error) {
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Code))
	dst = append(dst, byte(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if len(c.ExtFields) > 0 {
		var buf [16]string
		for _, k := range sortedKeys(c.ExtFields, buf[:]) {
			if len(k) > 1<<15-1 {
				return dst, fmt.Errorf("transport: encode: ext key of %d bytes exceeds 32767", len(k))
			}
			v := c.ExtFields[k]
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
			dst = append(dst, k...)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst, nil
}

// DecodeFrame decodes one whole frame (starting with the length word). It
// returns ErrFrameTooLarge when the declared length exceeds maxFrame (<= 0
// means DefaultMaxFrameSize) and ErrMalformedFrame for anything else wrong,
// including trailing bytes. The body aliases frame.
func DecodeFrame(frame []byte, maxFrame int) (*Command, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	if len(frame) < 8 {
		return nil, malformed("frame of %d bytes is shorter than 8", len(frame))
	}
	total, hlen, st, err := parsePrefix(frame[:8], maxFrame)
	if err != nil {
		return nil, err
	}
	if len(frame)-4 != total {
		return nil, malformed("frame declares %d bytes after the length word, has %d", total, len(frame)-4)
	}
	cmd, err := decodeHeader(frame[8:8+hlen], st)
	if err != nil {
		return nil, err
	}
	if body := frame[8+hlen:]; len(body) > 0 {
		cmd.Body = body
	}
	return cmd, nil
}

// parsePrefix checks the 8-byte frame prefix and returns the declared length
// (excluding the length word), the header length and the serialize type.
func parsePrefix(p []byte, maxFrame int) (total, hlen int, st SerializeType, err error) {
	t := int32(binary.BigEndian.Uint32(p))
	if t < 0 {
		return 0, 0, 0, malformed("negative frame length %d", t)
	}
	if int64(t) > int64(maxFrame) {
		return 0, 0, 0, fmt.Errorf("%w: declared length %d exceeds the limit %d", ErrFrameTooLarge, t, maxFrame)
	}
	if t < 4 {
		return 0, 0, 0, malformed("frame length %d is shorter than the header-length word", t)
	}
	info := binary.BigEndian.Uint32(p[4:])
	st = SerializeType(info >> 24)
	hlen = int(info & maxHeaderLen)
	if st != SerializeJSON && st != SerializeRocketMQ {
		return 0, 0, 0, malformed("unknown serialize type %d", st)
	}
	if hlen > int(t)-4 {
		return 0, 0, 0, malformed("header length %d exceeds frame length %d", hlen, t)
	}
	return int(t), hlen, st, nil
}

func decodeHeader(h []byte, st SerializeType) (*Command, error) {
	var (
		cmd *Command
		err error
	)
	if st == SerializeRocketMQ {
		cmd, err = decodeBinaryHeader(h)
	} else {
		cmd, err = decodeJSONHeader(h)
	}
	if err != nil {
		return nil, err
	}
	cmd.SerializeType = st
	return cmd, nil
}

func decodeBinaryHeader(h []byte) (*Command, error) {
	if len(h) < binaryFixedLen {
		return nil, malformed("binary header of %d bytes is shorter than %d", len(h), binaryFixedLen)
	}
	cmd := &Command{
		Code:     int16(binary.BigEndian.Uint16(h)),
		Language: LanguageCode(h[2]),
		Version:  int16(binary.BigEndian.Uint16(h[3:])),
		Opaque:   int32(binary.BigEndian.Uint32(h[5:])),
		Flag:     int32(binary.BigEndian.Uint32(h[9:])),
	}
	p := h[13:]
	rlen := int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if rlen < 0 || int(rlen) > len(p) {
		return nil, malformed("binary header: remark length %d, %d bytes left", rlen, len(p))
	}
	if rlen > 0 {
		cmd.Remark = string(p[:rlen])
	}
	p = p[rlen:]
	if len(p) < 4 {
		return nil, malformed("binary header: no room for the ext length")
	}
	elen := int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if elen < 0 || int(elen) > len(p) {
		return nil, malformed("binary header: ext length %d, %d bytes left", elen, len(p))
	}
	// Bytes after the ext fields are ignored, as Java and Go do.
	p = p[:elen]
	for len(p) > 0 {
		if len(p) < 2 {
			return nil, malformed("binary header: truncated ext key length")
		}
		klen := int16(binary.BigEndian.Uint16(p))
		p = p[2:]
		if klen < 0 || int(klen) > len(p) {
			return nil, malformed("binary header: ext key length %d, %d bytes left", klen, len(p))
		}
		key := internKey(p[:klen])
		p = p[klen:]
		if len(p) < 4 {
			return nil, malformed("binary header: truncated ext value length for %q", key)
		}
		vlen := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if vlen < 0 || int(vlen) > len(p) {
			return nil, malformed("binary header: ext value length %d for %q, %d bytes left", vlen, key, len(p))
		}
		if cmd.ExtFields == nil {
			cmd.ExtFields = make(map[string]string, 8)
		}
		cmd.ExtFields[key] = string(p[:vlen])
		p = p[vlen:]
	}
	return cmd, nil
}

// FrameReader reads frames from a stream. It never allocates more than the
// frame limit for one frame, and rejects an oversize frame before reading it.
type FrameReader struct {
	r        *bufio.Reader
	maxFrame int
	scratch  []byte
}

// NewFrameReader returns a reader of frames of at most maxFrame declared
// bytes (<= 0 means DefaultMaxFrameSize). r is wrapped in a bufio.Reader
// unless it is one.
func NewFrameReader(r io.Reader, maxFrame int) *FrameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrameSize
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 32<<10)
	}
	return &FrameReader{r: br, maxFrame: maxFrame}
}

// Read returns the next frame. At a clean end of stream (between frames) it
// returns io.EOF; a stream cut inside a frame gives io.ErrUnexpectedEOF.
// Errors wrapping ErrFrameTooLarge or ErrMalformedFrame leave the stream in
// an undefined position: close it.
func (fr *FrameReader) Read() (*Command, error) {
	p, err := fr.r.Peek(8)
	if err != nil {
		if err == io.EOF && len(p) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	total, hlen, st, err := parsePrefix(p, fr.maxFrame)
	if err != nil {
		return nil, err
	}
	if _, err := fr.r.Discard(8); err != nil {
		return nil, err
	}
	var h []byte
	if hlen <= fr.r.Size() {
		// Decode straight out of the bufio buffer; strings are copied.
		h, err = fr.r.Peek(hlen)
		if err != nil {
			return nil, eofUnexpected(err)
		}
	} else {
		if cap(fr.scratch) < hlen {
			fr.scratch = make([]byte, hlen)
		}
		h = fr.scratch[:hlen]
		if _, err := io.ReadFull(fr.r, h); err != nil {
			return nil, eofUnexpected(err)
		}
	}
	cmd, err := decodeHeader(h, st)
	if hlen <= fr.r.Size() {
		fr.r.Discard(hlen) //nolint:errcheck // Peek above proved the bytes are buffered
	} else if cap(fr.scratch) > scratchKeep {
		fr.scratch = nil
	}
	if err != nil {
		return nil, err
	}
	if blen := total - 4 - hlen; blen > 0 {
		cmd.Body = make([]byte, blen)
		if _, err := io.ReadFull(fr.r, cmd.Body); err != nil {
			return nil, eofUnexpected(err)
		}
	}
	return cmd, nil
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// commonKeys holds ext keys the clients send on every request, so decoding
// them does not allocate.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"topic", "queueId", "consumerGroup", "producerGroup", "queueOffset", "maxMsgNums", "sysFlag",
		"commitOffset", "suspendTimeoutMillis", "subscription", "subVersion", "expressionType",
		"bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode", "maxReconsumeTimes",
		"batch", "defaultTopic", "defaultTopicQueueNums", "offset", "msgId", "brokerName",
		"brokerAddr", "clusterName", "haServerAddr", "brokerId", "compressed", "bodyCrc32",
		"nextBeginOffset", "minOffset", "maxOffset", "suggestWhichBrokerId", "timestamp", "group",
		"delayLevel", "originMsgId", "originTopic", "transactionId", "tranStateTableOffset",
		"commitLogOffset", "commitOrRollback", "fromTransactionCheck", "masterAddr", "changed",
		"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
	} {
		m[k] = k
	}
	return m
}()

// internKey returns b as a string, without allocating for common keys.
func internKey(b []byte) string {
	if s, ok := commonKeys[string(b)]; ok {
		return s
	}
	return string(b)
}
