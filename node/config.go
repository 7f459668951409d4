package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/magiconair/properties"

	"github.com/raftmq/raftmq/commitlog"
)

// Role is RocketMQ's brokerRole.
type Role string

// The broker roles of broker.conf.
const (
	RoleAsyncMaster Role = "ASYNC_MASTER"
	RoleSyncMaster  Role = "SYNC_MASTER"
	RoleSlave       Role = "SLAVE"
)

// FlushDiskType is RocketMQ's flushDiskType.
type FlushDiskType string

// The flush modes of broker.conf.
const (
	AsyncFlush FlushDiskType = "ASYNC_FLUSH"
	SyncFlush  FlushDiskType = "SYNC_FLUSH"
)

// RaftLogStoreKind is raftmq's raftLogStore key: where a node keeps its Raft log.
type RaftLogStoreKind string

// The Raft log stores.
const (
	// RaftLogAuto, the default, is the store that already holds this node's Raft log, and
	// RaftLogWAL for a node with none: a node that ran on bolt keeps it after an upgrade.
	RaftLogAuto RaftLogStoreKind = "auto"
	// RaftLogBolt is raft-boltdb/v2 (bbolt): a B+tree transaction per batch of entries.
	RaftLogBolt RaftLogStoreKind = "boltdb"
	// RaftLogWAL is raftmq's append-only segment-file log (internal/raftlog): one write
	// per batch of entries instead of a B+tree transaction.
	RaftLogWAL RaftLogStoreKind = "wal"
)

// Peer is one member of a DLedger group (dLegerPeers=n0-host:port;n1-host:port).
type Peer struct {
	ID   string // n0, n1, ...
	Addr string // host:port of the peer's Raft transport
}

// ErrInvalidConfig marks every configuration error; the message names the key.
var ErrInvalidConfig = errors.New("invalid broker config")

