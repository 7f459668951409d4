package namesrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func newClient(t *testing.T) *transport.Client {
	t.Helper()
	c, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func brokerReq(name, addr string, id int64, counter int64, tcs ...TopicConfig) RegisterBrokerRequest {
	return RegisterBrokerRequest{ClusterName: "c1", BrokerName: name, BrokerAddr: addr, BrokerID: id,
		HAServerAddr: addr + "-raft", Topics: topics(counter, tcs...)}
}

// raw sends a request and returns the reply whatever its code.
func raw(t *testing.T, c *transport.Client, addr string, code transport.RequestCode, ext map[string]string, body []byte) *transport.Command {
	t.Helper()
	resp, err := c.Invoke(ctxT(t), addr, transport.NewRequest(code, ext, body))
	if err != nil {
		t.Fatalf("%s: %v", code, err)
	}
	return resp
}

func TestServer_RegisterRouteConnClose(t *testing.T) {
	s := startServer(t, nil)
	broker := newClient(t)
	slave := newClient(t)
	cli := newClient(t)
	ctx := ctxT(t)

	res, err := RegisterBroker(ctx, broker, s.Addr(), brokerReq("b1", "127.0.0.1:10911", 0, 1, tc("T1", 4)))
	if err != nil {
		t.Fatal(err)
	}
	if res.MasterAddr != "" {
		t.Fatalf("master told of a master: %+v", res)
	}
	res, err = RegisterBroker(ctx, slave, s.Addr(), brokerReq("b1", "127.0.0.1:20911", 1, 1, tc("T1", 4)))
	if err != nil {
		t.Fatal(err)
	}
	if res.MasterAddr != "127.0.0.1:10911" || res.HAServerAddr != "127.0.0.1:10911-raft" {
		t.Fatalf("slave registration reply = %+v", res)
	}

	// The wire body is the exact compact JSON.
	resp := raw(t, cli, s.Addr(), transport.GetRouteInfoByTopic, map[string]string{"topic": "T1"}, nil)
	const want = `{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:20911"},"brokerName":"b1","cluster":"c1"}],"filterServerTable":{},"queueDatas":[{"brokerName":"b1","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`
	if resp.Code != int16(transport.Success) || string(resp.Body) != want {
		t.Fatalf("route reply code %d body\n got: %s\nwant: %s", resp.Code, resp.Body, want)
	}

	// The master's connection closes: it leaves the route at once (no expiry
	// wait: the default expiry is 120 s).
	broker.CloseConn(s.Addr())
	waitFor(t, "master removed after its connection closed", func() bool {
		r, err := GetRouteInfo(ctx, cli, s.Addr(), "T1")
		return err == nil && reflect.DeepEqual(r.BrokerDatas[0].BrokerAddrs, map[int64]string{1: "127.0.0.1:20911"})
	})
	slave.CloseConn(s.Addr())
	waitFor(t, "TOPIC_NOT_EXIST after every connection closed", func() bool {
		_, err := GetRouteInfo(ctx, cli, s.Addr(), "T1")
		return errors.Is(err, ErrTopicNotExist)
	})
	_, err = GetRouteInfo(ctx, cli, s.Addr(), "T1")
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != transport.TopicNotExist || !strings.Contains(re.Remark, "T1") {
		t.Fatalf("err = %v", err)
	}
}

func TestServer_CompressedRegistration(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	req := brokerReq("b1", "127.0.0.1:10911", 0, 1, tc("T1", 4), tc("T2", 2))
	req.Compressed = true
	if _, err := RegisterBroker(ctxT(t), c, s.Addr(), req); err != nil {
		t.Fatal(err)
	}
	r, err := GetRouteInfo(ctxT(t), c, s.Addr(), "T2")
	if err != nil {
		t.Fatal(err)
	}
	if r.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("route = %+v", r)
	}
}

