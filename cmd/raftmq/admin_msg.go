package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // deleteWhen is a local hour: TZ works in a FROM scratch image too

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

func adminUpdateSubGroup(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "consumer `group`")
	broker, cluster := a.targetFlags(leadersOf)
	consumeEnable := a.fs.Bool("s", true, "consume enable")
	fromMin := a.fs.Bool("m", false, "consume from min enable")
	broadcast := a.fs.Bool("d", true, "consume broadcast enable")
	retryQueues := a.fs.Int("q", 1, "retry queue `nums`")
	retryMax := a.fs.Int("r", 16, "retry max `times`")
	brokerID := a.fs.Int64("i", 0, "consume from broker `id`")
	slowID := a.fs.Int64("w", 1, "which broker `id` when consume slowly")
	notify := a.fs.Bool("a", true, "notify consumer ids changed")
	return a.run(ctx, args, []string{"g"}, func(ctx context.Context) error {
		addrs, err := a.targets(ctx, *broker, *cluster)
		if err != nil {
			return err
		}
		// A map, not node's SubscriptionGroupConfig: the flags' values go out as given (the
		// broker refuses those out of its int32 range).
		cfg := map[string]any{
			"groupName": *group, "consumeEnable": *consumeEnable, "consumeFromMinEnable": *fromMin,
			"consumeBroadcastEnable": *broadcast, "retryQueueNums": *retryQueues, "retryMaxTimes": *retryMax,
			"brokerId": *brokerID, "whichBrokerWhenConsumeSlowly": *slowID, "notifyConsumerIdsChangedEnable": *notify,
		}
		data, _ := json.Marshal(cfg)
		for _, addr := range addrs {
			if _, err := a.invoke(ctx, addr, transport.NewRequest(transport.UpdateAndCreateSubscriptionGroup, nil, data)); err != nil {
				return err
			}
			a.printf("create subscription group to %s success.\n", addr)
		}
		a.printf("SubscriptionGroupConfig [groupName=%s, consumeEnable=%v, consumeFromMinEnable=%v, consumeBroadcastEnable=%v, retryQueueNums=%d, retryMaxTimes=%d, brokerId=%d, whichBrokerWhenConsumeSlowly=%d, notifyConsumerIdsChangedEnable=%v]\n",
			*group, *consumeEnable, *fromMin, *broadcast, *retryQueues, *retryMax, *brokerID, *slowID, *notify)
		return nil
	})
}

func adminDeleteSubGroup(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "consumer `group`")
	broker, cluster := a.targetFlags(leadersOf)
	return a.run(ctx, args, []string{"g"}, func(ctx context.Context) error {
		addrs, err := a.targets(ctx, *broker, *cluster)
		if err != nil {
			return err
		}
		for _, addr := range addrs {
			if _, err := a.invoke(ctx, addr, transport.NewRequest(transport.DeleteSubscriptionGroup, map[string]string{"groupName": *group}, nil)); err != nil {
				return err
			}
			a.printf("delete subscription group [%s] from broker [%s] success.\n", *group, addr)
		}
		return nil
	})
}

