package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseConfig_SeedKeys(t *testing.T) {
	cfg, warnings, err := LoadConfig("testdata/seed-style.conf", LoadOptions{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("unexpected warnings: %q", warnings)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"brokerClusterName", cfg.BrokerClusterName, "DefaultCluster"},
		{"brokerName", cfg.BrokerName, "broker-a"},
		{"brokerId", cfg.BrokerID, int64(0)},
		{"defaultTopicQueueNums", cfg.DefaultTopicQueueNums, 4},
		{"listenPort", cfg.ListenPort, 10911},
		{"haListenPort (derived)", cfg.HAListenPort, 10912},
		{"fileReservedTime", cfg.FileReservedTime, 120 * time.Hour},
		{"mapedFileSizeCommitLog", cfg.MappedFileSizeCommitLog, int64(1 << 30)},
		{"mapedFileSizeConsumeQueue", cfg.MappedFileSizeConsumeQueue, int64(300000)},
		{"diskMaxUsedSpaceRatio", cfg.DiskMaxUsedSpaceRatio, 88},
		{"maxMessageSize", cfg.MaxMessageSize, 65536},
		{"brokerRole", cfg.BrokerRole, RoleAsyncMaster},
		{"flushDiskType", cfg.FlushDiskType, AsyncFlush},
		{"storePathRootDir (trimmed)", cfg.StorePathRootDir, "/tmp/raftmq-seed-store"},
		{"flushConsumerOffsetInterval", cfg.FlushConsumerOffsetInterval, 2 * time.Second},
		{"storePathCommitLog (derived)", cfg.StorePathCommitLog, "/tmp/raftmq-seed-store/commitlog"},
		{"delay levels default", len(cfg.MessageDelayLevel), 18},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseConfig_UnknownAndMisspelledKeysWarned(t *testing.T) {
	_, warnings, err := ParseConfig("brokerName=b\nautoCreateTopicEnabel=false\nfooBar=1\ndestroyMapedFileIntervalForcibly=120000\n", LoadOptions{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{`"autoCreateTopicEnabel"`, `did you mean "autoCreateTopicEnable"`, `"fooBar"`, `"destroyMapedFileIntervalForcibly" is a RocketMQ key that raftmq does not use`} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", warnings, want)
		}
	}
}

func TestParseConfig_InvalidValueNamesKey(t *testing.T) {
	for _, tc := range []struct{ text, key string }{
		{"listenPort=abc", "listenPort"},
		{"autoCreateTopicEnable=yes", "autoCreateTopicEnable"},
		{"deleteWhen=25", "deleteWhen"},
		{"messageDelayLevel=1s 5x", "messageDelayLevel"},
		{"dLegerPeers=n0:127.0.0.1", "dLegerPeers"},
		{"fileReservedTime=-1", "fileReservedTime"},
		{"raftLogStallTimeout=-1", "raftLogStallTimeout"},
	} {
		_, _, err := ParseConfig(tc.text, LoadOptions{Getenv: noEnv})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want ErrInvalidConfig naming %s", tc.text, err, tc.key)
		}
	}
}

func TestValidate_RulesNameKey(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.BrokerName = "broker-a"
		c.BrokerIP1 = "127.0.0.1"
		c.StorePathRootDir = t.TempDir()
		return c
	}
	for _, tc := range []struct {
		key    string
		mutate func(c *Config)
	}{
		{"brokerName", func(c *Config) { c.BrokerName = "" }},
		{"brokerIP1", func(c *Config) { c.BrokerIP1 = "broker.example" }},
		{"brokerId", func(c *Config) { c.BrokerRole = RoleSlave }},
		{"brokerId", func(c *Config) { c.BrokerID = 2 }},
		{"brokerRole", func(c *Config) { c.BrokerRole = "MASTER" }},
		{"flushDiskType", func(c *Config) { c.FlushDiskType = "SOMETIMES" }},
		{"raftLogStore", func(c *Config) { c.RaftLogStore = "leveldb" }},
		{"namesrvAddr", func(c *Config) { c.NamesrvAddr = []string{"namesrv:9876"} }},
		{"diskMaxUsedSpaceRatio", func(c *Config) { c.DiskMaxUsedSpaceRatio = 99 }},
		{"maxMessageSize", func(c *Config) { c.MappedFileSizeCommitLog = 1 << 20; c.MaxMessageSize = 1 << 20 }},
		{"dLegerPeers", func(c *Config) { c.EnableDLegerCommitLog = true }},
		{"dLegerSelfId", func(c *Config) {
			c.EnableDLegerCommitLog = true
			c.DLegerPeers = []Peer{{"n0", "127.0.0.1:1"}}
			c.DLegerSelfID = "n3"
		}},
		{"raftElectionTimeout", func(c *Config) { c.RaftElectionTimeout = time.Millisecond }},
		{"raftLogStallTimeout", func(c *Config) { c.RaftLogStallTimeout = -time.Second }},
	} {
		c := base()
		tc.mutate(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.key, err, tc.key)
		}
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestRaftLogStoreKey(t *testing.T) {
	c, _, err := ParseConfig("brokerName=b\nraftLogStore = WAL \n", LoadOptions{Getenv: noEnv})
	if err != nil || c.RaftLogStore != RaftLogWAL {
		t.Fatalf("Parse: %v, store %q", err, c.RaftLogStore)
	}
	if d := DefaultConfig(); d.RaftLogStore != RaftLogAuto {
		t.Fatalf("default raftLogStore %q, want auto", d.RaftLogStore)
	}
	bad := DefaultConfig()
	bad.BrokerName, bad.BrokerIP1, bad.RaftLogStore = "b", "127.0.0.1", "rocksdb"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "raftLogStore") {
		t.Fatalf("raftLogStore=rocksdb: %v", err)
	}
	// A node whose Raft log is in one store refuses to start with the other.
	dir := t.TempDir()
	if k := resolveRaftLogStore(dir, RaftLogAuto); k != RaftLogWAL {
		t.Fatalf("auto on an empty raft dir: %q, want wal", k)
	}
	if err := checkRaftLogStoreKind(dir, RaftLogWAL); err != nil {
		t.Fatalf("empty raft dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkRaftLogStoreKind(dir, RaftLogWAL); err == nil || !strings.Contains(err.Error(), "raftLogStore=wal") {
		t.Fatalf("wal over a bolt log: %v", err)
	}
	if k := resolveRaftLogStore(dir, RaftLogAuto); k != RaftLogBolt {
		t.Fatalf("auto over a bolt log: %q, want boltdb (a node keeps its store)", k)
	}
	if k := resolveRaftLogStore(dir, RaftLogWAL); k != RaftLogWAL {
		t.Fatalf("an explicit kind must stay: %q", k)
	}
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkRaftLogStoreKind(dir, RaftLogBolt); err != nil {
		t.Fatalf("empty wal dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wal", "00000000000000000001.wal"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkRaftLogStoreKind(dir, RaftLogBolt); err == nil || !strings.Contains(err.Error(), "raftLogStore=boltdb") {
		t.Fatalf("bolt over a wal log: %v", err)
	}
	if k := resolveRaftLogStore(dir, RaftLogAuto); k != RaftLogWAL {
		t.Fatalf("auto over a wal log: %q, want wal", k)
	}
}

func TestRaftLogStallTimeoutKey(t *testing.T) {
	c := DefaultConfig()
	if c.RaftLogStallTimeout != 15*time.Second {
		t.Fatalf("default raftLogStallTimeout = %v, want 15s", c.RaftLogStallTimeout)
	}
	if !strings.Contains(c.Properties(true), "raftLogStallTimeout=15000\n") {
		t.Fatal("-p output lacks raftLogStallTimeout=15000")
	}
	for text, want := range map[string]time.Duration{"raftLogStallTimeout=1500": 1500 * time.Millisecond, "raftLogStallTimeout=0": 0} {
		c, _, err := ParseConfig("brokerName=b\nbrokerIP1=127.0.0.1\nstorePathRootDir=/tmp/x\n"+text+"\n", LoadOptions{Getenv: noEnv})
		if err != nil || c.RaftLogStallTimeout != want {
			t.Fatalf("%s: %v, %v", text, c.RaftLogStallTimeout, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", text, err)
		}
	}
	c.BrokerName, c.BrokerIP1, c.StorePathRootDir = "b", "127.0.0.1", t.TempDir()
	c.RaftLogStallTimeout = -time.Millisecond
	if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "raftLogStallTimeout") {
		t.Fatalf("negative: Validate = %v, want an error naming raftLogStallTimeout", err)
	}
	c.RaftLogStallTimeout = 200 * time.Millisecond
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "raftLogStallTimeout=200 ms") {
		t.Fatalf("no warning for a 200 ms stall timeout: %q", w)
	}
}

func TestNamesrvAddrPrecedence(t *testing.T) {
	env := func(k string) string {
		if k == "NAMESRV_ADDR" {
			return "10.0.0.3:9876"
		}
		return ""
	}
	text := "brokerName=b\nnamesrvAddr=10.0.0.2:9876;10.0.0.4:9876\n"
	cfg, _, _ := ParseConfig(text, LoadOptions{NamesrvAddr: "10.0.0.1:9876", Getenv: env})
	if got := strings.Join(cfg.NamesrvAddr, ";"); got != "10.0.0.1:9876" {
		t.Errorf("-n must win: %s", got)
	}
	cfg, _, _ = ParseConfig(text, LoadOptions{Getenv: env})
	if got := strings.Join(cfg.NamesrvAddr, ";"); got != "10.0.0.2:9876;10.0.0.4:9876" {
		t.Errorf("file must win over env: %s", got)
	}
	cfg, _, _ = ParseConfig("brokerName=b\n", LoadOptions{Getenv: env})
	if got := strings.Join(cfg.NamesrvAddr, ";"); got != "10.0.0.3:9876" {
		t.Errorf("env fallback: %s", got)
	}
}

func TestDLedgerKeys(t *testing.T) {
	cfg, _, err := ParseConfig("brokerName=broker-a\nbrokerIP1=127.0.0.1\nenableDLegerCommitLog=true\ndLegerGroup=broker-a\n"+
		"dLegerPeers=n0-127.0.0.1:40912;n1-127.0.0.1:41912;n2-127.0.0.1:42912\ndLegerSelfId=n1\nstorePathRootDir=/tmp/x\n", LoadOptions{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FlushConsumerOffsetInterval != 5*time.Second {
		t.Errorf("flushConsumerOffsetInterval default = %v, want 5s", cfg.FlushConsumerOffsetInterval)
	}
	if len(cfg.DLegerPeers) != 3 || cfg.DLegerPeers[1] != (Peer{"n1", "127.0.0.1:41912"}) {
		t.Fatalf("peers = %+v", cfg.DLegerPeers)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	cfg, _, err := LoadConfig("testdata/seed-style.conf", LoadOptions{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	all := cfg.Properties(true)
	again, warnings, err := ParseConfig(all, LoadOptions{Getenv: noEnv})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("re-parse of -p output: %v %q", err, warnings)
	}
	if again.Properties(true) != all {
		t.Fatalf("-p output does not round-trip:\n%s\nvs\n%s", all, again.Properties(true))
	}
	important := cfg.Properties(false)
	if !strings.Contains(important, "brokerName=broker-a\n") || strings.Contains(important, "maxHashSlotNum") {
		t.Fatalf("-m output wrong:\n%s", important)
	}
}

func TestWarnings_LoopbackAdvertised(t *testing.T) {
	c := DefaultConfig()
	c.BrokerIP1 = "127.0.0.1"
	c.NamesrvAddr = []string{"10.1.2.3:9876"}
	w := strings.Join(c.Warnings(), "\n")
	if !strings.Contains(w, "brokerIP1") {
		t.Fatalf("no brokerIP1 warning: %q", w)
	}
}
