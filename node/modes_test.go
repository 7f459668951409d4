package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

type confBroker struct {
	name string
	id   int
	role string // ASYNC_MASTER, SYNC_MASTER, SLAVE
}

type modeEnv struct {
	t      *testing.T
	dir    string
	ns     *namesrv.Server
	client *transport.Client
	logger *slog.Logger
	confs  map[string]string // name-id -> conf path
	nodes  map[string]*node.Node
}

type tlog struct {
	t  testing.TB
	on *atomic.Bool
}

func (w tlog) Write(b []byte) (int, error) {
	if w.on.Load() {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

func newModeEnv(t *testing.T) *modeEnv {
	on := &atomic.Bool{}
	on.Store(true)
	t.Cleanup(func() { on.Store(false) })
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(tlog{t, on}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := namesrv.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	ns, err := namesrv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &modeEnv{t: t, dir: dir, ns: ns, client: cl, logger: logger, confs: map[string]string{}, nodes: map[string]*node.Node{}}
	t.Cleanup(func() {
		for _, nd := range e.nodes {
			if nd != nil {
				nd.Close()
			}
		}
		cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns.Close(ctx)
	})
	return e
}

func port(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeConf writes a broker.conf in the seed's style.
func (e *modeEnv) writeConf(b confBroker, flush string) string {
	key := b.name + "-" + strconv.Itoa(b.id)
	conf := fmt.Sprintf(`# %s
brokerClusterName=DefaultCluster
brokerName=%s
brokerId=%d
deleteWhen=04
fileReservedTime=48
brokerRole=%s
flushDiskType=%s
namesrvAddr=%s
brokerIP1=127.0.0.1
listenPort=%d
haListenPort=%d
storePathRootDir=%s
mapedFileSizeCommitLog=8388608
mapedFileSizeConsumeQueue=40000
maxMessageSize=65536
maxHashSlotNum=1000
maxIndexNum=4000
raftHeartbeatTimeout=500
raftElectionTimeout=500
raftLeaderLeaseTimeout=250
raftCommitTimeout=20
`, key, b.name, b.id, b.role, flush, e.ns.Addr(), port(e.t), port(e.t), filepath.Join(e.dir, key))
	path := filepath.Join(e.dir, key+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.confs[key] = path
	return key
}

func (e *modeEnv) start(key string) *node.Node {
	e.t.Helper()
	cfg, _, err := node.LoadConfig(e.confs[key], node.LoadOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	nd, err := node.New(cfg, node.Options{
		Logger:            e.logger.With("node", key),
		ListenAddr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.ListenPort)),
		RegisterInterval:  time.Second,
		JoinRetryInterval: 100 * time.Millisecond,
		SendTimeout:       time.Second,
	})
	if err != nil {
		e.t.Fatalf("start %s: %v", key, err)
	}
	e.nodes[key] = nd
	return nd
}

func (e *modeEnv) stop(key string) {
	if nd := e.nodes[key]; nd != nil {
		nd.Abort()
		e.nodes[key] = nil
	}
}

func runMode(t *testing.T, brokers []confBroker, flush string) *modeEnv {
	e := newModeEnv(t)
	var keys []string
	for _, b := range brokers {
		keys = append(keys, e.writeConf(b, flush))
	}
	for _, k := range keys {
		e.start(k)
	}
	topic := "ModeTopic"
	ctx := context.Background()
	for i, b := range brokers {
		if b.id != 0 {
			continue
		}
		m := e.nodes[keys[i]]
		testcluster.Eventually(t, 10*time.Second, func() error {
			if !m.LeaderReady() {
				return fmt.Errorf("%s not leader", keys[i])
			}
			return nil
		})
		if err := m.CreateTopic(ctx, fsm.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}); err != nil {
			t.Fatal(err)
		}
	}
	// Every slave joins its master's group.
	for i, b := range brokers {
		if b.id == 0 {
			continue
		}
		m := e.nodes[b.name+"-0"]
		testcluster.Eventually(t, 10*time.Second, func() error {
			st, err := m.GroupStatus()
			if err != nil {
				return err
			}
			for _, mem := range st.Members {
				if mem.ServerID == e.nodes[keys[i]].ServerID() {
					if want := b.role == "SLAVE" && roleOf(brokers, b.name) == "SYNC_MASTER"; mem.Voter != want {
						return fmt.Errorf("slave %s voter=%v, want %v", keys[i], mem.Voter, want)
					}
					return nil
				}
			}
			return fmt.Errorf("slave %s not a member yet: %+v", keys[i], st.Members)
		})
	}
	// A send and a pull on every group; slaves catch up and serve the pull too.
	for i, b := range brokers {
		if b.id != 0 {
			continue
		}
		m := e.nodes[keys[i]]
		resp, err := send(ctx, e.client, m.Addr(), topic, 1, []byte("hello "+b.name))
		mustSucceed(t, resp, err)
		got := pullAll(t, e.client, m.Addr(), topic, 1)
		if len(got) != 1 || string(got[0].Body) != "hello "+b.name {
			t.Fatalf("%s: pulled %v", keys[i], got)
		}
	}
	for i, b := range brokers {
		if b.id == 0 {
			continue
		}
		s := e.nodes[keys[i]]
		testcluster.Eventually(t, 10*time.Second, func() error {
			if got := pullAll(t, e.client, s.Addr(), topic, 1); len(got) != 1 {
				return fmt.Errorf("slave %s has %d messages", keys[i], len(got))
			}
			return nil
		})
	}
	// A send reaching a slave is forwarded to its master.
	for i, b := range brokers {
		if b.id != 0 {
			resp, err := send(ctx, e.client, e.nodes[keys[i]].Addr(), topic, 0, []byte("via "+keys[i]))
			mustSucceed(t, resp, err)
		}
	}
	for i, b := range brokers {
		if b.id != 0 {
			testcluster.EnsureSameNodes(t, e.nodes[b.name+"-0"], e.nodes[keys[i]])
		}
	}
	// The name server lists every group with its master as id 0 (and slaves as id 1).
	testcluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		route, err := namesrv.GetRouteInfo(ctx, e.client, e.ns.Addr(), topic)
		if err != nil {
			return err
		}
		for i, b := range brokers {
			found := false
			for _, bd := range route.BrokerDatas {
				if bd.BrokerName == b.name && bd.BrokerAddrs[int64(b.id)] == e.nodes[keys[i]].Addr() {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("route lacks %s as id %d: %+v", keys[i], b.id, route.BrokerDatas)
			}
		}
		return nil
	})
	return e
}

func roleOf(brokers []confBroker, name string) string {
	for _, b := range brokers {
		if b.name == name && b.id == 0 {
			return b.role
		}
	}
	return ""
}

func TestModes_SingleMaster(t *testing.T) {
	runMode(t, []confBroker{{"broker-a", 0, "ASYNC_MASTER"}}, "ASYNC_FLUSH")
}

func TestModes_TwoMasters(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-group mode")
	}
	runMode(t, []confBroker{{"broker-a", 0, "ASYNC_MASTER"}, {"broker-b", 0, "ASYNC_MASTER"}}, "ASYNC_FLUSH")
}

func TestModes_TwoMastersTwoSlavesAsync(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-group mode")
	}
	runMode(t, []confBroker{
		{"broker-a", 0, "ASYNC_MASTER"}, {"broker-a", 1, "SLAVE"},
		{"broker-b", 0, "ASYNC_MASTER"}, {"broker-b", 1, "SLAVE"},
	}, "ASYNC_FLUSH")
}

