package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

// adminCommand is one `raftmq admin` subcommand, named and flagged as mqadmin's.
type adminCommand struct {
	name    string
	summary string
	run     func(ctx context.Context, a *adminEnv, args []string) error
}

func adminCommands() []adminCommand {
	return []adminCommand{
		{"updateTopic", "create or update a topic (-t, -c cluster or -b broker addr, -r, -w, -p, -o)", adminUpdateTopic},
		{"deleteTopic", "delete a topic from the brokers and name servers (-t, -c)", adminDeleteTopic},
		{"topicList", "list every topic", adminTopicList},
		{"topicRoute", "print a topic's route (-t)", adminTopicRoute},
		{"topicStatus", "min/max offset of each queue of a topic (-t)", adminTopicStatus},
		{"clusterList", "list the broker groups of each cluster (leader = BID 0)", adminClusterList},
		{"brokerStatus", "a broker node's runtime figures (-b addr or -c cluster)", adminBrokerStatus},
		{"updateSubGroup", "create or update a subscription group (-g, -b or -c)", adminUpdateSubGroup},
		{"deleteSubGroup", "delete a subscription group (-g, -b or -c)", adminDeleteSubGroup},
		{"consumerProgress", "a consumer group's offsets and lag (-g, -t)", adminConsumerProgress},
		{"consumerConnection", "a consumer group's connected clients (-g)", adminConsumerConnection},
		{"producerConnection", "a producer group's connected clients (-g, -t)", adminProducerConnection},
		{"queryMsgById", "show a message by its offset message id (-i)", adminQueryMsgByID},
		{"queryMsgByKey", "find messages by key (-t, -k)", adminQueryMsgByKey},
		{"queryMsgByOffset", "show the message at a queue offset (-t, -b broker name, -i queue, -o offset)", adminQueryMsgByOffset},
		{"consumeMessage", "print messages of a topic from the start of its queues (-t, -c count)", adminConsumeMessage},
		{"resetOffsetByTime", "move a group's offsets to a time (-g, -t, -s)", adminResetOffsetByTime},
		{"getBrokerConfig", "print a broker node's config (-b addr or -c cluster)", adminGetBrokerConfig},
		{"updateBrokerConfig", "change a broker config key (-b addr or -c cluster, -k, -v)", adminUpdateBrokerConfig},
		{"sendMessage", "send one message (-t, -p body, -k keys, -c tags)", adminSendMessage},
		{"groupStatus", "a Raft group's members, leader, term and indexes (-b broker name or -a node addr)", adminGroupStatus},
		{"transferLeader", "hand a Raft group's leadership to a member (-b broker name, -i server id)", adminTransferLeader},
		{"addMember", "add a node to a Raft group (-b broker name, -i server id, -r raft addr, -nonvoter)", adminAddMember},
		{"removeMember", "remove a node from a Raft group (-b broker name, -i server id)", adminRemoveMember},
		{"promote", "turn a non-voting member into a voter (-b broker name, -i server id)", adminPromote},
	}
}

// runAdmin is `raftmq admin <command> [flags]` (mqadmin).
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		adminUsage(stderr)
		if len(args) == 0 {
			return fmt.Errorf("%w: a command is required", errUsage)
		}
		return flag.ErrHelp
	}
	for _, c := range adminCommands() {
		if c.name == args[0] {
			a := newAdminEnv(c.name, stdout, stderr)
			defer a.close()
			return c.run(ctx, a, args[1:])
		}
	}
	adminUsage(stderr)
	return fmt.Errorf("%w: unknown admin command %q", errUsage, args[0])
}

func adminUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: raftmq admin <command> [-n namesrv] [flags]   (raftmq admin <command> -h for its flags)\n\ncommands:\n")
	for _, c := range adminCommands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n-n defaults to $NAMESRV_ADDR (\"ip:port;ip:port\").\n")
}

// adminEnv holds one admin command's flags and clients. A command declares its own flags on
// fs, then runs its logic through run, connected, onTargets or (parse + connected).
type adminEnv struct {
	name           string
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	namesrv        *string
	timeout        *time.Duration
	direct         bool // the command talks to given broker addresses only: -n is optional
	admin          *client.Admin
	tc             *transport.Client
}

