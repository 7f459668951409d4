package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// statsWindow is how many one-second samples the TPS figures look back over (600 s, the
// longest of RocketMQ's 10 s / 60 s / 600 s windows).
const statsWindow = 600

// stats holds the counters behind GET_BROKER_RUNTIME_INFO. Puts are counted from the store
// (the sum of every queue's max offset: what this node has applied, leader or follower); gets
// are counted by the pull path through Node.countGet.
type stats struct {
	boot     time.Time
	getMsgs  atomic.Int64
	getBytes atomic.Int64

	mu      sync.Mutex
	samples []statSample // ring, oldest first once full
	next    int
	day     int // yday*10000+year of the last sample (local time)
	// The totals at the first sample of today and of yesterday (RocketMQ records them at
	// midnight; raftmq at the first sample after midnight, i.e. within a second).
	putTodayMorning, putYesterdayMorning int64
	getTodayMorning, getYesterdayMorning int64

	metrics nodeMetrics // go-metrics labels and the metrics loop (metrics.go)
	groups  groupRates  // messages pulled per consumer group and topic: consumeTps (consume_rate.go)
}

type statSample struct {
	at       time.Time
	put, get int64
}

func (s *stats) init() {
	s.boot = time.Now()
	s.samples = make([]statSample, 0, statsWindow+1)
}

// countGet records messages handed to consumers from topic (the pull path calls it): the
// runtime-info totals and the go-metrics counters.
func (n *Node) countGet(group, topic string, msgs, bytes int) {
	a := n.adminInit()
	a.stats.groups.add(group, topic, msgs, time.Now())
	a.stats.getMsgs.Add(int64(msgs))
	a.stats.getBytes.Add(int64(bytes))
	n.countGetMetrics(topic, msgs, bytes)
}

// putTotal is the number of messages stored on this node: the sum of every queue's max offset.
func (n *Node) putTotal() int64 {
	var total int64
	for _, t := range n.store.Topics() {
		for _, q := range n.store.QueueIDs(t) {
			total += n.store.MaxOffset(t, q)
		}
	}
	return total
}

// statsLoop samples the put and get totals every second until the node shuts down.
func (n *Node) statsLoop() {
	a := n.adminInit()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	a.stats.sample(time.Now(), n.putTotal(), a.stats.getMsgs.Load())
	for {
		select {
		case <-n.shutdownCh:
			return
		case now := <-t.C:
			if n.closing.Load() {
				return
			}
			a.stats.sample(now, n.putTotal(), a.stats.getMsgs.Load())
		}
	}
}

func (s *stats) sample(now time.Time, put, get int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	day := now.YearDay() + now.Year()*10000
	if s.day == 0 {
		s.putTodayMorning, s.getTodayMorning = put, get
	} else if day != s.day {
		s.putYesterdayMorning, s.getYesterdayMorning = s.putTodayMorning, s.getTodayMorning
		s.putTodayMorning, s.getTodayMorning = put, get
	}
	s.day = day
	smp := statSample{at: now, put: put, get: get}
	if len(s.samples) < cap(s.samples) {
		s.samples = append(s.samples, smp)
		return
	}
	s.samples[s.next] = smp
	s.next = (s.next + 1) % len(s.samples)
}

// tps returns the put and get rates over the last d: from the newest sample at least d old
// (or the oldest one kept) to the current totals put and get at now. 0 without a sample at
// least half a second old.
func (s *stats) tps(d time.Duration, now time.Time, put, get int64) (float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0, 0
	}
	// Walk from the newest sample to the oldest, stopping at the first one at least d old.
	var base statSample
	for i := range s.samples {
		base = s.samples[(s.next-1-i+2*len(s.samples))%len(s.samples)]
		if now.Sub(base.at) >= d {
			break
		}
	}
	el := now.Sub(base.at).Seconds()
	if el < 0.5 {
		return 0, 0
	}
	return float64(put-base.put) / el, float64(get-base.get) / el
}

func (s *stats) mornings() (putToday, putYesterday, getToday, getYesterday int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putTodayMorning, s.putYesterdayMorning, s.getTodayMorning, s.getYesterdayMorning
}

