package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/internal/fsutil"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// PULL_MESSAGE sysFlag bits (RocketMQ's PullSysFlag).
const (
	pullCommitOffset = 1 << 0
	pullSuspend      = 1 << 1
	pullSubscription = 1 << 2
)

// subscription is one topic's tag expression.
type subscription struct {
	Topic      string
	Expr       string
	tags       map[string]bool // nil = every tag
	subVersion int64
}

// parseSubscription parses a tag expression: "" or "*" (everything), or tags joined by
// "||" ("A || B").
func parseSubscription(topic, expr string) (*subscription, error) {
	s := &subscription{Topic: topic, Expr: strings.TrimSpace(expr), subVersion: time.Now().UnixNano()}
	if s.Expr == "" || s.Expr == "*" {
		s.Expr = "*"
		return s, nil
	}
	s.tags = map[string]bool{}
	for _, t := range strings.Split(s.Expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if strings.ContainsAny(t, " \x01\x02") || t == "*" {
			return nil, fmt.Errorf("%w: tag expression %q: bad tag %q", ErrInvalidConfig, expr, t)
		}
		s.tags[t] = true
	}
	if len(s.tags) == 0 {
		return nil, fmt.Errorf("%w: tag expression %q has no tag", ErrInvalidConfig, expr)
	}
	return s, nil
}

func (s *subscription) match(tag string) bool { return s.tags == nil || s.tags[tag] }

// data is the subscription as a heartbeat declares it (codes as strings, as the Go client).
func (s *subscription) data() rmqbody.SubscriptionData {
	d := rmqbody.SubscriptionData{Topic: s.Topic, SubString: s.Expr, TagsSet: []string{}, CodeSet: rmqbody.CodeSet{Codes: []int64{}, Quoted: true},
		SubVersion: s.subVersion, ExpressionType: "TAG"}
	tags := make([]string, 0, len(s.tags))
	for t := range s.tags {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	for _, t := range tags {
		d.TagsSet = append(d.TagsSet, t)
		d.CodeSet.Codes = append(d.CodeSet.Codes, message.TagsHashCode(t))
	}
	return d
}

// pullResult is a PULL_MESSAGE reply.
type pullResult struct {
	code     transport.ResponseCode
	next     int64
	min, max int64
	msgs     []*MessageExt
}

// pull fetches up to maxNums messages of mq from offset at addr, long-polling up to suspend
// when there is nothing new.
func (c *core) pull(ctx context.Context, addr, group string, mq MessageQueue, offset int64, maxNums int,
	sub *subscription, suspend time.Duration, commitOffset int64) (*pullResult, error) {
	flag := pullSubscription
	if suspend > 0 {
		flag |= pullSuspend
	}
	if commitOffset >= 0 {
		flag |= pullCommitOffset
	}
	req := transport.NewRequest(transport.PullMessage, map[string]string{
		"consumerGroup":        group,
		"topic":                mq.Topic,
		"queueId":              strconv.Itoa(mq.QueueID),
		"queueOffset":          strconv.FormatInt(offset, 10),
		"maxMsgNums":           strconv.Itoa(maxNums),
		"sysFlag":              strconv.Itoa(flag),
		"commitOffset":         strconv.FormatInt(commitOffset, 10),
		"suspendTimeoutMillis": strconv.FormatInt(suspend.Milliseconds(), 10),
		"subscription":         sub.Expr,
		"subVersion":           strconv.FormatInt(sub.subVersion, 10),
		"expressionType":       "TAG",
	}, nil)
	resp, err := c.invoke(ctx, addr, req, suspend+c.cfg.RequestTimeout)
	if err != nil {
		return nil, fmt.Errorf("client: pull %s at %s: %w", mq, addr, err)
	}
	r := &pullResult{code: resp.ResponseCode()}
	switch r.code {
	case transport.Success, transport.PullNotFound, transport.PullRetryImmediately, transport.PullOffsetMoved:
	default:
		return nil, replyError("PULL_MESSAGE", addr, resp)
	}
	if r.next, err = resp.ExtInt64("nextBeginOffset"); err != nil {
		// Never rewind on a malformed reply.
		return nil, fmt.Errorf("client: pull %s at %s: %w", mq, addr, err)
	}
	r.min, _ = resp.ExtInt64("minOffset")
	r.max, _ = resp.ExtInt64("maxOffset")
	if r.code == transport.Success && len(resp.Body) > 0 {
		msgs, err := decodeMessages(resp.Body, mq)
		if err != nil {
			return nil, fmt.Errorf("client: pull %s at %s: %w", mq, addr, err)
		}
		minS, maxS := strconv.FormatInt(r.min, 10), strconv.FormatInt(r.max, 10)
		for _, m := range msgs {
			if rt := m.Properties[message.PropertyRetryTopic]; rt != "" && strings.HasPrefix(mq.Topic, "%RETRY%") {
				m.Topic = rt
			}
			m.Properties[message.PropertyMinOffset] = minS
			m.Properties[message.PropertyMaxOffset] = maxS
			if sub.match(m.Tags) {
				r.msgs = append(r.msgs, m)
			}
		}
	}
	return r, nil
}

// ---- offsets on the broker ----

// queryOffset asks the master for group's committed offset of mq; found is false on
// QUERY_NOT_FOUND.
func (c *core) queryOffset(ctx context.Context, group string, mq MessageQueue) (off int64, found bool, err error) {
	addr, err := c.masterFor(ctx, mq.Topic, mq.BrokerName)
	if err != nil {
		return 0, false, err
	}
	resp, err := c.invoke(ctx, addr, transport.NewRequest(transport.QueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": mq.Topic, "queueId": strconv.Itoa(mq.QueueID),
	}, nil), 0)
	if err != nil {
		return 0, false, fmt.Errorf("client: query offset of %s at %s: %w", mq, addr, err)
	}
	switch resp.ResponseCode() {
	case transport.Success:
		off, err := resp.ExtInt64("offset")
		if err != nil {
			return 0, false, fmt.Errorf("client: query offset of %s at %s: %w", mq, addr, err)
		}
		return off, true, nil
	case transport.QueryNotFound:
		return 0, false, nil
	}
	return 0, false, replyError("QUERY_CONSUMER_OFFSET", addr, resp)
}