// Config is a broker node's configuration: RocketMQ's broker.conf keys (the field comments give
// the key and RocketMQ's default) plus the DLedger keys and raftmq's Raft knobs.
type Config struct {
	BrokerClusterName string   // brokerClusterName, DefaultCluster
	BrokerName        string   // brokerName (required: the group's name)
	BrokerID          int64    // brokerId, 0 = master
	NamesrvAddr       []string // namesrvAddr "ip:port;ip:port"; -n, else the file, else NAMESRV_ADDR
	BrokerIP1         string   // brokerIP1: the address advertised to clients
	BrokerIP2         string   // brokerIP2: the address of the Raft (HA) transport, default brokerIP1
	ListenPort        int      // listenPort, 10911
	HAListenPort      int      // haListenPort: the Raft transport port, default listenPort+1

	DefaultTopicQueueNums       int  // defaultTopicQueueNums, 8 (the seed sets 4)
	AutoCreateTopicEnable       bool // autoCreateTopicEnable, true
	AutoCreateSubscriptionGroup bool // autoCreateSubscriptionGroup, true
	BrokerPermission            int  // brokerPermission, 6 (read|write)
	SlaveReadEnable             bool // slaveReadEnable, false

	BrokerRole    Role          // brokerRole, ASYNC_MASTER
	FlushDiskType FlushDiskType // flushDiskType, ASYNC_FLUSH

	SendMessageThreadPoolNums int // sendMessageThreadPoolNums: concurrent send handlers
	PullMessageThreadPoolNums int // pullMessageThreadPoolNums: concurrent pull handlers

	MessageDelayLevel        []time.Duration // messageDelayLevel "1s 5s ... 2h"
	TransactionTimeout       time.Duration   // transactionTimeOut, 6000 ms
	RejectTransactionMessage bool            // rejectTransactionMessage, false: refuse transactional (half) messages with NO_PERMISSION
	TransactionCheckMax      int             // transactionCheckMax, 15
	TransactionCheckInterval time.Duration   // transactionCheckInterval, 60000 ms

	// FlushConsumerOffsetInterval is how often consumer offsets collected on the leader go
	// through Raft (flushConsumerOffsetInterval, 5000 ms): a failover rolls a group back by at
	// most this much.
	FlushConsumerOffsetInterval time.Duration

	// Store (commitlog) keys.
	StorePathRootDir                  string        // storePathRootDir, ~/store
	StorePathCommitLog                string        // storePathCommitLog, <root>/commitlog
	StorePathConsumeQueue             string        // storePathConsumeQueue, <root>/consumequeue
	StorePathIndex                    string        // storePathIndex, <root>/index
	StoreCheckpoint                   string        // storeCheckpoint, <root>/checkpoint
	AbortFile                         string        // abortFile, <root>/abort
	MappedFileSizeCommitLog           int64         // mappedFileSizeCommitLog (mapedFileSizeCommitLog), 1 GiB
	MappedFileSizeConsumeQueue        int64         // mappedFileSizeConsumeQueue (mapedFileSizeConsumeQueue), 300000*20 bytes, rounded up to 20
	MaxMessageSize                    int           // maxMessageSize, 4 MiB
	DeleteWhen                        string        // deleteWhen, "04" (hours, ';'-separated)
	FileReservedTime                  time.Duration // fileReservedTime, 72 (hours)
	DiskMaxUsedSpaceRatio             int           // diskMaxUsedSpaceRatio, 75 (percent)
	FlushIntervalCommitLog            time.Duration // flushIntervalCommitLog, 500 ms
	FlushCommitLogLeastPages          int           // flushCommitLogLeastPages, 4
	FlushCommitLogThoroughInterval    time.Duration // flushCommitLogThoroughInterval, 10000 ms
	FlushIntervalConsumeQueue         time.Duration // flushIntervalConsumeQueue, 1000 ms
	FlushConsumeQueueLeastPages       int           // flushConsumeQueueLeastPages, 2
	FlushConsumeQueueThoroughInterval time.Duration // flushConsumeQueueThoroughInterval, 60000 ms
	MaxHashSlotNum                    int           // maxHashSlotNum, 5000000
	MaxIndexNum                       int           // maxIndexNum, 20000000
	CommitLogPageCacheKeep            int64         // commitLogPageCacheKeep (raftmq), 256 MiB: flushed commitlog bytes behind the head kept in the page cache, older pages dropped; -1 = never drop

	// DLedger keys.
	EnableDLegerCommitLog bool   // enableDLegerCommitLog, false
	DLegerGroup           string // dLegerGroup, defaults to brokerName
	DLegerPeers           []Peer // dLegerPeers
	DLegerSelfID          string // dLegerSelfId

	// Raft knobs (raftmq's own keys).
	RaftDir               string           // raftDir, <root>/raft
	RaftHeartbeatTimeout  time.Duration    // raftHeartbeatTimeout, 1000 ms
	RaftElectionTimeout   time.Duration    // raftElectionTimeout, 1000 ms
	RaftLeaderLeaseTimout time.Duration    // raftLeaderLeaseTimeout, 500 ms
	RaftCommitTimeout     time.Duration    // raftCommitTimeout, 50 ms
	RaftMaxAppendEntries  int              // raftMaxAppendEntries, 512
	RaftSnapshotInterval  time.Duration    // raftSnapshotInterval, 120000 ms
	RaftSnapshotThreshold uint64           // raftSnapshotThreshold, 8192 entries
	RaftTrailingLogs      uint64           // raftTrailingLogs, 10240 entries
	RaftLogStore          RaftLogStoreKind // raftLogStore: auto (default: the store holding the log, else wal), boltdb or wal
	RaftLogStallTimeout   time.Duration    // raftLogStallTimeout, 15000 ms: a Raft log write in progress longer fences the node (watchdog.go); 0 = off
	GroupCommitMaxBytes   int              // groupCommitMaxBytes: most bytes of messages in one Raft entry (a larger message goes alone), 1 MiB
	GroupCommitMaxWait    time.Duration    // groupCommitMaxWait: longest a send waits for others to join its entry, 0 = no wait

	AdminListenAddr string // adminListenAddr: HTTP address of /metrics, /livez, /readyz ("" = off)
}

// DefaultRaftLogStallTimeout is raftLogStallTimeout's default: far above any healthy fsync,
// well below the time an operator takes to notice a group that stopped.
const DefaultRaftLogStallTimeout = 15 * time.Second

