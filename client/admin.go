package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// Admin manages topics and groups and inspects the cluster. Safe for concurrent use.
type Admin struct {
	c *core
}

// NewAdmin validates cfg and returns an admin client.
func NewAdmin(cfg ClientConfig) (*Admin, error) {
	c, err := newCore(cfg, nil)
	if err != nil {
		return nil, err
	}
	return &Admin{c: c}, nil
}

// Close closes the admin client's connections. Idempotent.
func (a *Admin) Close() error {
	a.c.close()
	return nil
}

// eachNameServer runs f on the name servers in turn until one succeeds; the error lists
// every failure.
func (a *Admin) eachNameServer(ctx context.Context, f func(ctx context.Context, addr string) error) error {
	var errs []string
	for _, addr := range a.c.cfg.NameServers {
		actx, cancel := context.WithTimeout(ctx, a.c.cfg.RequestTimeout)
		err := f(actx, addr)
		cancel()
		if err == nil {
			return nil
		}
		var e *Error
		if errors.As(err, &e) || errors.Is(err, ErrTopicNotExist) {
			return err // an answer, not an unreachable server
		}
		errs = append(errs, addr+": "+err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: tried %s", ErrNameServer, strings.Join(errs, "; "))
}

// Route returns topic's route.
func (a *Admin) Route(ctx context.Context, topic string) (*namesrv.TopicRouteData, error) {
	d, err := a.c.fetchRoute(ctx, topic)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ClusterInfo returns every broker group and cluster the name servers know.
func (a *Admin) ClusterInfo(ctx context.Context) (*namesrv.ClusterInfo, error) {
	var out *namesrv.ClusterInfo
	err := a.eachNameServer(ctx, func(ctx context.Context, addr string) error {
		ci, err := namesrv.GetClusterInfo(ctx, a.c.tc, addr)
		out = ci
		return err
	})
	return out, err
}

// ListTopics returns every topic, sorted.
func (a *Admin) ListTopics(ctx context.Context) ([]string, error) {
	var out []string
	err := a.eachNameServer(ctx, func(ctx context.Context, addr string) error {
		resp, err := a.c.tc.Invoke(ctx, addr, transport.NewRequest(transport.GetAllTopicListFromNameServer, nil, nil))
		if err != nil {
			return err
		}
		if resp.ResponseCode() != transport.Success {
			return replyError("GET_ALL_TOPIC_LIST_FROM_NAMESERVER", addr, resp)
		}
		var body namesrv.TopicList
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			return fmt.Errorf("client: topic list from %s: %w", addr, err)
		}
		out = body.TopicList
		return nil
	})
	sort.Strings(out)
	return out, err
}

// masters returns the master address of every broker group (of cluster, or all when "").
func (a *Admin) masters(ctx context.Context, cluster string) ([]string, error) {
	ci, err := a.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, b := range ci.BrokerAddrTable {
		if cluster != "" && b.Cluster != cluster {
			continue
		}
		if addr := b.BrokerAddrs[namesrv.MasterID]; addr != "" {
			out = append(out, addr)
		} else {
			a.c.log.Warn("broker group has no master", "broker", name)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no broker group with a master", ErrNoRoute)
	}
	return out, nil
}

// TopicConfig describes a topic to create.
type TopicConfig struct {
	Topic       string
	ReadQueues  int // default 8
	WriteQueues int // default 8
	Perm        int // default 6 (read and write)
	Order       bool
	Cluster     string // create on this cluster's groups; "" = every group
}

// CreateTopic creates (or updates) a topic on the master of every broker group of
// cfg.Cluster (UPDATE_AND_CREATE_TOPIC); the brokers then register it with the name
// servers.
func (a *Admin) CreateTopic(ctx context.Context, cfg TopicConfig) error {
	if err := message.ValidateTopic(cfg.Topic); err != nil || isReservedTopic(cfg.Topic) {
		return fmt.Errorf("%w: topic %q is invalid or reserved", ErrInvalidConfig, cfg.Topic)
	}
	if cfg.ReadQueues == 0 {
		cfg.ReadQueues = 8
	}
	if cfg.WriteQueues == 0 {
		cfg.WriteQueues = 8
	}
	if cfg.Perm == 0 {
		cfg.Perm = namesrv.PermRead | namesrv.PermWrite
	}
	if cfg.ReadQueues < 1 || cfg.ReadQueues > 1024 || cfg.WriteQueues < 1 || cfg.WriteQueues > 1024 {
		return fmt.Errorf("%w: queue counts %d/%d outside 1..1024", ErrInvalidConfig, cfg.ReadQueues, cfg.WriteQueues)
	}
	addrs, err := a.masters(ctx, cfg.Cluster)
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.UpdateAndCreateTopic, map[string]string{
			"topic": cfg.Topic, "defaultTopic": "TBW102",
			"readQueueNums": strconv.Itoa(cfg.ReadQueues), "writeQueueNums": strconv.Itoa(cfg.WriteQueues),
			"perm": strconv.Itoa(cfg.Perm), "topicFilterType": namesrv.FilterSingleTag, "topicSysFlag": "0",
			"order": strconv.FormatBool(cfg.Order),
		}, nil), 2*a.c.cfg.RequestTimeout)
		if err != nil {
			return fmt.Errorf("client: create topic %s at %s: %w", cfg.Topic, addr, err)
		}
		if resp.ResponseCode() != transport.Success {
			return replyError("UPDATE_AND_CREATE_TOPIC", addr, resp)
		}
	}
	return nil
}

