package node_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

func rcode(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }

// wantErr checks a reply's code and that its remark mentions every word.
func wantErr(t testing.TB, what string, r *transport.Command, code transport.ResponseCode, words ...string) {
	t.Helper()
	if rcode(r) != code {
		t.Errorf("%s: %s %q, want %s", what, rcode(r), r.Remark, code)
		return
	}
	for _, w := range words {
		if !strings.Contains(r.Remark, w) {
			t.Errorf("%s: remark %q does not mention %q", what, r.Remark, w)
		}
	}
}

func topicReq(ext map[string]string) *transport.Command {
	base := map[string]string{"topic": "AdminT", "defaultTopic": "TBW102", "readQueueNums": "8", "writeQueueNums": "8",
		"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
	for k, v := range ext {
		if v == "<none>" {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return transport.NewRequest(transport.UpdateAndCreateTopic, base, nil)
}

func nsRoute(c *testcluster.Cluster, topic string) (namesrv.QueueData, bool) {
	rd, ok := c.NS.Table().Route(topic)
	if !ok || len(rd.QueueDatas) == 0 {
		return namesrv.QueueData{}, false
	}
	return rd.QueueDatas[0], true
}

func allTopicConfig(t testing.TB, cl *transport.Client, addr string) namesrv.TopicConfigSerializeWrapper {
	t.Helper()
	r := invoke(t, cl, addr, transport.NewRequest(transport.GetAllTopicConfig, nil, nil))
	mustSucceed(t, r, nil)
	var w namesrv.TopicConfigSerializeWrapper
	if err := json.Unmarshal(r.Body, &w); err != nil {
		t.Fatalf("GET_ALL_TOPIC_CONFIG body %s: %v", r.Body, err)
	}
	return w
}

// One 3-node cluster for every admin handler: each subtest goes through the transport.
func TestAdminAPI(t *testing.T) {
	// No auto-creation: a send to a deleted topic must not bring it back.
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) { cfg.AutoCreateTopicEnable = false }))
	l := c.Leader(t)
	cl := c.Client()
	f := c.Followers()[0]

	t.Run("Topics", func(t *testing.T) {
		mustSucceed(t, invoke(t, cl, l.Addr(), topicReq(map[string]string{"readQueueNums": "6", "writeQueueNums": "5"})), nil)
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				tc, ok := nd.FSM().Topic("AdminT")
				if !ok || tc.ReadQueueNums != 6 || tc.WriteQueueNums != 5 || tc.Perm != 6 {
					return fmt.Errorf("%s: topic %+v %v", nd.ServerID(), tc, ok)
				}
			}
			return nil
		})
		// Registered at once (not after the 30 s period): visible in the route.
		if qd, ok := nsRoute(c, "AdminT"); !ok || qd.ReadQueueNums != 6 || qd.WriteQueueNums != 5 {
			t.Fatalf("route after create: %+v %v", qd, ok)
		}
		w := allTopicConfig(t, cl, f.Addr())
		if tc := w.TopicConfigTable["AdminT"]; tc.WriteQueueNums != 5 || tc.TopicFilterType != "SINGLE_TAG" || w.DataVersion.Counter == 0 {
			t.Fatalf("GET_ALL_TOPIC_CONFIG on a follower: %+v %+v", tc, w.DataVersion)
		}
		// An update sent to a follower is forwarded to the leader.
		mustSucceed(t, invoke(t, cl, f.Addr(), topicReq(map[string]string{"perm": "4", "order": "true"})), nil)
		if tc, _ := l.FSM().Topic("AdminT"); tc.Perm != 4 || !tc.Order {
			t.Fatalf("after forwarded update: %+v", tc)
		}
		if qd, _ := nsRoute(c, "AdminT"); qd.Perm != 4 {
			t.Fatalf("route perm after update: %+v", qd)
		}
		// Perm bits: a send to a read-only topic, a pull from a write-only one: NO_PERMISSION.
		wantErr(t, "send to a read-only topic", invoke(t, cl, l.Addr(), sendReq("AdminT", 0, []byte("x"), "")), transport.NoPermission, "AdminT")
		mustSucceed(t, invoke(t, cl, l.Addr(), topicReq(map[string]string{"perm": "2"})), nil)
		wantErr(t, "pull from a write-only topic", invoke(t, cl, l.Addr(), pullReq("AdminT", 0, 0, 1, 0, "*")), transport.NoPermission, "AdminT")

		// Delete: gone everywhere, and deleting again succeeds with a remark (as Java).
		mustSucceed(t, invoke(t, cl, f.Addr(), transport.NewRequest(transport.DeleteTopicInBroker, map[string]string{"topic": "AdminT"}, nil)), nil)
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				if _, ok := nd.FSM().Topic("AdminT"); ok {
					return fmt.Errorf("%s still has the topic", nd.ServerID())
				}
			}
			return nil
		})
		if _, ok := allTopicConfig(t, cl, f.Addr()).TopicConfigTable["AdminT"]; ok {
			t.Fatal("deleted topic still in GET_ALL_TOPIC_CONFIG")
		}
		wantErr(t, "send to deleted topic", invoke(t, cl, l.Addr(), sendReq("AdminT", 0, []byte("x"), "")), transport.TopicNotExist)
		r := invoke(t, cl, l.Addr(), transport.NewRequest(transport.DeleteTopicInBroker, map[string]string{"topic": "AdminT"}, nil))
		wantErr(t, "delete missing topic", r, transport.Success, "does not exist")

		// Malformed requests: a clear code and a remark naming the field.
		for _, tc := range []struct {
			name  string
			ext   map[string]string
			code  transport.ResponseCode
			words []string
		}{
			{"missing topic", map[string]string{"topic": "<none>"}, transport.SystemError, []string{"topic"}},
			{"illegal chars", map[string]string{"topic": "bad topic!"}, transport.SystemError, []string{"topic", "bad topic!"}},
			{"too long", map[string]string{"topic": strings.Repeat("a", 200)}, transport.SystemError, []string{"topic"}},
			{"system topic", map[string]string{"topic": "TBW102"}, transport.SystemError, []string{"TBW102", "system topic"}},
			{"rmq_sys_ prefix", map[string]string{"topic": "rmq_sys_X"}, transport.SystemError, []string{"rmq_sys_X"}},
			{"broker name", map[string]string{"topic": l.Config().BrokerName}, transport.SystemError, []string{"system topic"}},
			{"missing readQueueNums", map[string]string{"readQueueNums": "<none>"}, transport.SystemError, []string{"readQueueNums"}},
			{"wrong type", map[string]string{"writeQueueNums": "eight"}, transport.SystemError, []string{"writeQueueNums", "eight"}},
			{"zero queues", map[string]string{"readQueueNums": "0"}, transport.SystemError, []string{"readQueueNums", "1024"}},
			{"too many queues", map[string]string{"writeQueueNums": "5000"}, transport.SystemError, []string{"writeQueueNums", "5000"}},
			{"bad perm", map[string]string{"perm": "99"}, transport.SystemError, []string{"perm=99"}},
			{"missing perm", map[string]string{"perm": "<none>"}, transport.SystemError, []string{"perm"}},
			{"bad filter type", map[string]string{"topicFilterType": "SQL"}, transport.SystemError, []string{"topicFilterType"}},
			{"bad order", map[string]string{"order": "maybe"}, transport.SystemError, []string{"order"}},
		} {
			wantErr(t, tc.name, invoke(t, cl, f.Addr(), topicReq(tc.ext)), tc.code, tc.words...)
		}
		wantErr(t, "delete without topic", invoke(t, cl, l.Addr(), transport.NewRequest(transport.DeleteTopicInBroker, nil, nil)), transport.SystemError, "topic")
		if _, ok := l.FSM().Topic("bad topic!"); ok {
			t.Fatal("an illegal topic was created")
		}
	})

	t.Run("Groups", func(t *testing.T) {
		body := []byte(`{"groupName":"cgA","consumeBroadcastEnable":false,"retryMaxTimes":3,"whichBrokerWhenConsumeSlowly":2,"unknownField":[1]}`)
		mustSucceed(t, invoke(t, cl, f.Addr(), transport.NewRequest(transport.UpdateAndCreateSubscriptionGroup, nil, body)), nil)
		getAll := func(addr string) map[string]map[string]any {
			r := invoke(t, cl, addr, transport.NewRequest(transport.GetAllSubscriptionGroupConfig, nil, nil))
			mustSucceed(t, r, nil)
			var out struct {
				SubscriptionGroupTable map[string]map[string]any `json:"subscriptionGroupTable"`
				DataVersion            *namesrv.DataVersion      `json:"dataVersion"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil || out.DataVersion == nil || out.SubscriptionGroupTable == nil {
				t.Fatalf("201 body %s: %v", r.Body, err)
			}
			return out.SubscriptionGroupTable
		}
		want := map[string]any{"groupName": "cgA", "consumeEnable": true, "consumeFromMinEnable": true, "consumeBroadcastEnable": false,
			"retryQueueNums": 1.0, "retryMaxTimes": 3.0, "brokerId": 0.0, "whichBrokerWhenConsumeSlowly": 2.0, "notifyConsumerIdsChangedEnable": true}
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				g := getAll(nd.Addr())["cgA"]
				if fmt.Sprint(g) != fmt.Sprint(want) {
					return fmt.Errorf("%s: group %v, want %v", nd.ServerID(), g, want)
				}
			}
			return nil
		})
		for _, tc := range []struct {
			name, body string
			words      []string
		}{
			{"no body", "", []string{"body"}},
			{"not json", "{", []string{"body"}},
			{"wrong type", `{"groupName":"g","retryMaxTimes":"many"}`, []string{"retryMaxTimes"}},
			{"missing name", `{"retryMaxTimes":1}`, []string{"groupName"}},
			{"illegal name", `{"groupName":"a b"}`, []string{"groupName"}},
			{"negative retry queues", `{"groupName":"g","retryQueueNums":-1}`, []string{"retryQueueNums"}},
		} {
			r := invoke(t, cl, l.Addr(), transport.NewRequest(transport.UpdateAndCreateSubscriptionGroup, nil, []byte(tc.body)))
			wantErr(t, "group "+tc.name, r, transport.SystemError, tc.words...)
		}
		mustSucceed(t, invoke(t, cl, l.Addr(), transport.NewRequest(transport.DeleteSubscriptionGroup, map[string]string{"groupName": "cgA"}, nil)), nil)
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				if _, ok := getAll(nd.Addr())["cgA"]; ok {
					return fmt.Errorf("%s still has the group", nd.ServerID())
				}
			}
			return nil
		})
		wantErr(t, "delete missing group", invoke(t, cl, l.Addr(), transport.NewRequest(transport.DeleteSubscriptionGroup, map[string]string{"groupName": "cgA"}, nil)), transport.Success, "does not exist")
		wantErr(t, "delete without name", invoke(t, cl, l.Addr(), transport.NewRequest(transport.DeleteSubscriptionGroup, nil, nil)), transport.SystemError, "groupName")
	})

	t.Run("BrokerConfig", func(t *testing.T) {
		get := func(nd *node.Node) (map[string]string, namesrv.DataVersion) {
			r := invoke(t, cl, nd.Addr(), transport.NewRequest(transport.GetBrokerConfig, nil, nil))
			mustSucceed(t, r, nil)
			var v namesrv.DataVersion
			if err := json.Unmarshal([]byte(r.Ext("version")), &v); err != nil {
				t.Fatalf("version ext %q: %v", r.Ext("version"), err)
			}
			kv := map[string]string{}
			for _, line := range strings.Split(string(r.Body), "\n") {
				if k, val, ok := strings.Cut(line, "="); ok {
					kv[k] = val
				}
			}
			return kv, v
		}
		kv, v0 := get(l)
		kv0 := kv
		if kv["brokerPermission"] != "6" || kv["brokerName"] != l.Config().BrokerName || kv["listenPort"] == "" {
			t.Fatalf("config body: %v", kv)
		}
		update := func(nd *node.Node, text string) *transport.Command {
			return invoke(t, cl, nd.Addr(), transport.NewRequest(transport.UpdateBrokerConfig, nil, []byte(text)))
		}
		r := update(l, "brokerPermission=4\nautoCreateSubscriptionGroup=false\n")
		wantErr(t, "live update", r, transport.Success, "brokerPermission", "this node")
		kv, v1 := get(l)
		if kv["brokerPermission"] != "4" || kv["autoCreateSubscriptionGroup"] != "false" || v1.Counter != v0.Counter+1 {
			t.Fatalf("after update: perm %s auto %s version %+v -> %+v", kv["brokerPermission"], kv["autoCreateSubscriptionGroup"], v0, v1)
		}
		if kv, _ := get(f); kv["brokerPermission"] != "6" {
			t.Fatalf("a follower changed too (config is per node): %s", kv["brokerPermission"])
		}
		if l.LiveConfig().BrokerPermission != 4 || l.Config().BrokerPermission != 6 {
			t.Fatalf("LiveConfig %d, Config %d", l.LiveConfig().BrokerPermission, l.Config().BrokerPermission)
		}
		// The live permission applies to sends made straight to the broker, not only to routes.
		wantErr(t, "send to a read-only broker", invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, []byte("ro"), "")), transport.NoPermission, "brokerPermission=4")
		// A read-only broker registers its topics read-only (RocketMQ's registerBrokerAll).
		testcluster.Eventually(t, 10*time.Second, func() error {
			if qd, ok := nsRoute(c, c.Topic); !ok || qd.Perm != 4 {
				return fmt.Errorf("route perm %+v %v", qd, ok)
			}
			return nil
		})
		// Refused: keys that cannot change live, unknown keys, bad values. Nothing is applied.
		wantErr(t, "static key", update(l, "brokerName=other"), transport.NoPermission, "brokerName", "restart")
		wantErr(t, "storage key", update(l, "fileReservedTime=1\nbrokerPermission=6"), transport.NoPermission, "fileReservedTime", "storage engine")
		wantErr(t, "unknown key", update(l, "brokerPermision=6"), transport.NoPermission, "brokerPermision", `"brokerPermission"`)
		wantErr(t, "unused RocketMQ key", update(l, "transientStorePoolEnable=true"), transport.NoPermission, "transientStorePoolEnable", "does not use")
		wantErr(t, "bad value", update(l, "brokerPermission=abc"), transport.SystemError, "brokerPermission", "abc")
		wantErr(t, "invalid value", update(l, "brokerPermission=9"), transport.SystemError, "brokerPermission")
		wantErr(t, "empty body", update(l, ""), transport.SystemError, "no key")
		if kv, _ := get(l); kv["brokerPermission"] != "4" {
			t.Fatalf("a refused update changed brokerPermission to %s", kv["brokerPermission"])
		}
		mustSucceed(t, update(l, "brokerPermission=6\nautoCreateSubscriptionGroup="+kv0["autoCreateSubscriptionGroup"]), nil)
		testcluster.Eventually(t, 10*time.Second, func() error {
			if qd, ok := nsRoute(c, c.Topic); !ok || qd.Perm != 6 {
				return fmt.Errorf("route perm %+v %v", qd, ok)
			}
			return nil
		})
	})

	// Messages for the stats and query subtests: three on queue 1 with keys.
	var msgIDs []string
	for i := range 3 {
		r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 1, bodyOf(i), fmt.Sprintf("KEYS\x01order-%d shared\x02", i)))
		mustSucceed(t, r, nil)
		msgIDs = append(msgIDs, r.Ext("msgId"))
	}
	c.WaitApplied(t, l.Raft().AppliedIndex())

	t.Run("RuntimeInfo", func(t *testing.T) {
		info := func(nd *node.Node) map[string]string {
			r := invoke(t, cl, nd.Addr(), transport.NewRequest(transport.GetBrokerRuntimeInfo, nil, nil))
			mustSucceed(t, r, nil)
			var kv struct {
				Table map[string]string `json:"table"`
			}
			if err := json.Unmarshal(r.Body, &kv); err != nil {
				t.Fatalf("28 body %s: %v", r.Body, err)
			}
			return kv.Table
		}
		lt := info(l)
		for _, k := range []string{"msgPutTotalTodayNow", "msgGetTotalTodayNow", "commitLogMaxOffset", "commitLogMinOffset",
			"brokerVersionDesc", "runtime", "putTps", "getTransferedTps", "commitLogDiskRatio", "msgPutTotalTodayMorning",
			"raftState", "raftTerm", "raftLeader", "commitIndex", "appliedIndex", "earliestMessageTimeStamp", "bootTimestamp"} {
			if _, ok := lt[k]; !ok {
				t.Errorf("runtime info lacks %s: %v", k, lt)
			}
		}
		if n, _ := strconv.ParseInt(lt["msgPutTotalTodayNow"], 10, 64); n < 3 {
			t.Errorf("msgPutTotalTodayNow %q after 3 sends", lt["msgPutTotalTodayNow"])
		}
		if n, _ := strconv.ParseInt(lt["commitLogMaxOffset"], 10, 64); n <= 0 {
			t.Errorf("commitLogMaxOffset %q", lt["commitLogMaxOffset"])
		}
		if !regexp.MustCompile(`^\d+\.\d\d \d+\.\d\d \d+\.\d\d$`).MatchString(lt["putTps"]) {
			t.Errorf("putTps %q", lt["putTps"])
		}
		if !regexp.MustCompile(`^\[ \d+ days, \d+ hours, \d+ minutes, \d+ seconds \]$`).MatchString(lt["runtime"]) {
			t.Errorf("runtime %q", lt["runtime"])
		}
		if r, err := strconv.ParseFloat(lt["commitLogDiskRatio"], 64); err != nil || r < 0 || r > 1 {
			t.Errorf("commitLogDiskRatio %q", lt["commitLogDiskRatio"])
		}
		if lt["raftState"] != "Leader" || lt["raftLeader"] != l.ServerID() || lt["raftTerm"] == "0" {
			t.Errorf("leader's raft keys: %s %s %s", lt["raftState"], lt["raftLeader"], lt["raftTerm"])
		}
		ft := info(f)
		if ft["raftState"] != "Follower" || ft["raftLeader"] != l.ServerID() || ft["msgPutTotalTodayNow"] != lt["msgPutTotalTodayNow"] {
			t.Errorf("follower: state %s leader %s puts %s (leader %s)", ft["raftState"], ft["raftLeader"], ft["msgPutTotalTodayNow"], lt["msgPutTotalTodayNow"])
		}
	})

	t.Run("TopicStats", func(t *testing.T) {
		r := invoke(t, cl, f.Addr(), transport.NewRequest(transport.GetTopicStatsInfo, map[string]string{"topic": c.Topic}, nil))
		mustSucceed(t, r, nil)
		// MessageQueue objects as keys, fastjson style: no whitespace, fields sorted.
		re := regexp.MustCompile(`\{"brokerName":"([^"]+)","queueId":(\d+),"topic":"([^"]+)"\}:\{"lastUpdateTimestamp":(\d+),"maxOffset":(\d+),"minOffset":(\d+)\}`)
		ms := re.FindAllStringSubmatch(string(r.Body), -1)
		if len(ms) != 4 || !strings.HasPrefix(string(r.Body), `{"offsetTable":{`) {
			t.Fatalf("stats body %s", r.Body)
		}
		for _, m := range ms {
			if m[1] != l.Config().BrokerName || m[3] != c.Topic {
				t.Errorf("key %v", m[:4])
			}
			if m[2] == "1" {
				ts, _ := strconv.ParseInt(m[4], 10, 64)
				if m[5] != "3" || m[6] != "0" || time.Since(time.UnixMilli(ts)) > time.Minute {
					t.Errorf("queue 1: %v", m)
				}
			}
		}
		wantErr(t, "stats of unknown topic", invoke(t, cl, l.Addr(), transport.NewRequest(transport.GetTopicStatsInfo, map[string]string{"topic": "Nope"}, nil)), transport.TopicNotExist, "Nope")
		wantErr(t, "stats of an illegal topic", invoke(t, cl, l.Addr(), transport.NewRequest(transport.GetTopicStatsInfo, map[string]string{"topic": "a b"}, nil)), transport.SystemError, "topic")
		wantErr(t, "stats without topic", invoke(t, cl, l.Addr(), transport.NewRequest(transport.GetTopicStatsInfo, nil, nil)), transport.SystemError, "topic")
	})

	t.Run("QueryMessage", func(t *testing.T) {
		now := time.Now().UnixMilli()
		q := func(addr string, ext map[string]string) *transport.Command {
			base := map[string]string{"topic": c.Topic, "key": "shared", "maxNum": "32",
				"beginTimestamp": strconv.FormatInt(now-60_000, 10), "endTimestamp": strconv.FormatInt(now+60_000, 10)}
			for k, v := range ext {
				if v == "<none>" {
					delete(base, k)
				} else {
					base[k] = v
				}
			}
			return invoke(t, cl, addr, transport.NewRequest(transport.QueryMessage, base, nil))
		}
		decode := func(b []byte) []*commitlog.MessageExt {
			var out []*commitlog.MessageExt
			for len(b) > 0 {
				m, n, err := message.DecodeRecord(b)
				if err != nil {
					t.Fatalf("decode query body: %v", err)
				}
				out = append(out, m)
				b = b[n:]
			}
			return out
		}
		r := q(f.Addr(), nil) // any node that has applied the messages
		mustSucceed(t, r, nil)
		if got := decode(r.Body); len(got) != 3 || r.Ext("indexLastUpdateTimestamp") == "" || r.Ext("indexLastUpdatePhyoffset") == "" {
			t.Fatalf("query shared: %d messages, ext %v", len(got), r.ExtFields)
		}
		r = q(l.Addr(), map[string]string{"key": "order-1"})
		mustSucceed(t, r, nil)
		if got := decode(r.Body); len(got) != 1 || string(got[0].Body) != string(bodyOf(1)) {
			t.Fatalf("query order-1: %v", got)
		}
		r = q(l.Addr(), map[string]string{"maxNum": "2"})
		if got := decode(r.Body); len(got) != 2 {
			t.Fatalf("maxNum 2: %d", len(got))
		}
		wantErr(t, "no match", q(l.Addr(), map[string]string{"key": "absent"}), transport.QueryNotFound)
		wantErr(t, "outside the time range", q(l.Addr(), map[string]string{"endTimestamp": strconv.FormatInt(now-50_000, 10)}), transport.QueryNotFound)
		wantErr(t, "missing maxNum", q(l.Addr(), map[string]string{"maxNum": "<none>"}), transport.SystemError, "maxNum")
		wantErr(t, "zero maxNum", q(l.Addr(), map[string]string{"maxNum": "0"}), transport.SystemError, "maxNum")
		wantErr(t, "bad begin", q(l.Addr(), map[string]string{"beginTimestamp": "yesterday"}), transport.SystemError, "beginTimestamp")
		wantErr(t, "begin after end", q(l.Addr(), map[string]string{"beginTimestamp": strconv.FormatInt(now+70_000, 10)}), transport.SystemError, "beginTimestamp")
		wantErr(t, "missing key", q(l.Addr(), map[string]string{"key": "<none>"}), transport.SystemError, "key")
		wantErr(t, "illegal topic", q(l.Addr(), map[string]string{"topic": "a/b"}), transport.SystemError, "topic")
	})

	t.Run("ViewMessageByID", func(t *testing.T) {
		_, phys, err := message.ParseOffsetMsgID(msgIDs[2])
		if err != nil {
			t.Fatal(err)
		}
		view := func(addr, off string) *transport.Command {
			return invoke(t, cl, addr, transport.NewRequest(transport.ViewMessageByID, map[string]string{"offset": off}, nil))
		}
		for _, nd := range c.Live() {
			r := view(nd.Addr(), strconv.FormatInt(phys, 10))
			mustSucceed(t, r, nil)
			m, n, err := message.DecodeRecord(r.Body)
			if err != nil || n != len(r.Body) || string(m.Body) != string(bodyOf(2)) || m.PhysicalOffset != phys {
				t.Fatalf("view on %s: %v %d/%d %+v", nd.ServerID(), err, n, len(r.Body), m)
			}
		}
		wantErr(t, "mid-record offset", view(l.Addr(), strconv.FormatInt(phys+1, 10)), transport.SystemError, "offset")
		wantErr(t, "offset past the end", view(l.Addr(), "999999999999"), transport.SystemError, "999999999999")
		wantErr(t, "negative offset", view(l.Addr(), "-1"), transport.SystemError, "offset")
		wantErr(t, "not a number", view(l.Addr(), "abc"), transport.SystemError, "offset")
		wantErr(t, "missing offset", invoke(t, cl, l.Addr(), transport.NewRequest(transport.ViewMessageByID, nil, nil)), transport.SystemError, "offset")
	})

	// Last: cut a follower off. Once it knows no leader, an admin write sent to it is answered
	// SERVICE_NOT_AVAILABLE at once (never stored, the caller retries elsewhere); reads still
	// work from what it has applied.
	t.Run("FollowerWithoutLeader", func(t *testing.T) {
		c.Partition(c.Index(f))
		defer c.Heal()
		testcluster.Eventually(t, 20*time.Second, func() error {
			r := invoke(t, cl, f.Addr(), topicReq(map[string]string{"topic": "CutOffT"}))
			if rcode(r) != transport.ServiceNotAvailable {
				return fmt.Errorf("%s %q", rcode(r), r.Remark)
			}
			if !strings.Contains(r.Remark, "leader") {
				t.Errorf("remark %q", r.Remark)
			}
			return nil
		})
		wantErr(t, "group write", invoke(t, cl, f.Addr(), transport.NewRequest(transport.UpdateAndCreateSubscriptionGroup, nil, []byte(`{"groupName":"g"}`))), transport.ServiceNotAvailable)
		mustSucceed(t, invoke(t, cl, f.Addr(), transport.NewRequest(transport.GetTopicStatsInfo, map[string]string{"topic": c.Topic}, nil)), nil)
	})

	t.Run("UnknownCode", func(t *testing.T) {
		r := invoke(t, cl, l.Addr(), transport.NewRequest(transport.RequestCode(9999), nil, nil))
		wantErr(t, "unknown code", r, transport.RequestCodeNotSupported, "9999")
	})

}