// commitOffset stores group's offset of mq on the master and waits for the reply.
func (c *core) commitOffset(ctx context.Context, group string, mq MessageQueue, off int64) error {
	addr := c.masterOf(mq.BrokerName)
	if addr == "" {
		var err error
		if addr, err = c.masterFor(ctx, mq.Topic, mq.BrokerName); err != nil {
			return err
		}
	}
	resp, err := c.invoke(ctx, addr, transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": mq.Topic, "queueId": strconv.Itoa(mq.QueueID), "commitOffset": strconv.FormatInt(off, 10),
	}, nil), 0)
	if err != nil {
		return fmt.Errorf("client: commit offset of %s at %s: %w", mq, addr, err)
	}
	if resp.ResponseCode() != transport.Success {
		return replyError("UPDATE_CONSUMER_OFFSET", addr, resp)
	}
	return nil
}

// offsetCall runs GET_MAX_OFFSET, GET_MIN_OFFSET or SEARCH_OFFSET_BY_TIMESTAMP on the
// master (or any node of the group when there is none) and returns ext "offset".
func (c *core) offsetCall(ctx context.Context, code transport.RequestCode, mq MessageQueue, extra map[string]string) (int64, error) {
	addr := c.anyAddrOf(mq.BrokerName)
	if addr == "" {
		if _, err := c.refreshRoute(ctx, mq.Topic, time.Time{}); err != nil {
			return 0, err
		}
		if addr = c.anyAddrOf(mq.BrokerName); addr == "" {
			return 0, fmt.Errorf("%w: broker group %s", ErrNoRoute, mq.BrokerName)
		}
	}
	ext := map[string]string{"topic": mq.Topic, "queueId": strconv.Itoa(mq.QueueID)}
	for k, v := range extra {
		ext[k] = v
	}
	resp, err := c.invoke(ctx, addr, transport.NewRequest(code, ext, nil), 0)
	if err != nil {
		return 0, fmt.Errorf("client: %s of %s at %s: %w", code.Name(), mq, addr, err)
	}
	if resp.ResponseCode() != transport.Success {
		return 0, replyError(code.Name(), addr, resp)
	}
	off, err := resp.ExtInt64("offset")
	if err != nil {
		return 0, fmt.Errorf("client: %s of %s at %s: %w", code.Name(), mq, addr, err)
	}
	return off, nil
}

func (c *core) maxOffset(ctx context.Context, mq MessageQueue) (int64, error) {
	return c.offsetCall(ctx, transport.GetMaxOffset, mq, nil)
}

func (c *core) minOffset(ctx context.Context, mq MessageQueue) (int64, error) {
	return c.offsetCall(ctx, transport.GetMinOffset, mq, nil)
}