// DefaultDelayLevels is RocketMQ's messageDelayLevel default.
const DefaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// DefaultConfig returns RocketMQ's broker defaults. BrokerName and the store root still need
// setting (the root defaults to ~/store as in RocketMQ).
func DefaultConfig() Config {
	levels, _ := ParseDelayLevels(DefaultDelayLevels)
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return Config{
		BrokerClusterName:                 "DefaultCluster",
		ListenPort:                        10911,
		DefaultTopicQueueNums:             8,
		AutoCreateTopicEnable:             true,
		AutoCreateSubscriptionGroup:       true,
		BrokerPermission:                  6,
		BrokerRole:                        RoleAsyncMaster,
		FlushDiskType:                     AsyncFlush,
		SendMessageThreadPoolNums:         4,
		PullMessageThreadPoolNums:         16 + 2*2,
		MessageDelayLevel:                 levels,
		TransactionTimeout:                6 * time.Second,
		TransactionCheckMax:               15,
		TransactionCheckInterval:          60 * time.Second,
		FlushConsumerOffsetInterval:       5 * time.Second,
		StorePathRootDir:                  filepath.Join(home, "store"),
		MappedFileSizeCommitLog:           1 << 30,
		MappedFileSizeConsumeQueue:        300000 * 20,
		MaxMessageSize:                    4 << 20,
		DeleteWhen:                        "04",
		FileReservedTime:                  72 * time.Hour,
		DiskMaxUsedSpaceRatio:             75,
		FlushIntervalCommitLog:            500 * time.Millisecond,
		FlushCommitLogLeastPages:          4,
		FlushCommitLogThoroughInterval:    10 * time.Second,
		FlushIntervalConsumeQueue:         time.Second,
		FlushConsumeQueueLeastPages:       2,
		FlushConsumeQueueThoroughInterval: 60 * time.Second,
		MaxHashSlotNum:                    5000000,
		MaxIndexNum:                       5000000 * 4,
		CommitLogPageCacheKeep:            commitlog.DefaultPageCacheKeep,
		RaftHeartbeatTimeout:              time.Second,
		RaftElectionTimeout:               time.Second,
		RaftLeaderLeaseTimout:             500 * time.Millisecond,
		RaftCommitTimeout:                 50 * time.Millisecond,
		RaftMaxAppendEntries:              512,
		RaftLogStore:                      RaftLogAuto,
		RaftSnapshotInterval:              120 * time.Second,
		RaftSnapshotThreshold:             8192,
		RaftTrailingLogs:                  10240,
		RaftLogStallTimeout:               DefaultRaftLogStallTimeout,
		GroupCommitMaxBytes:               1 << 20,
	}
}

// LoadOptions says where namesrvAddr may come from besides the file.
type LoadOptions struct {
	NamesrvAddr string              // the -n flag; wins over the file
	Getenv      func(string) string // for NAMESRV_ADDR; nil = os.Getenv
}

// LoadConfig reads a broker.conf file. It returns the config (defaults filled in, not yet
// validated), warnings about unknown or unused keys, and an error naming the key of any invalid
// value.
func LoadConfig(path string, opts LoadOptions) (Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("read broker config: %w", err)
	}
	cfg, warnings, err := ParseConfig(string(data), opts)
	if err != nil {
		return Config{}, warnings, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warnings, nil
}

// ParseConfig parses broker.conf text (Java properties format). See LoadConfig.
func ParseConfig(text string, opts LoadOptions) (Config, []string, error) {
	p, err := properties.LoadString(text)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%w: parse properties: %v", ErrInvalidConfig, err)
	}
	p.DisableExpansion = true
	cfg := DefaultConfig()
	var warnings []string
	seen := map[string]string{} // canonical key -> spelling used
	keys := p.Keys()
	sort.Strings(keys)
	for _, raw := range keys {
		val, _ := p.Get(raw)
		key := strings.TrimSpace(raw)
		val = strings.TrimSpace(val)
		spec, ok := lookupKey(key)
		if !ok {
			if _, known := ignoredKeys[key]; known {
				warnings = append(warnings, fmt.Sprintf("broker config key %q is a RocketMQ key that raftmq does not use; ignored", key))
				continue
			}
			msg := fmt.Sprintf("unknown broker config key %q ignored", key)
			if s := suggestKey(key); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			warnings = append(warnings, msg)
			continue
		}
		if prev, dup := seen[spec.name]; dup {
			warnings = append(warnings, fmt.Sprintf("broker config key %q set again as %q; the last one wins", prev, key))
		}
		seen[spec.name] = key
		if err := spec.set(&cfg, val); err != nil {
			return Config{}, warnings, fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, key, val, err)
		}
	}
	if opts.NamesrvAddr != "" {
		cfg.NamesrvAddr = splitAddrs(opts.NamesrvAddr)
	} else if len(cfg.NamesrvAddr) == 0 {
		getenv := opts.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		cfg.NamesrvAddr = splitAddrs(getenv("NAMESRV_ADDR"))
	}
	cfg.fillDerived()
	return cfg, warnings, nil
}

