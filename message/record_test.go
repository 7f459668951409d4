package message

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenMessage is the fixed record of testdata/record_v1.golden (IPv4 hosts).
func goldenMessage() *Message {
	return &Message{
		Topic:            "TopicTest",
		QueueID:          3,
		Flag:             7,
		SysFlag:          FlagMultiTags,
		BornTimestamp:    1700000000123,
		BornHost:         netip.MustParseAddrPort("192.168.1.20:54321"),
		StoreHost:        netip.MustParseAddrPort("10.0.0.1:10911"),
		ReconsumeTimes:   2,
		PreparedTxOffset: 0,
		Body:             []byte("Hello RocketMQ 0"),
		Properties: "KEYS\x01order-1 order-2\x02TAGS\x01TagA\x02UNIQ_KEY\x01C0A80114D43118B4AAC21B6A5D700000" +
			"\x02WAIT\x01true",
	}
}

// goldenMessageV6 is the fixed record of testdata/record_v6.golden (IPv6 hosts).
func goldenMessageV6() *Message {
	m := goldenMessage()
	m.BornHost = netip.MustParseAddrPort("[2001:db8::20]:54321")
	m.StoreHost = netip.MustParseAddrPort("[fe80::1%eth0]:10911") // zone is dropped
	m.Properties += "\x02"                                        // Go client style trailing separator
	return m
}

const (
	goldenQueueOffset = 42
	goldenPhysOffset  = 1 << 30
	goldenStoreTime   = 1700000000456
)

func encode(t testing.TB, m *Message, qo, po, st int64) []byte {
	t.Helper()
	b := make([]byte, m.EncodedSize())
	if n := EncodeRecord(b, m, qo, po, st); n != len(b) {
		t.Fatalf("EncodeRecord wrote %d bytes, EncodedSize %d", n, len(b))
	}
	return b
}

func TestGoldenRecord(t *testing.T) {
	for _, tc := range []struct {
		file string
		m    *Message
	}{
		{"record_v1.golden", goldenMessage()},
		{"record_v6.golden", goldenMessageV6()},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := encode(t, tc.m, goldenQueueOffset, goldenPhysOffset, goldenStoreTime)
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (regenerate with -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
			}
			m, n, err := DecodeRecord(want)
			if err != nil || n != len(want) {
				t.Fatalf("DecodeRecord: n=%d err=%v", n, err)
			}
			if m.Topic != tc.m.Topic || !bytes.Equal(m.Body, tc.m.Body) || m.Properties != tc.m.Properties ||
				m.QueueID != tc.m.QueueID || m.Flag != tc.m.Flag || m.BornTimestamp != tc.m.BornTimestamp ||
				m.ReconsumeTimes != tc.m.ReconsumeTimes || m.QueueOffset != goldenQueueOffset ||
				m.PhysicalOffset != goldenPhysOffset || m.StoreTimestamp != goldenStoreTime ||
				m.BornHost != tc.m.BornHost || m.StoreHost.Port() != tc.m.StoreHost.Port() ||
				m.StoreHost.Addr() != tc.m.StoreHost.Addr().WithZone("") || int(m.StoreSize) != n {
				t.Fatalf("decoded %+v, want %+v", m, tc.m)
			}
		})
	}
}