func TestServer_MalformedRequests(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	good := map[string]string{"brokerName": "b1", "brokerAddr": "a:1", "clusterName": "c1", "brokerId": "0"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == "<del>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		code   transport.RequestCode
		ext    map[string]string
		body   []byte
		remark string
	}{
		{"register without brokerName", transport.RegisterBroker, with("brokerName", "<del>"), nil, "brokerName"},
		{"register without clusterName", transport.RegisterBroker, with("clusterName", "<del>"), nil, "clusterName"},
		{"register with bad brokerId", transport.RegisterBroker, with("brokerId", "zero"), nil, "brokerId"},
		{"register with negative brokerId", transport.RegisterBroker, with("brokerId", "-1"), nil, "brokerId"},
		{"register with bad compressed", transport.RegisterBroker, with("compressed", "maybe"), nil, "compressed"},
		{"register with bad body", transport.RegisterBroker, good, []byte("{not json"), "body"},
		{"register with bad compressed body", transport.RegisterBroker, with("compressed", "true"), []byte("xx"), "body"},
		{"register with wrong crc", transport.RegisterBroker, with("bodyCrc32", "12345"), []byte("{}"), "bodyCrc32"},
		{"register with bad crc", transport.RegisterBroker, with("bodyCrc32", "x"), []byte("{}"), "bodyCrc32"},
		{"unregister without brokerId", transport.UnregisterBroker, with("brokerId", "<del>"), nil, "brokerId"},
		{"route without topic", transport.GetRouteInfoByTopic, nil, nil, "topic"},
		{"delete topic without topic", transport.DeleteTopicInNamesrv, nil, nil, "topic"},
		{"query data version without brokerAddr", transport.QueryDataVersion, nil, nil, "brokerAddr"},
		{"query data version with bad body", transport.QueryDataVersion, good, []byte("["), "dataVersion"},
		{"put kv without key", transport.PutKVConfig, map[string]string{"namespace": "n", "value": "v"}, nil, "key"},
		{"put kv without value", transport.PutKVConfig, map[string]string{"namespace": "n", "key": "k"}, nil, "value"},
		{"get kv without namespace", transport.GetKVConfig, map[string]string{"key": "k"}, nil, "namespace"},
		{"delete kv without key", transport.DeleteKVConfig, map[string]string{"namespace": "n"}, nil, "key"},
	}
	for _, tt := range cases {
		resp := raw(t, c, s.Addr(), tt.code, tt.ext, tt.body)
		if resp.Code != int16(transport.SystemError) || !strings.Contains(resp.Remark, tt.remark) {
			t.Errorf("%s: code %d remark %q, want SYSTEM_ERROR naming %q", tt.name, resp.Code, resp.Remark, tt.remark)
		}
	}
	resp := raw(t, c, s.Addr(), transport.SendMessage, nil, nil)
	if resp.Code != int16(transport.RequestCodeNotSupported) || resp.Remark == "" {
		t.Fatalf("unknown code: %d %q", resp.Code, resp.Remark)
	}
	if s.Table().Brokers() != 0 {
		t.Fatalf("a malformed registration registered something")
	}
}

func TestServer_Expiry(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.ScanNotActiveBrokerInterval = 5 * time.Millisecond
		c.BrokerChannelExpiredTime = 300 * time.Millisecond
	})
	c := newClient(t)
	if _, err := RegisterBroker(ctxT(t), c, s.Addr(), brokerReq("b1", "a:1", 0, 1, tc("T1", 4))); err != nil {
		t.Fatal(err)
	}
	conns := s.ts.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d connections after one registration", len(conns))
	}
	regConn := conns[0].ID()
	// The connection stays open; only the expiry removes the broker.
	waitFor(t, "broker expired", func() bool {
		_, err := GetRouteInfo(ctxT(t), c, s.Addr(), "T1")
		return errors.Is(err, ErrTopicNotExist)
	})
	if s.Table().Brokers() != 0 {
		t.Fatal("broker still live after expiry")
	}
	// And the name server closes the expired broker's connection, as RocketMQ does (the
	// client reconnects for its next call).
	waitFor(t, "expired broker's connection closed", func() bool {
		for _, cn := range s.ts.Conns() {
			if cn.ID() == regConn {
				return false
			}
		}
		return true
	})
}

