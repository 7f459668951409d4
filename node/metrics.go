package node

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/transport"
)

// The node reports its metrics through the global go-metrics API (armon/go-metrics), like
// raft does; the process chooses the sinks (cmd/raftmq installs a Prometheus one and the
// in-memory one behind /metrics). go-metrics puts its service name in front of every key,
// so with "raftmq" the key broker.put.messages.total is exposed as
// raftmq_broker_put_messages_total. Values are float32 (go-metrics): counters are summed
// exactly by the sinks, but gauges above 2^24 (Raft indexes, commitlog offsets) keep about
// 7 significant digits.
//
// Per message (send and pull paths) the node makes a few go-metrics calls with precomputed
// label slices: the topic label for messages and bytes, the response code for failures and
// pull results, no label on the latency summaries. The periodic gauges carry the broker
// name and the node's Raft server ID, so that several nodes in one process (tests,
// embedding) stay apart.

// MetricsInterval is how often the metrics loop refreshes the node's gauges.
const MetricsInterval = 5 * time.Second

// MaxTopicLabels bounds the topic label's values per node: the first MaxTopicLabels topics a
// node counts get their own series, later ones are summed under topic="_other".
const MaxTopicLabels = 1000

const otherTopicLabel = "_other"

// go-metrics keys (without the service name).
var (
	keyPutMessages   = []string{"broker", "put", "messages", "total"}
	keyPutBytes      = []string{"broker", "put", "bytes", "total"}
	keySendLatency   = []string{"broker", "send", "latency", "seconds"}
	keySendFailures  = []string{"broker", "send", "failures", "total"}
	keyGetMessages   = []string{"broker", "get", "messages", "total"}
	keyGetBytes      = []string{"broker", "get", "bytes", "total"}
	keyPullLatency   = []string{"broker", "pull", "latency", "seconds"}
	keyPullRequests  = []string{"broker", "pull", "requests", "total"}
	keyPullSuspended = []string{"broker", "pull", "suspended"}
	keyRaftState     = []string{"broker", "raft", "state"}
	keyRaftTerm      = []string{"broker", "raft", "term"}
	keyRaftLast      = []string{"broker", "raft", "last_index"}
	keyRaftCommit    = []string{"broker", "raft", "commit_index"}
	keyRaftApplied   = []string{"broker", "raft", "applied_index"}
	keyFSMApplied    = []string{"broker", "fsm", "applied_index"}
	keyRaftLag       = []string{"broker", "raft", "lag"}
	keyLeaderReady   = []string{"broker", "leader_ready"}
	keyFenced        = []string{"broker", "fenced"}
	keyDiskRatio     = []string{"broker", "commitlog", "disk_ratio"}
	keyMinOffset     = []string{"broker", "commitlog", "min_offset"}
	keyMaxOffset     = []string{"broker", "commitlog", "max_offset"}
)

// MetricDescription is one metric the node (or the name server) reports: its go-metrics key
// without the service name, and its HELP text.
type MetricDescription struct {
	Key  []string
	Help string
}

// MetricDescriptions lists the metrics of broker nodes, for the sinks' HELP lines.
func MetricDescriptions() []MetricDescription {
	return []MetricDescription{
		{keyPutMessages, "Messages stored by this node as leader: producer sends (acknowledged SEND_OK) by the producer's topic, consumer send-backs by their %RETRY% or %DLQ% topic. Topics past the first 1000 are summed under topic=\"_other\"."},
		{keyPutBytes, "Bytes of the stored records (header, body, properties) counted by raftmq_broker_put_messages_total, by topic."},
		{keySendLatency, "Seconds from the arrival of a send on the leader to its SEND_OK reply (acknowledged sends only)."},
		{keySendFailures, "Producer sends this node answered with another code than SUCCESS, by response code (replies relayed from the leader are counted there)."},
		{keyGetMessages, "Messages returned to consumers by pulls, by topic."},
		{keyGetBytes, "Bytes of the records returned to consumers by pulls, by topic."},
		{keyPullLatency, "Seconds spent serving a pull, not counting the time it was held as a long poll."},
		{keyFenced, "1 while the node is fenced because a Raft log write stalled past raftLogStallTimeout (it serves nothing until restarted), else 0."},
		{keyPullRequests, "Pulls answered, by response code (SUCCESS, PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY, PULL_OFFSET_MOVED, errors)."},
		{keyPullSuspended, "Long polls held right now."},
		{keyRaftState, "1 for the node's current Raft state (Leader, Follower, Candidate, Shutdown), 0 for the others."},
		{keyRaftTerm, "The node's current Raft term."},
		{keyRaftLast, "Index of the node's last Raft log entry."},
		{keyRaftCommit, "The node's Raft commit index."},
		{keyRaftApplied, "Raft's applied index on this node."},
		{keyFSMApplied, "Index of the last entry the node's state machine applied (what pulls see)."},
		{keyRaftLag, "Committed Raft entries this node's state machine has not applied yet."},
		{keyLeaderReady, "1 while the node is the leader and has applied everything committed before its election (it accepts writes)."},
		{keyDiskRatio, "Used fraction of the file system holding the commitlog (the disk guard's view)."},
		{keyMinOffset, "Smallest physical offset still in the commitlog."},
		{keyMaxOffset, "Physical offset the next commitlog record will get."},
	}
}

