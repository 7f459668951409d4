package commitlog

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CQEntrySize is the size of one consume-queue entry: commitlog offset int64,
// size int32, tag hash int64.
const CQEntrySize = 20

// Defaults, named after RocketMQ's MessageStoreConfig.
const (
	DefaultMappedFileSizeCommitLog    = 1 << 30
	DefaultMappedFileSizeConsumeQueue = 300000 * CQEntrySize
	DefaultDiskMaxUsedSpaceRatio      = 75
	DefaultJournalEntries             = 4096
	// DefaultPageCacheKeep is Config.PageCacheKeep's default: the flushed tail
	// of the commitlog that stays in the page cache for consumers reading
	// near the head.
	DefaultPageCacheKeep int64 = 256 << 20
)

// DefaultDelayLevels is RocketMQ's messageDelayLevel
// "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h".
func DefaultDelayLevels() []time.Duration {
	return []time.Duration{
		time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
		6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	}
}

// Config configures a Log. The broker.conf key of each field is given in its
// comment. Zero values mean the default (see DefaultConfig), so a Config with
// only RootDir set is valid.
type Config struct {
	RootDir         string // storePathRootDir (required)
	CommitLogDir    string // storePathCommitLog, default RootDir/commitlog
	ConsumeQueueDir string // storePathConsumeQueue, default RootDir/consumequeue
	IndexDir        string // storePathIndex, default RootDir/index (overrides Index.Dir)
	CheckpointPath  string // storeCheckpoint, default RootDir/checkpoint
	AbortPath       string // abortFile, default RootDir/abort
	JournalPath     string // batch journal (raftmq), default RootDir/journal

	MappedFileSizeCommitLog int64 // mappedFileSizeCommitLog (mapedFileSizeCommitLog), bytes, default 1 GiB
	// MappedFileSizeConsumeQueue is mappedFileSizeConsumeQueue in bytes
	// (default 300000*20). Like RocketMQ it is rounded up to a multiple of 20.
	MappedFileSizeConsumeQueue int64
	MaxMessageSize             int // maxMessageSize: body limit, default 4 MiB

	FlushIntervalCommitLog            time.Duration // flushIntervalCommitLog, default 500ms
	FlushCommitLogLeastPages          int           // flushCommitLogLeastPages, default 4
	FlushCommitLogThoroughInterval    time.Duration // flushCommitLogThoroughInterval, default 10s
	FlushIntervalConsumeQueue         time.Duration // flushIntervalConsumeQueue, default 1s
	FlushConsumeQueueLeastPages       int           // flushConsumeQueueLeastPages, default 2
	FlushConsumeQueueThoroughInterval time.Duration // flushConsumeQueueThoroughInterval, default 60s

	FileReservedTime      time.Duration // fileReservedTime (hours in broker.conf), default 72h
	DeleteWhen            string        // deleteWhen: "04" or "04;05" (local hours of Now), default "04"
	DiskMaxUsedSpaceRatio int           // diskMaxUsedSpaceRatio, percent, default 75
	RetentionInterval     time.Duration // cleanResourceInterval, how often retention runs, default 10s
	DiskCheckInterval     time.Duration // how often the disk guard runs statfs, default 2s

	// PageCacheKeep (commitLogPageCacheKeep) is how many bytes behind the
	// flushed position stay in the page cache: after each flush the pages of
	// older, durable commitlog data are dropped from the mapping and from
	// the page cache (drop-behind, see DESIGN.md), so a broker's cache holds
	// the hot tail instead of growing with every byte written. Zero means
	// DefaultPageCacheKeep; a negative value never drops (the kernel's LRU
	// decides alone).
	PageCacheKeep int64

	DelayLevels []time.Duration // messageDelayLevel, default DefaultDelayLevels()
	Index       IndexConfig     // maxHashSlotNum / maxIndexNum

	// JournalEntries is the number of slots of the batch journal ring
	// (default 4096). More slots let recovery cut back further than one
	// checkpoint interval at a batch boundary.
	JournalEntries int

	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // retention clock, default time.Now
	// DiskUsage returns the used fraction (0..1) of the file system holding
	// path. Default: statfs. Tests inject a fake to simulate a full disk.
	DiskUsage func(path string) (float64, error)
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig(rootDir string) Config {
	c := Config{RootDir: rootDir}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.RootDir == "" {
		return
	}
	def := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(c.RootDir, name)
		}
	}
	def(&c.CommitLogDir, "commitlog")
	def(&c.ConsumeQueueDir, "consumequeue")
	def(&c.IndexDir, "index")
	def(&c.CheckpointPath, "checkpoint")
	def(&c.AbortPath, "abort")
	def(&c.JournalPath, "journal")
	if c.MappedFileSizeCommitLog == 0 {
		c.MappedFileSizeCommitLog = DefaultMappedFileSizeCommitLog
	}
	if c.MappedFileSizeConsumeQueue == 0 {
		c.MappedFileSizeConsumeQueue = DefaultMappedFileSizeConsumeQueue
	}
	if r := c.MappedFileSizeConsumeQueue % CQEntrySize; r != 0 && c.MappedFileSizeConsumeQueue > 0 {
		c.MappedFileSizeConsumeQueue += CQEntrySize - r
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	durDef := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	intDef := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	durDef(&c.FlushIntervalCommitLog, 500*time.Millisecond)
	intDef(&c.FlushCommitLogLeastPages, 4)
	durDef(&c.FlushCommitLogThoroughInterval, 10*time.Second)
	durDef(&c.FlushIntervalConsumeQueue, time.Second)
	intDef(&c.FlushConsumeQueueLeastPages, 2)
	durDef(&c.FlushConsumeQueueThoroughInterval, 60*time.Second)
	durDef(&c.FileReservedTime, 72*time.Hour)
	if c.DeleteWhen == "" {
		c.DeleteWhen = "04"
	}
	intDef(&c.DiskMaxUsedSpaceRatio, DefaultDiskMaxUsedSpaceRatio)
	durDef(&c.RetentionInterval, 10*time.Second)
	durDef(&c.DiskCheckInterval, 2*time.Second)
	if c.PageCacheKeep == 0 {
		c.PageCacheKeep = DefaultPageCacheKeep
	}
	if len(c.DelayLevels) == 0 {
		c.DelayLevels = DefaultDelayLevels()
	}
	c.Index.Dir = c.IndexDir
	if c.Index.Logger == nil {
		c.Index.Logger = c.Logger
	}
	intDef(&c.JournalEntries, DefaultJournalEntries)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DiskUsage == nil {
		c.DiskUsage = statfsUsage
	}
}