func TestServer_LateUnregister(t *testing.T) {
	s := startServer(t, nil)
	old := newClient(t)
	cur := newClient(t)
	ctx := ctxT(t)
	req := brokerReq("b1", "a:1", 0, 1, tc("T1", 4))
	if _, err := RegisterBroker(ctx, cur, s.Addr(), req); err != nil {
		t.Fatal(err)
	}
	un := UnregisterBrokerRequest{ClusterName: "c1", BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 0}
	// An unregister from another session (connection) is ignored.
	if err := UnregisterBroker(ctx, old, s.Addr(), un); err != nil {
		t.Fatal(err)
	}
	if _, err := GetRouteInfo(ctx, cur, s.Addr(), "T1"); err != nil {
		t.Fatalf("late unregister wiped the registration: %v", err)
	}
	// The registering session's own unregister removes it.
	if errs := UnregisterAll(ctx, cur, []string{s.Addr()}, un); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, err := GetRouteInfo(ctx, cur, s.Addr(), "T1"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("after unregister: %v", err)
	}
}

func TestServer_ClusterTopicsDeleteAndDataVersion(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	ctx := ctxT(t)
	req := brokerReq("b1", "a:1", 0, 4, tc("T1", 4), tc("T2", 4))
	results := RegisterAll(ctx, c, []string{s.Addr(), "127.0.0.1:1"}, req)
	if results[0].Err != nil || results[0].Result == nil {
		t.Fatalf("register: %+v", results[0])
	}
	if results[1].Err == nil || !strings.Contains(results[1].Err.Error(), "127.0.0.1:1") {
		t.Fatalf("dead name server: err = %v, want one naming the address", results[1].Err)
	}
	ci, err := GetClusterInfo(ctx, c, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ci.ClusterAddrTable, map[string][]string{"c1": {"b1"}}) || ci.BrokerAddrTable["b1"].BrokerAddrs[0] != "a:1" {
		t.Fatalf("cluster info = %+v", ci)
	}
	resp := raw(t, c, s.Addr(), transport.GetAllTopicListFromNameServer, nil, nil)
	if string(resp.Body) != `{"topicList":["T1","T2"]}` {
		t.Fatalf("topic list = %s", resp.Body)
	}
	resp = raw(t, c, s.Addr(), transport.DeleteTopicInNamesrv, map[string]string{"topic": "T1"}, nil)
	if resp.Code != int16(transport.Success) {
		t.Fatalf("delete: %d %s", resp.Code, resp.Remark)
	}
	if _, err := GetRouteInfo(ctx, c, s.Addr(), "T1"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("deleted topic: %v", err)
	}
	changed, err := QueryDataVersion(ctx, c, s.Addr(), req, req.Topics.DataVersion)
	if err != nil || changed {
		t.Fatalf("same version: changed=%v err=%v", changed, err)
	}
	changed, err = QueryDataVersion(ctx, c, s.Addr(), req, DataVersion{Timestamp: 1, Counter: 99})
	if err != nil || !changed {
		t.Fatalf("other version: changed=%v err=%v", changed, err)
	}
}

func TestServer_TopicListDisabled(t *testing.T) {
	s := startServer(t, func(c *Config) { c.EnableAllTopicList = false })
	resp := raw(t, newClient(t), s.Addr(), transport.GetAllTopicListFromNameServer, nil, nil)
	if resp.Code != int16(transport.SystemError) || !strings.Contains(resp.Remark, "enableAllTopicList") {
		t.Fatalf("disabled topic list: %d %q", resp.Code, resp.Remark)
	}
}