// DeleteTopic deletes topic on every broker group's master, then on every name server.
func (a *Admin) DeleteTopic(ctx context.Context, topic string) error {
	addrs, err := a.masters(ctx, "")
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.DeleteTopicInBroker, map[string]string{"topic": topic}, nil), 0)
		if err != nil {
			return fmt.Errorf("client: delete topic %s at %s: %w", topic, addr, err)
		}
		if resp.ResponseCode() != transport.Success {
			return replyError("DELETE_TOPIC_IN_BROKER", addr, resp)
		}
	}
	return a.deleteTopicInNameServers(ctx, topic)
}

func (a *Admin) deleteTopicInNameServers(ctx context.Context, topic string) error {
	// Name servers keep no state across restarts, so one that cannot be reached now holds
	// nothing after it comes back; only refusals and "none reachable" are errors.
	var unreachable []string
	for _, addr := range a.c.cfg.NameServers {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.DeleteTopicInNamesrv, map[string]string{"topic": topic}, nil), 0)
		if err != nil {
			unreachable = append(unreachable, addr+": "+err.Error())
			continue
		}
		if resp.ResponseCode() != transport.Success {
			return replyError("DELETE_TOPIC_IN_NAMESRV", addr, resp)
		}
	}
	if len(unreachable) == len(a.c.cfg.NameServers) {
		return fmt.Errorf("%w: delete topic %s: tried %s", ErrNameServer, topic, strings.Join(unreachable, "; "))
	}
	return nil
}

// QueueProgress is one queue's state for a consumer group.
type QueueProgress struct {
	Queue          MessageQueue
	BrokerOffset   int64 // next offset to be written
	ConsumerOffset int64 // committed offset; -1 when none
	Lag            int64 // BrokerOffset - ConsumerOffset (the whole queue when none)
}

// ConsumerProgress returns group's committed offset and lag on every queue of topic.
func (a *Admin) ConsumerProgress(ctx context.Context, group, topic string) ([]QueueProgress, error) {
	rt, err := a.c.refreshRoute(ctx, topic, time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]QueueProgress, 0, len(rt.read))
	for _, mq := range rt.read {
		maxOff, err := a.c.maxOffset(ctx, mq)
		if err != nil {
			return nil, err
		}
		off, found, err := a.c.queryOffset(ctx, group, mq)
		if err != nil {
			return nil, err
		}
		qp := QueueProgress{Queue: mq, BrokerOffset: maxOff, ConsumerOffset: -1, Lag: maxOff}
		if found {
			qp.ConsumerOffset, qp.Lag = off, max(0, maxOff-off)
		}
		out = append(out, qp)
	}
	return out, nil
}

// ConsumerConnections returns the client ids of group's members as a broker of topic's
// route knows them (GET_CONSUMER_LIST_BY_GROUP), sorted.
func (a *Admin) ConsumerConnections(ctx context.Context, group, topic string) ([]string, error) {
	if _, err := a.c.refreshRoute(ctx, topic, time.Time{}); err != nil {
		return nil, err
	}
	var lastErr error = fmt.Errorf("%w: topic %s has no broker", ErrNoRoute, topic)
	for _, addr := range a.c.brokerAddrs([]string{topic}, true) {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil), 0)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.ResponseCode() != transport.Success {
			lastErr = replyError("GET_CONSUMER_LIST_BY_GROUP", addr, resp)
			continue
		}
		var body rmqbody.ConsumerList
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			return nil, fmt.Errorf("client: consumer list from %s: %w", addr, err)
		}
		sort.Strings(body.ConsumerIDList)
		return body.ConsumerIDList, nil
	}
	return nil, lastErr
}

