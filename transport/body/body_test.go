package body

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The exact bytes the peers send:
//   - goClient*: rocketmq-client-go v2.1.2's, captured from its own encoders; raftmq's client
//     sends them byte for byte;
//   - javaClient*: the Java client's (fastjson: keys sorted, codeSet as numbers), read only;
//   - broker*: raftmq's broker's, as node/ wrote them before this package existed (Java's
//     broker writes the same bytes for all but the connection lists, whose keys fastjson sorts);
//   - gsonResetOffset: the other form of a queue-keyed map a client may be handed.
const (
	goClientHeartbeat         = `{"clientID":"10.0.0.1@123","producerDataSet":[],"consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"A || B","tagsSet":["A","B"],"codeSet":["65","66"],"subVersion":1700000000000,"expressionType":"TAG"},{"classFilterMode":false,"topic":"U","subString":"*","tagsSet":[],"codeSet":[],"subVersion":5,"expressionType":"TAG"}],"unitMode":false}]}`
	goClientProducerHeartbeat = `{"clientID":"10.0.0.1@123","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[]}`
	goClientLock              = `{"consumerGroup":"cg","clientId":"10.0.0.1@123","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":0},{"topic":"T","brokerName":"broker-a","queueId":1}]}`

	javaClientHeartbeat = `{"clientID":"192.168.0.2@4711","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"cg","messageModel":"BROADCASTING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[65,-2],"expressionType":"TAG","subString":"A || B","subVersion":1700000000000,"tagsSet":["A","B"],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}`
	javaClientLock      = `{"clientId":"192.168.0.2@4711","consumerGroup":"cg","mqSet":[{"brokerName":"broker-a","queueId":3,"topic":"T"}]}`
	brokerLockOK        = `{"lockOKMQSet":[{"brokerName":"broker-a","queueId":0,"topic":"T\u003c\u0026\u003e"},{"brokerName":"b","queueId":3,"topic":"T"}]}`

	brokerConsumerList       = `{"consumerIdList":["c0","c1"]}`
	brokerConsumerConnection = `{"connectionSet":[{"clientId":"c0","clientAddr":"","language":"JAVA","version":400},{"clientId":"c1","clientAddr":"10.0.0.1:50000","language":"GO","version":317}],"subscriptionTable":{"T":{"classFilterMode":false,"topic":"T","subString":"A || B","tagsSet":["A","B"],"codeSet":[65,66],"subVersion":17,"expressionType":"TAG"},"U":{"classFilterMode":false,"topic":"U","subString":"*","tagsSet":[],"codeSet":[],"subVersion":0,"expressionType":""}},"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET"}`
	brokerProducerConnection = `{"connectionSet":[{"clientId":"c1","clientAddr":"","language":"GO","version":317}]}`

	brokerResetOffset  = `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TestTopic"}:5,{"brokerName":"broker-a","queueId":1,"topic":"TestTopic"}:-1,{"brokerName":"broker-a","queueId":2,"topic":"TestTopic"}:9}}`
	gsonResetOffset    = `{"offsetTable":[[{"brokerName":"broker-a","queueId":0,"topic":"TestTopic"},5],[{"brokerName":"broker-a","queueId":1,"topic":"TestTopic"},-1],[{"brokerName":"broker-a","queueId":2,"topic":"TestTopic"},9]]}`
	brokerConsumeStats = `{"consumeTps":0.0,"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"A"}:{"brokerOffset":10,"consumerOffset":4,"lastTimestamp":1700000000000},{"brokerName":"broker-a","queueId":1,"topic":"A"}:{"brokerOffset":0,"consumerOffset":0,"lastTimestamp":0},{"brokerName":"broker-a","queueId":0,"topic":"B"}:{"brokerOffset":1,"consumerOffset":0,"lastTimestamp":0}}}`
	brokerTopicStats   = `{"offsetTable":{{"brokerName":"b1","queueId":0,"topic":"T1"}:{"lastUpdateTimestamp":7,"maxOffset":5,"minOffset":1},{"brokerName":"b1","queueId":1,"topic":"T1"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}}}`
)

// roundTrip decodes golden into a new V with encoding/json, checks it against want (unless
// nil), and checks that encoding it again gives golden back, byte for byte.
func roundTrip[V any](t *testing.T, golden string, want *V) {
	t.Helper()
	var v V
	if err := json.Unmarshal([]byte(golden), &v); err != nil {
		t.Fatalf("decode: %v\n%s", err, golden)
	}
	if want != nil && !reflect.DeepEqual(&v, want) {
		t.Fatalf("decoded\n got: %+v\nwant: %+v", v, *want)
	}
	for _, x := range []any{v, &v} {
		got, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != golden {
			t.Fatalf("re-encoded %T\n got: %s\nwant: %s", x, got, golden)
		}
	}
}