// fillDerived fills the values that default from others (paths under the root, ports).
func (c *Config) fillDerived() {
	if c.StorePathCommitLog == "" {
		c.StorePathCommitLog = filepath.Join(c.StorePathRootDir, "commitlog")
	}
	if c.StorePathConsumeQueue == "" {
		c.StorePathConsumeQueue = filepath.Join(c.StorePathRootDir, "consumequeue")
	}
	if c.StorePathIndex == "" {
		c.StorePathIndex = filepath.Join(c.StorePathRootDir, "index")
	}
	if c.StoreCheckpoint == "" {
		c.StoreCheckpoint = filepath.Join(c.StorePathRootDir, "checkpoint")
	}
	if c.AbortFile == "" {
		c.AbortFile = filepath.Join(c.StorePathRootDir, "abort")
	}
	if c.RaftDir == "" {
		c.RaftDir = filepath.Join(c.StorePathRootDir, "raft")
	}
	if c.HAListenPort == 0 {
		c.HAListenPort = c.ListenPort + 1
	}
	if c.BrokerIP2 == "" {
		c.BrokerIP2 = c.BrokerIP1
	}
	if c.DLegerGroup == "" {
		c.DLegerGroup = c.BrokerName
	}
}

// Validate checks every value and the rules across keys; each error names the key.
func (c *Config) Validate() error {
	c.fillDerived()
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	if c.BrokerName == "" {
		return bad("brokerName", "must be set (the name of the broker group)")
	}
	if !validName(c.BrokerName) {
		return bad("brokerName", "%q may only contain letters, digits, '-' and '_'", c.BrokerName)
	}
	if c.BrokerClusterName == "" || !validName(c.BrokerClusterName) {
		return bad("brokerClusterName", "%q may only contain letters, digits, '-' and '_'", c.BrokerClusterName)
	}
	if c.BrokerID < 0 {
		return bad("brokerId", "%d is negative", c.BrokerID)
	}
	if c.BrokerIP1 == "" {
		return bad("brokerIP1", "must be set: the address clients connect to")
	}
	if _, err := netip.ParseAddr(c.BrokerIP1); err != nil {
		return bad("brokerIP1", "%q is not an IP address", c.BrokerIP1)
	}
	if _, err := netip.ParseAddr(c.BrokerIP2); err != nil {
		return bad("brokerIP2", "%q is not an IP address", c.BrokerIP2)
	}
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		return bad("listenPort", "%d is not a port", c.ListenPort)
	}
	if c.HAListenPort < 0 || c.HAListenPort > 65535 {
		return bad("haListenPort", "%d is not a port", c.HAListenPort)
	}
	if c.ListenPort != 0 && c.HAListenPort == c.ListenPort {
		return bad("haListenPort", "%d equals listenPort", c.HAListenPort)
	}
	for _, a := range c.NamesrvAddr {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return bad("namesrvAddr", "%q is not ip:port (RocketMQ clients need IP literals)", a)
		}
	}
	if c.DefaultTopicQueueNums < 1 || c.DefaultTopicQueueNums > 1024 {
		return bad("defaultTopicQueueNums", "%d outside 1..1024", c.DefaultTopicQueueNums)
	}
	if c.BrokerPermission&^7 != 0 {
		return bad("brokerPermission", "%d is not a combination of 4 (read), 2 (write), 1 (inherit)", c.BrokerPermission)
	}
	switch c.BrokerRole {
	case RoleAsyncMaster, RoleSyncMaster:
		if c.BrokerID != 0 && !c.EnableDLegerCommitLog {
			return bad("brokerId", "%d with brokerRole=%s: a master has brokerId 0", c.BrokerID, c.BrokerRole)
		}
	case RoleSlave:
		if c.BrokerID == 0 && !c.EnableDLegerCommitLog {
			return bad("brokerId", "0 with brokerRole=SLAVE: a slave has brokerId > 0")
		}
	default:
		return bad("brokerRole", "%q is not ASYNC_MASTER, SYNC_MASTER or SLAVE", c.BrokerRole)
	}
	switch c.FlushDiskType {
	case AsyncFlush, SyncFlush:
	default:
		return bad("flushDiskType", "%q is not ASYNC_FLUSH or SYNC_FLUSH", c.FlushDiskType)
	}
	switch c.RaftLogStore {
	case RaftLogAuto, RaftLogBolt, RaftLogWAL:
	default:
		return bad("raftLogStore", "%q is not auto, boltdb or wal", c.RaftLogStore)
	}
	if c.SendMessageThreadPoolNums < 1 {
		return bad("sendMessageThreadPoolNums", "%d is below 1", c.SendMessageThreadPoolNums)
	}
	if c.PullMessageThreadPoolNums < 1 {
		return bad("pullMessageThreadPoolNums", "%d is below 1", c.PullMessageThreadPoolNums)
	}
	if len(c.MessageDelayLevel) == 0 {
		return bad("messageDelayLevel", "needs at least one level")
	}
	if c.StorePathRootDir == "" {
		return bad("storePathRootDir", "must be set")
	}
	if c.MappedFileSizeCommitLog < 4096 {
		return bad("mappedFileSizeCommitLog", "%d is below 4096 bytes", c.MappedFileSizeCommitLog)
	}
	if int64(c.MaxMessageSize)+64*1024 > c.MappedFileSizeCommitLog {
		return bad("maxMessageSize", "%d does not fit in a commitlog file of mappedFileSizeCommitLog=%d", c.MaxMessageSize, c.MappedFileSizeCommitLog)
	}
	if c.MappedFileSizeConsumeQueue < 20 {
		return bad("mappedFileSizeConsumeQueue", "%d is below one 20-byte entry", c.MappedFileSizeConsumeQueue)
	}
	if c.MaxMessageSize < 1 {
		return bad("maxMessageSize", "%d is below 1", c.MaxMessageSize)
	}
	if _, err := ParseDeleteWhen(c.DeleteWhen); err != nil {
		return bad("deleteWhen", "%v", err)
	}
	if c.FileReservedTime <= 0 {
		return bad("fileReservedTime", "must be positive")
	}
	if c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95 {
		return bad("diskMaxUsedSpaceRatio", "%d outside 10..95 (RocketMQ's range)", c.DiskMaxUsedSpaceRatio)
	}
	if c.CommitLogPageCacheKeep < -1 {
		return bad("commitLogPageCacheKeep", "%d is below -1 (bytes kept cached; -1 never drops)", c.CommitLogPageCacheKeep)
	}
	for key, d := range map[string]time.Duration{
		"flushIntervalCommitLog": c.FlushIntervalCommitLog, "flushCommitLogThoroughInterval": c.FlushCommitLogThoroughInterval,
		"flushIntervalConsumeQueue": c.FlushIntervalConsumeQueue, "flushConsumeQueueThoroughInterval": c.FlushConsumeQueueThoroughInterval,
		"raftHeartbeatTimeout": c.RaftHeartbeatTimeout, "raftElectionTimeout": c.RaftElectionTimeout,
		"raftLeaderLeaseTimeout": c.RaftLeaderLeaseTimout, "raftCommitTimeout": c.RaftCommitTimeout,
		"raftSnapshotInterval": c.RaftSnapshotInterval, "transactionTimeOut": c.TransactionTimeout,
		"transactionCheckInterval": c.TransactionCheckInterval, "flushConsumerOffsetInterval": c.FlushConsumerOffsetInterval,
	} {
		if d <= 0 {
			return bad(key, "must be positive")
		}
	}
	if c.RaftLeaderLeaseTimout > c.RaftHeartbeatTimeout {
		return bad("raftLeaderLeaseTimeout", "%v exceeds raftHeartbeatTimeout %v", c.RaftLeaderLeaseTimout, c.RaftHeartbeatTimeout)
	}
	if c.RaftElectionTimeout < c.RaftHeartbeatTimeout {
		return bad("raftElectionTimeout", "%v is below raftHeartbeatTimeout %v", c.RaftElectionTimeout, c.RaftHeartbeatTimeout)
	}
	if c.RaftMaxAppendEntries < 1 || c.RaftMaxAppendEntries > 1024 {
		return bad("raftMaxAppendEntries", "%d outside 1..1024", c.RaftMaxAppendEntries)
	}
	if c.RaftLogStallTimeout < 0 {
		return bad("raftLogStallTimeout", "%v is negative (0 turns the stall watchdog off)", c.RaftLogStallTimeout)
	}
	if c.GroupCommitMaxBytes < 1 {
		return bad("groupCommitMaxBytes", "%d is below 1 (a message larger than the cap travels alone)", c.GroupCommitMaxBytes)
	}
	if c.EnableDLegerCommitLog {
		if len(c.DLegerPeers) == 0 {
			return bad("dLegerPeers", "must list the group's peers when enableDLegerCommitLog=true")
		}
		found := false
		for _, p := range c.DLegerPeers {
			if p.ID == c.DLegerSelfID {
				found = true
			}
		}
		if !found {
			return bad("dLegerSelfId", "%q is not one of the ids in dLegerPeers", c.DLegerSelfID)
		}
	}
	if c.AdminListenAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminListenAddr); err != nil {
			return bad("adminListenAddr", "%q is not host:port", c.AdminListenAddr)
		}
	}
	return nil
}

