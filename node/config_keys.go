package node

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// keySpec ties one broker.conf key to a Config field.
type keySpec struct {
	name      string   // canonical RocketMQ spelling
	aliases   []string // other accepted spellings (the seed's mapedFile...)
	important bool     // printed by -m
	set       func(c *Config, v string) error
	get       func(c *Config) string
}

func strKey(name string, important bool, f func(c *Config) *string) keySpec {
	return keySpec{name: name, important: important,
		set: func(c *Config, v string) error { *f(c) = v; return nil },
		get: func(c *Config) string { return *f(c) }}
}

func intKey(name string, important bool, f func(c *Config) *int) keySpec {
	return keySpec{name: name, important: important,
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return fmt.Errorf("not an integer")
			}
			*f(c) = int(n)
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*f(c)) }}
}

func int64Key(name string, important bool, f func(c *Config) *int64) keySpec {
	return keySpec{name: name, important: important,
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not an integer")
			}
			*f(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(*f(c), 10) }}
}

func uint64Key(name string, f func(c *Config) *uint64) keySpec {
	return keySpec{name: name,
		set: func(c *Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not a non-negative integer")
			}
			*f(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatUint(*f(c), 10) }}
}

func boolKey(name string, important bool, f func(c *Config) *bool) keySpec {
	return keySpec{name: name, important: important,
		set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "true":
				*f(c) = true
			case "false":
				*f(c) = false
			default:
				return fmt.Errorf("not true or false")
			}
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*f(c)) }}
}

// durKey is a duration given as a whole number of unit (RocketMQ uses ms, fileReservedTime hours).
func durKey(name string, unit time.Duration, important bool, f func(c *Config) *time.Duration) keySpec {
	return keySpec{name: name, important: important,
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > math.MaxInt64/int64(unit) {
				return fmt.Errorf("not a non-negative whole number of %s", unitName(unit))
			}
			*f(c) = time.Duration(n) * unit
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(int64(*f(c)/unit), 10) }}
}

func unitName(d time.Duration) string {
	switch d {
	case time.Millisecond:
		return "milliseconds"
	case time.Hour:
		return "hours"
	}
	return d.String()
}