func adminConsumerProgress(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "consumer `group`")
	topic := a.fs.String("t", "", "`topic` (default: every topic the group has offsets for)")
	return a.run(ctx, args, []string{"g"}, func(ctx context.Context) error {
		type row struct {
			q                      client.MessageQueue
			brokerOff, consumerOff int64
			last                   int64
		}
		var rows []row
		tps := 0.0
		if *topic != "" {
			qs, err := a.admin.ConsumerProgress(ctx, *group, *topic)
			if err != nil {
				return err
			}
			for _, q := range qs {
				rows = append(rows, row{q: q.Queue, brokerOff: q.BrokerOffset, consumerOff: max(q.ConsumerOffset, 0)})
			}
		} else {
			addrs, err := a.masterAddrs(ctx)
			if err != nil {
				return err
			}
			for _, addr := range addrs {
				resp, err := a.invoke(ctx, addr, transport.NewRequest(transport.GetConsumeStats, map[string]string{"consumerGroup": *group}, nil))
				if err != nil {
					return err
				}
				var st body.ConsumeStats
				if err := st.Decode(resp.Body); err != nil {
					return fmt.Errorf("consume stats from %s: %w", addr, err)
				}
				for q, o := range st.OffsetTable {
					rows = append(rows, row{q: q, brokerOff: o.BrokerOffset, consumerOff: o.ConsumerOffset, last: o.LastTimestamp})
				}
				tps += st.ConsumeTps
			}
		}
		slices.SortFunc(rows, func(x, y row) int { return x.q.Compare(y.q) })
		line := a.table("%-64s  %-32s  %-4d  %-20d  %-20d  %-20s %-20d  %s\n",
			"#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP", "#Diff", "#LastTime")
		var total int64
		for _, r := range rows {
			diff := max(r.brokerOff-r.consumerOff, 0)
			total += diff
			line(r.q.Topic, r.q.BrokerName, r.q.QueueID, r.brokerOff, r.consumerOff, "N/A", diff, fmtMillis(r.last))
		}
		a.printf("\nConsume TPS: %.2f\nConsume Diff Total: %d\n", tps, total)
		return nil
	})
}

// firstAnswer sends the request mk makes to each group leader in turn and decodes the first
// success's JSON body into v (what names the body in the error).
func (a *adminEnv) firstAnswer(ctx context.Context, what string, v any, mk func() *transport.Command) error {
	addrs, err := a.masterAddrs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range addrs {
		resp, err := a.invoke(ctx, addr, mk())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := json.Unmarshal(resp.Body, v); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	return errors.Join(errs...)
}

// sortConnections orders a connection list by client id.
func sortConnections(cs []body.Connection) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].ClientID < cs[j].ClientID })
}

func adminConsumerConnection(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "consumer `group`")
	return a.run(ctx, args, []string{"g"}, func(ctx context.Context) error {
		var cc body.ConsumerConnection
		if err := a.firstAnswer(ctx, "consumer connection list", &cc, func() *transport.Command {
			return transport.NewRequest(transport.GetConsumerConnectionList, map[string]string{"consumerGroup": *group}, nil)
		}); err != nil {
			return err
		}
		sortConnections(cc.ConnectionSet)
		a.printf("%-36s %-22s %-10s %s\n", "#ClientId", "#ClientAddr", "#Language", "#Version")
		for i, c := range cc.ConnectionSet {
			a.printf("%03d  %-32s %-22s %-8s %s\n", i+1, c.ClientID, c.ClientAddr, c.Language, versionName(c.Version))
		}
		a.printf("\nBelow is subscription:\n")
		for i, t := range slices.Sorted(maps.Keys(cc.SubscriptionTable)) {
			a.printf("%03d  Topic: %-40s SubExpression: %s\n", i+1, t, cc.SubscriptionTable[t].SubString)
		}
		a.printf("\nConsumeType: %s\nMessageModel: %s\nConsumeFromWhere: %s\n", cc.ConsumeType, cc.MessageModel, cc.ConsumeFromWhere)
		return nil
	})
}

func adminProducerConnection(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "producer `group`")
	a.fs.String("t", "", "`topic` (mqadmin requires it; the broker answers by group)")
	return a.run(ctx, args, []string{"g", "t"}, func(ctx context.Context) error {
		var pc body.ProducerConnection
		if err := a.firstAnswer(ctx, "producer connection list", &pc, func() *transport.Command {
			return transport.NewRequest(transport.GetProducerConnectionList, map[string]string{"producerGroup": *group}, nil)
		}); err != nil {
			return err
		}
		sortConnections(pc.ConnectionSet)
		for i, c := range pc.ConnectionSet {
			a.printf("%04d  %-32s %-22s %-8s %s\n", i+1, c.ClientID, c.ClientAddr, c.Language, versionName(c.Version))
		}
		return nil
	})
}

