package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
)

// Topic names of the message flows (RocketMQ's TopicValidator / MixAll).
const (
	autoCreateTopic = "TBW102"                      // AUTO_CREATE_TOPIC_KEY_TOPIC
	halfTopic       = "RMQ_SYS_TRANS_HALF_TOPIC"    // transactional half messages
	opHalfTopic     = "RMQ_SYS_TRANS_OP_HALF_TOPIC" // Java's op records (unused here: state is in the fsm)
	retryPrefix     = "%RETRY%"
	dlqPrefix       = "%DLQ%"

	permInherit = 1 // PermName.PERM_INHERIT

	scheduleBatch = 32 // delayed messages delivered per Raft entry at most
)

// startFlows starts the leader-side loops of the message flows: one delivery goroutine per
// delay level, the leader housekeeping loop (TBW102, transaction back-checks), and a watcher
// that tells the level goroutines when this node becomes (or stops being) the ready leader,
// so that idle levels sleep without polling.
func (n *Node) startFlows() {
	lw := &leaderWatch{ch: make(chan struct{})}
	n.goFunc(func() { n.watchLeader(lw) })
	for i := range n.cfg.MessageDelayLevel {
		level := int32(i + 1)
		n.goFunc(func() { n.scheduleLoop(level, lw) })
	}
	n.goFunc(n.flowLeaderLoop)
}

// idleRecheck is how often the watcher checks whether this node became the ready leader
// (LeaderReady turns true after the post-election barrier, in register.go).
const idleRecheck = 250 * time.Millisecond

// leaderWatch broadcasts changes of LeaderReady: ch is closed and replaced at each change.
type leaderWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *leaderWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *leaderWatch) signal() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

func (n *Node) watchLeader(w *leaderWatch) {
	t := time.NewTicker(idleRecheck)
	defer t.Stop()
	was := false
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
		if now := n.LeaderReady(); now != was {
			was = now
			w.signal()
		}
	}
}

// toSchedule turns a message with a DELAY property (> 0) into its SCHEDULE_TOPIC_XXXX form:
// queue level-1, REAL_TOPIC/REAL_QID recording where it goes when due. Levels above the
// configured count are capped, as RocketMQ does.
func (n *Node) toSchedule(m *commitlog.Message) error {
	v, ok := message.GetProperty(m.Properties, commitlog.PropertyDelayLevel)
	if !ok {
		return nil
	}
	level, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%w: property DELAY %q is not a number", ErrBadRequest, v)
	}
	if level <= 0 {
		return nil
	}
	level = min(level, len(n.cfg.MessageDelayLevel))
	props := m.Properties
	if props, err = message.SetProperty(props, commitlog.PropertyDelayLevel, strconv.Itoa(level)); err != nil {
		return err
	}
	if props, err = message.SetProperty(props, commitlog.PropertyRealTopic, m.Topic); err != nil {
		return err
	}
	if props, err = message.SetProperty(props, commitlog.PropertyRealQueueID, strconv.Itoa(int(m.QueueID))); err != nil {
		return err
	}
	m.Properties = props
	m.Topic = commitlog.ScheduleTopic
	m.QueueID = int32(level - 1)
	return nil
}

// scheduleLoop delivers the due messages of one delay level while this node is the ready
// leader. It sleeps until the earliest pending message is due, something is appended to the
// level's queue, or leadership changes; progress lives in the fsm (CmdDeliverScheduled), so
// a new leader resumes where the last delivery committed.
func (n *Node) scheduleLoop(level int32, lw *leaderWatch) {
	queue := level - 1
	for {
		lead := lw.changed()
		var wake <-chan struct{}
		var timer *time.Timer
		var timerC <-chan time.Time
		if n.LeaderReady() {
			wake = n.fsm.WaitQueue(commitlog.ScheduleTopic, queue)
			due, err := n.deliverDue(level)
			var wait time.Duration
			switch {
			case err != nil:
				if !errors.Is(err, fsm.ErrStale) {
					n.log.Warn("delayed delivery failed; retrying", "level", level, "err", err)
				}
				wait = 100 * time.Millisecond
			case due.IsZero():
				continue // delivered a batch: look again at once
			case due.Equal(noneDue):
				// nothing pending: wait for an append or a leadership change
			default:
				wait = max(time.Until(due), time.Millisecond)
			}
			if wait > 0 {
				timer = time.NewTimer(wait)
				timerC = timer.C
			}
		}
		select {
		case <-n.shutdownCh:
		case <-wake:
		case <-timerC:
		case <-lead:
		}
		if timer != nil {
			timer.Stop()
		}
		select {
		case <-n.shutdownCh:
			return
		default:
		}
	}
}

// noneDue is deliverDue's answer when the level's queue holds nothing pending.
var noneDue = time.Unix(0, 0)