func (c *core) searchOffset(ctx context.Context, mq MessageQueue, ts time.Time) (int64, error) {
	return c.offsetCall(ctx, transport.SearchOffsetByTimestamp, mq, map[string]string{"timestamp": strconv.FormatInt(ts.UnixMilli(), 10)})
}

// ---- offset stores of the push consumer ----

// offsetStore keeps a push consumer's progress: on the brokers (clustering) or in a local
// file (broadcasting).
type offsetStore interface {
	read(ctx context.Context, mq MessageQueue) (int64, bool, error)
	update(mq MessageQueue, off int64)
	persist(ctx context.Context, mqs []MessageQueue)
	remove(mq MessageQueue)
	// reset sets mq's offset even backwards (an admin reset) and stores it at once.
	reset(ctx context.Context, mq MessageQueue, off int64)
}

type remoteOffsets struct {
	c     *core
	group string
	mu    sync.Mutex
	table map[MessageQueue]int64
}

func (s *remoteOffsets) read(ctx context.Context, mq MessageQueue) (int64, bool, error) {
	off, found, err := s.c.queryOffset(ctx, s.group, mq)
	if err == nil && found {
		s.mu.Lock()
		s.table[mq] = off
		s.mu.Unlock()
	}
	return off, found, err
}

func (s *remoteOffsets) update(mq MessageQueue, off int64) {
	s.mu.Lock()
	if off > s.table[mq] {
		s.table[mq] = off
	}
	s.mu.Unlock()
}

func (s *remoteOffsets) persist(ctx context.Context, mqs []MessageQueue) {
	for _, mq := range mqs {
		s.mu.Lock()
		off, ok := s.table[mq]
		s.mu.Unlock()
		if !ok {
			continue
		}
		if err := s.c.commitOffset(ctx, s.group, mq, off); err != nil {
			s.c.log.Warn("offset commit failed", "queue", mq.String(), "offset", off, "err", err)
		}
	}
}

func (s *remoteOffsets) reset(ctx context.Context, mq MessageQueue, off int64) {
	s.mu.Lock()
	s.table[mq] = off
	s.mu.Unlock()
	s.persist(ctx, []MessageQueue{mq})
}

func (s *remoteOffsets) remove(mq MessageQueue) {
	s.mu.Lock()
	delete(s.table, mq)
	s.mu.Unlock()
}

// localOffsets keeps offsets in <dir>/<clientID>/<group>/offsets.json, written atomically.
type localOffsets struct {
	path    string
	log     func(msg string, args ...any)
	mu      sync.Mutex
	table   map[MessageQueue]int64
	writeMu sync.Mutex // serialises file writes
}

type offsetFileEntry struct {
	MessageQueue
	Offset int64 `json:"offset"`
}

func openLocalOffsets(dir, clientID, group string, log func(string, ...any)) (*localOffsets, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("client: offset store: no OffsetStoreDir and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".raftmq_offsets")
	}
	s := &localOffsets{path: filepath.Join(dir, strings.ReplaceAll(clientID, ":", "_"), group, "offsets.json"), log: log, table: map[MessageQueue]int64{}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: offset store: read %s: %w", s.path, err)
	}
	var entries []offsetFileEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("client: offset store: parse %s: %w", s.path, err)
	}
	for _, e := range entries {
		s.table[e.MessageQueue] = e.Offset
	}
	return s, nil
}

func (s *localOffsets) read(_ context.Context, mq MessageQueue) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.table[mq]
	return off, ok, nil
}

func (s *localOffsets) update(mq MessageQueue, off int64) {
	s.mu.Lock()
	if cur, ok := s.table[mq]; !ok || off > cur {
		s.table[mq] = off
	}
	s.mu.Unlock()
}

func (s *localOffsets) persist(context.Context, []MessageQueue) {
	s.mu.Lock()
	entries := make([]offsetFileEntry, 0, len(s.table))
	for mq, off := range s.table {
		entries = append(entries, offsetFileEntry{mq, off})
	}
	s.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].MessageQueue.String() < entries[j].MessageQueue.String() })
	data, _ := json.Marshal(entries)
	s.writeMu.Lock() // one writer of path.tmp at a time
	defer s.writeMu.Unlock()
	if err := fsutil.WriteFileAtomic(s.path, data, 0o644); err != nil {
		s.log("offset file write failed", "path", s.path, "err", err)
	}
}

func (s *localOffsets) remove(MessageQueue) {} // broadcasting keeps every queue's offset

func (s *localOffsets) reset(ctx context.Context, mq MessageQueue, off int64) {
	s.mu.Lock()
	s.table[mq] = off
	s.mu.Unlock()
	s.persist(ctx, nil)
}