// RuntimeInfo is the table GET_BROKER_RUNTIME_INFO returns: the keys mqadmin brokerStatus
// prints, plus raftmq's Raft state (raftState, raftTerm, raftLeader, commitIndex,
// appliedIndex, ...).
func (n *Node) RuntimeInfo() map[string]string {
	a := n.adminInit()
	now := time.Now()
	put, get := n.putTotal(), a.stats.getMsgs.Load()
	t := map[string]string{}
	set := func(k string, v any) { t[k] = fmt.Sprint(v) }
	set("brokerVersionDesc", "raftmq (RocketMQ 4.9 remoting)")
	set("brokerVersion", transport.DefaultVersion)
	set("bootTimestamp", a.stats.boot.UnixMilli())
	up := now.Sub(a.stats.boot)
	t["runtime"] = fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]",
		int(up/(24*time.Hour)), int(up/time.Hour)%24, int(up/time.Minute)%60, int(up/time.Second)%60)
	var tpsPut, tpsGet [3]float64
	for i, w := range []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute} {
		tpsPut[i], tpsGet[i] = a.stats.tps(w, now, put, get)
	}
	t["putTps"] = fmt.Sprintf("%.2f %.2f %.2f", tpsPut[0], tpsPut[1], tpsPut[2])
	t["getTransferedTps"] = fmt.Sprintf("%.2f %.2f %.2f", tpsGet[0], tpsGet[1], tpsGet[2])
	pm, py, gm, gy := a.stats.mornings()
	set("msgPutTotalTodayNow", put)
	set("msgPutTotalTodayMorning", pm)
	set("msgPutTotalYesterdayMorning", py)
	set("msgGetTotalTodayNow", get)
	set("msgGetTotalTodayMorning", gm)
	set("msgGetTotalYesterdayMorning", gy)
	set("putMessageTimesTotal", put)
	set("getMessageTransferedBytesTotal", a.stats.getBytes.Load())
	minPhys, maxPhys := n.store.MinPhysOffset(), n.store.MaxPhysOffset()
	set("commitLogMinOffset", minPhys)
	set("commitLogMaxOffset", maxPhys)
	set("putMessageSizeTotal", maxPhys)
	set("dispatchBehindBytes", 0) // the fsm indexes each record as it applies it
	set("pageCacheLockTimeMills", 0)
	set("sendThreadPoolQueueSize", len(n.sendSem))
	set("sendThreadPoolQueueCapacity", cap(n.sendSem))
	set("pullThreadPoolQueueSize", len(n.pullSem))
	set("pullThreadPoolQueueCapacity", cap(n.pullSem))
	earliest := int64(0)
	if m, err := n.store.ReadMessage(minPhys); err == nil {
		earliest = m.StoreTimestamp
	}
	set("earliestMessageTimeStamp", earliest)
	live := n.LiveConfig()
	if ratio, total, free, err := n.diskUsage(n.commitLogDir()); err == nil {
		t["commitLogDiskRatio"] = strconv.FormatFloat(ratio, 'f', -1, 64)
		if total > 0 {
			t["commitLogDirCapacity"] = fmt.Sprintf("Total : %s, Free : %s.", humanBytes(total), humanBytes(free))
		}
	} else {
		t["commitLogDiskRatio"] = "-1"
	}
	set("brokerPermission", live.BrokerPermission)
	set("brokerName", live.BrokerName)
	set("brokerMode", n.mode())
	if st, err := n.GroupStatus(); err == nil {
		set("raftState", st.State)
		set("raftTerm", st.Term)
		set("raftLeader", st.Leader)
		set("raftSelf", st.Self)
		set("lastIndex", st.LastIndex)
		set("commitIndex", st.CommitIndex)
		set("appliedIndex", st.AppliedIndex)
		set("fsmAppliedIndex", st.FSMApplied)
		set("raftLag", st.Lag)
		set("raftMembers", len(st.Members))
		if addr, _ := n.leaderBrokerAddr(); addr != "" {
			set("raftLeaderAddr", addr)
		}
	}
	return t
}