// deliverDue proposes one CmdDeliverScheduled with the level's due messages (at most
// scheduleBatch). It returns when the first pending message is due: the zero time when it
// delivered something, noneDue when nothing is pending.
func (n *Node) deliverDue(level int32) (time.Time, error) {
	delay := n.cfg.MessageDelayLevel[level-1]
	from := n.fsm.ScheduleProgress(level)
	res, err := n.store.GetMessages(commitlog.ScheduleTopic, level-1, from, scheduleBatch, 4<<20, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("read schedule queue %d at %d: %w", level-1, from, err)
	}
	defer res.Release()
	now := time.Now()
	to := from
	var out []*commitlog.Message
	var next time.Time
	for i, b := range res.Buffers {
		me, _, err := message.DecodeRecord(b)
		if err != nil {
			return time.Time{}, fmt.Errorf("decode schedule record at queue offset %d: %w", res.QueueOffsets[i], err)
		}
		due := time.UnixMilli(me.StoreTimestamp).Add(delay)
		if due.After(now) {
			next = due
			break
		}
		to = res.QueueOffsets[i] + 1
		if m := n.delivered(me); m != nil {
			out = append(out, m)
		}
	}
	if len(res.Buffers) == 0 && res.NextBeginOffset > from {
		to = res.NextBeginOffset // retention removed what was pending: skip it
	}
	if to == from {
		if next.IsZero() {
			next = noneDue
		}
		return next, nil
	}
	data, err := fsm.EncodeFlowAppend(time.Now().UnixMilli(), out)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.SendTimeout)
	defer cancel()
	if _, err := n.applyFlow(ctx, fsm.CmdDeliverScheduled, &fsm.DeliverScheduledCommand{Level: level, From: from, To: to, Append: data}); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, nil
}

// delivered rebuilds a due delayed message for its real topic and queue: DELAY removed,
// WAIT=false, everything else (UNIQ_KEY, REAL_TOPIC, body, flags) kept. nil = undeliverable
// (no valid REAL_TOPIC/REAL_QID); it is skipped.
func (n *Node) delivered(me *commitlog.MessageExt) *commitlog.Message {
	topic, ok := message.GetProperty(me.Properties, commitlog.PropertyRealTopic)
	qs, ok2 := message.GetProperty(me.Properties, commitlog.PropertyRealQueueID)
	q, err := strconv.Atoi(qs)
	if !ok || !ok2 || err != nil || q < 0 || message.ValidateTopic(topic) != nil {
		n.log.Warn("dropping a delayed message without a valid REAL_TOPIC/REAL_QID", "physOffset", me.PhysicalOffset)
		return nil
	}
	m := me.Message
	m.Topic = topic
	m.QueueID = int32(q)
	m.Properties = message.DeleteProperty(m.Properties, commitlog.PropertyDelayLevel)
	if p, err := message.SetProperty(m.Properties, commitlog.PropertyWaitStoreMsgOK, "false"); err == nil {
		m.Properties = p
	}
	m.StoreHost = n.storeHost
	m.Body = append([]byte(nil), me.Body...) // the record's bytes are released after reading
	return &m
}

// applyFlow proposes a flow command and waits for it; the fsm's result error (ErrStale when
// another leader already did this) is returned.
func (n *Node) applyFlow(ctx context.Context, t fsm.CommandType, v any) (*fsm.FlowResponse, error) {
	if err := n.leaderOnly(); err != nil {
		return nil, err
	}
	data, err := fsm.Encode(t, v)
	if err != nil {
		return nil, err
	}
	f := n.raft.Apply(data, timeoutOf(ctx, n.opts.SendTimeout))
	if err := waitFuture(ctx, f); err != nil {
		return nil, err
	}
	switch r := f.Response().(type) {
	case error:
		return nil, r
	case *fsm.FlowResponse:
		return r, nil
	}
	return &fsm.FlowResponse{}, nil
}

// flowLeaderLoop runs the leader's housekeeping: it creates TBW102 when autoCreateTopicEnable
// is on (perm 7, defaultTopicQueueNums queues) and runs the transaction back-checks every
// transactionCheckInterval.
func (n *Node) flowLeaderLoop() {
	tick := min(n.cfg.TransactionCheckInterval, idleRecheck)
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastCheck time.Time
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
		if !n.LeaderReady() {
			continue
		}
		if live := n.LiveConfig(); live.AutoCreateTopicEnable {
			if _, ok := n.fsm.Topic(autoCreateTopic); !ok {
				ctx, cancel := context.WithTimeout(context.Background(), n.opts.SendTimeout)
				err := n.CreateTopic(ctx, fsm.TopicConfig{TopicName: autoCreateTopic, ReadQueueNums: int32(live.DefaultTopicQueueNums),
					WriteQueueNums: int32(live.DefaultTopicQueueNums), Perm: 7})
				cancel()
				if err != nil {
					n.log.Warn("creating TBW102 failed; retrying", "err", err)
				}
			}
		}
		if time.Since(lastCheck) >= n.cfg.TransactionCheckInterval {
			lastCheck = time.Now()
			n.checkTransactions()
		}
	}
}
