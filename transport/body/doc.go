// Package body holds the JSON bodies of the RocketMQ remoting requests and replies that both
// sides of raftmq speak: the client side (client/, cmd/raftmq) and the broker (node/). Each is
// declared once here, with RocketMQ's field names and the exact bytes raftmq writes:
//
//   - a body a client sends (HeartbeatData, LockBatchRequest) is written as
//     rocketmq-client-go v2.1.2 writes it: fields in declaration order, codeSet as strings;
//   - a body a broker sends is written as raftmq's broker has always written it, in the form of
//     Java's broker (fastjson): LockBatchResponse and the tables keyed by queue (ResetOffsetBody,
//     ConsumeStats, TopicStatsTable) with MessageQueue's keys sorted, codeSet as numbers.
//
// Every decoder reads what the official Java and Go clients and brokers send.
//
// fastjson writes a Map<MessageQueue, V> with the queues themselves as keys
// ({{"brokerName":"b","queueId":0,"topic":"T"}:5}), which is not JSON: the bodies holding such
// a map have Encode and Decode methods instead of encoding/json's.
//
// The name server's bodies (routes, cluster info, registration, topic lists, KV tables) are in
// namesrv.
package body