// TestRecordLayout checks the field positions against the format table by hand, independent
// of the encoder's own offsets (what the RocketMQ clients read field by field).
func TestRecordLayout(t *testing.T) {
	m := goldenMessage()
	b := encode(t, m, goldenQueueOffset, goldenPhysOffset, goldenStoreTime)
	if want := 91 + len(m.Body) + len(m.Topic) + len(m.Properties); len(b) != want {
		t.Fatalf("size %d, want 91 + variable = %d", len(b), want)
	}
	be := binary.BigEndian
	r := bytes.NewReader(b)
	next := func(n int) []byte {
		p := make([]byte, n)
		if _, err := r.Read(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	u32 := func() uint32 { return be.Uint32(next(4)) }
	u64 := func() uint64 { return be.Uint64(next(8)) }
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("TOTALSIZE", u32(), uint32(len(b)))
	check("MAGIC", u32(), uint32(0xDAA320A7))
	check("BODYCRC", u32(), BodyCRC(m.Body))
	check("QUEUEID", u32(), uint32(3))
	check("FLAG", u32(), uint32(7))
	check("QUEUEOFFSET", u64(), uint64(goldenQueueOffset))
	check("PHYSICALOFFSET", u64(), uint64(goldenPhysOffset))
	check("SYSFLAG", u32(), uint32(FlagMultiTags))
	check("BORNTIMESTAMP", u64(), uint64(1700000000123))
	check("BORNHOST ip", string(next(4)), string([]byte{192, 168, 1, 20}))
	check("BORNHOST port", u32(), uint32(54321))
	check("STORETIMESTAMP", u64(), uint64(goldenStoreTime))
	check("STOREHOST ip", string(next(4)), string([]byte{10, 0, 0, 1}))
	check("STOREHOST port", u32(), uint32(10911))
	check("RECONSUMETIMES", u32(), uint32(2))
	check("PREPARED_TX_OFFSET", u64(), uint64(0))
	check("BODYLEN", u32(), uint32(len(m.Body)))
	check("BODY", string(next(len(m.Body))), string(m.Body))
	check("TOPICLEN", next(1)[0], byte(len(m.Topic)))
	check("TOPIC", string(next(len(m.Topic))), m.Topic)
	check("PROPLEN", be.Uint16(next(2)), uint16(len(m.Properties)))
	check("PROPERTIES", string(next(len(m.Properties))), m.Properties)
	check("remaining", r.Len(), 0)
	// The CRC is RocketMQ's UtilAll.crc32: CRC-32/IEEE of the body, masked to 31 bits.
	check("crc(\"123456789\")", BodyCRC([]byte("123456789")), uint32(0xCBF43926&0x7FFFFFFF))
}

func TestHostEncoding(t *testing.T) {
	for _, tc := range []struct {
		name     string
		host     netip.AddrPort
		v6       bool
		wantHost netip.AddrPort
	}{
		{"ipv4", netip.MustParseAddrPort("1.2.3.4:5"), false, netip.MustParseAddrPort("1.2.3.4:5")},
		{"ipv4-mapped is stored as ipv4", netip.MustParseAddrPort("[::ffff:1.2.3.4]:5"), false, netip.MustParseAddrPort("1.2.3.4:5")},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::1]:65535"), true, netip.MustParseAddrPort("[2001:db8::1]:65535")},
		{"ipv6 zone dropped", netip.MustParseAddrPort("[fe80::1%lo]:1"), true, netip.MustParseAddrPort("[fe80::1]:1")},
		{"zero", netip.AddrPort{}, false, netip.MustParseAddrPort("0.0.0.0:0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goldenMessage()
			m.BornHost, m.StoreHost = tc.host, tc.host
			m.SysFlag = FlagBornHostV6 | FlagStoreHostV6 | FlagCompressed // host bits are recomputed
			b := encode(t, m, 1, 2, 3)
			wantLen := 91
			wantFlag := int32(FlagCompressed)
			if tc.v6 {
				wantLen += 24
				wantFlag |= FlagBornHostV6 | FlagStoreHostV6
			}
			if got := len(b) - len(m.Body) - len(m.Topic) - len(m.Properties); got != wantLen {
				t.Fatalf("fixed part %d bytes, want %d", got, wantLen)
			}
			d, _, err := DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if d.SysFlag != wantFlag || d.BornHost != tc.wantHost || d.StoreHost != tc.wantHost {
				t.Fatalf("sysflag 0x%X hosts %v %v, want 0x%X %v", d.SysFlag, d.BornHost, d.StoreHost, wantFlag, tc.wantHost)
			}
		})
	}
	// Mixed: IPv6 born host, IPv4 store host.
	m := goldenMessage()
	m.BornHost = netip.MustParseAddrPort("[::1]:9")
	b := encode(t, m, 0, 0, 0)
	d, _, err := DecodeRecord(b)
	if err != nil || d.SysFlag&(FlagBornHostV6|FlagStoreHostV6) != FlagBornHostV6 || d.BornHost != m.BornHost || d.StoreHost != m.StoreHost {
		t.Fatalf("mixed hosts: %+v %v", d, err)
	}
}

func TestEncodeRecordRefuses(t *testing.T) {
	m := goldenMessage()
	if n := EncodeRecord(make([]byte, m.EncodedSize()-1), m, 0, 0, 0); n != 0 {
		t.Fatalf("short dst: wrote %d", n)
	}
	for _, mut := range []func(*Message){
		func(m *Message) { m.Topic = "" },
		func(m *Message) { m.Topic = strings.Repeat("a", 128) },
		func(m *Message) { m.Properties = "k\x01" + strings.Repeat("v", MaxPropertiesLen) },
	} {
		m := goldenMessage()
		mut(m)
		dst := make([]byte, m.EncodedSize()+10)
		if n := EncodeRecord(dst, m, 0, 0, 0); n != 0 || !bytes.Equal(dst, make([]byte, len(dst))) {
			t.Fatalf("unrepresentable message %q...: wrote %d", m.Topic[:min(len(m.Topic), 8)], n)
		}
	}
	// Edge sizes that are representable.
	m = goldenMessage()
	m.Topic = strings.Repeat("T", MaxTopicLen)
	m.Properties = "k\x01" + strings.Repeat("v", MaxPropertiesLen-2)
	b := encode(t, m, 0, 0, 0)
	if d, _, err := DecodeRecord(b); err != nil || d.Topic != m.Topic || d.Properties != m.Properties {
		t.Fatalf("max topic/properties: %v", err)
	}
}

func TestEncodeAllocs(t *testing.T) {
	m := goldenMessage()
	dst := make([]byte, m.EncodedSize())
	if a := testing.AllocsPerRun(100, func() { EncodeRecord(dst, m, 1, 2, 3) }); a != 0 {
		t.Fatalf("EncodeRecord allocates %v times", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		if _, err := ParseRecordView(dst); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("ParseRecordView allocates %v times", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		if _, err := ParseRecordInfo(dst); err != nil {
			t.Fatal(err)
		}
	}); a > 2 {
		t.Fatalf("ParseRecordInfo allocates %v times, want <= 2 (topic, properties)", a)
	}
}

func TestParseRecordInfo(t *testing.T) {
	m := goldenMessage()
	b := encode(t, m, 9, 1000, 77)
	// Trailing bytes after the record are ignored.
	info, err := ParseRecordInfo(append(b, 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := RecordInfo{Size: int32(len(b)), Topic: m.Topic, QueueID: 3, QueueOffset: 9, PhysicalOffset: 1000,
		SysFlag: FlagMultiTags, StoreTimestamp: 77, Properties: m.Properties, BornTimestamp: m.BornTimestamp,
		BodyLen: int32(len(m.Body))}
	if info != want {
		t.Fatalf("got %+v\nwant %+v", info, want)
	}
}

func TestParseRecordErrors(t *testing.T) {
	good := func() []byte { return encode(t, goldenMessage(), 1, 2, 3) }
	be := binary.BigEndian
	// Offsets inside the golden (IPv4) record.
	n := len(good())
	m := goldenMessage()
	bodyLenAt := 91 - 1 - 2 - 4 // BODYLEN is right before the body
	topicLenAt := bodyLenAt + 4 + len(m.Body)
	propLenAt := topicLenAt + 1 + len(m.Topic)
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   error
		detail string
	}{
		{"short header", func(b []byte) []byte { return b[:7] }, ErrTruncated, "need at least 8"},
		{"bad magic", func(b []byte) []byte { b[4] ^= 1; return b }, ErrCorrupt, "bad magic"},
		{"zero header", func(b []byte) []byte { clear(b); return b }, ErrZeroHeader, "size and magic are 0"},
		{"size below fixed", func(b []byte) []byte { be.PutUint32(b, 90); return b }, ErrCorrupt, "minimum 91"},
		{"negative size", func(b []byte) []byte { be.PutUint32(b, 0x80000000); return b }, ErrCorrupt, "minimum"},
		{"truncated", func(b []byte) []byte { return b[:n-1] }, ErrTruncated, "only"},
		{"size too big", func(b []byte) []byte { be.PutUint32(b, uint32(n+1)); return append(b, 0) }, ErrCorrupt, "sum of field lengths"},
		{"size too small", func(b []byte) []byte { be.PutUint32(b, uint32(n-1)); return b }, ErrCorrupt, "sum of field lengths"},
		{"body crc", func(b []byte) []byte { b[bodyLenAt+4] ^= 0xFF; return b }, ErrCorrupt, "body crc"},
		{"body len huge", func(b []byte) []byte { be.PutUint32(b[bodyLenAt:], 1<<30); return b }, ErrCorrupt, "body length"},
		{"body len negative", func(b []byte) []byte { be.PutUint32(b[bodyLenAt:], 0xFFFFFFFF); return b }, ErrCorrupt, "body length"},
		{"topic len zero", func(b []byte) []byte { b[topicLenAt] = 0; return b }, ErrCorrupt, ""},
		{"topic len huge", func(b []byte) []byte { b[topicLenAt] = 0xFF; return b }, ErrCorrupt, "topic length"},
		{"topic charset", func(b []byte) []byte { b[topicLenAt+1] = '.'; return b }, ErrCorrupt, "topic byte 0x2E"},
		{"prop len", func(b []byte) []byte { be.PutUint16(b[propLenAt:], uint16(len(m.Properties)-1)); return b }, ErrCorrupt, "sum of field lengths"},
		{"prop len over 32767", func(b []byte) []byte { be.PutUint16(b[propLenAt:], 0x8000); return b }, ErrCorrupt, "properties length 32768"},
		{"born port", func(b []byte) []byte { be.PutUint32(b[offBornHost+4:], 70000); return b }, ErrCorrupt, "born host port 70000"},
		{"store port negative", func(b []byte) []byte { be.PutUint32(b[offBornHost+8+8+4:], 0xFFFFFFFF); return b }, ErrCorrupt, "store host port -1"},
		{"sysflag v6 without room", func(b []byte) []byte { b[offSysFlag+3] |= FlagBornHostV6; return b }, ErrCorrupt, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(good())
			_, err := ParseRecordInfo(b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("err = %q, want detail %q", err, tc.detail)
			}
			if _, _, derr := DecodeRecord(b); !errors.Is(derr, tc.want) {
				t.Fatalf("DecodeRecord err = %v, want %v", derr, tc.want)
			}
			if errors.Is(tc.want, ErrZeroHeader) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("zero header error %v does not match ErrCorrupt", err)
			}
		})
	}
}

func TestIPv4MappedStoredAsV6IsCorrupt(t *testing.T) {
	m := goldenMessage()
	m.StoreHost = netip.MustParseAddrPort("[2001:db8::1]:10911")
	b := encode(t, m, 0, 0, 0)
	at := offBornHost + 8 + 8 // store host
	copy(b[at:], netip.MustParseAddr("::ffff:10.0.0.1").AsSlice())
	if _, err := ParseRecordInfo(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "IPv4-mapped") {
		t.Fatalf("err = %v", err)
	}
}

func TestBlank(t *testing.T) {
	b := make([]byte, 100)
	EncodeBlank(b)
	info, err := ParseRecordInfo(b)
	if !errors.Is(err, ErrBlank) || info.Size != 100 {
		t.Fatalf("blank: size %d err %v", info.Size, err)
	}
	// The declared size may run past the bytes handed in.
	if info, err := ParseRecordInfo(b[:8]); !errors.Is(err, ErrBlank) || info.Size != 100 {
		t.Fatalf("blank header only: size %d err %v", info.Size, err)
	}
	if _, n, err := DecodeRecord(b); !errors.Is(err, ErrBlank) || n != 100 {
		t.Fatalf("DecodeRecord blank: n %d err %v", n, err)
	}
	binary.BigEndian.PutUint32(b, 7)
	if _, err := ParseRecordInfo(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("blank size 7: %v", err)
	}
	small := []byte{1, 2, 3, 4, 5, 6, 7}
	EncodeBlank(small)
	if !bytes.Equal(small, []byte{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatal("EncodeBlank wrote into a 7-byte buffer")
	}
}

func TestRecordSequence(t *testing.T) {
	// Records back to back then a blank: a segment scan sees each in turn.
	var seg []byte
	var msgs []*Message
	for i := 0; i < 5; i++ {
		m := goldenMessage()
		m.Body = bytes.Repeat([]byte{byte(i)}, i*10+1)
		m.QueueID = int32(i)
		msgs = append(msgs, m)
		seg = append(seg, encode(t, m, int64(i), int64(len(seg)), int64(i))...)
	}
	blankAt := len(seg)
	seg = append(seg, make([]byte, 64)...)
	EncodeBlank(seg[blankAt:])
	off := 0
	for i := 0; ; i++ {
		info, err := ParseRecordInfo(seg[off:])
		if errors.Is(err, ErrBlank) {
			if i != 5 || off != blankAt || int(info.Size) != 64 {
				t.Fatalf("blank at record %d offset %d size %d", i, off, info.Size)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.PhysicalOffset != int64(off) || info.QueueID != int32(i) || int(info.BodyLen) != len(msgs[i].Body) {
			t.Fatalf("record %d: %+v", i, info)
		}
		off += int(info.Size)
	}
}

func TestValidate(t *testing.T) {
	ok := goldenMessage()
	if err := ok.Validate(Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mut    func(*Message)
		l      Limits
		want   error
		detail string
	}{
		{"empty topic", func(m *Message) { m.Topic = "" }, Limits{}, ErrInvalidTopic, "1..127"},
		{"long topic", func(m *Message) { m.Topic = strings.Repeat("a", 128) }, Limits{}, ErrInvalidTopic, "128 characters"},
		{"topic charset", func(m *Message) { m.Topic = "a.b" }, Limits{}, ErrInvalidTopic, `"a.b"`},
		{"topic space", func(m *Message) { m.Topic = "a b" }, Limits{}, ErrInvalidTopic, "[%|a-zA-Z0-9_-]"},
		{"negative queue", func(m *Message) { m.QueueID = -1 }, Limits{}, ErrInvalidQueueID, "-1"},
		{"empty body", func(m *Message) { m.Body = nil }, Limits{}, ErrEmptyBody, "TopicTest"},
		{"body over limit", func(m *Message) { m.Body = make([]byte, 65537) }, Limits{MaxMessageSize: 65536}, ErrBodyTooLarge, "65537 bytes, limit 65536"},
		{"body over default", func(m *Message) { m.Body = make([]byte, 4<<20+1) }, Limits{}, ErrBodyTooLarge, "limit 4194304"},
		{"properties too large", func(m *Message) { m.Properties = "k\x01" + strings.Repeat("v", 32766) }, Limits{}, ErrPropertiesTooLarge, "32768 bytes, limit 32767"},
		{"property without separator", func(m *Message) { m.Properties = "TAGS\x01a\x02junk" }, Limits{}, ErrInvalidProperties, "no \\x01"},
		{"property value with \\x01", func(m *Message) { m.Properties = "TAGS\x01a\x01b" }, Limits{}, ErrInvalidProperties, "TAGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goldenMessage()
			tc.mut(m)
			err := m.Validate(tc.l)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.detail)
			}
		})
	}
	m := goldenMessage()
	m.Body = make([]byte, 65536)
	m.Topic = "%RETRY%group|x_y-Z9"
	if err := m.Validate(Limits{MaxMessageSize: 65536}); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"record_v1.golden", "record_v6.golden"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(encode(f, goldenMessageV6(), -1, -1, -1))
	blank := make([]byte, 16)
	EncodeBlank(blank)
	f.Add(blank)
	f.Add([]byte{})
	f.Add(make([]byte, 91))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, perr := ParseRecordInfo(b)
		m, n, derr := DecodeRecord(b)
		if (perr == nil) != (derr == nil) {
			t.Fatalf("ParseRecordInfo err %v, DecodeRecord err %v", perr, derr)
		}
		if perr != nil {
			if !errors.Is(perr, ErrCorrupt) && !errors.Is(perr, ErrTruncated) && !errors.Is(perr, ErrBlank) {
				t.Fatalf("unclassified error %v", perr)
			}
			return
		}
		if n != int(info.Size) || n > len(b) || info.Topic != m.Topic || info.Properties != m.Properties ||
			info.PhysicalOffset != m.PhysicalOffset || info.QueueOffset != m.QueueOffset {
			t.Fatalf("Parse %+v disagrees with Decode %+v (n %d)", info, m, n)
		}
		if err := ValidateTopic(m.Topic); err != nil {
			t.Fatalf("accepted record has invalid topic: %v", err)
		}
		if m.EncodedSize() != n {
			t.Fatalf("EncodedSize %d, record %d", m.EncodedSize(), n)
		}
		out := make([]byte, n)
		if w := EncodeRecord(out, &m.Message, m.QueueOffset, m.PhysicalOffset, m.StoreTimestamp); w != n {
			t.Fatalf("re-encode wrote %d, want %d", w, n)
		}
		if !bytes.Equal(out, b[:n]) {
			t.Fatalf("round trip differs:\n in %x\nout %x", b[:n], out)
		}
	})
}

