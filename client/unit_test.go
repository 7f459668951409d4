package client

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

func mqs(n int) []MessageQueue {
	out := make([]MessageQueue, n)
	for i := range out {
		out[i] = MessageQueue{Topic: "T", BrokerName: "b", QueueID: i}
	}
	return out
}

func TestAllocateAveragely(t *testing.T) {
	ids := []string{"a", "b", "c"}
	var got [][]int
	for _, id := range ids {
		var l []int
		for _, q := range allocateAveragely(id, ids, mqs(8)) {
			l = append(l, q.QueueID)
		}
		got = append(got, l)
	}
	want := [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("8 queues over 3: %v, want %v", got, want)
	}
	if l := allocateAveragely("z", ids, mqs(8)); l != nil {
		t.Fatalf("a member missing from the list took %v", l)
	}
	// More members than queues: the last ones get nothing.
	many := []string{"a", "b", "c", "d", "e"}
	total := 0
	for _, id := range many {
		n := len(allocateAveragely(id, many, mqs(4)))
		if n > 1 {
			t.Fatalf("%s got %d queues", id, n)
		}
		total += n
	}
	if total != 4 {
		t.Fatalf("%d queues allocated, want 4", total)
	}
}

func TestParseSubscription(t *testing.T) {
	for _, c := range []struct {
		expr string
		tags []string
		all  bool
		err  bool
	}{
		{"*", nil, true, false},
		{"", nil, true, false},
		{"A", []string{"A"}, false, false},
		{"A || B", []string{"A", "B"}, false, false},
		{" A||B || C ", []string{"A", "B", "C"}, false, false},
		{"||", nil, false, true},
		{"A || *", nil, false, true},
	} {
		s, err := parseSubscription("T", c.expr)
		if (err != nil) != c.err {
			t.Fatalf("%q: err %v", c.expr, err)
		}
		if err != nil {
			continue
		}
		if (s.tags == nil) != c.all {
			t.Fatalf("%q: all=%v", c.expr, s.tags == nil)
		}
		for _, tag := range c.tags {
			if !s.match(tag) {
				t.Fatalf("%q does not match %q", c.expr, tag)
			}
		}
		if !c.all && s.match("Other") {
			t.Fatalf("%q matches Other", c.expr)
		}
		d := s.data()
		if len(d.TagsSet) != len(c.tags) || len(d.CodeSet.Codes) != len(c.tags) {
			t.Fatalf("%q: heartbeat data %+v", c.expr, d)
		}
	}
}

