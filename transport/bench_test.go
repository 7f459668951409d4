package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// stdHeader is the JSON header decoded with encoding/json: the baseline the
// hand-written codec is measured against, and a differential oracle.
type stdHeader struct {
	Code      int16                      `json:"code"`
	Language  json.RawMessage            `json:"language"`
	Version   int16                      `json:"version"`
	Opaque    int32                      `json:"opaque"`
	Flag      int32                      `json:"flag"`
	Remark    *string                    `json:"remark"`
	ExtFields map[string]json.RawMessage `json:"extFields"`
}

func stdDecodeJSONHeader(b []byte) (*Command, error) {
	var h stdHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	c := &Command{Code: h.Code, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag}
	if len(h.Language) > 0 && h.Language[0] == '"' {
		var s string
		if err := json.Unmarshal(h.Language, &s); err != nil {
			return nil, err
		}
		c.Language, _ = ParseLanguage(s)
	} else if len(h.Language) > 0 && string(h.Language) != "null" {
		n, err := strconv.ParseUint(string(h.Language), 10, 8)
		if err != nil {
			return nil, err
		}
		c.Language = LanguageCode(n)
	}
	if h.Remark != nil {
		c.Remark = *h.Remark
	}
	for k, raw := range h.ExtFields {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		if c.ExtFields == nil {
			c.ExtFields = map[string]string{}
		}
		switch v := v.(type) {
		case string:
			c.ExtFields[k] = v
		case bool:
			c.ExtFields[k] = strconv.FormatBool(v)
		case float64:
			c.ExtFields[k] = string(raw)
		case nil:
			delete(c.ExtFields, k)
		default:
			return nil, fmt.Errorf("ext %s: %T", k, v)
		}
	}
	return c, nil
}

type stdOutHeader struct {
	Code      int16             `json:"code"`
	Language  string            `json:"language"`
	Version   int16             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func stdEncodeJSONHeader(c *Command) ([]byte, error) {
	return json.Marshal(stdOutHeader{c.Code, c.Language.String(), c.Version, c.Opaque, c.Flag, c.Remark, c.ExtFields})
}

// TestJSONDecoderMatchesEncodingJSON compares the hand-written decoder with
// encoding/json on valid headers (whitespace, escapes, lenient values).
func TestJSONDecoderMatchesEncodingJSON(t *testing.T) {
	headers := []string{
		string(appendJSONHeader(nil, goldenRequest(0), 42, 0)),
		string(appendJSONHeader(nil, goldenResponse(0), 42, 1)),
		`{"code":0,"extFields":{"queueId":"1","msgId":"AB"},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":407}`,
		` { "code" : 11 , "language" : 0, "extFields" : {"queueId":1,"unitMode":false,"gone":null} , "remark":null } `,
		`{"remark":"a\u00e9\ud83d\ude00\n\/\"\\\b\f\r\t","x":{"y":[1,2,{"z":null}]},"extFields":{"k\u0041":"v\u0042"}}`,
	}
	for _, h := range headers {
		want, err := stdDecodeJSONHeader([]byte(h))
		if err != nil {
			t.Fatalf("encoding/json rejects %s: %v", h, err)
		}
		got, err := decodeJSONHeader([]byte(h))
		if err != nil {
			t.Fatalf("rejects %s: %v", h, err)
		}
		if d := cmdDiff(got, want); d != "" {
			t.Fatalf("%s: %s", h, d)
		}
	}
	// The encoder's output is what encoding/json produces for a plain-ASCII
	// command (encoding/json escapes <, >, & and the ordering is the same).
	c := goldenRequest(0)
	c.ExtFields["quote"] = `say "hi" \ bye`
	std, _ := stdEncodeJSONHeader(c)
	if got := appendJSONHeader(nil, c, c.Opaque, c.Flag); string(got) != string(std) {
		t.Fatalf("hand-written encoder\n%s\nencoding/json\n%s", got, std)
	}
}

func benchCommand(st SerializeType) *Command {
	c := NewRequest(PullMessage, map[string]string{
		"consumerGroup": "cg1", "topic": "T1", "queueId": "3", "queueOffset": "12345",
		"maxMsgNums": "32", "sysFlag": "2", "commitOffset": "-1", "suspendTimeoutMillis": "20000",
		"subscription": "", "subVersion": "0", "expressionType": "TAG",
	}, make([]byte, 64))
	c.SerializeType = st
	return c
}

func BenchmarkFrameEncode(b *testing.B) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		b.Run(st.String(), func(b *testing.B) {
			c := benchCommand(st)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = AppendFrame(buf[:0], c)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// repeatReader returns the same frame forever.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.frame[r.off:])
		n += c
		r.off = (r.off + c) % len(r.frame)
	}
	return n, nil
}

var _ io.Reader = (*repeatReader)(nil)

func BenchmarkFrameDecode(b *testing.B) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		b.Run(st.String(), func(b *testing.B) {
			frame, err := EncodeFrame(benchCommand(st))
			if err != nil {
				b.Fatal(err)
			}
			fr := NewFrameReader(&repeatReader{frame: frame}, 0)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fr.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeaderJSON compares the hand-written JSON header codec with
// encoding/json.
func BenchmarkHeaderJSON(b *testing.B) {
	c := benchCommand(SerializeJSON)
	h := appendJSONHeader(nil, c, c.Opaque, c.Flag)
	b.Run("encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendJSONHeader(buf[:0], c, c.Opaque, c.Flag)
		}
	})
	b.Run("encode/encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stdEncodeJSONHeader(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONHeader(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stdDecodeJSONHeader(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRoundTripParallel measures small request/responses over one
// loopback connection with many requests in flight.
func BenchmarkRoundTripParallel(b *testing.B) {
	m := NewMux()
	resp := NewResponse(Success, "")
	resp.ExtFields = map[string]string{"offset": "12345"}
	m.HandleFunc(QueryConsumerOffset, func(ctx context.Context, c *Conn, req *Command) *Command { return resp })
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, m)
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	defer srv.Close(context.Background())
	cl, err := NewClient(ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	addr := srv.Addr().String()
	ext := map[string]string{"consumerGroup": "cg1", "topic": "T1", "queueId": "1"}
	if _, err := cl.Invoke(context.Background(), addr, NewRequest(QueryConsumerOffset, ext, nil)); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			r, err := cl.Invoke(ctx, addr, NewRequest(QueryConsumerOffset, ext, nil))
			if err != nil {
				b.Error(err)
				return
			}
			if r.Ext("offset") != "12345" {
				b.Errorf("reply %s", r)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkRoundTripSerial measures the latency of one request at a time.
func BenchmarkRoundTripSerial(b *testing.B) {
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, echoMux())
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	defer srv.Close(context.Background())
	cl, err := NewClient(ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	addr := srv.Addr().String()
	ctx := context.Background()
	req := NewRequest(HeartBeat, map[string]string{"n": "1"}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Invoke(ctx, addr, req); err != nil {
			b.Fatal(err)
		}
	}
}
