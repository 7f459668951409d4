package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/message"
)

func TestAppendReadRoundTrip(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	var want []*Message
	var results []AppendResult
	for i := range 10 {
		m1 := tmsg("TopicA", 0, fmt.Sprintf("body-%d", i), PropertyTags, "tagA", PropertyKeys, fmt.Sprintf("k%d", i))
		m2 := tmsg("TopicA", 1, fmt.Sprintf("other-%d", i))
		res := mustAppend(t, l, uint64(i+1), tBaseTS+int64(i), m1, m2)
		want = append(want, m1)
		results = append(results, res[0])
		if res[0].QueueOffset != int64(i) || res[1].QueueOffset != int64(i) {
			t.Fatalf("batch %d: queue offsets %d,%d, want %d", i, res[0].QueueOffset, res[1].QueueOffset, i)
		}
		if res[1].PhysicalOffset != res[0].PhysicalOffset+int64(res[0].Size) {
			t.Fatalf("batch %d: records not contiguous: %+v", i, res)
		}
		host, off, err := message.ParseOffsetMsgID(res[0].MsgID())
		if err != nil || host != tStoreHost || off != res[0].PhysicalOffset {
			t.Fatalf("msg id %q: %v %v %v", res[0].MsgID(), host, off, err)
		}
	}
	if got := l.AppliedIndex(); got != 10 {
		t.Fatalf("AppliedIndex = %d, want 10", got)
	}
	if l.MinOffset("TopicA", 0) != 0 || l.MaxOffset("TopicA", 0) != 10 {
		t.Fatalf("min/max = %d/%d", l.MinOffset("TopicA", 0), l.MaxOffset("TopicA", 0))
	}
	r := mustGet(t, l, "TopicA", 0, 3, 4, 0, nil)
	if r.Status != StatusFound || r.NextBeginOffset != 7 || len(r.Buffers) != 4 || r.MinOffset != 0 || r.MaxOffset != 10 {
		t.Fatalf("get: status %v next %d n %d min %d max %d", r.Status, r.NextBeginOffset, len(r.Buffers), r.MinOffset, r.MaxOffset)
	}
	for i, m := range decodeAll(t, r) {
		w := want[3+i]
		if string(m.Body) != string(w.Body) || m.Topic != w.Topic || m.QueueOffset != int64(3+i) ||
			m.PhysicalOffset != results[3+i].PhysicalOffset || m.StoreTimestamp != tBaseTS+int64(3+i) || m.Properties != w.Properties {
			t.Fatalf("record %d: %+v", 3+i, m)
		}
	}
	// ReadAt returns the same bytes as the pull buffer.
	b, err := l.ReadAt(results[3].PhysicalOffset, results[3].Size)
	if err != nil || string(b) != string(r.Buffers[0]) {
		t.Fatalf("ReadAt: %v", err)
	}
	if _, err := l.ReadAt(l.MaxPhysOffset()-10, 20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadAt past the end: %v", err)
	}
	if got, want := l.Topics(), []string{"TopicA"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Topics = %v", got)
	}
	if got := l.QueueIDs("TopicA"); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("QueueIDs = %v", got)
	}

	// Reopen cleanly: the same state.
	cfg := l.cfg
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(cfg.AbortPath); !os.IsNotExist(err) {
		t.Fatalf("abort file left after clean close: %v", err)
	}
	l2 := openLog(t, cfg)
	if l2.AppliedIndex() != 10 || l2.MaxOffset("TopicA", 1) != 10 {
		t.Fatalf("after reopen: applied %d max %d", l2.AppliedIndex(), l2.MaxOffset("TopicA", 1))
	}
	res := mustAppend(t, l2, 11, tBaseTS+100, tmsg("TopicA", 0, "after reopen"))
	if res[0].QueueOffset != 10 {
		t.Fatalf("queue offset after reopen = %d", res[0].QueueOffset)
	}
	if _, err := l2.Append(AppendBatch{RaftIndex: 11, Messages: []*Message{tmsg("TopicA", 0, "x")}}); !errors.Is(err, ErrStaleIndex) {
		t.Fatalf("stale raft index: %v", err)
	}
}