func TestModes_TwoMastersTwoSlavesSync(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-group mode")
	}
	e := runMode(t, []confBroker{
		{"broker-a", 0, "SYNC_MASTER"}, {"broker-a", 1, "SLAVE"},
		{"broker-b", 0, "SYNC_MASTER"}, {"broker-b", 1, "SLAVE"},
	}, "SYNC_FLUSH")
	// With its slave down, a SYNC master refuses to acknowledge, promptly.
	e.stop("broker-a-1")
	m := e.nodes["broker-a-0"]
	ctx := context.Background()
	start := time.Now()
	resp, err := send(ctx, e.client, m.Addr(), "ModeTopic", 2, []byte("while slave down"))
	if err == nil && resp.Code == int16(transport.Success) {
		t.Fatal("SYNC master acknowledged a send while its only slave was down")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	if err == nil {
		t.Logf("answer while slave down: %s %s", transport.ResponseCode(resp.Code), resp.Remark)
	}
	e.start("broker-a-1")
	testcluster.Eventually(t, 15*time.Second, func() error {
		resp, err := send(ctx, e.client, m.Addr(), "ModeTopic", 3, []byte("slave back"))
		if err != nil {
			return err
		}
		if resp.Code != int16(transport.Success) {
			return fmt.Errorf("%s: %s", transport.ResponseCode(resp.Code), resp.Remark)
		}
		return nil
	})
	if !m.IsLeader() {
		t.Fatal("the master is not the leader after the slave returned")
	}
}