func BenchmarkEncodeRecord(b *testing.B) {
	m := goldenMessage()
	m.Body = bytes.Repeat([]byte("x"), 1024)
	dst := make([]byte, m.EncodedSize())
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		EncodeRecord(dst, m, 1, 2, 3)
	}
}

func BenchmarkParseRecordInfo(b *testing.B) {
	m := goldenMessage()
	m.Body = bytes.Repeat([]byte("x"), 1024)
	rec := encode(b, m, 1, 2, 3)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecordInfo(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRecordView(b *testing.B) {
	m := goldenMessage()
	m.Body = bytes.Repeat([]byte("x"), 1024)
	rec := encode(b, m, 1, 2, 3)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecordView(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOffsetMsgID(t *testing.T) {
	for _, tc := range []struct {
		host netip.AddrPort
		off  int64
		want string
	}{
		{netip.MustParseAddrPort("10.0.0.1:10911"), 0x1234, "0A00000100002A9F0000000000001234"},
		{netip.MustParseAddrPort("[::ffff:192.168.0.1]:10911"), 1 << 40, "C0A8000100002A9F0000010000000000"},
		{netip.MustParseAddrPort("[2001:db8::1]:80"), 255, "20010DB8000000000000000000000001" + "00000050" + "00000000000000FF"},
		{netip.AddrPort{}, -1, "0000000000000000FFFFFFFFFFFFFFFF"},
	} {
		got := OffsetMsgID(tc.host, tc.off)
		if got != tc.want {
			t.Fatalf("OffsetMsgID(%v, %d) = %s, want %s", tc.host, tc.off, got, tc.want)
		}
		for _, id := range []string{got, strings.ToLower(got)} {
			h, off, err := ParseOffsetMsgID(id)
			wantHost := tc.host
			if !wantHost.Addr().IsValid() {
				wantHost = netip.MustParseAddrPort("0.0.0.0:0")
			} else {
				wantHost = netip.AddrPortFrom(wantHost.Addr().Unmap(), wantHost.Port())
			}
			if err != nil || h != wantHost || off != tc.off {
				t.Fatalf("ParseOffsetMsgID(%s) = %v %d %v", id, h, off, err)
			}
		}
	}
	// The id of a stored record matches its STOREHOST and PHYSICALOFFSET fields.
	m := goldenMessage()
	b := encode(t, m, 0, 987654321, 0)
	storeAt := offBornHost + 8 + 8
	want := strings.ToUpper(hex.EncodeToString(append(append([]byte{}, b[storeAt:storeAt+8]...), b[offPhysOffset:offPhysOffset+8]...)))
	if got := OffsetMsgID(m.StoreHost, 987654321); got != want {
		t.Fatalf("msg id %s, record bytes %s", got, want)
	}
	for _, bad := range []string{"", "0A000001", "0A000001000029AF000000000000123", "0A000001000029AF00000000000012G4",
		"0A00000100FFFFFF0000000000001234", "0A000001FFFFFFFF0000000000001234"} {
		if _, _, err := ParseOffsetMsgID(bad); !errors.Is(err, ErrInvalidMsgID) {
			t.Fatalf("ParseOffsetMsgID(%q) err = %v", bad, err)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _ = AppendOffsetMsgID(make([]byte, 0, 64), m.StoreHost, 1) }); a > 1 {
		t.Fatalf("AppendOffsetMsgID allocates %v", a)
	}
}