// commitLogDir is the directory of the commitlog files.
func (n *Node) commitLogDir() string {
	live := n.LiveConfig()
	if live.StorePathCommitLog != "" {
		return live.StorePathCommitLog
	}
	return filepath.Join(live.StorePathRootDir, "commitlog")
}

// diskUsage returns the used fraction of the file system holding dir (Options.DiskUsage when
// set, as the disk guard sees it), and its size and free bytes (0 when faked).
func (n *Node) diskUsage(dir string) (ratio float64, total, free uint64, err error) {
	if n.opts.DiskUsage != nil {
		r, err := n.opts.DiskUsage(dir)
		return r, 0, 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	avail := float64(st.Bavail) * float64(st.Bsize)
	if used+avail > 0 {
		ratio = used / (used + avail)
	}
	return ratio, st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for x := b / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// handleRuntimeInfo serves GET_BROKER_RUNTIME_INFO (28): Java's KVTable {"table":{...}}.
func (n *Node) handleRuntimeInfo(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	body, err := json.Marshal(struct {
		Table map[string]string `json:"table"`
	}{n.RuntimeInfo()})
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = body
	return resp
}

// QueueStats is one queue's line of GET_TOPIC_STATS_INFO.
type QueueStats struct {
	QueueID             int32
	MinOffset           int64
	MaxOffset           int64
	LastUpdateTimestamp int64 // store time of the newest message, 0 when the queue is empty
}

// TopicStats returns the min and max offset and the newest message's store time of each write
// queue of topic, as this node has applied them.
func (n *Node) TopicStats(topic string) ([]QueueStats, error) {
	if err := n.serving(); err != nil {
		return nil, err
	}
	if err := message.ValidateTopic(topic); err != nil {
		return nil, err
	}
	tc, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w: topic[%s] not exist", ErrTopicNotExist, topic)
	}
	out := make([]QueueStats, 0, tc.WriteQueueNums)
	for q := range tc.WriteQueueNums {
		st := QueueStats{QueueID: q, MinOffset: n.store.MinOffset(topic, q), MaxOffset: n.store.MaxOffset(topic, q)}
		if st.MaxOffset > st.MinOffset {
			st.LastUpdateTimestamp = n.storeTimeAt(topic, q, st.MaxOffset-1)
		}
		out = append(out, st)
	}
	return out, nil
}

// storeTimeAt is the store time of the message at a queue offset (0 if unreadable).
func (n *Node) storeTimeAt(topic string, q int32, off int64) int64 {
	res, err := n.store.GetMessages(topic, q, off, 1, 1<<30, nil)
	if err != nil {
		return 0
	}
	defer res.Release()
	if len(res.Buffers) == 0 {
		return 0
	}
	ts, _ := message.StoreTimestampOf(res.Buffers[0])
	return ts
}

// messageQueueKey is a MessageQueue as fastjson writes it (fields sorted).
type messageQueueKey struct {
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
	Topic      string `json:"topic"`
}

// handleTopicStats serves GET_TOPIC_STATS_INFO (202): ext topic; body = Java's TopicStatsTable
// {"offsetTable":{{"brokerName":..,"queueId":..,"topic":..}:{"lastUpdateTimestamp":..,
// "maxOffset":..,"minOffset":..}}}, MessageQueue objects as keys (fastjson style, §3.5).
func (n *Node) handleTopicStats(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	topic := req.Ext("topic")
	if err := validateTopicName("topic", topic); err != nil {
		return errorResponse(err)
	}
	qs, err := n.TopicStats(topic)
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = topicStatsJSON(n.cfg.BrokerName, topic, qs)
	return resp
}

func topicStatsJSON(brokerName, topic string, qs []QueueStats) []byte {
	b := []byte(`{"offsetTable":{`)
	for i, q := range qs {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(messageQueueKey{BrokerName: brokerName, QueueID: q.QueueID, Topic: topic})
		v, _ := json.Marshal(struct {
			LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
			MaxOffset           int64 `json:"maxOffset"`
			MinOffset           int64 `json:"minOffset"`
		}{q.LastUpdateTimestamp, q.MaxOffset, q.MinOffset})
		b = append(b, k...)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, "}}"...)
}
