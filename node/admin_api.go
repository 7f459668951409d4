package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/transport"
)

// MaxTopicQueueNums is the largest readQueueNums / writeQueueNums UPDATE_AND_CREATE_TOPIC
// accepts (and retryQueueNums of a subscription group).
const MaxTopicQueueNums = 1024

// ErrGroupNotExist is returned for a subscription group that does not exist.
var ErrGroupNotExist = errors.New("node: subscription group does not exist")

// reservedTopics may not be created or changed through UPDATE_AND_CREATE_TOPIC: RocketMQ
// 4.9's system topic set (TopicValidator), plus any topic starting with "rmq_sys_" and the
// cluster and broker names (see isSystemTopic).
var reservedTopics = map[string]bool{
	"TBW102": true, "SCHEDULE_TOPIC_XXXX": true, "BenchmarkTest": true, "RMQ_SYS_TRANS_HALF_TOPIC": true,
	"RMQ_SYS_TRACE_TOPIC": true, "RMQ_SYS_TRANS_OP_HALF_TOPIC": true, "TRANS_CHECK_MAX_TIME_TOPIC": true,
	"SELF_TEST_TOPIC": true, "OFFSET_MOVED_EVENT": true,
}

func (n *Node) isSystemTopic(topic string) bool {
	return reservedTopics[topic] || strings.HasPrefix(topic, "rmq_sys_") || topic == n.cfg.BrokerClusterName || topic == n.cfg.BrokerName
}

// routesAdmin registers the admin request codes (topics, groups, broker config, statistics,
// message queries) and starts the statistics sampler.
func (n *Node) routesAdmin() {
	n.mux.HandleFunc(transport.UpdateAndCreateTopic, n.handleUpdateTopic)
	n.mux.HandleFunc(transport.DeleteTopicInBroker, n.handleDeleteTopic)
	n.mux.HandleFunc(transport.GetAllTopicConfig, n.handleGetAllTopicConfig)
	n.mux.HandleFunc(transport.UpdateAndCreateSubscriptionGroup, n.handleUpdateGroup)
	n.mux.HandleFunc(transport.DeleteSubscriptionGroup, n.handleDeleteGroup)
	n.mux.HandleFunc(transport.GetAllSubscriptionGroupConfig, n.handleGetAllGroups)
	n.mux.HandleFunc(transport.GetBrokerRuntimeInfo, n.handleRuntimeInfo)
	n.mux.HandleFunc(transport.GetBrokerConfig, n.handleGetBrokerConfig)
	n.mux.HandleFunc(transport.UpdateBrokerConfig, n.handleUpdateBrokerConfig)
	n.mux.HandleFunc(transport.GetTopicStatsInfo, n.handleTopicStats)
	n.mux.HandleFunc(transport.QueryMessage, n.handleQueryMessage)
	n.mux.HandleFunc(transport.ViewMessageByID, n.handleViewMessage)
	n.adminInit()
	n.goFunc(n.statsLoop)
}

// adminWrite runs a replicated admin change on the leader; a follower forwards the request.
func (n *Node) adminWrite(ctx context.Context, req *transport.Command, do func(ctx context.Context) (string, error)) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	if !n.leaderReady.Load() {
		return errorResponse(fmt.Errorf("%w: elected leader still catching up", ErrNoLeader))
	}
	cctx, cancel := context.WithTimeout(ctx, n.opts.SendTimeout)
	defer cancel()
	remark, err := do(cctx)
	if err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, remark)
}

// validateTopicName checks a topic name an admin request names (field = the ext key).
func validateTopicName(field, topic string) error {
	if topic == "" {
		return fmt.Errorf("%w: %s", transport.ErrMissingField, field)
	}
	if err := message.ValidateTopic(topic); err != nil {
		// SYSTEM_ERROR as Java's admin processor, not the send path's MESSAGE_ILLEGAL.
		return fmt.Errorf("%w: %s: %v", ErrBadRequest, field, err)
	}
	return nil
}