// newAdminEnv returns command name's environment, its flag set holding the flags every
// command has (-n, -timeout).
func newAdminEnv(name string, stdout, stderr io.Writer) *adminEnv {
	a := &adminEnv{name: name, stdout: stdout, stderr: stderr, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	a.fs.SetOutput(stderr)
	a.namesrv = a.fs.String("n", os.Getenv("NAMESRV_ADDR"), "name server `addresses` \"ip:port;ip:port\" (default $NAMESRV_ADDR)")
	a.timeout = a.fs.Duration("timeout", 10*time.Second, "bound on the whole command")
	return a
}

// leadersOf is the usage of the -c flag of the commands acting on broker nodes (targetFlags).
const leadersOf = "every group leader of this `cluster`"

// targetFlags declares -b (one broker node's address) and -c (with usage clusterUsage).
func (a *adminEnv) targetFlags(clusterUsage string) (brokerAddr, cluster *string) {
	return a.fs.String("b", "", "broker `addr`"), a.fs.String("c", "", clusterUsage)
}

// parse parses args and checks that every flag in required was given a non-empty value.
func (a *adminEnv) parse(args []string, required ...string) error {
	if err := a.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if a.fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, a.name, a.fs.Arg(0))
	}
	for _, r := range required {
		if f := a.fs.Lookup(r); f == nil || f.Value.String() == "" {
			usage := ""
			if f != nil {
				usage = " (" + f.Usage + ")"
			}
			return fmt.Errorf("%w: %s: missing required flag -%s%s", errUsage, a.name, r, usage)
		}
	}
	return nil
}

// run is most commands: parse args (see parse), then run f connected (see connected).
func (a *adminEnv) run(ctx context.Context, args []string, required []string, f func(ctx context.Context) error) error {
	if err := a.parse(args, required...); err != nil {
		return err
	}
	return a.connected(ctx, f)
}

func (a *adminEnv) nameServers() []string {
	var out []string
	for _, s := range strings.FieldsFunc(*a.namesrv, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		out = append(out, s)
	}
	return out
}

// connected creates the clients and runs f with a context bounded by -timeout. The name
// servers are required unless the command is direct.
func (a *adminEnv) connected(ctx context.Context, f func(ctx context.Context) error) error {
	ns := a.nameServers()
	if len(ns) == 0 && !a.direct {
		return fmt.Errorf("%w: %s: missing required flag -n (name server addresses) and NAMESRV_ADDR is not set", errUsage, a.name)
	}
	tc, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		return fmt.Errorf("transport client: %w", err)
	}
	a.tc = tc
	if len(ns) > 0 {
		cfg := client.DefaultClientConfig()
		cfg.NameServers = ns
		cfg.InstanceName = fmt.Sprintf("admin-%d", os.Getpid())
		adm, err := client.NewAdmin(cfg)
		if err != nil {
			return fmt.Errorf("admin client: %w", err)
		}
		a.admin = adm
	}
	ctx, cancel := context.WithTimeout(ctx, *a.timeout)
	defer cancel()
	return f(ctx)
}

// clientConfig sets what the admin tool's own producers and consumers need in cfg: the name
// servers and an instance name of their own.
func (a *adminEnv) clientConfig(cfg *client.ClientConfig) {
	cfg.NameServers = a.nameServers()
	cfg.InstanceName = fmt.Sprintf("admin-%d", time.Now().UnixNano())
}

func (a *adminEnv) close() {
	if a.admin != nil {
		a.admin.Close()
	}
	if a.tc != nil {
		a.tc.Close()
	}
}

func (a *adminEnv) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// table prints the header of a table whose rows are printed with format row, and returns the
// row printer. The header cells take the rows' widths: row's %d and %v verbs print them as %s.
func (a *adminEnv) table(row string, header ...any) func(cells ...any) {
	a.printf(headerVerbs.ReplaceAllString(row, "${1}s"), header...)
	return func(cells ...any) { a.printf(row, cells...) }
}

var headerVerbs = regexp.MustCompile(`(%[-0-9]*)[dv]`)