// keySpecs lists every broker.conf key raftmq honours, in the order -p prints them.
var keySpecs = []keySpec{
	strKey("brokerClusterName", true, func(c *Config) *string { return &c.BrokerClusterName }),
	strKey("brokerName", true, func(c *Config) *string { return &c.BrokerName }),
	int64Key("brokerId", true, func(c *Config) *int64 { return &c.BrokerID }),
	{name: "namesrvAddr", important: true,
		set: func(c *Config, v string) error { c.NamesrvAddr = splitAddrs(v); return nil },
		get: func(c *Config) string { return strings.Join(c.NamesrvAddr, ";") }},
	strKey("brokerIP1", true, func(c *Config) *string { return &c.BrokerIP1 }),
	strKey("brokerIP2", false, func(c *Config) *string { return &c.BrokerIP2 }),
	intKey("listenPort", true, func(c *Config) *int { return &c.ListenPort }),
	intKey("haListenPort", true, func(c *Config) *int { return &c.HAListenPort }),
	intKey("defaultTopicQueueNums", false, func(c *Config) *int { return &c.DefaultTopicQueueNums }),
	boolKey("autoCreateTopicEnable", true, func(c *Config) *bool { return &c.AutoCreateTopicEnable }),
	boolKey("autoCreateSubscriptionGroup", false, func(c *Config) *bool { return &c.AutoCreateSubscriptionGroup }),
	intKey("brokerPermission", false, func(c *Config) *int { return &c.BrokerPermission }),
	boolKey("slaveReadEnable", false, func(c *Config) *bool { return &c.SlaveReadEnable }),
	{name: "brokerRole", important: true,
		set: func(c *Config, v string) error { c.BrokerRole = Role(strings.ToUpper(v)); return nil },
		get: func(c *Config) string { return string(c.BrokerRole) }},
	{name: "flushDiskType", important: true,
		set: func(c *Config, v string) error { c.FlushDiskType = FlushDiskType(strings.ToUpper(v)); return nil },
		get: func(c *Config) string { return string(c.FlushDiskType) }},
	intKey("sendMessageThreadPoolNums", false, func(c *Config) *int { return &c.SendMessageThreadPoolNums }),
	intKey("pullMessageThreadPoolNums", false, func(c *Config) *int { return &c.PullMessageThreadPoolNums }),
	{name: "messageDelayLevel",
		set: func(c *Config, v string) error {
			l, err := ParseDelayLevels(v)
			if err != nil {
				return err
			}
			c.MessageDelayLevel = l
			return nil
		},
		get: func(c *Config) string { return formatDelayLevels(c.MessageDelayLevel) }},
	boolKey("rejectTransactionMessage", false, func(c *Config) *bool { return &c.RejectTransactionMessage }),
	durKey("transactionTimeOut", time.Millisecond, false, func(c *Config) *time.Duration { return &c.TransactionTimeout }),
	intKey("transactionCheckMax", false, func(c *Config) *int { return &c.TransactionCheckMax }),
	durKey("transactionCheckInterval", time.Millisecond, false, func(c *Config) *time.Duration { return &c.TransactionCheckInterval }),
	durKey("flushConsumerOffsetInterval", time.Millisecond, false, func(c *Config) *time.Duration { return &c.FlushConsumerOffsetInterval }),

	strKey("storePathRootDir", true, func(c *Config) *string { return &c.StorePathRootDir }),
	strKey("storePathCommitLog", false, func(c *Config) *string { return &c.StorePathCommitLog }),
	strKey("storePathConsumeQueue", false, func(c *Config) *string { return &c.StorePathConsumeQueue }),
	strKey("storePathIndex", false, func(c *Config) *string { return &c.StorePathIndex }),
	strKey("storeCheckpoint", false, func(c *Config) *string { return &c.StoreCheckpoint }),
	strKey("abortFile", false, func(c *Config) *string { return &c.AbortFile }),
	withAliases(int64Key("mappedFileSizeCommitLog", false, func(c *Config) *int64 { return &c.MappedFileSizeCommitLog }), "mapedFileSizeCommitLog"),
	withAliases(keySpec{name: "mappedFileSizeConsumeQueue",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("not a non-negative integer")
			}
			c.MappedFileSizeConsumeQueue = (n + 19) / 20 * 20 // RocketMQ rounds up to whole 20-byte entries
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.MappedFileSizeConsumeQueue, 10) }}, "mapedFileSizeConsumeQueue"),
	intKey("maxMessageSize", true, func(c *Config) *int { return &c.MaxMessageSize }),
	{name: "deleteWhen",
		set: func(c *Config, v string) error {
			if _, err := ParseDeleteWhen(v); err != nil {
				return err
			}
			c.DeleteWhen = v
			return nil
		},
		get: func(c *Config) string { return c.DeleteWhen }},
	durKey("fileReservedTime", time.Hour, false, func(c *Config) *time.Duration { return &c.FileReservedTime }),
	intKey("diskMaxUsedSpaceRatio", false, func(c *Config) *int { return &c.DiskMaxUsedSpaceRatio }),
	durKey("flushIntervalCommitLog", time.Millisecond, false, func(c *Config) *time.Duration { return &c.FlushIntervalCommitLog }),
	intKey("flushCommitLogLeastPages", false, func(c *Config) *int { return &c.FlushCommitLogLeastPages }),
	durKey("flushCommitLogThoroughInterval", time.Millisecond, false, func(c *Config) *time.Duration { return &c.FlushCommitLogThoroughInterval }),
	durKey("flushIntervalConsumeQueue", time.Millisecond, false, func(c *Config) *time.Duration { return &c.FlushIntervalConsumeQueue }),
	intKey("flushConsumeQueueLeastPages", false, func(c *Config) *int { return &c.FlushConsumeQueueLeastPages }),
	durKey("flushConsumeQueueThoroughInterval", time.Millisecond, false, func(c *Config) *time.Duration { return &c.FlushConsumeQueueThoroughInterval }),
	intKey("maxHashSlotNum", false, func(c *Config) *int { return &c.MaxHashSlotNum }),
	intKey("maxIndexNum", false, func(c *Config) *int { return &c.MaxIndexNum }),
	int64Key("commitLogPageCacheKeep", false, func(c *Config) *int64 { return &c.CommitLogPageCacheKeep }),

	boolKey("enableDLegerCommitLog", true, func(c *Config) *bool { return &c.EnableDLegerCommitLog }),
	strKey("dLegerGroup", true, func(c *Config) *string { return &c.DLegerGroup }),
	{name: "dLegerPeers", important: true,
		set: func(c *Config, v string) error {
			if v == "" {
				c.DLegerPeers = nil
				return nil
			}
			p, err := ParsePeers(v)
			if err != nil {
				return err
			}
			c.DLegerPeers = p
			return nil
		},
		get: func(c *Config) string { return formatPeers(c.DLegerPeers) }},
	strKey("dLegerSelfId", true, func(c *Config) *string { return &c.DLegerSelfID }),

	strKey("raftDir", false, func(c *Config) *string { return &c.RaftDir }),
	durKey("raftHeartbeatTimeout", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftHeartbeatTimeout }),
	durKey("raftElectionTimeout", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftElectionTimeout }),
	durKey("raftLeaderLeaseTimeout", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftLeaderLeaseTimout }),
	durKey("raftCommitTimeout", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftCommitTimeout }),
	intKey("raftMaxAppendEntries", false, func(c *Config) *int { return &c.RaftMaxAppendEntries }),
	durKey("raftSnapshotInterval", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftSnapshotInterval }),
	uint64Key("raftSnapshotThreshold", func(c *Config) *uint64 { return &c.RaftSnapshotThreshold }),
	uint64Key("raftTrailingLogs", func(c *Config) *uint64 { return &c.RaftTrailingLogs }),
	{name: "raftLogStore",
		set: func(c *Config, v string) error { c.RaftLogStore = RaftLogStoreKind(strings.ToLower(v)); return nil },
		get: func(c *Config) string { return string(c.RaftLogStore) }},
	durKey("raftLogStallTimeout", time.Millisecond, false, func(c *Config) *time.Duration { return &c.RaftLogStallTimeout }),
	intKey("groupCommitMaxBytes", false, func(c *Config) *int { return &c.GroupCommitMaxBytes }),
	durKey("groupCommitMaxWait", time.Millisecond, false, func(c *Config) *time.Duration { return &c.GroupCommitMaxWait }),
	strKey("adminListenAddr", true, func(c *Config) *string { return &c.AdminListenAddr }),
}