func TestServer_KVConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv", "kvConfig.json")
	s := startServer(t, func(c *Config) {
		c.KVConfigPath = path
		c.OrderMessageEnable = true
	})
	c := newClient(t)
	kv := func(code transport.RequestCode, ns, key, value string) *transport.Command {
		ext := map[string]string{"namespace": ns, "key": key}
		if code == transport.PutKVConfig {
			ext["value"] = value
		}
		return raw(t, c, s.Addr(), code, ext, nil)
	}
	if r := kv(transport.GetKVConfig, "ns", "k", ""); r.Code != int16(transport.QueryNotFound) {
		t.Fatalf("missing key: code %d", r.Code)
	}
	if r := kv(transport.PutKVConfig, "ns", "k", "v1"); r.Code != int16(transport.Success) {
		t.Fatalf("put: %d %s", r.Code, r.Remark)
	}
	if r := kv(transport.GetKVConfig, "ns", "k", ""); r.Code != int16(transport.Success) || r.Ext("value") != "v1" {
		t.Fatalf("get: %d %v", r.Code, r.ExtFields)
	}
	r := raw(t, c, s.Addr(), transport.GetKVListByNamespace, map[string]string{"namespace": "ns"}, nil)
	if string(r.Body) != `{"table":{"k":"v1"}}` {
		t.Fatalf("kv list = %s", r.Body)
	}
	// Persisted in RocketMQ's kvConfig.json shape.
	data, err := os.ReadFile(path)
	if err != nil || string(data) != `{"configTable":{"ns":{"k":"v1"}}}` {
		t.Fatalf("kv file = %s, %v", data, err)
	}
	reopened, err := OpenKVStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := reopened.Get("ns", "k"); !ok || v != "v1" {
		t.Fatalf("reopened kv: %q %v", v, ok)
	}
	if r := kv(transport.DeleteKVConfig, "ns", "k", ""); r.Code != int16(transport.Success) {
		t.Fatalf("delete: %d", r.Code)
	}
	if r := kv(transport.GetKVConfig, "ns", "k", ""); r.Code != int16(transport.QueryNotFound) {
		t.Fatalf("deleted key: code %d", r.Code)
	}

	// Order topic config: in routes (orderMessageEnable) and registration replies.
	kv(transport.PutKVConfig, NamespaceOrderTopicConfig, "T1", "b1:4")
	res, err := RegisterBroker(ctxT(t), c, s.Addr(), brokerReq("b1", "a:1", 0, 1, tc("T1", 4)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.OrderTopicConf, map[string]string{"T1": "b1:4"}) {
		t.Fatalf("registration reply order conf = %v", res.OrderTopicConf)
	}
	route, err := GetRouteInfo(ctxT(t), c, s.Addr(), "T1")
	if err != nil || route.OrderTopicConf != "b1:4" {
		t.Fatalf("route = %+v, %v", route, err)
	}
}

func TestServer_CloseIdempotentAndPortInUse(t *testing.T) {
	s := startServer(t, nil)
	cfg := DefaultConfig()
	cfg.ListenAddr = s.Addr()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Fatalf("second server on the same port: %v", err)
	}
	ctx := ctxT(t)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.ScanNotActiveBrokerInterval = 0
	if _, err := New(bad); !errors.Is(err, ErrConfig) {
		t.Fatalf("invalid config: %v", err)
	}
}

// The register reply JSON of a slave (ext fields) as Java brokers read them.
func TestServer_SlaveReplyExtFields(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	if _, err := RegisterBroker(ctxT(t), c, s.Addr(), brokerReq("b1", "m:1", 0, 1)); err != nil {
		t.Fatal(err)
	}
	body, _ := EncodeRegisterBrokerBody(&RegisterBrokerBody{}, false)
	resp := raw(t, c, s.Addr(), transport.RegisterBroker, map[string]string{"brokerName": "b1", "brokerAddr": "s:1",
		"clusterName": "c1", "brokerId": "1", "haServerAddr": "s:2"}, body)
	if resp.Code != int16(transport.Success) || resp.Ext("masterAddr") != "m:1" || resp.Ext("haServerAddr") != "m:1-raft" {
		t.Fatalf("slave reply: %d %v", resp.Code, resp.ExtFields)
	}
	var dv DataVersion
	resp = raw(t, c, s.Addr(), transport.QueryDataVersion, map[string]string{"brokerAddr": "m:1"}, []byte(`{"counter":1,"timestamp":1000}`))
	if resp.Ext("changed") != "false" || json.Unmarshal(resp.Body, &dv) != nil || dv.Counter != 1 {
		t.Fatalf("query data version reply: %v %s", resp.ExtFields, resp.Body)
	}
}