// invoke sends req to addr and returns the reply when it is SUCCESS.
func (a *adminEnv) invoke(ctx context.Context, addr string, req *transport.Command) (*transport.Command, error) {
	name := transport.RequestCode(req.Code).String()
	resp, err := a.tc.Invoke(ctx, addr, req)
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", name, addr, err)
	}
	if resp.ResponseCode() != transport.Success {
		return nil, fmt.Errorf("%s to %s: %v: %s", name, addr, resp.ResponseCode(), resp.Remark)
	}
	return resp, nil
}

// needTarget is the usage error of a command given neither -b nor -c.
func (a *adminEnv) needTarget() error {
	return fmt.Errorf("%w: %s: one of -b (broker address) or -c (cluster name) is required", errUsage, a.name)
}

// targets resolves -b (one broker node address) or -c (the leader, BID 0, of every group of
// the cluster) into addresses.
func (a *adminEnv) targets(ctx context.Context, brokerAddr, cluster string) ([]string, error) {
	if brokerAddr != "" {
		return []string{brokerAddr}, nil
	}
	if cluster == "" {
		return nil, a.needTarget()
	}
	ci, err := a.admin.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range ci.ClusterAddrTable[cluster] {
		if addr := ci.BrokerAddrTable[name].BrokerAddrs[namesrv.MasterID]; addr != "" {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %q has no broker group with a leader", cluster)
	}
	return out, nil
}

// onTargets runs f, connected, on the addresses -b (one node: no name server needed) or -c
// (every group leader of a cluster) name; one of them is required.
func (a *adminEnv) onTargets(ctx context.Context, brokerAddr, cluster string, f func(ctx context.Context, addrs []string) error) error {
	if brokerAddr == "" && cluster == "" {
		return a.needTarget()
	}
	a.direct = brokerAddr != ""
	return a.connected(ctx, func(ctx context.Context) error {
		addrs, err := a.targets(ctx, brokerAddr, cluster)
		if err != nil {
			return err
		}
		return f(ctx, addrs)
	})
}

// masterAddrs returns every group's leader address (BID 0), sorted by broker name.
func (a *adminEnv) masterAddrs(ctx context.Context) ([]string, error) {
	ci, err := a.admin.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(ci.BrokerAddrTable)) {
		if addr := ci.BrokerAddrTable[n].BrokerAddrs[namesrv.MasterID]; addr != "" {
			out = append(out, addr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no broker group with a leader is registered")
	}
	return out, nil
}

func adminUpdateTopic(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "topic `name`")
	cluster := a.fs.String("c", "", "create on every group of this `cluster`")
	broker := a.fs.String("b", "", "create on this broker `addr` only")
	r := a.fs.Int("r", 8, "read queue `nums`")
	w := a.fs.Int("w", 8, "write queue `nums`")
	perm := a.fs.Int("p", 6, "`perm` (2 write, 4 read, 6 both)")
	order := a.fs.Bool("o", false, "ordered topic")
	if err := a.parse(args, "t"); err != nil {
		return err
	}
	if *broker == "" && *cluster == "" {
		return a.needTarget()
	}
	return a.connected(ctx, func(ctx context.Context) error {
		tcfg := fmt.Sprintf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=%v]",
			*topic, *r, *w, permString(*perm), *order)
		if *broker != "" {
			_, err := a.invoke(ctx, *broker, transport.NewRequest(transport.UpdateAndCreateTopic, map[string]string{
				"topic": *topic, "defaultTopic": "TBW102", "readQueueNums": strconv.Itoa(*r), "writeQueueNums": strconv.Itoa(*w),
				"perm": strconv.Itoa(*perm), "topicFilterType": namesrv.FilterSingleTag, "topicSysFlag": "0", "order": strconv.FormatBool(*order),
			}, nil))
			if err != nil {
				return err
			}
			a.printf("create topic to %s success.\n%s\n", *broker, tcfg)
			return nil
		}
		if err := a.admin.CreateTopic(ctx, client.TopicConfig{Topic: *topic, ReadQueues: *r, WriteQueues: *w, Perm: *perm, Order: *order, Cluster: *cluster}); err != nil {
			return err
		}
		addrs, _ := a.targets(ctx, "", *cluster)
		for _, addr := range addrs {
			a.printf("create topic to %s success.\n", addr)
		}
		a.printf("%s\n", tcfg)
		return nil
	})
}