func (a *adminEnv) printMessage(m *client.MessageExt) {
	row := func(k string, v any) { a.printf("%-20s %v\n", k+":", v) }
	row("OffsetID", m.OffsetMsgID)
	row("Msg ID", m.MsgID)
	row("Topic", m.Topic)
	row("Tags", "["+m.Tags+"]")
	row("Keys", "["+strings.Join(m.Keys, " ")+"]")
	row("Queue ID", m.Queue.QueueID)
	row("Queue Offset", m.QueueOffset)
	row("CommitLog Offset", m.PhysicalOffset)
	row("Reconsume Times", m.ReconsumeTimes)
	row("Born Timestamp", m.BornTimestamp.Format("2006-01-02 15:04:05,000"))
	row("Store Timestamp", m.StoreTimestamp.Format("2006-01-02 15:04:05,000"))
	row("Born Host", m.BornHost)
	row("Store Host", m.StoreHost)
	row("System Flag", m.SysFlag)
	props := make([]string, 0, len(m.Properties))
	for k, v := range m.Properties {
		props = append(props, k+"="+v)
	}
	sort.Strings(props)
	row("Properties", "{"+strings.Join(props, ", ")+"}")
	row("Message Body", string(m.Body))
}

func adminQueryMsgByID(ctx context.Context, a *adminEnv, args []string) error {
	id := a.fs.String("i", "", "offset message `id` (as sendMessage prints it)")
	return a.run(ctx, args, []string{"i"}, func(ctx context.Context) error {
		var errs []error
		for _, one := range strings.Split(*id, ",") {
			m, err := a.admin.QueryMessageByID(ctx, strings.TrimSpace(one))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a.printMessage(m)
		}
		return errors.Join(errs...)
	})
}

func adminQueryMsgByKey(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "`topic`")
	key := a.fs.String("k", "", "message `key`")
	maxNum := a.fs.Int("c", 64, "at most `count` messages")
	begin := a.fs.Int64("b", 0, "begin `timestamp` (ms; 0 = the start)")
	end := a.fs.Int64("e", 0, "end `timestamp` (ms; 0 = now)")
	return a.run(ctx, args, []string{"t", "k"}, func(ctx context.Context) error {
		endT := time.Now().Add(time.Minute)
		if *end > 0 {
			endT = time.UnixMilli(*end)
		}
		msgs, err := a.admin.QueryMessageByKey(ctx, *topic, *key, *maxNum, time.UnixMilli(*begin), endT)
		if err != nil {
			return err
		}
		row := a.table("%-50s %4d %40d\n", "#Message ID", "#QID", "#Offset")
		for _, m := range msgs {
			row(m.OffsetMsgID, m.Queue.QueueID, m.QueueOffset)
		}
		return nil
	})
}

// pullAt reads up to n messages of a queue from offset (no committed offsets are touched).
func (a *adminEnv) pullAt(ctx context.Context, group string, mq client.MessageQueue, offset int64) ([]*client.MessageExt, error) {
	cfg := client.DefaultPullConsumerConfig()
	a.clientConfig(&cfg.ClientConfig)
	cfg.Group = group
	cfg.PollTimeout = time.Second
	pc, err := client.NewPullConsumer(cfg)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	if err := pc.Assign("*", mq); err != nil {
		return nil, err
	}
	if err := pc.Seek(mq, offset); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msgs, err := pc.Poll(pctx)
	if err != nil && pctx.Err() == nil {
		return nil, err
	}
	return msgs, nil
}

func adminQueryMsgByOffset(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "`topic`")
	broker := a.fs.String("b", "", "broker `name`")
	qid := a.fs.Int("i", -1, "queue `id`")
	offset := a.fs.Int64("o", -1, "queue `offset`")
	if err := a.parse(args, "t", "b"); err != nil {
		return err
	}
	if *qid < 0 || *offset < 0 {
		return fmt.Errorf("%w: queryMsgByOffset: missing required flag -i (queue id) or -o (offset)", errUsage)
	}
	return a.connected(ctx, func(ctx context.Context) error {
		msgs, err := a.pullAt(ctx, "TOOLS_CONSUMER", client.MessageQueue{Topic: *topic, BrokerName: *broker, QueueID: *qid}, *offset)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.QueueOffset == *offset {
				a.printMessage(m)
				return nil
			}
		}
		return fmt.Errorf("no message at %s/%s/%d offset %d", *topic, *broker, *qid, *offset)
	})
}