func TestHeartbeatData_GoClient(t *testing.T) {
	roundTrip(t, goClientHeartbeat, &HeartbeatData{
		ClientID: "10.0.0.1@123", ProducerDataSet: []ProducerData{},
		ConsumerDataSet: []ConsumerData{{
			GroupName: "cg", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
			SubscriptionDataSet: []SubscriptionData{
				{Topic: "T", SubString: "A || B", TagsSet: []string{"A", "B"}, CodeSet: CodeSet{Codes: []int64{65, 66}, Quoted: true}, SubVersion: 1700000000000, ExpressionType: "TAG"},
				{Topic: "U", SubString: "*", TagsSet: []string{}, CodeSet: CodeSet{Codes: []int64{}}, SubVersion: 5, ExpressionType: "TAG"},
			},
		}},
	})
	roundTrip(t, goClientProducerHeartbeat, &HeartbeatData{
		ClientID: "10.0.0.1@123", ProducerDataSet: []ProducerData{{GroupName: "pg"}}, ConsumerDataSet: []ConsumerData{},
	})
}

func TestHeartbeatData_Java(t *testing.T) {
	var hb HeartbeatData
	if err := json.Unmarshal([]byte(javaClientHeartbeat), &hb); err != nil {
		t.Fatal(err)
	}
	want := HeartbeatData{
		ClientID: "192.168.0.2@4711", ProducerDataSet: []ProducerData{{GroupName: "CLIENT_INNER_PRODUCER"}},
		ConsumerDataSet: []ConsumerData{{
			GroupName: "cg", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "BROADCASTING", ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET",
			SubscriptionDataSet: []SubscriptionData{{Topic: "T", SubString: "A || B", TagsSet: []string{"A", "B"},
				CodeSet: CodeSet{Codes: []int64{65, -2}}, SubVersion: 1700000000000, ExpressionType: "TAG"}},
		}},
	}
	if !reflect.DeepEqual(hb, want) {
		t.Fatalf("got  %+v\nwant %+v", hb, want)
	}
	// Java's numeric codes are written back as numbers.
	if b, _ := json.Marshal(hb.ConsumerDataSet[0].SubscriptionDataSet[0].CodeSet); string(b) != `[65,-2]` {
		t.Fatalf("codeSet re-encoded as %s", b)
	}
}

func TestCodeSet(t *testing.T) {
	for _, c := range []struct {
		in   string
		want CodeSet
		out  string
	}{
		{`[]`, CodeSet{Codes: []int64{}}, `[]`},
		{`null`, CodeSet{}, `[]`},
		{`[65, 66]`, CodeSet{Codes: []int64{65, 66}}, `[65,66]`},
		{`["65"," 66 ",67]`, CodeSet{Codes: []int64{65, 66, 67}, Quoted: true}, `["65","66","67"]`},
	} {
		var got CodeSet
		if err := json.Unmarshal([]byte(c.in), &got); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: %+v %v", c.in, got, err)
		}
		if b, _ := json.Marshal(got); string(b) != c.out {
			t.Fatalf("%s: re-encoded as %s, want %s", c.in, b, c.out)
		}
	}
	for in, msg := range map[string]string{
		`["abc"]`: "code abc is not an integer", `[6.5]`: "code 6.5 is not an integer", `[null]`: "code null is not an integer",
		`"65"`: "cannot unmarshal", `[true]`: "code true is not an integer",
	} {
		var got CodeSet
		if err := json.Unmarshal([]byte(in), &got); err == nil || !strings.Contains(err.Error(), msg) {
			t.Fatalf("%s: err %v, want %q", in, err, msg)
		}
	}
}

func TestLockBatchRequest(t *testing.T) {
	roundTrip(t, goClientLock, &LockBatchRequest{ConsumerGroup: "cg", ClientID: "10.0.0.1@123",
		MQSet: []MessageQueue{{Topic: "T", BrokerName: "broker-a", QueueID: 0}, {Topic: "T", BrokerName: "broker-a", QueueID: 1}}})
	var r LockBatchRequest
	if err := json.Unmarshal([]byte(javaClientLock), &r); err != nil {
		t.Fatal(err)
	}
	if want := (LockBatchRequest{ConsumerGroup: "cg", ClientID: "192.168.0.2@4711", MQSet: []MessageQueue{{Topic: "T", BrokerName: "broker-a", QueueID: 3}}}); !reflect.DeepEqual(r, want) {
		t.Fatalf("Java form decoded as %+v", r)
	}
	if b, _ := json.Marshal(LockBatchRequest{ConsumerGroup: "cg", ClientID: "c"}); string(b) != `{"consumerGroup":"cg","clientId":"c","mqSet":null}` {
		t.Fatalf("nil mqSet: %s", b)
	}
}

