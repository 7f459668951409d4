package fsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/raftmq/raftmq/commitlog"
)

// Errors callers branch on (errors.Is).
var (
	// ErrUnknownCommand is returned (and reported through Config.OnFatal) for a
	// raft entry whose type byte this version does not know: applying nothing
	// would silently diverge from replicas that do know it.
	ErrUnknownCommand = errors.New("fsm: unknown command type")
	// ErrTopicNotExist is the response to deleting a topic that does not exist.
	ErrTopicNotExist = errors.New("fsm: topic does not exist")
	// ErrGroupNotExist is the response to deleting a group that does not exist.
	ErrGroupNotExist = errors.New("fsm: subscription group does not exist")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("fsm: closed")
	// ErrCorruptCommand marks a raft entry whose body cannot be decoded. It is
	// fatal like ErrUnknownCommand.
	ErrCorruptCommand = errors.New("fsm: corrupt command")
	// ErrFatal marks every error that stopped this replica from applying: once
	// an entry could not be applied, later entries are refused with an error
	// wrapping ErrFatal, because the state no longer matches the other replicas.
	ErrFatal = errors.New("fsm: replica stopped applying")
	// ErrCorruptMeta marks a metadata file or snapshot that cannot be decoded.
	ErrCorruptMeta = errors.New("fsm: corrupt metadata")
)

// AppendCommand is a group-commit batch of messages: one raft entry, one
// commitlog.Append. The leader stamps StoreTimestamp and each message's
// StoreHost before proposing.
type AppendCommand struct {
	StoreTimestamp int64 // ms, stamped by the leader
	Messages       []*commitlog.Message
}

// AppendResponse is what Apply returns for a CmdAppend entry (or an error).
type AppendResponse struct {
	Results []commitlog.AppendResult
}

// TopicConfig is RocketMQ's TopicConfig.
type TopicConfig struct {
	TopicName       string `msgpack:"n"`
	ReadQueueNums   int32  `msgpack:"r"`
	WriteQueueNums  int32  `msgpack:"w"`
	Perm            int32  `msgpack:"p"`
	TopicFilterType string `msgpack:"f"`
	TopicSysFlag    int32  `msgpack:"s"`
	Order           bool   `msgpack:"o"`
}

// PutTopicCommand creates or updates a topic; Timestamp (ms, stamped by the
// leader) becomes the DataVersion timestamp.
type PutTopicCommand struct {
	Topic     TopicConfig `msgpack:"t"`
	Timestamp int64       `msgpack:"ts"`
}

// DeleteTopicCommand deletes a topic, its consume queues and its consumer
// offsets.
type DeleteTopicCommand struct {
	Topic     string `msgpack:"t"`
	Timestamp int64  `msgpack:"ts"`
}

// GroupConfig is RocketMQ's SubscriptionGroupConfig.
type GroupConfig struct {
	GroupName                      string `msgpack:"n"`
	ConsumeEnable                  bool   `msgpack:"ce"`
	ConsumeFromMinEnable           bool   `msgpack:"cm"`
	ConsumeBroadcastEnable         bool   `msgpack:"cb"`
	RetryQueueNums                 int32  `msgpack:"rq"`
	RetryMaxTimes                  int32  `msgpack:"rm"`
	BrokerID                       int64  `msgpack:"b"`
	WhichBrokerWhenConsumeSlowly   int64  `msgpack:"ws"`
	NotifyConsumerIDsChangedEnable bool   `msgpack:"nc"`
}

// PutGroupCommand creates or updates a subscription group.
type PutGroupCommand struct {
	Group GroupConfig `msgpack:"g"`
}

// DeleteGroupCommand deletes a subscription group and its consumer offsets.
type DeleteGroupCommand struct {
	Group string `msgpack:"g"`
}

// OffsetEntry is one consumer offset.
type OffsetEntry struct {
	Group   string `msgpack:"g"`
	Topic   string `msgpack:"t"`
	QueueID int32  `msgpack:"q"`
	Offset  int64  `msgpack:"o"`
}

// CommitOffsetsCommand sets consumer offsets (last write wins).
type CommitOffsetsCommand struct {
	Entries []OffsetEntry `msgpack:"e"`
}

// Member maps a raft server ID to the broker's client address and broker id,
// so that followers can forward to (or name) the leader.
type Member struct {
	ServerID   string `msgpack:"s"`
	BrokerAddr string `msgpack:"a"`
	BrokerID   int64  `msgpack:"b"`
}

// SetMemberCommand sets (adds or replaces) one member.
type SetMemberCommand struct {
	Member Member `msgpack:"m"`
}

// DataVersion is RocketMQ's DataVersion of the topic table: it bumps on every
// topic change, with the change's stamped time.
type DataVersion struct {
	Timestamp int64 `msgpack:"t"`
	Counter   int64 `msgpack:"c"`
}

// Fetcher is how Restore obtains commitlog bytes this replica lacks. node
// implements it by asking a peer over the remoting protocol; the peer answers
// with FSM.ReadCommitLog. It returns whole records starting at from, at most
// maxBytes unless a single record is larger, and no bytes at the end of the
// peer's log.
type Fetcher interface {
	FetchCommitLog(ctx context.Context, from int64, maxBytes int) ([]byte, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, from int64, maxBytes int) ([]byte, error)

// FetchCommitLog calls fn.
func (fn FetcherFunc) FetchCommitLog(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
	return fn(ctx, from, maxBytes)
}

// DefaultFetchBytes is the default Config.FetchBytes.
const DefaultFetchBytes = 4 << 20

// Config configures an FSM.
type Config struct {
	Log      *commitlog.Log // required; owned by the caller (Close does not close it)
	MetaPath string         // metadata file: topics, groups, offsets, members, with the applied index (required)
	Fetcher  Fetcher        // commitlog source for Restore on a replica that is behind; nil = Restore fails when bytes are missing
	OnFatal  func(error)    // apply could not be done on this replica: the node must stop serving; nil = log only
	Logger   *slog.Logger   // nil = discard

	// FetchBytes is the most commitlog bytes asked for per fetch during
	// Restore (default 4 MiB); it bounds Restore's memory.
	FetchBytes int
	// RestoreContext, if set, is the parent context of Restore's fetches
	// (cancel it to abort a Restore when the node shuts down). Default
	// context.Background().
	RestoreContext context.Context
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig(log *commitlog.Log, metaPath string) Config {
	return Config{Log: log, MetaPath: metaPath, FetchBytes: DefaultFetchBytes}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Log == nil {
		return errors.New("fsm: config: Log is required")
	}
	if c.MetaPath == "" {
		return errors.New("fsm: config: MetaPath is required")
	}
	if c.FetchBytes < 0 {
		return fmt.Errorf("fsm: config: FetchBytes %d must be >= 0 (0 = %d)", c.FetchBytes, DefaultFetchBytes)
	}
	if c.FetchBytes > 0 && c.FetchBytes < 64<<10 {
		return fmt.Errorf("fsm: config: FetchBytes %d below the minimum 65536", c.FetchBytes)
	}
	return nil
}