func adminConsumeMessage(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "`topic`")
	group := a.fs.String("g", "TOOLS_CONSUMER", "consumer `group` (its offsets are not changed)")
	count := a.fs.Int("c", 128, "at most `count` messages")
	return a.run(ctx, args, []string{"t"}, func(ctx context.Context) error {
		rt, err := a.admin.Route(ctx, *topic)
		if err != nil {
			return err
		}
		var queues []client.MessageQueue
		for _, qd := range rt.QueueDatas {
			if qd.Perm&namesrv.PermRead == 0 {
				continue
			}
			for q := range int(qd.ReadQueueNums) {
				queues = append(queues, client.MessageQueue{Topic: *topic, BrokerName: qd.BrokerName, QueueID: q})
			}
		}
		slices.SortFunc(queues, client.MessageQueue.Compare)
		n := 0
		for _, mq := range queues {
			off := int64(0)
			for n < *count {
				msgs, err := a.pullAt(ctx, *group, mq, off)
				if err != nil {
					return fmt.Errorf("pull %s: %w", mq, err)
				}
				if len(msgs) == 0 {
					break
				}
				for _, m := range msgs {
					if n >= *count {
						break
					}
					a.printf("MSGID: %s OFFSETID: %s QUEUE: %s:%d OFFSET: %d KEYS: [%s] TAGS: [%s] BODY: %s\n",
						m.MsgID, m.OffsetMsgID, m.Queue.BrokerName, m.Queue.QueueID, m.QueueOffset, strings.Join(m.Keys, " "), m.Tags, m.Body)
					n++
					off = m.QueueOffset + 1
				}
			}
		}
		a.printf("Consumed %d message(s)\n", n)
		return nil
	})
}

// parseAdminTime accepts "now", milliseconds since the epoch, or mqadmin's
// yyyy-MM-dd#HH:mm:ss:SSS (local time).
func parseAdminTime(s string) (time.Time, error) {
	if s == "now" {
		return time.Now(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	bad := fmt.Errorf("%w: -s %q: want now, milliseconds or yyyy-MM-dd#HH:mm:ss:SSS", errUsage, s)
	i := strings.LastIndexByte(s, ':')
	if i < 0 || len(s)-i != 4 {
		return time.Time{}, bad
	}
	ms, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return time.Time{}, bad
	}
	t, err := time.ParseInLocation("2006-01-02#15:04:05", s[:i], time.Local)
	if err != nil {
		return time.Time{}, bad
	}
	return t.Add(time.Duration(ms) * time.Millisecond), nil
}

func adminResetOffsetByTime(ctx context.Context, a *adminEnv, args []string) error {
	group := a.fs.String("g", "", "consumer `group`")
	topic := a.fs.String("t", "", "`topic`")
	ts := a.fs.String("s", "", "`timestamp`: now, milliseconds or yyyy-MM-dd#HH:mm:ss:SSS")
	force := a.fs.Bool("f", true, "force (also move offsets forward)")
	if err := a.parse(args, "g", "t", "s"); err != nil {
		return err
	}
	at, err := parseAdminTime(*ts)
	if err != nil {
		return err
	}
	return a.connected(ctx, func(ctx context.Context) error {
		offs, err := a.admin.ResetOffsetByTime(ctx, *group, *topic, at)
		if err != nil {
			return err
		}
		a.printf("rollback consumer offset by specified group[%s], topic[%s], force[%v], timestamp(string)[%s], timestamp(long)[%d]\n",
			*group, *topic, *force, *ts, at.UnixMilli())
		row := a.table("%-40s  %-40d  %-40d\n", "#brokerName", "#queueId", "#offset")
		for _, q := range body.SortedQueues(offs) {
			row(q.BrokerName, q.QueueID, offs[q])
		}
		return nil
	})
}

func adminSendMessage(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "`topic`")
	text := a.fs.String("p", "", "message `body`")
	keys := a.fs.String("k", "", "message `keys` (space-separated)")
	tags := a.fs.String("c", "", "message `tags`")
	group := a.fs.String("g", "DEFAULT_PRODUCER", "producer `group`")
	return a.run(ctx, args, []string{"t", "p"}, func(ctx context.Context) error {
		cfg := client.DefaultProducerConfig()
		a.clientConfig(&cfg.ClientConfig)
		cfg.Group = *group
		p, err := client.NewProducer(cfg)
		if err != nil {
			return err
		}
		defer p.Close()
		msg := &client.Message{Topic: *topic, Body: []byte(*text), Tags: *tags, Keys: strings.Fields(*keys)}
		res, err := p.Send(ctx, msg)
		if err != nil {
			return err
		}
		row := a.table("%-32s  %-4d  %-20s  %-34s  %s\n", "#Broker Name", "#QID", "#Send Result", "#MsgId", "#OffsetMsgId")
		row(res.Queue.BrokerName, res.Queue.QueueID, res.Status, res.MsgID, res.OffsetMsgID)
		return nil
	})
}

