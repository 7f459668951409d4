package body

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// MessageQueue names one queue of a topic on one broker group (RocketMQ's MessageQueue).
// encoding/json writes it as rocketmq-client-go does: {"topic":..,"brokerName":..,"queueId":..}.
// A broker writes it as fastjson does, keys sorted (see LockBatchResponse and ResetOffsetBody).
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// String returns "topic@brokerName:queueId".
func (q MessageQueue) String() string {
	return q.Topic + "@" + q.BrokerName + ":" + strconv.Itoa(q.QueueID)
}

// Compare orders queues by topic, then broker name, then queue id.
func (q MessageQueue) Compare(o MessageQueue) int {
	return cmp.Or(cmp.Compare(q.Topic, o.Topic), cmp.Compare(q.BrokerName, o.BrokerName), cmp.Compare(q.QueueID, o.QueueID))
}

// SortedQueues returns the queues of a table keyed by queue, in Compare order.
func SortedQueues[V any](table map[MessageQueue]V) []MessageQueue {
	return slices.SortedFunc(maps.Keys(table), MessageQueue.Compare)
}

// appendSorted appends q as fastjson writes it: compact, keys in alphabetical order.
func (q MessageQueue) appendSorted(b []byte) []byte {
	b = append(b, `{"brokerName":`...)
	b = appendString(b, q.BrokerName)
	b = append(b, `,"queueId":`...)
	b = strconv.AppendInt(b, int64(q.QueueID), 10)
	b = append(b, `,"topic":`...)
	b = appendString(b, q.Topic)
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json escapes it.
func appendString(b []byte, s string) []byte {
	j, _ := json.Marshal(s) // a string always marshals
	return append(b, j...)
}