// parseTopicConfig reads UPDATE_AND_CREATE_TOPIC's ext fields: topic, readQueueNums,
// writeQueueNums, perm (required, as Java's @CFNotNull), topicFilterType (default SINGLE_TAG),
// topicSysFlag (default 0), order (default false).
func (n *Node) parseTopicConfig(req *transport.Command) (fsm.TopicConfig, error) {
	var tc fsm.TopicConfig
	tc.TopicName = req.Ext("topic")
	if err := validateTopicName("topic", tc.TopicName); err != nil {
		return tc, err
	}
	if n.isSystemTopic(tc.TopicName) {
		return tc, fmt.Errorf("%w: the topic[%s] is conflict with system topic (or the cluster or broker name)", ErrBadRequest, tc.TopicName)
	}
	var err error
	for _, f := range []struct {
		key string
		dst *int32
	}{{"readQueueNums", &tc.ReadQueueNums}, {"writeQueueNums", &tc.WriteQueueNums}} {
		if *f.dst, err = req.ExtInt32(f.key); err != nil {
			return tc, err
		}
		if *f.dst < 1 || *f.dst > MaxTopicQueueNums {
			return tc, fmt.Errorf("%w: %s=%d is out of range [1, %d]", ErrBadRequest, f.key, *f.dst, MaxTopicQueueNums)
		}
	}
	if tc.Perm, err = req.ExtInt32("perm"); err != nil {
		return tc, err
	}
	if tc.Perm&^15 != 0 || tc.Perm < 0 {
		return tc, fmt.Errorf("%w: perm=%d is not a combination of 8 (priority), 4 (read), 2 (write), 1 (inherit)", ErrBadRequest, tc.Perm)
	}
	switch tc.TopicFilterType = req.Ext("topicFilterType"); tc.TopicFilterType {
	case "":
		tc.TopicFilterType = "SINGLE_TAG"
	case "SINGLE_TAG", "MULTI_TAG":
	default:
		return tc, fmt.Errorf("%w: topicFilterType=%q is not SINGLE_TAG or MULTI_TAG", ErrBadRequest, tc.TopicFilterType)
	}
	if req.Ext("topicSysFlag") != "" {
		if tc.TopicSysFlag, err = req.ExtInt32("topicSysFlag"); err != nil {
			return tc, err
		}
	}
	if req.Ext("order") != "" {
		if tc.Order, err = req.ExtBool("order"); err != nil {
			return tc, err
		}
	}
	return tc, nil
}

// handleUpdateTopic serves UPDATE_AND_CREATE_TOPIC (17): the topic is created or updated
// through Raft, and the leader registers with the name servers at once.
func (n *Node) handleUpdateTopic(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	tc, err := n.parseTopicConfig(req)
	if err != nil {
		return errorResponse(err)
	}
	return n.adminWrite(ctx, req, func(ctx context.Context) (string, error) {
		return "", n.CreateTopic(ctx, tc)
	})
}

// DeleteTopic deletes a topic (its config, consume queues and consumer offsets) through Raft
// and re-registers. Leader only. Deleting a topic that does not exist returns an error wrapping
// ErrTopicNotExist.
func (n *Node) DeleteTopic(ctx context.Context, topic string) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	if _, ok := n.fsm.Topic(topic); !ok {
		return fmt.Errorf("%w: topic[%s] not exist", ErrTopicNotExist, topic)
	}
	if err := n.apply(ctx, fsm.CmdDeleteTopic, &fsm.DeleteTopicCommand{Topic: topic, Timestamp: time.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("node: delete topic %s: %w", topic, err)
	}
	n.kickRegister()
	return nil
}

// handleDeleteTopic serves DELETE_TOPIC_IN_BROKER (215). As in RocketMQ, deleting a topic that
// does not exist succeeds (mqadmin deleteTopic then deletes it on the name servers), with a
// remark saying so.
func (n *Node) handleDeleteTopic(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	topic := req.Ext("topic")
	if err := validateTopicName("topic", topic); err != nil {
		return errorResponse(err)
	}
	return n.adminWrite(ctx, req, func(ctx context.Context) (string, error) {
		err := n.DeleteTopic(ctx, topic)
		if errors.Is(err, ErrTopicNotExist) || errors.Is(err, fsm.ErrTopicNotExist) {
			return fmt.Sprintf("topic %s does not exist on broker %s; nothing deleted", topic, n.cfg.BrokerName), nil
		}
		return "", err
	})
}