// groupStatusOf asks the nodes of broker group name (from the name servers) or the node at
// addr for the Raft group's status; it returns the status and the leader's broker address.
func (a *adminEnv) groupStatusOf(ctx context.Context, name, addr string) (node.GroupStatus, string, error) {
	var addrs []string
	if addr != "" {
		addrs = []string{addr}
	} else {
		ci, err := a.admin.ClusterInfo(ctx)
		if err != nil {
			return node.GroupStatus{}, "", err
		}
		bd, ok := ci.BrokerAddrTable[name]
		if !ok {
			return node.GroupStatus{}, "", fmt.Errorf("broker group %q is not registered with the name servers", name)
		}
		for _, id := range slices.Sorted(maps.Keys(bd.BrokerAddrs)) {
			addrs = append(addrs, bd.BrokerAddrs[id])
		}
	}
	var errs []error
	for _, ad := range addrs {
		resp, err := a.invoke(ctx, ad, transport.NewRequest(node.CodeGroupStatus, nil, nil))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st node.GroupStatus
		if err := json.Unmarshal(resp.Body, &st); err != nil {
			return st, "", fmt.Errorf("group status from %s: %w", ad, err)
		}
		leaderAddr := ""
		for _, m := range st.Members {
			if m.ServerID == st.Leader {
				leaderAddr = m.BrokerAddr
			}
		}
		return st, leaderAddr, nil
	}
	return node.GroupStatus{}, "", errors.Join(errs...)
}