func permString(p int) string {
	s := []byte("---")
	if p&namesrv.PermRead != 0 {
		s[0] = 'R'
	}
	if p&namesrv.PermWrite != 0 {
		s[1] = 'W'
	}
	if p&1 != 0 {
		s[2] = 'X'
	}
	return string(s)
}

func adminDeleteTopic(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "topic `name`")
	cluster := a.fs.String("c", "", "`cluster` name (informational: the topic goes from every group)")
	return a.run(ctx, args, []string{"t"}, func(ctx context.Context) error {
		if err := a.admin.DeleteTopic(ctx, *topic); err != nil {
			return err
		}
		a.printf("delete topic [%s] from cluster [%s] success.\n", *topic, *cluster)
		a.printf("delete topic [%s] from NameServer success.\n", *topic)
		return nil
	})
}

func adminTopicList(ctx context.Context, a *adminEnv, args []string) error {
	return a.run(ctx, args, nil, func(ctx context.Context) error {
		topics, err := a.admin.ListTopics(ctx)
		if err != nil {
			return err
		}
		for _, t := range topics {
			a.printf("%s\n", t)
		}
		return nil
	})
}

func adminTopicRoute(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "topic `name`")
	return a.run(ctx, args, []string{"t"}, func(ctx context.Context) error {
		rt, err := a.admin.Route(ctx, *topic)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(rt)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		out, _ := json.MarshalIndent(v, "", "\t")
		a.printf("%s\n", out)
		return nil
	})
}

func fmtMillis(ms int64) string {
	if ms <= 0 {
		return "N/A"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05,000")
}

func adminTopicStatus(ctx context.Context, a *adminEnv, args []string) error {
	topic := a.fs.String("t", "", "topic `name`")
	return a.run(ctx, args, []string{"t"}, func(ctx context.Context) error {
		rt, err := a.admin.Route(ctx, *topic)
		if err != nil {
			return err
		}
		var tables []body.TopicStatsTable // of each group's leader, in route order
		for _, bd := range rt.BrokerDatas {
			addr := bd.BrokerAddrs[namesrv.MasterID]
			if addr == "" {
				continue
			}
			resp, err := a.invoke(ctx, addr, transport.NewRequest(transport.GetTopicStatsInfo, map[string]string{"topic": *topic}, nil))
			if err != nil {
				return err
			}
			var t body.TopicStatsTable
			if err := t.Decode(resp.Body); err != nil {
				return fmt.Errorf("topic stats from %s: %w", addr, err)
			}
			tables = append(tables, t)
		}
		row := a.table("%-32s  %-4d  %-20d  %-20d    %s\n", "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated")
		for _, t := range tables {
			for _, q := range body.SortedQueues(t.OffsetTable) {
				o := t.OffsetTable[q]
				row(q.BrokerName, q.QueueID, o.MinOffset, o.MaxOffset, fmtMillis(o.LastUpdateTimestamp))
			}
		}
		return nil
	})
}

// runtimeInfo asks a broker node for GET_BROKER_RUNTIME_INFO.
func (a *adminEnv) runtimeInfo(ctx context.Context, addr string) (map[string]string, error) {
	resp, err := a.invoke(ctx, addr, transport.NewRequest(transport.GetBrokerRuntimeInfo, nil, nil))
	if err != nil {
		return nil, err
	}
	var kv namesrv.KVTable
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("runtime info from %s: %w", addr, err)
	}
	return kv.Table, nil
}