func TestLockBatchResponse(t *testing.T) {
	roundTrip(t, brokerLockOK, &LockBatchResponse{LockOKMQSet: []MessageQueue{{Topic: "T<&>", BrokerName: "broker-a", QueueID: 0}, {Topic: "T", BrokerName: "b", QueueID: 3}}})
	roundTrip(t, `{"lockOKMQSet":[]}`, &LockBatchResponse{LockOKMQSet: []MessageQueue{}})
	roundTrip(t, `{"lockOKMQSet":null}`, &LockBatchResponse{})
	// The Go client's order reads the same.
	var r LockBatchResponse
	if err := json.Unmarshal([]byte(`{"lockOKMQSet":[{"topic":"T","brokerName":"b","queueId":3}]}`), &r); err != nil ||
		!reflect.DeepEqual(r.LockOKMQSet, []MessageQueue{{Topic: "T", BrokerName: "b", QueueID: 3}}) {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestConsumerBodies(t *testing.T) {
	roundTrip(t, brokerConsumerList, &ConsumerList{ConsumerIDList: []string{"c0", "c1"}})
	roundTrip(t, brokerConsumerConnection, &ConsumerConnection{
		ConnectionSet: []Connection{{ClientID: "c0", Language: "JAVA", Version: 400}, {ClientID: "c1", ClientAddr: "10.0.0.1:50000", Language: "GO", Version: 317}},
		SubscriptionTable: map[string]SubscriptionData{
			"T": {Topic: "T", SubString: "A || B", TagsSet: []string{"A", "B"}, CodeSet: CodeSet{Codes: []int64{65, 66}}, SubVersion: 17, ExpressionType: "TAG"},
			"U": {Topic: "U", SubString: "*", TagsSet: []string{}, CodeSet: CodeSet{Codes: []int64{}}},
		},
		ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
	})
	roundTrip(t, brokerProducerConnection, &ProducerConnection{ConnectionSet: []Connection{{ClientID: "c1", Language: "GO", Version: 317}}})
}

func TestMessageQueue(t *testing.T) {
	q := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 2}
	if b, _ := json.Marshal(q); string(b) != `{"topic":"T","brokerName":"b","queueId":2}` {
		t.Fatalf("encoding/json: %s", b)
	}
	if b := q.appendSorted(nil); string(b) != `{"brokerName":"b","queueId":2,"topic":"T"}` {
		t.Fatalf("sorted: %s", b)
	}
	if q.String() != "T@b:2" {
		t.Fatal(q.String())
	}
	table := map[MessageQueue]int{{"U", "a", 0}: 0, {"T", "b", 10}: 0, {"T", "b", 9}: 0, {"T", "a", 11}: 0}
	if got := SortedQueues(table); !reflect.DeepEqual(got, []MessageQueue{{"T", "a", 11}, {"T", "b", 9}, {"T", "b", 10}, {"U", "a", 0}}) {
		t.Fatalf("sorted %v", got)
	}
}

func TestResetOffsetBody(t *testing.T) {
	mq := func(q int) MessageQueue { return MessageQueue{Topic: "TestTopic", BrokerName: "broker-a", QueueID: q} }
	want := map[MessageQueue]int64{mq(0): 5, mq(1): -1, mq(2): 9}
	for _, golden := range []string{brokerResetOffset, gsonResetOffset} {
		var r ResetOffsetBody
		r.Decode([]byte(golden))
		if !reflect.DeepEqual(r.OffsetTable, want) {
			t.Fatalf("%s: %v", golden, r.OffsetTable)
		}
	}
	if got := (ResetOffsetBody{OffsetTable: want}).Encode(); string(got) != brokerResetOffset {
		t.Fatalf("encode\n got: %s\nwant: %s", got, brokerResetOffset)
	}
	if got := (ResetOffsetBody{}).Encode(); string(got) != `{"offsetTable":{}}` {
		t.Fatalf("empty: %s", got)
	}
	for _, bad := range []string{"garbage {", `{"offsetTable":{{"brokerName":"b","queueId":0}:5,{"topic":"T","queueId":"x"}:1,{"topic":"T"}:99999999999999999999}}`} {
		var r ResetOffsetBody
		r.Decode([]byte(bad))
		if len(r.OffsetTable) != 0 {
			t.Fatalf("%s decoded as %v", bad, r.OffsetTable)
		}
	}
}

func TestConsumeStats(t *testing.T) {
	want := ConsumeStats{OffsetTable: map[MessageQueue]OffsetWrapper{
		{Topic: "A", BrokerName: "broker-a", QueueID: 0}: {BrokerOffset: 10, ConsumerOffset: 4, LastTimestamp: 1700000000000},
		{Topic: "A", BrokerName: "broker-a", QueueID: 1}: {},
		{Topic: "B", BrokerName: "broker-a", QueueID: 0}: {BrokerOffset: 1},
	}}
	if got := want.Encode(); string(got) != brokerConsumeStats {
		t.Fatalf("encode\n got: %s\nwant: %s", got, brokerConsumeStats)
	}
	var s ConsumeStats
	if err := s.Decode([]byte(brokerConsumeStats)); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("decode: %+v %v", s, err)
	}
	busy := `{"consumeTps":12.5,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"lastTimestamp":3,"consumerOffset":"2","brokerOffset":1.5}}}`
	if err := s.Decode([]byte(busy)); err != nil || s.ConsumeTps != 12.5 ||
		s.OffsetTable[MessageQueue{Topic: "T", BrokerName: "b"}] != (OffsetWrapper{ConsumerOffset: 2, LastTimestamp: 3}) {
		t.Fatalf("decode: %+v %v", s, err)
	}
	if got := s.Encode(); !strings.HasPrefix(string(got), `{"consumeTps":12.5,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":0,"consumerOffset":2,"lastTimestamp":3}}}`) {
		t.Fatalf("encode: %s", got)
	}
	if err := s.Decode([]byte(`{"offsetTable":{{"topic":"T"}:{"brokerOffset":true}}}`)); err == nil {
		t.Fatal("a value that is not a number was accepted")
	}
}