// A heartbeat declares a subscription as rocketmq-client-go does: tags sorted, their codes as
// strings (transport/body pins the whole heartbeat).
func TestSubscriptionDataJSON(t *testing.T) {
	s, err := parseSubscription("T", "B || A")
	if err != nil {
		t.Fatal(err)
	}
	s.subVersion = 1700000000000
	got, _ := json.Marshal(s.data())
	const want = `{"classFilterMode":false,"topic":"T","subString":"B || A","tagsSet":["A","B"],"codeSet":["65","66"],"subVersion":1700000000000,"expressionType":"TAG"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestErrorRetryable(t *testing.T) {
	for code, want := range map[transport.ResponseCode]bool{
		transport.SystemError: true, transport.SystemBusy: true, transport.ServiceNotAvailable: true,
		transport.NoPermission: true, transport.TopicNotExist: true, transport.MessageIllegal: false,
		transport.RequestCodeNotSupported: false, transport.SubscriptionGroupNotExist: false,
	} {
		e := &Error{Op: "SEND", Addr: "a", Code: code, Remark: "r"}
		if e.Retryable() != want || Retryable(fmt.Errorf("wrapped: %w", e)) != want {
			t.Errorf("%s: Retryable %v, want %v", code, e.Retryable(), want)
		}
	}
	if !errors.Is(&Error{Code: transport.TopicNotExist}, ErrTopicNotExist) {
		t.Fatal("TOPIC_NOT_EXIST does not match ErrTopicNotExist")
	}
	if Retryable(ErrClosed) || Retryable(ErrInvalidMessage) || !Retryable(ErrNoRoute) {
		t.Fatal("sentinel classification")
	}
	if !Retryable(fmt.Errorf("x: %w", transport.ErrConnClosed)) || !Retryable(transport.ErrTimeout) {
		t.Fatal("transport failures must be retryable")
	}
	if s := (&Error{Op: "SEND_MESSAGE_V2", Addr: "1.2.3.4:5", Code: transport.ServiceNotAvailable, Remark: "not leader"}).Error(); !strings.Contains(s, "not leader") || !strings.Contains(s, "1.2.3.4:5") {
		t.Fatalf("message %q", s)
	}
}

func TestUniqID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := newUniqID()
		if len(id) != 32 || strings.ToUpper(id) != id {
			t.Fatalf("id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestEncodeBatchBody(t *testing.T) {
	b := encodeBatchBody([][]byte{[]byte("ab"), []byte("c")}, []int32{7, 0}, []string{"K\x01V", ""})
	// record 1: 22 + 2 + 3 = 27 bytes
	if got := binary.BigEndian.Uint32(b); got != 27 {
		t.Fatalf("first TOTALSIZE %d", got)
	}
	if flag := binary.BigEndian.Uint32(b[12:]); flag != 7 {
		t.Fatalf("flag %d", flag)
	}
	if string(b[20:22]) != "ab" || binary.BigEndian.Uint16(b[22:]) != 3 || string(b[24:27]) != "K\x01V" {
		t.Fatalf("first record % x", b[:27])
	}
	if len(b) != 27+23 {
		t.Fatalf("body %d bytes", len(b))
	}
}

func TestConfigValidate(t *testing.T) {
	ok := ClientConfig{NameServers: []string{"127.0.0.1:9876"}}
	bad := []struct {
		name string
		err  error
	}{
		{"no name server", ClientConfig{}.Validate()},
		{"no port", ClientConfig{NameServers: []string{"10.0.0.1"}}.Validate()},
		{"bad port", ClientConfig{NameServers: []string{"10.0.0.1:99999"}}.Validate()},
		{"instance with @", ClientConfig{NameServers: ok.NameServers, InstanceName: "a@b"}.Validate()},
		{"tiny timeout", ClientConfig{NameServers: ok.NameServers, RequestTimeout: 1}.Validate()},
		{"producer group", ProducerConfig{ClientConfig: ok, Group: "bad group"}.Validate()},
		{"attempts", ProducerConfig{ClientConfig: ok, MaxAttempts: -1}.Validate()},
		{"consumer without group", PushConsumerConfig{ClientConfig: ok, Listener: func(_ ctxT, _ []*MessageExt) ConsumeResult { return 0 }}.Validate()},
		{"two listeners", PushConsumerConfig{ClientConfig: ok, Group: "g",
			Listener:        func(_ ctxT, _ []*MessageExt) ConsumeResult { return 0 },
			OrderlyListener: func(_ ctxT, _ []*MessageExt) OrderlyResult { return 0 }}.Validate()},
		{"no listener", PushConsumerConfig{ClientConfig: ok, Group: "g"}.Validate()},
		{"reconsume", PushConsumerConfig{ClientConfig: ok, Group: "g", MaxReconsumeTimes: 17,
			Listener: func(_ ctxT, _ []*MessageExt) ConsumeResult { return 0 }}.Validate()},
		{"pull group", PullConsumerConfig{ClientConfig: ok}.Validate()},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", b.name, b.err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (ClientConfig{NameServers: []string{"localhost:9876", "ns.example:9876"}}).Validate(); err != nil {
		t.Fatalf("DNS names: %v", err)
	}
	if err := (ProducerConfig{ClientConfig: ok}).Validate(); err != nil {
		t.Fatalf("zero producer config: %v", err)
	}
	// The spelled-out defaults validate once the required fields are set.
	pd := DefaultProducerConfig()
	pd.NameServers = ok.NameServers
	cd := DefaultPushConsumerConfig()
	cd.NameServers, cd.Group = ok.NameServers, "g"
	cd.Listener = func(ctxT, []*MessageExt) ConsumeResult { return ConsumeSuccess }
	ld := DefaultPullConsumerConfig()
	ld.NameServers, ld.Group = ok.NameServers, "g"
	for i, err := range []error{pd.Validate(), cd.Validate(), ld.Validate()} {
		if err != nil {
			t.Fatalf("defaults %d: %v", i, err)
		}
	}
}

func TestCompressRoundTrip(t *testing.T) {
	in := []byte(strings.Repeat("raftmq ", 1000))
	z, err := compress(in)
	if err != nil || len(z) >= len(in) {
		t.Fatalf("compress: %d bytes, %v", len(z), err)
	}
	out, err := inflate(z)
	if err != nil || string(out) != string(in) {
		t.Fatalf("inflate: %v", err)
	}
	if _, err := inflate([]byte("not zlib")); err == nil {
		t.Fatal("inflate accepted garbage")
	}
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 0xDA, 0xA3, 0x20, 0xA7})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeMessages(b, MessageQueue{Topic: "T"})
	})
}

type ctxT = context.Context

// TestPropertiesFastPathMatchesMap: the map-free path for messages without user properties
// builds exactly the string the map path (message.BuildProperties) builds.
func TestPropertiesFastPathMatchesMap(t *testing.T) {
	cases := []*Message{
		{},
		{Tags: "TagA"},
		{Keys: []string{"k1", "k2"}},
		{Tags: "t", Keys: []string{"k"}, DelayLevel: 3, ShardingKey: "order-7"},
		{DelayLevel: 18},
	}
	for i, m := range cases {
		for _, uniq := range []string{"", "7F0000010001000000000000000A0001"} {
			got, err := m.properties(uniq)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			want := map[string]string{}
			if m.Tags != "" {
				want[message.PropertyTags] = m.Tags
			}
			if len(m.Keys) > 0 {
				want[message.PropertyKeys] = strings.Join(m.Keys, message.KeySeparator)
			}
			if m.DelayLevel > 0 {
				want[message.PropertyDelayLevel] = fmt.Sprint(m.DelayLevel)
			}
			if m.ShardingKey != "" {
				want[message.PropertyShardingKey] = m.ShardingKey
			}
			if uniq != "" {
				want[message.PropertyUniqKey] = uniq
			}
			ws, err := message.BuildProperties(want)
			if err != nil || got != ws {
				t.Fatalf("case %d uniq %q: fast path %q, map path %q (%v)", i, uniq, got, ws, err)
			}
		}
	}
	if _, err := (&Message{ShardingKey: "a\x01b"}).properties(""); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("separator in a value: %v", err)
	}
}

// TestUniqIDTimeBase: the id's time field counts milliseconds from the start of the month.
func TestUniqIDTimeBase(t *testing.T) {
	before := time.Now()
	id := newUniqID()
	raw, err := hex.DecodeString(id[20:28])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(before.Year(), before.Month(), 1, 0, 0, 0, 0, before.Location())
	got := time.Duration(binary.BigEndian.Uint32(raw)) * time.Millisecond
	if want := before.Sub(start); got < want-time.Millisecond || got > want+time.Second {
		t.Fatalf("time field %v, want about %v since the month began", got, want)
	}
}

func BenchmarkNewUniqID(b *testing.B) {
	for b.Loop() {
		_ = newUniqID()
	}
}

func BenchmarkMessageProperties(b *testing.B) {
	m := &Message{Tags: "TagA", Keys: []string{"order-1"}}
	uniq := newUniqID()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.properties(uniq); err != nil {
			b.Fatal(err)
		}
	}
}