// handleGetAllTopicConfig serves GET_ALL_TOPIC_CONFIG (21): Java's TopicConfigSerializeWrapper.
func (n *Node) handleGetAllTopicConfig(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	topics := n.fsm.Topics()
	dv := n.topicDataVersion()
	w := namesrv.TopicConfigSerializeWrapper{
		DataVersion:      namesrv.DataVersion{Counter: dv.Counter, Timestamp: dv.Timestamp},
		TopicConfigTable: make(map[string]namesrv.TopicConfig, len(topics)),
	}
	for _, tc := range topics {
		w.TopicConfigTable[tc.TopicName] = namesrv.TopicConfig{
			TopicName: tc.TopicName, ReadQueueNums: tc.ReadQueueNums, WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm,
			TopicFilterType: orDefault(tc.TopicFilterType, "SINGLE_TAG"), TopicSysFlag: tc.TopicSysFlag, Order: tc.Order,
		}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = body
	return resp
}

// groupJSON is RocketMQ's SubscriptionGroupConfig as fastjson writes it (keys sorted).
type groupJSON struct {
	BrokerID                       int64  `json:"brokerId"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	GroupName                      string `json:"groupName"`
	NotifyConsumerIDsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
	RetryMaxTimes                  int32  `json:"retryMaxTimes"`
	RetryQueueNums                 int32  `json:"retryQueueNums"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
}

// DefaultGroupConfig is RocketMQ's SubscriptionGroupConfig defaults for group name.
func DefaultGroupConfig(name string) fsm.GroupConfig {
	return fsm.GroupConfig{
		GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: 16, BrokerID: 0, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIDsChangedEnable: true,
	}
}

func groupToJSON(g fsm.GroupConfig) groupJSON {
	return groupJSON{
		BrokerID: g.BrokerID, ConsumeBroadcastEnable: g.ConsumeBroadcastEnable, ConsumeEnable: g.ConsumeEnable,
		ConsumeFromMinEnable: g.ConsumeFromMinEnable, GroupName: g.GroupName,
		NotifyConsumerIDsChangedEnable: g.NotifyConsumerIDsChangedEnable, RetryMaxTimes: g.RetryMaxTimes,
		RetryQueueNums: g.RetryQueueNums, WhichBrokerWhenConsumeSlowly: g.WhichBrokerWhenConsumeSlowly,
	}
}

// ParseGroupConfig decodes a SubscriptionGroupConfig JSON body; fields it lacks take
// RocketMQ's defaults. The error names the bad field.
func ParseGroupConfig(body []byte) (fsm.GroupConfig, error) {
	if len(body) == 0 {
		return fsm.GroupConfig{}, fmt.Errorf("%w: body: a SubscriptionGroupConfig JSON object is required", ErrBadRequest)
	}
	j := groupToJSON(DefaultGroupConfig(""))
	if err := json.Unmarshal(body, &j); err != nil {
		return fsm.GroupConfig{}, fmt.Errorf("%w: body: SubscriptionGroupConfig JSON: %v", ErrBadRequest, err)
	}
	g := fsm.GroupConfig{
		GroupName: j.GroupName, ConsumeEnable: j.ConsumeEnable, ConsumeFromMinEnable: j.ConsumeFromMinEnable,
		ConsumeBroadcastEnable: j.ConsumeBroadcastEnable, RetryQueueNums: j.RetryQueueNums, RetryMaxTimes: j.RetryMaxTimes,
		BrokerID: j.BrokerID, WhichBrokerWhenConsumeSlowly: j.WhichBrokerWhenConsumeSlowly,
		NotifyConsumerIDsChangedEnable: j.NotifyConsumerIDsChangedEnable,
	}
	if g.GroupName == "" {
		return g, fmt.Errorf("%w: groupName is missing from the body", ErrBadRequest)
	}
	if err := message.ValidateTopic(g.GroupName); err != nil {
		return g, fmt.Errorf("%w: groupName: %v", ErrBadRequest, err)
	}
	switch {
	case g.RetryQueueNums < 0 || g.RetryQueueNums > MaxTopicQueueNums:
		return g, fmt.Errorf("%w: retryQueueNums=%d is out of range [0, %d]", ErrBadRequest, g.RetryQueueNums, MaxTopicQueueNums)
	case g.RetryMaxTimes < -1:
		return g, fmt.Errorf("%w: retryMaxTimes=%d is below -1", ErrBadRequest, g.RetryMaxTimes)
	case g.BrokerID < 0:
		return g, fmt.Errorf("%w: brokerId=%d is negative", ErrBadRequest, g.BrokerID)
	case g.WhichBrokerWhenConsumeSlowly < 0:
		return g, fmt.Errorf("%w: whichBrokerWhenConsumeSlowly=%d is negative", ErrBadRequest, g.WhichBrokerWhenConsumeSlowly)
	}
	return g, nil
}

// PutGroup creates or updates a subscription group through Raft. Leader only.
func (n *Node) PutGroup(ctx context.Context, g fsm.GroupConfig) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	if err := n.apply(ctx, fsm.CmdPutGroup, &fsm.PutGroupCommand{Group: g}); err != nil {
		return fmt.Errorf("node: put subscription group %s: %w", g.GroupName, err)
	}
	return nil
}

