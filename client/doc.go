// Package client is raftmq's Go client library: a Producer, a PushConsumer, a
// PullConsumer and an Admin client speaking RocketMQ 4.x's remoting protocol (package
// transport) to raftmq's name servers and broker groups (Raft groups whose leader is
// brokerId 0 in the routes).
//
// # Shape
//
// Every client is built from a config struct whose zero values are the defaults
// (DefaultProducerConfig and friends spell them out) and whose Validate names the
// offending field and its limit. Calls that block take a context first. Close stops every
// goroutine and closes every connection the client started, is idempotent, and is the only
// way to release them. Each client owns its connections: two producers in one process
// share nothing.
//
// # Errors
//
// A broker or name server reply with an error code is an *Error carrying the code, the
// remark and the server's address. Retryable (the method, or the function for any error)
// classifies failures: not-leader and other SERVICE_NOT_AVAILABLE replies, SYSTEM_ERROR,
// SYSTEM_BUSY, NO_PERMISSION, TOPIC_NOT_EXIST and transport failures are retryable;
// validation errors (ErrInvalidMessage, ErrInvalidConfig), MESSAGE_ILLEGAL and ErrClosed
// are not. Sentinels for errors.Is: ErrClosed, ErrTopicNotExist, ErrNoRoute,
// ErrNameServer, ErrInvalidConfig, ErrInvalidMessage, ErrNotStarted.
//
// # Routes and failover
//
// Routes come from the name servers (GET_ROUTEINFO_BY_TOPIC; "host:port", IPs or DNS
// names resolved at each dial), which are tried in turn,
// starting with the last one that answered: a dead first address costs one failed dial. When
// all fail the error lists every address tried, and the last good route stays in use.
// Routes are refreshed every RouteRefreshInterval (30 s) and at once when a send meets a
// connection failure or a SERVICE_NOT_AVAILABLE / TOPIC_NOT_EXIST / NO_PERMISSION reply,
// so a leader change costs a send one retry, not a 30 s outage (TestCluster_LeaderKilled…
// checks this). While a group has no leader, sends wait (within the attempt's deadline)
// for the name servers to list the new one. Consumers pull from any node of the group
// (followers serve what they have applied) and fall back to another node when one fails.
//
// # Producer
//
// Send (sync), SendAsync (pipelined, bounded by MaxAsyncInFlight, callback on another
// goroutine), SendOneway and SendBatch (one queue, all or nothing) use SEND_MESSAGE_V2 and
// SEND_BATCH_MESSAGE. Every message, batch entries included, gets a 32-hex-character
// UNIQ_KEY (SendResult.MsgID). The DefaultSelector picks the queue by ShardingKey hash
// (ordered messages, retried on the same queue) or round robin, skipping the group that
// just failed; any QueueSelector can replace it. Failed sends are retried up to
// MaxAttempts. SendInTransaction with a TransactionListener sends a half message, runs the
// local transaction and ends it with END_TRANSACTION; the broker's
// CHECK_TRANSACTION_STATE requests are answered from Check. Bodies of CompressThreshold
// bytes or more are zlib-compressed.
//
// # PushConsumer
//
// Subscribe(topic, "*" | "A || B") then Start. Clustering (default) splits the readable
// queues evenly among the group's members (sorted client ids, contiguous ranges, as
// RocketMQ's AllocateMessageQueueAveragely), rebalancing every RebalanceInterval (20 s) and
// at once on NOTIFY_CONSUMER_IDS_CHANGED; offsets are committed to the brokers every
// OffsetCommitInterval (5 s) and at Close, and failed messages are sent back
// (CONSUMER_SEND_MSG_BACK: the broker redelivers after a growing delay, then moves them to
// %DLQ%<group> after MaxReconsumeTimes). Broadcasting gives every member every queue and
// keeps offsets in a local JSON file (OffsetStoreDir); failed messages are dropped.
// A Listener runs on Concurrency goroutines; an OrderlyListener runs one call at a time
// per queue in queue order and, in clustering, only while the consumer holds the broker's
// lock of the queue (LOCK_BATCH_MQ, renewed every LockRenewInterval, released at Close and
// when the queue moves). Each queue is pulled with long polling (LongPollTimeout, the RPC
// timeout being longer) and pauses while PullThresholdPerQueue messages or
// PullThresholdSizePerQueue bytes wait for the listener. A new queue starts at the
// committed offset, else at ConsumeFrom (last, first or ConsumeTimestamp). HEART_BEAT goes
// to every node of the subscribed topics every HeartbeatInterval (30 s) and at Start.
//
// # PullConsumer and Admin
//
// PullConsumer: Queues, Assign(expr, queues...), Seek, Poll (long-polls all assigned
// queues at once when none has data), Commit, Committed. Admin: CreateTopic, DeleteTopic,
// ListTopics, Route, ClusterInfo, ConsumerProgress, ConsumerConnections,
// QueryMessageByID, QueryMessageByKey, ResetOffsetByTime.
//
// # Client id
//
// The client id is "ip@instance"; the instance defaults to the process id, and to
// "pid-N" for the N-th client of the process, so members of one group in one process stay
// distinct. Set ClientConfig.InstanceName to keep an id across restarts (broadcasting
// offset files are kept per client id).
//
// # Goroutines
//
// Per client: a route refresher and a heartbeat sender; per push consumer also a
// rebalancer, an offset committer, Concurrency listener workers, and per held queue one
// puller (plus one orderly runner). All are tracked by a WaitGroup and end in Close;
// TestProducerConsumer_StartStopCycles runs 1,000 start/stop cycles under goleak and
// counts file descriptors and connections.
package client
