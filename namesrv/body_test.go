package namesrv

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
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
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s mismatch\n got: %s\nwant: %s", name, got, want)
	}
}

func TestRouteJSON_Golden(t *testing.T) {
	r := TopicRouteData{
		BrokerDatas: []BrokerData{{BrokerName: "b1", Cluster: "c1",
			BrokerAddrs: map[int64]string{1: "10.0.0.2:10911", 0: "10.0.0.1:10911", 10: "10.0.0.3:10911"}}},
		QueueDatas: []QueueData{{BrokerName: "b1", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
	}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// The shape of the protocol spec §3.1, byte for byte, plus Java's empty
	// filterServerTable; no whitespace anywhere.
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911","10":"10.0.0.3:10911"},"brokerName":"b1","cluster":"c1"}],"filterServerTable":{},"queueDatas":[{"brokerName":"b1","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if string(got) != want {
		t.Fatalf("route JSON\n got: %s\nwant: %s", got, want)
	}
	golden(t, "route.json", got)
	// Pointer and value marshal alike.
	if p, _ := json.Marshal(&r); !bytes.Equal(p, got) {
		t.Fatalf("pointer marshal differs: %s", p)
	}
}

func TestRouteJSON_EmptyGolden(t *testing.T) {
	// A zero route and a group with no addresses still carry brokerAddrs {}
	// and queueDatas [] (the Go client panics without them).
	got, _ := json.Marshal(TopicRouteData{})
	if string(got) != `{"brokerDatas":[],"filterServerTable":{},"queueDatas":[]}` {
		t.Fatalf("empty route JSON = %s", got)
	}
	r := TopicRouteData{BrokerDatas: []BrokerData{{BrokerName: "b1", Cluster: "c1"}}, OrderTopicConf: "b1:4"}
	got, _ = json.Marshal(r)
	const want = `{"brokerDatas":[{"brokerAddrs":{},"brokerName":"b1","cluster":"c1"}],"filterServerTable":{},"orderTopicConf":"b1:4","queueDatas":[]}`
	if string(got) != want {
		t.Fatalf("route JSON\n got: %s\nwant: %s", got, want)
	}
	golden(t, "route_empty_addrs.json", got)
}

func TestRouteJSON_RoundTripAndEscapes(t *testing.T) {
	r := TopicRouteData{
		BrokerDatas:       []BrokerData{{BrokerName: `odd"name\<é>`, Cluster: "c", BrokerAddrs: map[int64]string{0: "a:1", 3: "b:2"}}},
		QueueDatas:        []QueueData{{BrokerName: `odd"name\<é>`, Perm: 7, ReadQueueNums: 1, WriteQueueNums: 2, TopicSysFlag: 3}},
		FilterServerTable: map[string][]string{"a:1": {"f:1"}},
	}
	data, _ := json.Marshal(r)
	if !json.Valid(data) {
		t.Fatalf("invalid JSON: %s", data)
	}
	var back TopicRouteData
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, r)
	}
}