func TestSegmentRollOverWithBlank(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	body := strings.Repeat("x", 1000)
	var res []AppendResult
	for i := range 200 { // ~220 KB over 64 KiB segments
		res = append(res, mustAppend(t, l, uint64(i+1), tBaseTS, tmsg("Roll", 0, body+fmt.Sprint(i)))...)
	}
	names, err := os.ReadDir(cfg.CommitLogDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 4 {
		t.Fatalf("%d segments, want >= 4", len(names))
	}
	for i, n := range names {
		if want := fmt.Sprintf("%020d", int64(i)*cfg.MappedFileSizeCommitLog); n.Name() != want {
			t.Fatalf("segment %d named %s, want %s", i, n.Name(), want)
		}
	}
	// The first segment ends with a blank filler covering its rest.
	seg0, _ := os.ReadFile(filepath.Join(cfg.CommitLogDir, names[0].Name()))
	pos := 0
	for {
		v, err := message.ParseRecordView(seg0[pos:])
		if errors.Is(err, ErrBlank) {
			if pos+int(v.Size) != len(seg0) {
				t.Fatalf("blank at %d size %d does not reach the end %d", pos, v.Size, len(seg0))
			}
			break
		}
		if err != nil {
			t.Fatalf("walk at %d: %v", pos, err)
		}
		pos += int(v.Size)
	}
	// No record crosses a segment end and every message reads back.
	for i, r := range res {
		if r.PhysicalOffset/cfg.MappedFileSizeCommitLog != (r.PhysicalOffset+int64(r.Size)-1)/cfg.MappedFileSizeCommitLog {
			t.Fatalf("record %d crosses a segment end", i)
		}
	}
	var got int
	for off := int64(0); off < 200; {
		r := mustGet(t, l, "Roll", 0, off, 32, 1<<20, nil)
		for i, m := range decodeAll(t, r) {
			if string(m.Body) != body+fmt.Sprint(off+int64(i)) {
				t.Fatalf("message %d: wrong body", off+int64(i))
			}
			got++
		}
		off = r.NextBeginOffset
	}
	if got != 200 {
		t.Fatalf("read %d messages", got)
	}
	// Consume queue files roll too (100 entries each).
	cqFiles, _ := os.ReadDir(filepath.Join(cfg.ConsumeQueueDir, "Roll", "0"))
	if len(cqFiles) != 2 || cqFiles[1].Name() != fmt.Sprintf("%020d", 100*CQEntrySize) {
		t.Fatalf("consume queue files %v", cqFiles)
	}
}

func TestGetMessagesStatusAndLimits(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	for i := range 40 {
		tag := "even"
		if i%2 == 1 {
			tag = "odd"
		}
		mustAppend(t, l, 0, tBaseTS, tmsg("T", 0, strings.Repeat("b", 100), PropertyTags, tag))
	}
	cases := []struct {
		name       string
		topic      string
		off        int64
		maxMsgs    int
		maxBytes   int
		filter     func(int64) bool
		wantStatus GetStatus
		wantN      int
		wantNext   int64
	}{
		{"no queue", "Nope", 5, 0, 0, nil, StatusNoMatchedLogicQueue, 0, 0},
		{"overflow one", "T", 40, 0, 0, nil, StatusOffsetOverflowOne, 0, 40},
		{"overflow badly", "T", 41, 0, 0, nil, StatusOffsetOverflowBadly, 0, 40},
		{"default 32", "T", 0, 0, 0, nil, StatusFound, 32, 32},
		{"max msgs", "T", 0, 5, 0, nil, StatusFound, 5, 5},
		{"max bytes", "T", 0, 32, 500, nil, StatusFound, 2, 2},
		{"at least one", "T", 0, 32, 10, nil, StatusFound, 1, 1},
		{"filter odd", "T", 0, 4, 0, func(c int64) bool { return c == message.TagsHashCode("odd") }, StatusFound, 4, 8},
		{"filter none", "T", 0, 4, 0, func(int64) bool { return false }, StatusNoMatchedMessage, 0, 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustGet(t, l, c.topic, 0, c.off, c.maxMsgs, c.maxBytes, c.filter)
			if r.Status != c.wantStatus || len(r.Buffers) != c.wantN || r.NextBeginOffset != c.wantNext {
				t.Fatalf("status %v n %d next %d; want %v %d %d", r.Status, len(r.Buffers), r.NextBeginOffset, c.wantStatus, c.wantN, c.wantNext)
			}
			for _, m := range decodeAll(t, r) {
				if c.filter != nil && message.TagsHashCode(message.ParseProperties(m.Properties)[PropertyTags]) != message.TagsHashCode("odd") {
					t.Fatalf("filtered message returned")
				}
			}
		})
	}
	// An empty queue (created, then cut away) reports NO_MESSAGE_IN_QUEUE.
	mustAppend(t, l, 0, tBaseTS, tmsg("Empty", 0, "x"))
	if err := l.Truncate(l.MaxPhysOffset() - int64(tmsg("Empty", 0, "x").EncodedSize())); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, l, "Empty", 0, 3, 0, 0, nil); r.Status != StatusNoMessageInQueue || r.NextBeginOffset != 0 {
		t.Fatalf("empty queue: %v next %d", r.Status, r.NextBeginOffset)
	}
}