// Warnings returns advice about a valid config that is probably not what the operator meant.
func (c *Config) Warnings() []string {
	var w []string
	ip, err := netip.ParseAddr(c.BrokerIP1)
	if err == nil && ip.IsLoopback() {
		for _, a := range c.NamesrvAddr {
			ap, err := netip.ParseAddrPort(a)
			if err == nil && !ap.Addr().IsLoopback() {
				w = append(w, fmt.Sprintf("brokerIP1=%s is a loopback address but name server %s is not: clients elsewhere cannot reach this broker; set brokerIP1 to an address they can reach", c.BrokerIP1, a))
				break
			}
		}
	}
	if len(c.NamesrvAddr) == 0 {
		w = append(w, "namesrvAddr is empty (no -n, no namesrvAddr key, no NAMESRV_ADDR): the broker registers with no name server and clients cannot find it")
	}
	if c.BrokerRole == RoleSlave && c.EnableDLegerCommitLog {
		w = append(w, "brokerRole=SLAVE is ignored with enableDLegerCommitLog=true: roles follow Raft leadership")
	}
	if c.RaftLogStallTimeout > 0 && c.RaftLogStallTimeout < time.Second {
		w = append(w, fmt.Sprintf("raftLogStallTimeout=%d ms: a node fences itself (until restarted) after one Raft log write that slow; a busy disk can take that long without being broken", c.RaftLogStallTimeout.Milliseconds()))
	}
	return w
}