var raftStates = [...]raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// nodeMetrics is the node's metric state (it lives in stats, see stats.go).
type nodeMetrics struct {
	once        sync.Once
	loopOnce    sync.Once
	nodeLabels  []metrics.Label // broker, node
	stateLabels [len(raftStates)][]metrics.Label
	otherTopic  []metrics.Label

	mu     sync.RWMutex
	topics map[string][]metrics.Label
}

// nodeMetrics returns the node's metric state, set up on first use.
func (n *Node) nodeMetrics() *nodeMetrics {
	m := &n.adminInit().stats.metrics
	m.once.Do(func() {
		m.nodeLabels = []metrics.Label{{Name: "broker", Value: n.cfg.BrokerName}, {Name: "node", Value: string(n.serverID)}}
		for i, s := range raftStates {
			m.stateLabels[i] = []metrics.Label{{Name: "broker", Value: n.cfg.BrokerName}, {Name: "node", Value: string(n.serverID)}, {Name: "state", Value: s.String()}}
		}
		m.otherTopic = []metrics.Label{{Name: "topic", Value: otherTopicLabel}}
		m.topics = map[string][]metrics.Label{}
	})
	return m
}

// topicLabels returns the label slice of a topic (never appended to: go-metrics copies it).
func (m *nodeMetrics) topicLabels(topic string) []metrics.Label {
	m.mu.RLock()
	l, ok := m.topics[topic]
	m.mu.RUnlock()
	if ok {
		return l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.topics[topic]; ok {
		return l
	}
	if len(m.topics) >= MaxTopicLabels {
		return m.otherTopic
	}
	l = []metrics.Label{{Name: "topic", Value: topic}}
	m.topics[topic] = l
	return l
}

// codeLabels caches the label slice of each response code (they are few and small).
var codeLabels [1024]atomic.Pointer[[]metrics.Label]

func codeLabel(code int16) []metrics.Label {
	if code >= 0 && int(code) < len(codeLabels) {
		if p := codeLabels[code].Load(); p != nil {
			return *p
		}
	}
	name := transport.ResponseCode(code).Name()
	if name == "" {
		name = strconv.Itoa(int(code))
	}
	l := []metrics.Label{{Name: "code", Value: name}}
	if code >= 0 && int(code) < len(codeLabels) {
		codeLabels[code].Store(&l)
	}
	return l
}

// countPutTopic records the messages of one producer send, stored under topic.
func (n *Node) countPutTopic(topic string, results []commitlog.AppendResult) {
	var size int64
	for _, r := range results {
		size += int64(r.Size)
	}
	l := n.nodeMetrics().topicLabels(topic)
	metrics.IncrCounterWithLabels(keyPutMessages, float32(len(results)), l)
	metrics.IncrCounterWithLabels(keyPutBytes, float32(size), l)
}

// countPut records messages stored through Append (results are msgs' results, in order),
// under each message's topic.
func (n *Node) countPut(msgs []*commitlog.Message, results []commitlog.AppendResult) {
	for i := 0; i < len(msgs) && i < len(results); {
		j := i + 1
		for j < len(msgs) && j < len(results) && msgs[j].Topic == msgs[i].Topic {
			j++
		}
		n.countPutTopic(msgs[i].Topic, results[i:j])
		i = j
	}
}

// observeSend records an acknowledged producer send's latency.
func observeSend(start time.Time) {
	metrics.AddSample(keySendLatency, float32(time.Since(start).Seconds()))
}

// countSendFailure records a producer send answered with code (not SUCCESS).
func countSendFailure(code int16) {
	metrics.IncrCounterWithLabels(keySendFailures, 1, codeLabel(code))
}

// countGetMetrics records messages and bytes returned by a pull from topic.
func (n *Node) countGetMetrics(topic string, msgs, bytes int) {
	l := n.nodeMetrics().topicLabels(topic)
	metrics.IncrCounterWithLabels(keyGetMessages, float32(msgs), l)
	metrics.IncrCounterWithLabels(keyGetBytes, float32(bytes), l)
}

// observePull records an answered pull: its code and the time spent serving it.
func observePull(code int16, served time.Duration) {
	metrics.IncrCounterWithLabels(keyPullRequests, 1, codeLabel(code))
	metrics.AddSample(keyPullLatency, float32(served.Seconds()))
}

// startMetrics starts the metrics loop (once): it refreshes the node's gauges every
// MetricsInterval until the node shuts down. New calls it once Raft runs.
func (n *Node) startMetrics() {
	n.nodeMetrics().loopOnce.Do(func() { n.goFunc(n.metricsLoop) })
}

func (n *Node) metricsLoop() {
	t := time.NewTicker(MetricsInterval)
	defer t.Stop()
	n.ReportMetrics()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
			n.ReportMetrics()
		}
	}
}

