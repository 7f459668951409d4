package body

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ResetOffsetBody is the body of RESET_CONSUMER_CLIENT_OFFSET (broker → client) and the
// reply body of INVOKE_BROKER_TO_RESET_OFFSET: every queue's new offset,
// {"offsetTable":{{mq}:offset,...}}.
type ResetOffsetBody struct {
	OffsetTable map[MessageQueue]int64
}

// Encode writes the body as Java's broker does (fastjson), queues in Compare order.
func (r ResetOffsetBody) Encode() []byte {
	b := append(make([]byte, 0, 16+len(r.OffsetTable)*72), `{"offsetTable":`...)
	b = appendQueueTable(b, r.OffsetTable, func(b []byte, off int64) []byte { return strconv.AppendInt(b, off, 10) })
	return append(b, '}')
}

// queueNumberEntry matches one queue object followed by its number, in fastjson's map form
// ({mq}:5) and gson's array form ([{mq},5]).
var queueNumberEntry = regexp.MustCompile(`(\{[^{}]*\})\s*[:,]\s*(-?\d+)`)

// Decode reads the offset table from either form; entries it cannot read (a queue without a
// topic, an offset out of range) are skipped, and a body it cannot read at all gives an empty
// table.
func (r *ResetOffsetBody) Decode(data []byte) {
	r.OffsetTable = map[MessageQueue]int64{}
	for _, m := range queueNumberEntry.FindAllSubmatch(data, -1) {
		var q MessageQueue
		if json.Unmarshal(m[1], &q) != nil || q.Topic == "" {
			continue
		}
		off, err := strconv.ParseInt(string(m[2]), 10, 64)
		if err != nil {
			continue
		}
		r.OffsetTable[q] = off
	}
}

// ConsumeStats is the reply body of GET_CONSUME_STATS: a consumer group's offsets on each
// queue, {"consumeTps":0.0,"offsetTable":{{mq}:{"brokerOffset":..,"consumerOffset":..,
// "lastTimestamp":..},...}}.
type ConsumeStats struct {
	ConsumeTps  float64
	OffsetTable map[MessageQueue]OffsetWrapper
}

// OffsetWrapper is one queue's line of ConsumeStats.
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`   // the queue's max offset
	ConsumerOffset int64 `json:"consumerOffset"` // the group's committed offset
	LastTimestamp  int64 `json:"lastTimestamp"`  // store time of the last consumed message, ms
}

// Encode writes the body as Java's broker does (fastjson), queues in Compare order.
func (s ConsumeStats) Encode() []byte {
	b := append(make([]byte, 0, 32+len(s.OffsetTable)*128), `{"consumeTps":`...)
	b = appendJavaDouble(b, s.ConsumeTps)
	b = append(b, `,"offsetTable":`...)
	b = appendQueueTable(b, s.OffsetTable, appendJSON[OffsetWrapper])
	return append(b, '}')
}

// consumeTps finds ConsumeStats' consumeTps.
var consumeTps = regexp.MustCompile(`"consumeTps"\s*:\s*(-?[0-9][0-9.eE+-]*)`)

// Decode reads the body. Keys that are not queues are skipped; a value that is not an
// object of numbers is an error; a field missing or not an integer reads as 0.
func (s *ConsumeStats) Decode(data []byte) error {
	s.ConsumeTps = 0
	if m := consumeTps.FindSubmatch(data); m != nil {
		s.ConsumeTps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	s.OffsetTable = map[MessageQueue]OffsetWrapper{}
	return decodeQueueTable(data, func(q MessageQueue, v map[string]json.Number) {
		s.OffsetTable[q] = OffsetWrapper{BrokerOffset: num(v, "brokerOffset"), ConsumerOffset: num(v, "consumerOffset"), LastTimestamp: num(v, "lastTimestamp")}
	})
}

// TopicStatsTable is the reply body of GET_TOPIC_STATS_INFO: each queue's offsets,
// {"offsetTable":{{mq}:{"lastUpdateTimestamp":..,"maxOffset":..,"minOffset":..},...}}.
type TopicStatsTable struct {
	OffsetTable map[MessageQueue]TopicOffset
}

// TopicOffset is one queue's line of TopicStatsTable.
type TopicOffset struct {
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"` // store time of the newest message, ms
	MaxOffset           int64 `json:"maxOffset"`
	MinOffset           int64 `json:"minOffset"`
}

// Encode writes the body as Java's broker does (fastjson), queues in Compare order.
func (t TopicStatsTable) Encode() []byte {
	b := append(make([]byte, 0, 16+len(t.OffsetTable)*128), `{"offsetTable":`...)
	b = appendQueueTable(b, t.OffsetTable, appendJSON[TopicOffset])
	return append(b, '}')
}

// Decode reads the body, as ConsumeStats.Decode does.
func (t *TopicStatsTable) Decode(data []byte) error {
	t.OffsetTable = map[MessageQueue]TopicOffset{}
	return decodeQueueTable(data, func(q MessageQueue, v map[string]json.Number) {
		t.OffsetTable[q] = TopicOffset{LastUpdateTimestamp: num(v, "lastUpdateTimestamp"), MaxOffset: num(v, "maxOffset"), MinOffset: num(v, "minOffset")}
	})
}

// appendQueueTable appends a map keyed by queue as fastjson writes it: {{mq}:value,...}, the
// queues' keys sorted, the queues in Compare order.
func appendQueueTable[V any](b []byte, table map[MessageQueue]V, appendValue func([]byte, V) []byte) []byte {
	b = append(b, '{')
	for i, q := range SortedQueues(table) {
		if i > 0 {
			b = append(b, ',')
		}
		b = q.appendSorted(b)
		b = append(b, ':')
		b = appendValue(b, table[q])
	}
	return append(b, '}')
}

// appendJSON appends v as encoding/json writes it (v is a struct of numbers: it always marshals).
func appendJSON[V any](b []byte, v V) []byte {
	j, _ := json.Marshal(v)
	return append(b, j...)
}

// appendJavaDouble appends f as Java writes a double of ordinary size: at least one decimal
// (0.0, 12.5).
func appendJavaDouble(b []byte, f float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if !strings.ContainsAny(string(b[start:]), ".NI") {
		b = append(b, ".0"...)
	}
	return b
}

// queueObjectEntry matches one queue object followed by its object value ({mq}:{...}).
var queueObjectEntry = regexp.MustCompile(`(\{[^{}]*\})\s*:\s*(\{[^{}]*\})`)

// decodeQueueTable calls add for each {mq}:{...} entry of data whose key reads as a queue.
func decodeQueueTable(data []byte, add func(MessageQueue, map[string]json.Number)) error {
	for _, m := range queueObjectEntry.FindAllSubmatch(data, -1) {
		var q MessageQueue
		if err := json.Unmarshal(m[1], &q); err != nil {
			continue // not a queue key
		}
		dec := json.NewDecoder(strings.NewReader(string(m[2])))
		dec.UseNumber()
		var v map[string]json.Number
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("decode queue entry %s: %w", m[2], err)
		}
		add(q, v)
	}
	return nil
}

// num is field k of v as an integer, 0 when missing or not an integer.
func num(v map[string]json.Number, k string) int64 {
	n, _ := v[k].Int64()
	return n
}