func withAliases(s keySpec, aliases ...string) keySpec {
	s.aliases = aliases
	return s
}

var keyIndex = func() map[string]*keySpec {
	m := make(map[string]*keySpec, len(keySpecs)*2)
	for i := range keySpecs {
		s := &keySpecs[i]
		m[s.name] = s
		for _, a := range s.aliases {
			m[a] = s
		}
	}
	return m
}()

func lookupKey(k string) (*keySpec, bool) {
	s, ok := keyIndex[k]
	return s, ok
}

// ignoredKeys are RocketMQ broker keys that have no meaning in raftmq: accepted with a warning
// that says so, rather than the "unknown key" warning a typo gets.
var ignoredKeys = map[string]struct{}{
	"destroyMapedFileIntervalForcibly": {}, "redeleteHangedFileInterval": {}, "storePathDLedgerCommitLog": {},
	"transientStorePoolEnable": {}, "transientStorePoolSize": {}, "fastFailIfNoBufferInStorePool": {},
	"commitIntervalCommitLog": {}, "commitCommitLogLeastPages": {}, "commitCommitLogThoroughInterval": {},
	"useReentrantLockWhenPutMessage": {}, "warmMapedFileEnable": {}, "flushCommitLogTimed": {},
	"haSendHeartbeatInterval": {}, "haHousekeepingInterval": {}, "haTransferBatchSize": {}, "haMasterAddress": {},
	"haSlaveFallbehindMax": {}, "syncFlushTimeout": {}, "slaveTimeout": {}, "cleanFileForciblyEnable": {},
	"putMessageFutureThreadPoolNums": {}, "queryMessageThreadPoolNums": {}, "adminBrokerThreadPoolNums": {},
	"clientManageThreadPoolNums": {}, "consumerManageThreadPoolNums": {}, "heartbeatThreadPoolNums": {},
	"endTransactionThreadPoolNums": {}, "waitTimeMillsInSendQueue": {}, "waitTimeMillsInPullQueue": {},
	"waitTimeMillsInHeartbeatQueue": {}, "waitTimeMillsInTransactionQueue": {}, "osPageCacheBusyTimeOutMills": {},
	"sendThreadPoolQueueCapacity": {}, "pullThreadPoolQueueCapacity": {}, "fetchNamesrvAddrByAddressServer": {},
	"aclEnable": {}, "enableDetailStat": {}, "traceTopicEnable": {}, "msgTraceTopicName": {},
	"clusterTopicEnable": {}, "brokerTopicEnable": {}, "storeReplyMessageEnable": {},
	"registerBrokerTimeoutMills": {}, "checkCRCOnRecover": {}, "messageIndexEnable": {}, "messageIndexSafe": {},
	"accessMessageInMemoryMaxRatio": {}, "duplicationEnable": {}, "diskFallRecorded": {}, "flushDelayOffsetInterval": {},
	"offsetCheckInSlave": {}, "debugLockEnable": {}, "serverWorkerThreads": {}, "serverSelectorThreads": {},
	"serverCallbackExecutorThreads": {}, "clientWorkerThreads": {}, "longPollingEnable": {}, "shortPollingTimeMills": {},
	"notifyConsumerIdsChangedEnable": {}, "highSpeedMode": {}, "commercialEnable": {}, "transferMsgByHeap": {},
	"maxDelayTime": {}, "regionId": {}, "brokerFastFailureEnable": {}, "filterServerNums": {},
	"enablePropertyFilter": {}, "enableCalcFilterBitMap": {}, "filterSupportRetry": {}, "isEnableBatchPush": {},
	"preferredLeaderId": {}, "enableBatchPush": {}, "storePathEpochFile": {},
}

// suggestKey returns the known key closest to a misspelled one, or "".
func suggestKey(k string) string {
	best, bestD := "", 4
	lk := strings.ToLower(k)
	for name := range keyIndex {
		if strings.ToLower(name) == lk {
			return name
		}
		if d := editDistance(lk, strings.ToLower(name)); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func formatDelayLevels(levels []time.Duration) string {
	parts := make([]string, len(levels))
	for i, d := range levels {
		switch {
		case d%(24*time.Hour) == 0:
			parts[i] = fmt.Sprintf("%dd", d/(24*time.Hour))
		case d%time.Hour == 0:
			parts[i] = fmt.Sprintf("%dh", d/time.Hour)
		case d%time.Minute == 0:
			parts[i] = fmt.Sprintf("%dm", d/time.Minute)
		default:
			parts[i] = fmt.Sprintf("%ds", d/time.Second)
		}
	}
	return strings.Join(parts, " ")
}

func formatPeers(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.ID + "-" + p.Addr
	}
	return strings.Join(parts, ";")
}