// ReportMetrics sets the node's gauges now: Raft state, term and indexes, the state
// machine's applied index and lag, leader readiness, held long polls, the commitlog's
// disk usage and offsets. The metrics loop calls it every MetricsInterval; call it before
// reading the sinks to get current values. It does nothing once the node is closing.
func (n *Node) ReportMetrics() {
	if n.raft == nil {
		return
	}
	m := n.nodeMetrics()
	l := m.nodeLabels
	if n.Fenced() != nil {
		// A fenced node (its Raft log write stalled) serves nothing: say so, and zero the
		// readiness gauge rather than leaving its last value standing.
		metrics.SetGaugeWithLabels(keyFenced, 1, l)
		metrics.SetGaugeWithLabels(keyLeaderReady, 0, l)
		return
	}
	if n.serving() != nil {
		return
	}
	metrics.SetGaugeWithLabels(keyFenced, 0, l)
	state := n.raft.State()
	for i, s := range raftStates {
		v := float32(0)
		if s == state {
			v = 1
		}
		metrics.SetGaugeWithLabels(keyRaftState, v, m.stateLabels[i])
	}
	commit, fsmApplied := n.raft.CommitIndex(), n.fsm.AppliedIndex()
	var lag uint64
	if commit > fsmApplied {
		lag = commit - fsmApplied
	}
	metrics.SetGaugeWithLabels(keyRaftTerm, float32(n.raft.CurrentTerm()), l)
	metrics.SetGaugeWithLabels(keyRaftLast, float32(n.raft.LastIndex()), l)
	metrics.SetGaugeWithLabels(keyRaftCommit, float32(commit), l)
	metrics.SetGaugeWithLabels(keyRaftApplied, float32(n.raft.AppliedIndex()), l)
	metrics.SetGaugeWithLabels(keyFSMApplied, float32(fsmApplied), l)
	metrics.SetGaugeWithLabels(keyRaftLag, float32(lag), l)
	ready := float32(0)
	if n.LeaderReady() {
		ready = 1
	}
	metrics.SetGaugeWithLabels(keyLeaderReady, ready, l)
	if n.consumers != nil {
		metrics.SetGaugeWithLabels(keyPullSuspended, float32(n.consumers.heldPulls.Load()), l)
	}
	metrics.SetGaugeWithLabels(keyMinOffset, float32(n.store.MinPhysOffset()), l)
	metrics.SetGaugeWithLabels(keyMaxOffset, float32(n.store.MaxPhysOffset()), l)
	if ratio, _, _, err := n.diskUsage(n.commitLogDir()); err == nil {
		metrics.SetGaugeWithLabels(keyDiskRatio, float32(ratio), l)
	} else {
		n.log.Debug("metrics: commitlog disk usage", "err", err)
	}
}