// Addr is the address advertised to clients (brokerIP1:listenPort).
func (c *Config) Addr() string {
	return net.JoinHostPort(c.BrokerIP1, strconv.Itoa(c.ListenPort))
}

// RaftAddr is the address of the node's Raft transport (brokerIP2:haListenPort).
func (c *Config) RaftAddr() string {
	return net.JoinHostPort(c.BrokerIP2, strconv.Itoa(c.HAListenPort))
}

// Properties renders the effective config in broker.conf form, every key when all is true and
// the important ones otherwise (mqbroker -p / -m).
func (c *Config) Properties(all bool) string {
	var b strings.Builder
	for _, s := range keySpecs {
		if !all && !s.important {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", s.name, s.get(c))
	}
	return b.String()
}

// ParseDelayLevels parses messageDelayLevel ("1s 5s 10s 30s 1m ... 2h"; units s, m, h, d).
func ParseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, errors.New("no levels")
	}
	out := make([]time.Duration, 0, len(fields))
	for _, f := range fields {
		if len(f) < 2 {
			return nil, fmt.Errorf("level %q needs a number and a unit (s, m, h, d)", f)
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("level %q needs a positive number", f)
		}
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[f[len(f)-1]]
		if unit == 0 {
			return nil, fmt.Errorf("level %q has unit %q, want s, m, h or d", f, f[len(f)-1:])
		}
		out = append(out, time.Duration(n)*unit)
	}
	return out, nil
}

// ParseDeleteWhen parses deleteWhen: hours 00..23 separated by ';'.
func ParseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		h, err := strconv.Atoi(part)
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("%q is not an hour 00..23", part)
		}
		hours = append(hours, h)
	}
	if len(hours) == 0 {
		return nil, fmt.Errorf("%q names no hour", s)
	}
	return hours, nil
}

// ParsePeers parses dLegerPeers: "n0-127.0.0.1:40911;n1-127.0.0.1:40912".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	ids := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "-")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("%q is not id-host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %s: %q is not host:port", id, addr)
		}
		if ids[id] {
			return nil, fmt.Errorf("peer id %s listed twice", id)
		}
		ids[id] = true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%q lists no peer", s)
	}
	return peers, nil
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}