func adminGroupStatus(ctx context.Context, a *adminEnv, args []string) error {
	name := a.fs.String("b", "", "broker group `name`")
	addr := a.fs.String("a", "", "ask this node `addr` (no name server needed)")
	if err := a.parse(args); err != nil {
		return err
	}
	if *name == "" && *addr == "" {
		return fmt.Errorf("%w: groupStatus: one of -b (broker name) or -a (node address) is required", errUsage)
	}
	a.direct = *addr != ""
	return a.connected(ctx, func(ctx context.Context) error {
		st, leaderAddr, err := a.groupStatusOf(ctx, *name, *addr)
		if err != nil {
			return err
		}
		a.printf("Asked: %s (%s)  Leader: %s (%s)  Term: %d\n", st.Self, st.State, orNone(st.Leader), orNone(leaderAddr), st.Term)
		a.printf("LastIndex: %d  CommitIndex: %d  AppliedIndex: %d  FSMApplied: %d  Lag: %d\n\n", st.LastIndex, st.CommitIndex, st.AppliedIndex, st.FSMApplied, st.Lag)
		row := a.table("%-12s  %-22s  %-22s  %-6v  %s\n", "#Server ID", "#Raft Addr", "#Broker Addr", "#Voter", "#Role")
		for _, m := range st.Members {
			role := "follower"
			if m.Leader || m.ServerID == st.Leader {
				role = "leader"
			} else if !m.Voter {
				role = "learner"
			}
			row(m.ServerID, m.RaftAddr, orNone(m.BrokerAddr), m.Voter, role)
		}
		return nil
	})
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// raftLeaderCall sends a leader-only Raft admin request to broker group name's leader.
func (a *adminEnv) raftLeaderCall(ctx context.Context, name string, req *transport.Command) (string, error) {
	_, leaderAddr, err := a.groupStatusOf(ctx, name, "")
	if err != nil {
		return "", err
	}
	if leaderAddr == "" {
		return "", fmt.Errorf("broker group %s has no Raft leader now; retry", name)
	}
	_, err = a.invoke(ctx, leaderAddr, req)
	return leaderAddr, err
}

func adminTransferLeader(ctx context.Context, a *adminEnv, args []string) error {
	name := a.fs.String("b", "", "broker group `name`")
	to := a.fs.String("i", "", "target server `id` (e.g. n1; empty = Raft picks)")
	return a.run(ctx, args, []string{"b"}, func(ctx context.Context) error {
		from, err := a.raftLeaderCall(ctx, *name, transport.NewRequest(node.CodeTransferLeader, map[string]string{"to": *to}, nil))
		if err != nil {
			return err
		}
		a.printf("transfer leadership of %s from %s to %s success.\n", *name, from, orNone(*to))
		return nil
	})
}

func adminAddMember(ctx context.Context, a *adminEnv, args []string) error {
	name := a.fs.String("b", "", "broker group `name`")
	id := a.fs.String("i", "", "new member's server `id`")
	raftAddr := a.fs.String("r", "", "new member's Raft `addr` (host:haListenPort)")
	nonVoter := a.fs.Bool("nonvoter", false, "add as a non-voting member (promote it later)")
	return a.run(ctx, args, []string{"b", "i", "r"}, func(ctx context.Context) error {
		if _, err := a.raftLeaderCall(ctx, *name, transport.NewRequest(node.CodeAddMember, map[string]string{
			"id": *id, "raftAddr": *raftAddr, "voter": strconv.FormatBool(!*nonVoter)}, nil)); err != nil {
			return err
		}
		a.printf("add member %s (%s, voter=%v) to %s success.\n", *id, *raftAddr, !*nonVoter, *name)
		return nil
	})
}

func adminRemoveMember(ctx context.Context, a *adminEnv, args []string) error {
	return adminMemberCall(ctx, a, args, node.CodeRemoveMember, "member's server `id`", "remove member %s from %s success.\n")
}

func adminPromote(ctx context.Context, a *adminEnv, args []string) error {
	return adminMemberCall(ctx, a, args, node.CodePromote, "non-voting member's server `id`", "promote member %s of %s to voter success.\n")
}

// adminMemberCall runs a Raft membership command that names one member (-i) of a group (-b)
// on the group's leader and prints done with the id and the group.
func adminMemberCall(ctx context.Context, a *adminEnv, args []string, code transport.RequestCode, idHelp, done string) error {
	name := a.fs.String("b", "", "broker group `name`")
	id := a.fs.String("i", "", idHelp)
	return a.run(ctx, args, []string{"b", "i"}, func(ctx context.Context) error {
		if _, err := a.raftLeaderCall(ctx, *name, transport.NewRequest(code, map[string]string{"id": *id}, nil)); err != nil {
			return err
		}
		a.printf(done, *id, *name)
		return nil
	})
}

// versionName renders a client's RocketMQ version number. mqadmin prints MQVersion's name
// for it; raftmq does not carry that table, so it prints the number itself.
func versionName(v int) string { return strconv.Itoa(v) }