func adminClusterList(ctx context.Context, a *adminEnv, args []string) error {
	only := a.fs.String("c", "", "only this `cluster`")
	return a.run(ctx, args, nil, func(ctx context.Context) error {
		ci, err := a.admin.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		row := a.table("%-16s  %-22s  %-4s  %-22s %-16s %19s %19s %10s %5s %6s\n",
			"#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)", "#PCWait(ms)", "#Hour", "#SPACE")
		for _, cl := range slices.Sorted(maps.Keys(ci.ClusterAddrTable)) {
			if *only != "" && cl != *only {
				continue
			}
			for _, bn := range slices.Sorted(slices.Values(ci.ClusterAddrTable[cl])) {
				bd := ci.BrokerAddrTable[bn]
				for _, id := range slices.Sorted(maps.Keys(bd.BrokerAddrs)) {
					addr := bd.BrokerAddrs[id]
					version, in, out, pcwait, hour, space := "", 0.0, 0.0, "0", 0.0, 0.0
					sendQ, pullQ := "0", "0"
					if t, err := a.runtimeInfo(ctx, addr); err == nil {
						version = t["brokerVersionDesc"]
						in = firstFloat(t["putTps"])
						out = firstFloat(t["getTransferedTps"])
						if v := t["pageCacheLockTimeMills"]; v != "" {
							pcwait = v
						}
						if v := t["sendThreadPoolQueueSize"]; v != "" {
							sendQ = v
						}
						if v := t["pullThreadPoolQueueSize"]; v != "" {
							pullQ = v
						}
						if ts, err := strconv.ParseInt(t["earliestMessageTimeStamp"], 10, 64); err == nil && ts > 0 {
							hour = time.Since(time.UnixMilli(ts)).Hours()
						}
						space, _ = strconv.ParseFloat(t["commitLogDiskRatio"], 64)
					} else {
						version = "(unreachable)"
					}
					row(cl, bn, strconv.FormatInt(id, 10), addr, version,
						fmt.Sprintf("%9.2f(%s,0ms)", in, sendQ), fmt.Sprintf("%9.2f(%s,0ms)", out, pullQ),
						pcwait, fmt.Sprintf("%2.2f", hour), fmt.Sprintf("%.4f", space))
				}
			}
		}
		return nil
	})
}

func firstFloat(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func adminBrokerStatus(ctx context.Context, a *adminEnv, args []string) error {
	broker, cluster := a.targetFlags(leadersOf)
	if err := a.parse(args); err != nil {
		return err
	}
	return a.onTargets(ctx, *broker, *cluster, func(ctx context.Context, addrs []string) error {
		for _, addr := range addrs {
			t, err := a.runtimeInfo(ctx, addr)
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(t)) {
				if len(addrs) > 1 {
					a.printf("%-24s %-32s: %s\n", addr, k, t[k])
				} else {
					a.printf("%-32s: %s\n", k, t[k])
				}
			}
		}
		return nil
	})
}

func adminGetBrokerConfig(ctx context.Context, a *adminEnv, args []string) error {
	broker, cluster := a.targetFlags(leadersOf)
	if err := a.parse(args); err != nil {
		return err
	}
	return a.onTargets(ctx, *broker, *cluster, func(ctx context.Context, addrs []string) error {
		for _, addr := range addrs {
			resp, err := a.invoke(ctx, addr, transport.NewRequest(transport.GetBrokerConfig, nil, nil))
			if err != nil {
				return err
			}
			a.printf("============%s============\n", addr)
			var lines []string
			for _, l := range strings.Split(string(resp.Body), "\n") {
				l = strings.TrimSpace(l)
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				lines = append(lines, l)
			}
			sort.Strings(lines)
			for _, l := range lines {
				k, v, _ := strings.Cut(l, "=")
				a.printf("%-50s=  %s\n", strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		return nil
	})
}

func adminUpdateBrokerConfig(ctx context.Context, a *adminEnv, args []string) error {
	broker, cluster := a.targetFlags(leadersOf + " (broker config is per node: prefer -b per node)")
	key := a.fs.String("k", "", "config `key`")
	value := a.fs.String("v", "", "config `value`")
	if err := a.parse(args, "k", "v"); err != nil {
		return err
	}
	return a.onTargets(ctx, *broker, *cluster, func(ctx context.Context, addrs []string) error {
		for _, addr := range addrs {
			if _, err := a.invoke(ctx, addr, transport.NewRequest(transport.UpdateBrokerConfig, nil, []byte(*key+"="+*value+"\n"))); err != nil {
				return err
			}
			a.printf("update broker config success, %s\n", addr)
		}
		return nil
	})
}