// QueryMessageByID fetches a message by its offset message id (SendResult.OffsetMsgID)
// from the broker that stored it (VIEW_MESSAGE_BY_ID).
func (a *Admin) QueryMessageByID(ctx context.Context, offsetMsgID string) (*MessageExt, error) {
	host, phys, err := message.ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	addr := host.String()
	resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(phys, 10)}, nil), 0)
	if err != nil {
		return nil, fmt.Errorf("client: view message %s at %s: %w", offsetMsgID, addr, err)
	}
	if resp.ResponseCode() != transport.Success {
		return nil, replyError("VIEW_MESSAGE_BY_ID", addr, resp)
	}
	msgs, err := decodeMessages(resp.Body, MessageQueue{})
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("client: view message %s at %s: no message decoded: %v", offsetMsgID, addr, err)
	}
	m := msgs[0]
	m.Queue = MessageQueue{Topic: m.Topic, QueueID: m.Queue.QueueID}
	return m, nil
}

// QueryMessageByKey returns up to maxNum messages of topic with key stored between begin
// and end, asking every master (QUERY_MESSAGE).
func (a *Admin) QueryMessageByKey(ctx context.Context, topic, key string, maxNum int, begin, end time.Time) ([]*MessageExt, error) {
	if maxNum <= 0 {
		maxNum = 32
	}
	if _, err := a.c.refreshRoute(ctx, topic, time.Time{}); err != nil {
		return nil, err
	}
	var out []*MessageExt
	var lastErr error
	for _, addr := range a.c.brokerAddrs([]string{topic}, true) {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.QueryMessage, map[string]string{
			"topic": topic, "key": key, "maxNum": strconv.Itoa(maxNum),
			"beginTimestamp": strconv.FormatInt(begin.UnixMilli(), 10), "endTimestamp": strconv.FormatInt(end.UnixMilli(), 10),
		}, nil), 0)
		if err != nil {
			lastErr = fmt.Errorf("client: query message by key at %s: %w", addr, err)
			continue
		}
		if resp.ResponseCode() == transport.NoMessage {
			continue
		}
		if resp.ResponseCode() != transport.Success {
			lastErr = replyError("QUERY_MESSAGE", addr, resp)
			continue
		}
		msgs, err := decodeMessages(resp.Body, MessageQueue{})
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			for _, k := range m.Keys {
				if k == key {
					m.Queue = MessageQueue{Topic: m.Topic, QueueID: m.Queue.QueueID}
					out = append(out, m)
					break
				}
			}
		}
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return out, nil
}

// ResetOffsetByTime moves group's committed offset on every queue of topic to the first
// message stored at or after ts, and returns the new offsets. Members that are online
// keep their in-memory positions unless the broker relays the reset to them
// (INVOKE_BROKER_TO_RESET_OFFSET, tried first); stop the group for a certain result.
func (a *Admin) ResetOffsetByTime(ctx context.Context, group, topic string, ts time.Time) (map[MessageQueue]int64, error) {
	rt, err := a.c.refreshRoute(ctx, topic, time.Time{})
	if err != nil {
		return nil, err
	}
	out := map[MessageQueue]int64{}
	for _, mq := range rt.read {
		off, err := a.c.searchOffset(ctx, mq, ts)
		if err != nil {
			return nil, err
		}
		if err := a.c.commitOffset(ctx, group, mq, off); err != nil {
			return nil, err
		}
		out[mq] = off
	}
	for _, addr := range a.c.brokerAddrs([]string{topic}, true) {
		resp, err := a.c.invoke(ctx, addr, transport.NewRequest(transport.InvokeBrokerToResetOffset, map[string]string{
			"topic": topic, "group": group, "timestamp": strconv.FormatInt(ts.UnixMilli(), 10), "isForce": "true",
		}, nil), 0)
		if err == nil && resp.ResponseCode() != transport.Success && resp.ResponseCode() != transport.RequestCodeNotSupported {
			a.c.log.Warn("broker did not relay the reset to the group's members", "broker", addr, "err", replyError("INVOKE_BROKER_TO_RESET_OFFSET", addr, resp))
		}
	}
	return out, nil
}

// BrokerGroupStatus is one broker group (a Raft group in raftmq) as the name servers see it.
type BrokerGroupStatus struct {
	BrokerName string
	Cluster    string
	Leader     string           // the brokerId-0 address; "" while the group has no leader
	Members    map[int64]string // brokerId → address, leader included
}

// GroupStatus returns brokerName's members and leader from the name servers' cluster view.
func (a *Admin) GroupStatus(ctx context.Context, brokerName string) (*BrokerGroupStatus, error) {
	ci, err := a.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := ci.BrokerAddrTable[brokerName]
	if !ok {
		return nil, fmt.Errorf("%w: broker group %s is not registered", ErrNoRoute, brokerName)
	}
	st := &BrokerGroupStatus{BrokerName: brokerName, Cluster: b.Cluster, Leader: b.BrokerAddrs[namesrv.MasterID], Members: map[int64]string{}}
	for id, addr := range b.BrokerAddrs {
		st.Members[id] = addr
	}
	return st, nil
}