func TestTransactionalRecordsNotDispatched(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	prep := tmsg("Tx", 0, "prepared", PropertyKeys, "txkey")
	prep.SysFlag = TxPreparedType
	rb := tmsg("Tx", 0, "rollback", PropertyKeys, "rbkey")
	rb.SysFlag = TxRollbackType
	commit := tmsg("Tx", 0, "commit")
	commit.SysFlag = TxCommitType
	res := mustAppend(t, l, 1, tBaseTS, prep, rb, commit, tmsg("Tx", 0, "normal"))
	if res[0].QueueOffset != 0 || res[1].QueueOffset != 0 || res[2].QueueOffset != 0 || res[3].QueueOffset != 1 {
		t.Fatalf("queue offsets %+v", res)
	}
	if l.MaxOffset("Tx", 0) != 2 {
		t.Fatalf("max offset %d, want 2 (commit + normal)", l.MaxOffset("Tx", 0))
	}
	r := mustGet(t, l, "Tx", 0, 0, 0, 0, nil)
	ms := decodeAll(t, r)
	if len(ms) != 2 || string(ms[0].Body) != "commit" || string(ms[1].Body) != "normal" {
		t.Fatalf("dispatched %d messages", len(ms))
	}
	// Prepared records are indexed (transaction checks find them), rollbacks not.
	if got, _ := l.QueryByKey("Tx", "txkey", 10, 0, 1<<62); len(got) != 1 {
		t.Fatalf("prepared by key: %d", len(got))
	}
	if got, _ := l.QueryByKey("Tx", "rbkey", 10, 0, 1<<62); len(got) != 0 {
		t.Fatalf("rollback by key: %d", len(got))
	}
	if m, err := l.ReadMessage(res[0].PhysicalOffset); err != nil || string(m.Body) != "prepared" {
		t.Fatalf("ReadMessage: %v", err)
	}
}

func TestScheduleTopicTagCode(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	mustAppend(t, l, 1, tBaseTS,
		tmsg(ScheduleTopic, 2, "d3", PropertyDelayLevel, "3", PropertyTags, "x"),
		tmsg(ScheduleTopic, 2, "d99", PropertyDelayLevel, "99"),
		tmsg(ScheduleTopic, 2, "d0", PropertyDelayLevel, "0", PropertyTags, "x"),
		tmsg("Normal", 0, "n", PropertyTags, "TagA"))
	l.mu.RLock()
	defer l.mu.RUnlock()
	cq := l.queues[ScheduleTopic][2]
	want := []int64{tBaseTS + 10_000, tBaseTS + 2*3600_000, message.TagsHashCode("x")}
	for i, w := range want {
		e, _ := cq.entry(int64(i))
		if e.Tag != w {
			t.Fatalf("schedule entry %d: tag %d, want %d", i, e.Tag, w)
		}
	}
	if e, _ := l.queues["Normal"][0].entry(0); e.Tag != message.TagsHashCode("TagA") {
		t.Fatalf("normal tag %d", e.Tag)
	}
}

func TestQueryByKeyAndTime(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	for i := range 20 {
		mustAppend(t, l, uint64(i+1), tBaseTS+int64(i)*1000,
			tmsg("Q", 0, fmt.Sprint(i), PropertyKeys, fmt.Sprintf("order-%d common", i), PropertyUniqKey, fmt.Sprintf("UNIQ%02d", i)))
	}
	got, err := l.QueryByKey("Q", "order-7", 10, 0, 1<<62)
	if err != nil || len(got) != 1 || string(got[0].Body) != "7" {
		t.Fatalf("order-7: %v %d", err, len(got))
	}
	got, _ = l.QueryByKey("Q", "common", 5, 0, 1<<62)
	if len(got) != 5 || string(got[0].Body) != "19" {
		t.Fatalf("common: %d, first %q", len(got), got[0].Body)
	}
	got, _ = l.QueryByKey("Q", "common", 50, tBaseTS+5000, tBaseTS+9000)
	if len(got) != 5 {
		t.Fatalf("common in time range: %d", len(got))
	}
	if got, _ = l.QueryByKey("Q", "UNIQ03", 10, 0, 1<<62); len(got) != 1 || string(got[0].Body) != "3" {
		t.Fatalf("uniq key: %d", len(got))
	}
	if got, _ = l.QueryByKey("Other", "order-7", 10, 0, 1<<62); len(got) != 0 {
		t.Fatalf("other topic: %d", len(got))
	}
	for _, c := range []struct{ ts, want int64 }{
		{0, 0}, {tBaseTS, 0}, {tBaseTS + 1, 1}, {tBaseTS + 7000, 7}, {tBaseTS + 19000, 19}, {tBaseTS + 19001, 20},
	} {
		if got := l.OffsetByTime("Q", 0, c.ts); got != c.want {
			t.Fatalf("OffsetByTime(%d) = %d, want %d", c.ts-tBaseTS, got, c.want)
		}
	}
	if got := l.EarliestStoreTime("Q", 0); got != tBaseTS {
		t.Fatalf("EarliestStoreTime = %d", got)
	}
	if got := l.EarliestStoreTime("Q", 9); got != -1 {
		t.Fatalf("EarliestStoreTime of a missing queue = %d", got)
	}
}