// DeleteGroup deletes a subscription group and its consumer offsets through Raft. Leader only.
// A group that does not exist returns an error wrapping ErrGroupNotExist.
func (n *Node) DeleteGroup(ctx context.Context, name string) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	if _, ok := n.fsm.Group(name); !ok {
		return fmt.Errorf("%w: group[%s] not exist", ErrGroupNotExist, name)
	}
	if err := n.apply(ctx, fsm.CmdDeleteGroup, &fsm.DeleteGroupCommand{Group: name}); err != nil {
		return fmt.Errorf("node: delete subscription group %s: %w", name, err)
	}
	return nil
}

// handleUpdateGroup serves UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): body =
// SubscriptionGroupConfig JSON.
func (n *Node) handleUpdateGroup(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	g, err := ParseGroupConfig(req.Body)
	if err != nil {
		return errorResponse(err)
	}
	return n.adminWrite(ctx, req, func(ctx context.Context) (string, error) {
		return "", n.PutGroup(ctx, g)
	})
}

// handleDeleteGroup serves DELETE_SUBSCRIPTIONGROUP (207): ext groupName. As in RocketMQ,
// deleting a group that does not exist succeeds, with a remark saying so.
func (n *Node) handleDeleteGroup(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	name := req.Ext("groupName")
	if name == "" {
		return errorResponse(fmt.Errorf("%w: groupName", transport.ErrMissingField))
	}
	if err := message.ValidateTopic(name); err != nil {
		return errorResponse(fmt.Errorf("%w: groupName: %v", ErrBadRequest, err))
	}
	return n.adminWrite(ctx, req, func(ctx context.Context) (string, error) {
		err := n.DeleteGroup(ctx, name)
		if errors.Is(err, ErrGroupNotExist) || errors.Is(err, fsm.ErrGroupNotExist) {
			return fmt.Sprintf("subscription group %s does not exist on broker %s; nothing deleted", name, n.cfg.BrokerName), nil
		}
		return "", err
	})
}

// handleGetAllGroups serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201):
// {"subscriptionGroupTable":{...},"dataVersion":{...}} (§3.5). The fsm versions topics only,
// so the dataVersion counter is the fsm's applied index: it grows whenever anything changed
// (possibly without a group change), never stays put across a group change.
func (n *Node) handleGetAllGroups(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	groups := n.fsm.Groups()
	table := make(map[string]groupJSON, len(groups))
	for _, g := range groups {
		table[g.GroupName] = groupToJSON(g)
	}
	body, err := json.Marshal(struct {
		SubscriptionGroupTable map[string]groupJSON `json:"subscriptionGroupTable"`
		DataVersion            namesrv.DataVersion  `json:"dataVersion"`
	}{table, namesrv.DataVersion{Counter: int64(n.fsm.AppliedIndex()), Timestamp: n.fsm.DataVersion().Timestamp}})
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = body
	return resp
}