func TestTopicStatsTable(t *testing.T) {
	want := TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{
		{Topic: "T1", BrokerName: "b1", QueueID: 0}: {LastUpdateTimestamp: 7, MaxOffset: 5, MinOffset: 1},
		{Topic: "T1", BrokerName: "b1", QueueID: 1}: {},
	}}
	if got := want.Encode(); string(got) != brokerTopicStats {
		t.Fatalf("encode\n got: %s\nwant: %s", got, brokerTopicStats)
	}
	var ts TopicStatsTable
	if err := ts.Decode([]byte(brokerTopicStats)); err != nil || !reflect.DeepEqual(ts, want) {
		t.Fatalf("decode: %+v %v", ts, err)
	}
	// Any key order; keys that are not queues are skipped.
	in := `{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"minOffset":0,"maxOffset":7,"lastUpdateTimestamp":5},` +
		`{"brokerName":"a","queueId":0,"topic":"T"}:{"minOffset":2,"maxOffset":3,"lastUpdateTimestamp":0},{"queueId":"x"}:{}}}`
	if err := ts.Decode([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if q := SortedQueues(ts.OffsetTable); len(q) != 2 || q[0].BrokerName != "a" || ts.OffsetTable[q[0]].MinOffset != 2 ||
		ts.OffsetTable[q[1]].MaxOffset != 7 || q[1].QueueID != 1 {
		t.Fatalf("decoded %+v", ts.OffsetTable)
	}
}

func TestJavaDouble(t *testing.T) {
	for f, want := range map[float64]string{0: "0.0", 12.5: "12.5", 3: "3.0", -0.25: "-0.25"} {
		if got := string(appendJavaDouble(nil, f)); got != want {
			t.Fatalf("%v: %s, want %s", f, got, want)
		}
	}
}

func FuzzBodies(f *testing.F) {
	for _, s := range []string{goClientHeartbeat, javaClientHeartbeat, goClientLock, brokerLockOK, brokerConsumerConnection, brokerResetOffset, gsonResetOffset, brokerConsumeStats, brokerTopicStats} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var hb HeartbeatData
		if json.Unmarshal(b, &hb) == nil {
			if _, err := json.Marshal(hb); err != nil {
				t.Fatalf("decoded heartbeat does not encode: %v", err)
			}
		}
		var r ResetOffsetBody
		r.Decode(b)
		var again ResetOffsetBody
		again.Decode(r.Encode())
		if !reflect.DeepEqual(r.OffsetTable, again.OffsetTable) {
			t.Fatalf("offset table %v re-read as %v", r.OffsetTable, again.OffsetTable)
		}
		var s ConsumeStats
		_ = s.Decode(b)
		var ts TopicStatsTable
		_ = ts.Decode(b)
	})
}

func BenchmarkHeartbeatData(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		data := []byte(goClientHeartbeat)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var hb HeartbeatData
			if err := json.Unmarshal(data, &hb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		var hb HeartbeatData
		_ = json.Unmarshal([]byte(goClientHeartbeat), &hb)
		for b.Loop() {
			if _, err := json.Marshal(&hb); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkConsumeStats(b *testing.B) {
	var s ConsumeStats
	if err := s.Decode([]byte(brokerConsumeStats)); err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			_ = s.Encode()
		}
	})
	b.Run("decode", func(b *testing.B) {
		data := []byte(brokerConsumeStats)
		for b.Loop() {
			var d ConsumeStats
			if err := d.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
