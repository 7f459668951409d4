package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenRequest is a SEND_MESSAGE as the Go client would send it.
func goldenRequest(st SerializeType) *Command {
	return &Command{
		Code:     int16(SendMessage),
		Language: LanguageGo,
		Version:  317,
		Opaque:   42,
		Flag:     0,
		ExtFields: map[string]string{
			"producerGroup": "pg1",
			"topic":         "T1",
			"queueId":       "3",
			"bornTimestamp": "1690000000000",
			"properties":    "TAGS\x01TagA\x02UNIQ_KEY\x01C0A8\x02",
			"quote":         `say "hi" \ bye` + "\n\t\x01é",
		},
		Body:          []byte("hello, raftmq"),
		SerializeType: st,
	}
}

// goldenResponse is a reply with a remark and no body.
func goldenResponse(st SerializeType) *Command {
	return &Command{
		Code:          int16(TopicNotExist),
		Language:      LanguageJava,
		Version:       401,
		Opaque:        42,
		Flag:          FlagResponse,
		Remark:        "topic T9 does not exist",
		ExtFields:     map[string]string{"msgId": "C0A8000100002A9F0000000000000000"},
		SerializeType: st,
	}
}

// cmdDiff describes how two commands differ ("" if equal); nil and empty
// ext maps and bodies are equal.
func cmdDiff(a, b *Command) string {
	var d []string
	if a.Code != b.Code {
		d = append(d, fmt.Sprintf("code %d != %d", a.Code, b.Code))
	}
	if a.Language != b.Language {
		d = append(d, fmt.Sprintf("language %d != %d", a.Language, b.Language))
	}
	if a.Version != b.Version {
		d = append(d, fmt.Sprintf("version %d != %d", a.Version, b.Version))
	}
	if a.Opaque != b.Opaque {
		d = append(d, fmt.Sprintf("opaque %d != %d", a.Opaque, b.Opaque))
	}
	if a.Flag != b.Flag {
		d = append(d, fmt.Sprintf("flag %d != %d", a.Flag, b.Flag))
	}
	if a.Remark != b.Remark {
		d = append(d, fmt.Sprintf("remark %q != %q", a.Remark, b.Remark))
	}
	if !maps.Equal(a.ExtFields, b.ExtFields) {
		d = append(d, fmt.Sprintf("ext %q != %q", a.ExtFields, b.ExtFields))
	}
	if !bytes.Equal(a.Body, b.Body) {
		d = append(d, fmt.Sprintf("body %q != %q", a.Body, b.Body))
	}
	if a.SerializeType != b.SerializeType {
		d = append(d, fmt.Sprintf("serialize type %s != %s", a.SerializeType, b.SerializeType))
	}
	return strings.Join(d, "; ")
}

func TestGoldenFrames(t *testing.T) {
	cases := []struct {
		name string
		cmd  *Command
	}{
		{"request_json", goldenRequest(SerializeJSON)},
		{"request_rocketmq", goldenRequest(SerializeRocketMQ)},
		{"response_json", goldenResponse(SerializeJSON)},
		{"response_rocketmq", goldenResponse(SerializeRocketMQ)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.name+".frame")
			enc, err := EncodeFrame(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, enc, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(enc, golden) {
				t.Fatalf("encoding differs from %s:\n got %q\nwant %q", path, enc, golden)
			}
			dec, err := DecodeFrame(golden, 0)
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if d := cmdDiff(dec, tc.cmd); d != "" {
				t.Fatalf("decode %s: %s", path, d)
			}
			again, err := EncodeFrame(dec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, golden) {
				t.Fatalf("encode(decode(golden)) differs:\n got %q\nwant %q", again, golden)
			}
		})
	}
}