func TestLimits(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	mustAppend(t, l, 1, tBaseTS, tmsg("L", 0, "first"))
	okProps := "K\x01" + strings.Repeat("v", MaxPropertiesLen-2)
	cases := []struct {
		name string
		m    *Message
		err  error
	}{
		{"body at limit", &Message{Topic: "L", Body: make([]byte, 4096)}, nil},
		{"body over limit", &Message{Topic: "L", Body: make([]byte, 4097)}, ErrBodyTooLarge},
		{"props at limit", &Message{Topic: "L", Body: []byte("b"), Properties: okProps}, nil},
		{"props over limit", &Message{Topic: "L", Body: []byte("b"), Properties: okProps + "v"}, ErrPropertiesTooLarge},
		{"topic at limit", &Message{Topic: strings.Repeat("t", 127), Body: []byte("b")}, nil},
		{"topic over limit", &Message{Topic: strings.Repeat("t", 128), Body: []byte("b")}, ErrInvalidTopic},
		{"topic bad char", &Message{Topic: "a/b", Body: []byte("b")}, ErrInvalidTopic},
	}
	idx := uint64(2)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshotFiles(t, cfg.CommitLogDir)
			end := l.MaxPhysOffset()
			// The bad (or good) message goes last in a batch: a refusal
			// must leave nothing of the first message either.
			_, err := l.Append(AppendBatch{RaftIndex: idx, StoreTimestamp: tBaseTS, Messages: []*Message{tmsg("L", 0, "lead"), c.m}})
			if c.err == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				idx++
				return
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			t.Logf("refused: %v", err)
			if l.MaxPhysOffset() != end || l.AppliedIndex() != idx-1 {
				t.Fatalf("refusal moved the log: %d -> %d", end, l.MaxPhysOffset())
			}
			if d := diffFiles(before, snapshotFiles(t, cfg.CommitLogDir), nil); len(d) != 0 {
				t.Fatalf("refusal changed files: %v", d)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig(t.TempDir())
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if good.MappedFileSizeCommitLog != 1<<30 || good.MappedFileSizeConsumeQueue != 6_000_000 || good.DiskMaxUsedSpaceRatio != 75 {
		t.Fatalf("defaults: %+v", good)
	}
	c := Config{RootDir: "x", MappedFileSizeConsumeQueue: 300000}
	c.setDefaults()
	if c.MappedFileSizeConsumeQueue != 300000 {
		t.Fatalf("300000 is a multiple of 20: %d", c.MappedFileSizeConsumeQueue)
	}
	c = Config{RootDir: "x", MappedFileSizeConsumeQueue: 1001}
	c.setDefaults()
	if c.MappedFileSizeConsumeQueue != 1020 {
		t.Fatalf("rounded up to %d, want 1020", c.MappedFileSizeConsumeQueue)
	}
	for _, bad := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.RootDir = "" }, "RootDir"},
		{func(c *Config) { c.MappedFileSizeCommitLog = 100 }, "MappedFileSizeCommitLog"},
		{func(c *Config) { c.MaxMessageSize = 2 << 30 }, "MaxMessageSize"},
		{func(c *Config) { c.DeleteWhen = "25" }, "DeleteWhen"},
		{func(c *Config) { c.DiskMaxUsedSpaceRatio = 99 }, "DiskMaxUsedSpaceRatio"},
		{func(c *Config) { c.FlushIntervalCommitLog = -1 }, "FlushIntervalCommitLog"},
	} {
		c := DefaultConfig("x")
		bad.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("want error naming %s, got %v", bad.want, err)
		}
	}
	if h, err := parseDeleteWhen("04;05"); err != nil || !h[4] || !h[5] || h[6] {
		t.Fatalf("parseDeleteWhen: %v %v", h, err)
	}
}