func TestServer_StaleLeaderEpoch(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	ctx := ctxT(t)
	n1 := brokerReq("b1", "n1:1", 0, 1, tc("T1", 4))
	n1.LeaderEpoch = 7
	if _, err := RegisterBroker(ctx, c, s.Addr(), n1); err != nil {
		t.Fatal(err)
	}
	n0 := brokerReq("b1", "n0:1", 0, 1, tc("T1", 4))
	n0.LeaderEpoch = 6
	_, err := RegisterBroker(ctx, c, s.Addr(), n0)
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != transport.SystemError || !strings.Contains(re.Remark, "leaderEpoch") {
		t.Fatalf("stale master registration: %v", err)
	}
	r, err := GetRouteInfo(ctx, c, s.Addr(), "T1")
	if err != nil || r.BrokerDatas[0].BrokerAddrs[0] != "n1:1" {
		t.Fatalf("route = %+v, %v", r, err)
	}
	resp := raw(t, c, s.Addr(), transport.RegisterBroker, map[string]string{"brokerName": "b1", "brokerAddr": "x:1",
		"clusterName": "c1", "brokerId": "0", "leaderEpoch": "seven"}, nil)
	if resp.Code != int16(transport.SystemError) || !strings.Contains(resp.Remark, "leaderEpoch") {
		t.Fatalf("bad leaderEpoch: %d %q", resp.Code, resp.Remark)
	}
}

func TestServer_WritePermAndTopicsByCluster(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t)
	ctx := ctxT(t)
	if _, err := RegisterBroker(ctx, c, s.Addr(), brokerReq("b1", "a:1", 0, 1, tc("T1", 4), tc("T2", 4))); err != nil {
		t.Fatal(err)
	}
	other := brokerReq("b2", "b:1", 0, 1, tc("T3", 4))
	other.ClusterName = "c2"
	if _, err := RegisterBroker(ctx, c, s.Addr(), other); err != nil {
		t.Fatal(err)
	}
	resp := raw(t, c, s.Addr(), transport.WipeWritePermOfBroker, map[string]string{"brokerName": "b1"}, nil)
	if resp.Code != int16(transport.Success) || resp.Ext("wipeTopicCount") != "2" {
		t.Fatalf("wipe: %d %v", resp.Code, resp.ExtFields)
	}
	r, err := GetRouteInfo(ctx, c, s.Addr(), "T1")
	if err != nil || r.QueueDatas[0].Perm != PermRead {
		t.Fatalf("after wipe: %+v %v", r, err)
	}
	resp = raw(t, c, s.Addr(), transport.AddWritePermOfBroker, map[string]string{"brokerName": "b1"}, nil)
	if resp.Ext("addTopicCount") != "2" {
		t.Fatalf("add: %v", resp.ExtFields)
	}
	if r, _ := GetRouteInfo(ctx, c, s.Addr(), "T1"); r.QueueDatas[0].Perm != PermRead|PermWrite {
		t.Fatalf("after add: %+v", r)
	}
	resp = raw(t, c, s.Addr(), transport.GetTopicsByCluster, map[string]string{"cluster": "c1"}, nil)
	if string(resp.Body) != `{"topicList":["T1","T2"]}` {
		t.Fatalf("topics of c1 = %s", resp.Body)
	}
	resp = raw(t, c, s.Addr(), transport.GetTopicsByCluster, map[string]string{"cluster": "none"}, nil)
	if string(resp.Body) != `{"topicList":[]}` {
		t.Fatalf("topics of an unknown cluster = %s", resp.Body)
	}
	resp = raw(t, c, s.Addr(), transport.WipeWritePermOfBroker, nil, nil)
	if resp.Code != int16(transport.SystemError) || !strings.Contains(resp.Remark, "brokerName") {
		t.Fatalf("wipe without brokerName: %d %q", resp.Code, resp.Remark)
	}
}

// A registration still being handled when its connection closes must not
// leave the broker behind until expiry.
func TestServer_RegisterRacingConnClose(t *testing.T) {
	s := startServer(t, nil)
	for i := range 40 {
		c, err := transport.NewClient(transport.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		req := brokerReq("b1", fmt.Sprintf("a:%d", i), int64(i%3), 1, tc("T1", 4))
		body, _ := EncodeRegisterBrokerBody(&RegisterBrokerBody{TopicConfigSerializeWrapper: req.Topics}, false)
		cmd, _ := registerCommand(req, body)
		if err := c.InvokeOneway(ctxT(t), s.Addr(), cmd); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitFor(t, "every racing registration removed", func() bool { return s.Table().Brokers() == 0 })
}