// TestGoldenJSONShape pins the JSON header text the Go client expects.
func TestGoldenJSONShape(t *testing.T) {
	c := &Command{Code: 105, Language: LanguageGo, Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "T1"}}
	got := string(appendJSONHeader(nil, c, c.Opaque, c.Flag))
	want := `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T1"}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func jsonFrame(header string, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	return append(b, body...)
}

func TestDecodeJSONVariants(t *testing.T) {
	cases := []struct {
		name, header string
		want         Command
	}{
		{
			name:   "go client",
			header: `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T1"}}`,
			want:   Command{Code: 105, Language: LanguageGo, Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "T1"}},
		},
		{
			name:   "java fastjson, sorted keys, no remark",
			header: `{"code":0,"extFields":{"queueId":"1","msgId":"AB"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":407}`,
			want:   Command{Code: 0, Language: LanguageJava, Version: 407, Opaque: 7, Flag: 1, ExtFields: map[string]string{"queueId": "1", "msgId": "AB"}},
		},
		{
			name:   "lenient values",
			header: ` { "code" : 11 , "language" : 0, "extFields" : {"queueId":1,"offset":-12345678901234,"unitMode":false,"batch":true,"gone":null,"f":1.5e3} , "remark":null } `,
			want:   Command{Code: 11, Language: LanguageJava, ExtFields: map[string]string{"queueId": "1", "offset": "-12345678901234", "unitMode": "false", "batch": "true", "f": "1.5e3"}},
		},
		{
			name:   "null ext, unknown nested keys, escapes",
			header: `{"x":{"a":[1,{"b":null},"s\"]"],"c":true},"code":-3,"extFields":null,"remark":"a\u00e9\ud83d\ude00\n\/","language":"NOPE","y":[]}`,
			want:   Command{Code: -3, Language: LanguageOther, Remark: "aé😀\n/"},
		},
		{
			name:   "lone surrogate",
			header: `{"remark":"\ud800x\udc00\ud800\u0041"}`,
			want:   Command{Remark: "\uFFFDx\uFFFD\uFFFDA"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeFrame(jsonFrame(tc.header, "b"), 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Body = []byte("b")
			if d := cmdDiff(got, &tc.want); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	bin := func(h []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(4+len(h)))
		b = binary.BigEndian.AppendUint32(b, uint32(1)<<24|uint32(len(h)))
		return append(b, h...)
	}
	fixed := func(remarkLen, extLen int32) []byte {
		h := make([]byte, 13)
		h = binary.BigEndian.AppendUint32(h, uint32(remarkLen))
		return binary.BigEndian.AppendUint32(h, uint32(extLen))
	}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short", []byte{0, 0, 0}, ErrMalformedFrame},
		{"negative length", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, ErrMalformedFrame},
		{"too large", []byte{0x7f, 0, 0, 0, 0, 0, 0, 0}, ErrFrameTooLarge},
		{"length below 4", []byte{0, 0, 0, 3, 0, 0, 0, 0}, ErrMalformedFrame},
		{"header longer than frame", []byte{0, 0, 0, 4, 0, 0, 0, 1}, ErrMalformedFrame},
		{"unknown serialize type", []byte{0, 0, 0, 4, 2, 0, 0, 0}, ErrMalformedFrame},
		{"length mismatch", append(jsonFrame(`{}`, ""), 0), ErrMalformedFrame},
		{"json not object", jsonFrame(`[]`, ""), ErrMalformedFrame},
		{"json truncated", jsonFrame(`{"code":1`, ""), ErrMalformedFrame},
		{"json code over int16", jsonFrame(`{"code":40000}`, ""), ErrMalformedFrame},
		{"json code float", jsonFrame(`{"code":1.5}`, ""), ErrMalformedFrame},
		{"json ext object value", jsonFrame(`{"extFields":{"a":{}}}`, ""), ErrMalformedFrame},
		{"json trailing", jsonFrame(`{} x`, ""), ErrMalformedFrame},
		{"json bad escape", jsonFrame(`{"remark":"\x"}`, ""), ErrMalformedFrame},
		{"json control char", jsonFrame("{\"remark\":\"\x01\"}", ""), ErrMalformedFrame},
		{"json deep nesting", jsonFrame(`{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, ""), ErrMalformedFrame},
		{"binary short", bin(make([]byte, 20)), ErrMalformedFrame},
		{"binary remark too long", bin(fixed(5, 0)), ErrMalformedFrame},
		{"binary negative remark", bin(fixed(-1, 0)), ErrMalformedFrame},
		{"binary ext too long", bin(fixed(0, 3)), ErrMalformedFrame},
		{"binary ext truncated key", bin(append(fixed(0, 1), 0)), ErrMalformedFrame},
		{"binary ext value too long", bin(append(fixed(0, 7), 0, 1, 'k', 0, 0, 0, 9)), ErrMalformedFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeFrame(tc.frame, 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// chunkReader returns its data in pieces of 1..max bytes, sizes taken from
// a deterministic sequence.
type chunkReader struct {
	data []byte
	seed uint32
	max  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.seed = r.seed*1664525 + 1013904223
	n := 1 + int(r.seed>>16)%r.max
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestFrameReaderChunks(t *testing.T) {
	var stream []byte
	var want []*Command
	for i := range 20 {
		c := goldenRequest(SerializeType(i % 2))
		c.Opaque = int32(i)
		c.Body = bytes.Repeat([]byte{byte(i)}, i*100)
		if i%3 == 0 {
			c = goldenResponse(SerializeType(i % 2))
		}
		f, err := EncodeFrame(c)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, f...)
		want = append(want, c)
	}
	for _, maxChunk := range []int{1, 3, 7, 100, 5000} {
		fr := NewFrameReader(bufio.NewReaderSize(&chunkReader{data: stream, seed: uint32(maxChunk), max: maxChunk}, 16), 1<<20)
		for i, w := range want {
			got, err := fr.Read()
			if err != nil {
				t.Fatalf("chunk %d frame %d: %v", maxChunk, i, err)
			}
			if d := cmdDiff(got, w); d != "" {
				t.Fatalf("chunk %d frame %d: %s", maxChunk, i, d)
			}
		}
		if _, err := fr.Read(); err != io.EOF {
			t.Fatalf("chunk %d: after the last frame got %v, want io.EOF", maxChunk, err)
		}
	}
	// A stream cut inside a frame is an unexpected EOF.
	fr := NewFrameReader(bytes.NewReader(stream[:len(stream)-1]), 1<<20)
	var err error
	for err == nil {
		_, err = fr.Read()
	}
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("cut stream: got %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestFrameReaderRejectsBeforeAllocating declares a 1 GiB frame and checks
// that reading it allocates almost nothing.
func TestFrameReaderRejectsBeforeAllocating(t *testing.T) {
	frame := []byte{0x40, 0, 0, 0, 0, 0, 0, 0}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fr := NewFrameReader(bytes.NewReader(frame), 1<<20)
	_, err := fr.Read()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("allocated %d bytes for a rejected frame", n)
	}
	if !strings.Contains(err.Error(), "1073741824") || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("error %q should name the declared length and the limit", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	c := NewRequest(SendMessage, map[string]string{strings.Repeat("k", 1<<15): "v"}, nil)
	c.SerializeType = SerializeRocketMQ
	if _, err := EncodeFrame(c); err == nil {
		t.Fatal("a 32 KiB binary ext key encoded without error")
	}
	c.SerializeType = 7
	if _, err := EncodeFrame(c); err == nil {
		t.Fatal("unknown serialize type encoded without error")
	}
}

func TestExtGetters(t *testing.T) {
	c := NewRequest(PullMessage, map[string]string{"queueId": "3", "offset": "-9000000000", "suspend": "true", "bad": "x"}, nil)
	if v, err := c.ExtInt32("queueId"); err != nil || v != 3 {
		t.Fatalf("ExtInt32 = %d, %v", v, err)
	}
	if v, err := c.ExtInt64("offset"); err != nil || v != -9000000000 {
		t.Fatalf("ExtInt64 = %d, %v", v, err)
	}
	if v, err := c.ExtBool("suspend"); err != nil || !v {
		t.Fatalf("ExtBool = %v, %v", v, err)
	}
	if _, err := c.ExtInt32("offset"); !errors.Is(err, ErrBadField) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("int32 overflow: %v", err)
	}
	if _, err := c.ExtBool("bad"); !errors.Is(err, ErrBadField) || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("bad bool: %v", err)
	}
	if _, err := c.ExtInt64("missing"); !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing: %v", err)
	}
	if c.Ext("missing") != "" || c.Ext("queueId") != "3" {
		t.Fatal("Ext")
	}
}

func TestCodeStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SendMessage.String(), "SEND_MESSAGE(10)"},
		{GetRouteInfoByTopic.String(), "GET_ROUTEINFO_BY_TOPIC(105)"},
		{PushReplyMessageToClient.String(), "PUSH_REPLY_MESSAGE_TO_CLIENT(326)"},
		{RequestCode(9999).String(), "RequestCode(9999)"},
		{Success.String(), "SUCCESS(0)"},
		{RequestCodeNotSupported.String(), "REQUEST_CODE_NOT_SUPPORTED(3)"},
		{SubscriptionGroupNotExist.String(), "SUBSCRIPTION_GROUP_NOT_EXIST(26)"},
		{FlowControl.String(), "FLOW_CONTROL(215)"},
		{LanguageGo.String(), "GO"},
		{LanguageRust.String(), "RUST"},
		{SerializeRocketMQ.String(), "ROCKETMQ"},
		{HeartBeat.Name(), "HEART_BEAT"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// Spot checks against RocketMQ's numbers.
	for code, n := range map[RequestCode]int16{
		RegisterBroker: 103, QueryDataVersion: 322, SendBatchMessage: 320, LockBatchMQ: 41,
		GetAllTopicListFromNameServer: 206, DeleteTopicInNamesrv: 216, ConsumeMessageDirectly: 309,
	} {
		if int16(code) != n {
			t.Errorf("%s = %d, want %d", code, int16(code), n)
		}
	}
}

// FuzzDecodeFrame feeds input whole and in chunks; anything accepted must
// round-trip, and nothing near the declared size of a rejected frame may be
// allocated.
func FuzzDecodeFrame(f *testing.F) {
	for _, c := range []*Command{goldenRequest(0), goldenRequest(1), goldenResponse(0), goldenResponse(1)} {
		b, _ := EncodeFrame(c)
		f.Add(b, uint8(3))
	}
	f.Add(jsonFrame(`{"code":1,"language":12,"extFields":{"a":1,"b":true,"c":null},"z":[{}]}`, "xy"), uint8(1))
	f.Add(jsonFrame(`{"remark":"\ud83d\ude00\u0000"}`, ""), uint8(2))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0}, uint8(5))
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		whole, werr := DecodeFrame(data, limit)
		fr := NewFrameReader(bufio.NewReaderSize(&chunkReader{data: data, seed: uint32(chunk), max: 1 + int(chunk)}, 16), limit)
		var stream []*Command
		for {
			c, err := fr.Read()
			if err != nil {
				break
			}
			stream = append(stream, c)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64*limit+uint64(64*len(data)) {
			t.Fatalf("allocated %d bytes for %d bytes of input (limit %d)", n, len(data), limit)
		}
		if werr == nil {
			if len(stream) != 1 {
				t.Fatalf("whole frame decoded, stream gave %d frames", len(stream))
			}
			if d := cmdDiff(whole, stream[0]); d != "" {
				t.Fatalf("whole vs chunked: %s", d)
			}
		}
		for _, c := range stream {
			enc, err := EncodeFrame(c)
			if err != nil {
				t.Fatalf("encode accepted frame %s: %v", c, err)
			}
			back, err := DecodeFrame(enc, 0)
			if err != nil {
				t.Fatalf("decode re-encoded frame %q: %v", enc, err)
			}
			if d := cmdDiff(back, c); d != "" {
				t.Fatalf("round trip: %s", d)
			}
		}
	})
}

// TestJSONExtFieldsShareOneString: values are substrings of one copy of the header, and
// an escaped value next to plain ones still decodes to its own text.
func TestJSONExtFieldsShareOneString(t *testing.T) {
	h := []byte(`{"code":10,"extFields":{"a":"plain","b":"t\u00e9\"x","c":12,"d":"after","e":true},"flag":0,"opaque":1}`)
	cmd, err := decodeJSONHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "plain", "b": "té\"x", "c": "12", "d": "after", "e": "true"}
	for k, v := range want {
		if got := cmd.Ext(k); got != v {
			t.Errorf("ext %q = %q, want %q", k, got, v)
		}
	}
	clear(h) // the values must not alias the frame buffer, which the reader reuses
	for k, v := range want {
		if got := cmd.Ext(k); got != v {
			t.Errorf("after the buffer was reused: ext %q = %q, want %q", k, got, v)
		}
	}
}