func TestRouteJSON_DecodeFastjsonBareKeys(t *testing.T) {
	// What a Java 4.9.4+ name server sends to old clients.
	in := `{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"b1","cluster":"c1"}],"filterServerTable":{},"queueDatas":[{"brokerName":"b1","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	r, err := DecodeTopicRouteData([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.BrokerDatas[0].BrokerAddrs; !reflect.DeepEqual(got, map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}) {
		t.Fatalf("addrs = %v", got)
	}
	ci, err := DecodeClusterInfo([]byte(`{"brokerAddrTable":{"b1":{"brokerAddrs":{0:"x:1"},"brokerName":"b1","cluster":"c1"}},"clusterAddrTable":{"c1":["b1"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ci.BrokerAddrTable["b1"].BrokerAddrs[0] != "x:1" {
		t.Fatalf("cluster info = %+v", ci)
	}
	// A string that looks like a bare key is left alone.
	if _, changed := quoteBareKeys([]byte(`{"a":"{1:2}"}`)); changed {
		t.Fatal("rewrote inside a string")
	}
	if _, err := DecodeTopicRouteData([]byte(`{"brokerDatas":[{`)); !errors.Is(err, ErrBadBody) {
		t.Fatal("truncated JSON accepted")
	}
}

func TestClusterInfoAndTopicListJSON(t *testing.T) {
	ci := ClusterInfo{
		BrokerAddrTable:  map[string]BrokerData{"b1": {BrokerName: "b1", Cluster: "c1", BrokerAddrs: map[int64]string{0: "a:1"}}},
		ClusterAddrTable: map[string][]string{"c1": {"b1"}},
	}
	got, _ := json.Marshal(ci)
	const want = `{"brokerAddrTable":{"b1":{"brokerAddrs":{"0":"a:1"},"brokerName":"b1","cluster":"c1"}},"clusterAddrTable":{"c1":["b1"]}}`
	if string(got) != want {
		t.Fatalf("cluster info\n got: %s\nwant: %s", got, want)
	}
	got, _ = json.Marshal(TopicList{TopicList: []string{"T1", "T2"}})
	if string(got) != `{"topicList":["T1","T2"]}` {
		t.Fatalf("topic list = %s", got)
	}
}

func sampleBody() *RegisterBrokerBody {
	return &RegisterBrokerBody{
		FilterServerList: []string{},
		TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{
			DataVersion: DataVersion{Timestamp: 1690000000000, Counter: 3},
			TopicConfigTable: map[string]TopicConfig{
				"T1": {TopicName: "T1", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: FilterSingleTag},
				"T2": {TopicName: "T2", ReadQueueNums: 8, WriteQueueNums: 2, Perm: 7, TopicFilterType: FilterMultiTag},
			},
		},
	}
}

func TestRegisterBrokerBody_Plain(t *testing.T) {
	// The body of the protocol spec §3.4 as a Java broker sends it.
	in := `{"topicConfigSerializeWrapper":{"topicConfigTable":{"T1":{"topicName":"T1","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false}},"dataVersion":{"timestamp":1690000000000,"counter":3}},"filterServerList":[]}`
	b, err := DecodeRegisterBrokerBody([]byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion != (DataVersion{Timestamp: 1690000000000, Counter: 3}) || w.TopicConfigTable["T1"].ReadQueueNums != 4 || w.TopicConfigTable["T1"].Perm != 6 {
		t.Fatalf("decoded %+v", b)
	}
	enc, err := EncodeRegisterBrokerBody(sampleBody(), false)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "register_body.json", enc)
	back, err := DecodeRegisterBrokerBody(enc, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, sampleBody()) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, sampleBody())
	}
	// Empty body: empty table, version zero.
	if b, err := DecodeRegisterBrokerBody(nil, false); err != nil || len(b.TopicConfigSerializeWrapper.TopicConfigTable) != 0 {
		t.Fatalf("empty body: %+v %v", b, err)
	}
	if _, err := DecodeRegisterBrokerBody([]byte("{"), false); !errors.Is(err, ErrBadBody) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestRegisterBrokerBody_Compressed(t *testing.T) {
	enc, err := EncodeRegisterBrokerBody(sampleBody(), true)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRegisterBrokerBody(enc, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, sampleBody()) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, sampleBody())
	}
	// A hand-built stream in Java's layout (5.x adds a topic-queue-mapping
	// count at the end, and attributes after the filter type).
	var raw bytes.Buffer
	item := func(s string) {
		binary.Write(&raw, binary.BigEndian, int32(len(s)))
		raw.WriteString(s)
	}
	item(`{"counter":9,"stateVersion":0,"timestamp":5}`)
	binary.Write(&raw, binary.BigEndian, int32(1))
	item(`T5 2 3 6 SINGLE_TAG {"+message.type":"NORMAL"}`)
	item(`["f:1"]`)
	binary.Write(&raw, binary.BigEndian, int32(0))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	b, err := DecodeRegisterBrokerBody(z.Bytes(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := TopicConfig{TopicName: "T5", ReadQueueNums: 2, WriteQueueNums: 3, Perm: 6, TopicFilterType: FilterSingleTag,
		Attributes: map[string]string{"+message.type": "NORMAL"}}
	if got := b.TopicConfigSerializeWrapper.TopicConfigTable["T5"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("T5 = %+v", got)
	}
	if b.TopicConfigSerializeWrapper.DataVersion.Counter != 9 || !reflect.DeepEqual(b.FilterServerList, []string{"f:1"}) {
		t.Fatalf("decoded %+v", b)
	}
}

func TestRegisterBrokerBody_CompressedHostile(t *testing.T) {
	mk := func(raw []byte) []byte {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(raw)
		zw.Close()
		return z.Bytes()
	}
	cases := map[string][]byte{
		"not zlib":        []byte("hello"),
		"huge length":     mk([]byte{0x7f, 0xff, 0xff, 0xff}),
		"negative length": mk([]byte{0xff, 0xff, 0xff, 0xff}),
		"truncated":       mk([]byte{0, 0, 0, 10, '{'}),
		"bad topic line":  mk(append(append([]byte{0, 0, 0, 2}, "{}"...), 0, 0, 0, 1, 0, 0, 0, 3, 'a', ' ', 'b')),
	}
	for name, in := range cases {
		if _, err := DecodeRegisterBrokerBody(in, true); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: err = %v, want ErrBadBody", name, err)
		}
	}
}

func FuzzDecodeRegisterBrokerBody(f *testing.F) {
	plain, _ := EncodeRegisterBrokerBody(sampleBody(), false)
	comp, _ := EncodeRegisterBrokerBody(sampleBody(), true)
	f.Add(plain, false)
	f.Add(comp, true)
	f.Add([]byte("{}"), false)
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		b, err := DecodeRegisterBrokerBody(data, compressed)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error without ErrBadBody: %v", err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same table.
		enc, err := EncodeRegisterBrokerBody(b, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRegisterBrokerBody(enc, false); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzRouteJSON(f *testing.F) {
	f.Add("b1", "c1", "10.0.0.1:10911", int64(0))
	f.Add("", "", "", int64(-1))
	f.Add("\"\\\x00é", "<&>", "\u2028", int64(1<<40))
	f.Fuzz(func(t *testing.T, name, cluster, addr string, id int64) {
		r := TopicRouteData{
			BrokerDatas: []BrokerData{{BrokerName: name, Cluster: cluster, BrokerAddrs: map[int64]string{id: addr}}},
			QueueDatas:  []QueueData{{BrokerName: name, Perm: 6}},
		}
		data := r.AppendJSON(nil)
		if !json.Valid(data) {
			t.Fatalf("invalid JSON %q", data)
		}
		var back TopicRouteData
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("decode %q: %v", data, err)
		}
		if len(back.BrokerDatas) != 1 || len(back.BrokerDatas[0].BrokerAddrs) != 1 {
			t.Fatalf("round trip lost data: %q", data)
		}
	})
}

// goClientSplit is rocketmq-client-go v2.1.2's brokerAddrs parser
// (internal/route.go): strip the braces, split on ",", then at the first
// ":", strip quotes. Our JSON must survive it.
func goClientSplit(addrs string) map[int64]string {
	out := map[int64]string{}
	for _, str := range strings.Split(addrs[1:len(addrs)-1], ",") {
		i := strings.Index(str, ":")
		if i < 0 {
			continue
		}
		id, _ := strconv.ParseInt(strings.ReplaceAll(str[0:i], "\"", ""), 10, 64)
		out[id] = strings.ReplaceAll(str[i+1:], "\"", "")
	}
	return out
}

func TestRouteJSON_GoClientSplitter(t *testing.T) {
	for _, addrs := range []map[int64]string{
		{},
		{0: "10.0.0.1:10911"},
		{0: "10.0.0.1:10911", 1: "10.0.0.2:10911", 2: "[::1]:10911"},
	} {
		data := appendBrokerData(nil, &BrokerData{BrokerName: "b", Cluster: "c", BrokerAddrs: addrs})
		var raw struct {
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		if got := goClientSplit(string(raw.BrokerAddrs)); !reflect.DeepEqual(got, addrs) {
			t.Fatalf("Go client would read %v from %s, want %v", got, raw.BrokerAddrs, addrs)
		}
	}
}