// minSegmentSize keeps a segment large enough for the blank filler and a
// tiny record; tests use very small segments.
const minSegmentSize = 4096

// Validate reports the first invalid field, naming the field and its limit.
// Zero values are valid (they mean the default).
func (c Config) Validate() error {
	if c.RootDir == "" {
		return fmt.Errorf("commitlog: config: RootDir (storePathRootDir) is required")
	}
	c.setDefaults()
	if c.MappedFileSizeCommitLog < minSegmentSize || c.MappedFileSizeCommitLog > 1<<40 {
		return fmt.Errorf("commitlog: config: MappedFileSizeCommitLog %d out of range [%d, %d]", c.MappedFileSizeCommitLog, minSegmentSize, int64(1)<<40)
	}
	if c.MappedFileSizeConsumeQueue < CQEntrySize*16 || c.MappedFileSizeConsumeQueue > 1<<34 {
		return fmt.Errorf("commitlog: config: MappedFileSizeConsumeQueue %d out of range [%d, %d]", c.MappedFileSizeConsumeQueue, CQEntrySize*16, int64(1)<<34)
	}
	if c.MaxMessageSize < 0 {
		return fmt.Errorf("commitlog: config: MaxMessageSize %d must be positive", c.MaxMessageSize)
	}
	// A record with the largest body (plus topic, header and the blank
	// filler) must fit in one segment; Append also checks each record's
	// full size, properties included.
	if worst := int64(c.MaxMessageSize) + MaxTopicLen + 256 + 8; worst > c.MappedFileSizeCommitLog {
		return fmt.Errorf("commitlog: config: MaxMessageSize %d does not fit MappedFileSizeCommitLog %d (need at least %d bytes per segment)", c.MaxMessageSize, c.MappedFileSizeCommitLog, worst)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"FlushIntervalCommitLog", c.FlushIntervalCommitLog},
		{"FlushCommitLogThoroughInterval", c.FlushCommitLogThoroughInterval},
		{"FlushIntervalConsumeQueue", c.FlushIntervalConsumeQueue},
		{"FlushConsumeQueueThoroughInterval", c.FlushConsumeQueueThoroughInterval},
		{"FileReservedTime", c.FileReservedTime},
		{"RetentionInterval", c.RetentionInterval},
		{"DiskCheckInterval", c.DiskCheckInterval},
	} {
		if d.v < 0 {
			return fmt.Errorf("commitlog: config: %s %v must not be negative", d.name, d.v)
		}
	}
	if c.FlushCommitLogLeastPages < 0 || c.FlushConsumeQueueLeastPages < 0 {
		return fmt.Errorf("commitlog: config: FlushCommitLogLeastPages %d / FlushConsumeQueueLeastPages %d must not be negative", c.FlushCommitLogLeastPages, c.FlushConsumeQueueLeastPages)
	}
	if c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95 {
		// RocketMQ clamps diskMaxUsedSpaceRatio to [10, 95].
		return fmt.Errorf("commitlog: config: DiskMaxUsedSpaceRatio %d out of range [10, 95]", c.DiskMaxUsedSpaceRatio)
	}
	if _, err := parseDeleteWhen(c.DeleteWhen); err != nil {
		return err
	}
	for i, d := range c.DelayLevels {
		if d < 0 {
			return fmt.Errorf("commitlog: config: DelayLevels[%d] %v must not be negative", i, d)
		}
	}
	if c.JournalEntries < 16 || c.JournalEntries > 1<<20 {
		return fmt.Errorf("commitlog: config: JournalEntries %d out of range [16, %d]", c.JournalEntries, 1<<20)
	}
	return nil
}

// parseDeleteWhen parses "04" or "04;05" into a set of hours.
func parseDeleteWhen(s string) ([24]bool, error) {
	var hours [24]bool
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		h, err := strconv.Atoi(part)
		if err != nil || h < 0 || h > 23 {
			return hours, fmt.Errorf("commitlog: config: DeleteWhen %q: hour %q not in 00..23", s, part)
		}
		hours[h] = true
	}
	return hours, nil
}
