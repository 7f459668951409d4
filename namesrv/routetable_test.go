package namesrv

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func topics(counter int64, tcs ...TopicConfig) TopicConfigSerializeWrapper {
	w := TopicConfigSerializeWrapper{
		DataVersion:      DataVersion{Timestamp: 1000, Counter: counter},
		TopicConfigTable: map[string]TopicConfig{},
	}
	for _, tc := range tcs {
		w.TopicConfigTable[tc.TopicName] = tc
	}
	return w
}

func tc(name string, q int32) TopicConfig {
	return TopicConfig{TopicName: name, ReadQueueNums: q, WriteQueueNums: q, Perm: PermRead | PermWrite, TopicFilterType: FilterSingleTag}
}

func reg(name, addr string, id int64, conn uint64, w TopicConfigSerializeWrapper) Registration {
	return Registration{ClusterName: "c1", BrokerName: name, BrokerAddr: addr, BrokerID: id,
		HAServerAddr: addr + "-ha", Topics: w, ConnID: conn}
}

func mustRoute(t *testing.T, rt *RouteTable, topic string) TopicRouteData {
	t.Helper()
	r, ok := rt.Route(topic)
	if !ok {
		t.Fatalf("no route for %s", topic)
	}
	return r
}

func addrsOf(t *testing.T, rt *RouteTable, topic, brokerName string) map[int64]string {
	t.Helper()
	r := mustRoute(t, rt, topic)
	for _, bd := range r.BrokerDatas {
		if bd.BrokerName == brokerName {
			return bd.BrokerAddrs
		}
	}
	t.Fatalf("route of %s has no broker %s: %+v", topic, brokerName, r)
	return nil
}

func TestRouteTable_RegisterAndRoute(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	res, _ := rt.Register(reg("b1", "10.0.0.1:10911", 0, 1, topics(1, tc("T1", 4), tc("T2", 8))))
	if res.MasterAddr != "" || res.HAServerAddr != "" {
		t.Fatalf("master got master info: %+v", res)
	}
	res, _ = rt.Register(reg("b1", "10.0.0.2:10911", 1, 2, topics(1, tc("T1", 4), tc("SLAVE_ONLY", 4))))
	if res.MasterAddr != "10.0.0.1:10911" || res.HAServerAddr != "10.0.0.1:10911-ha" {
		t.Fatalf("slave reply = %+v, want master and HA address", res)
	}
	r := mustRoute(t, rt, "T1")
	want := TopicRouteData{
		BrokerDatas: []BrokerData{{BrokerName: "b1", Cluster: "c1",
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}}},
		QueueDatas: []QueueData{{BrokerName: "b1", Perm: 6, ReadQueueNums: 4, WriteQueueNums: 4}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("route = %+v\nwant %+v", r, want)
	}
	if q := mustRoute(t, rt, "T2").QueueDatas[0]; q.ReadQueueNums != 8 {
		t.Fatalf("T2 queues = %+v", q)
	}
	// Topic configs come from id 0 only.
	if _, ok := rt.Route("SLAVE_ONLY"); ok {
		t.Fatal("a slave's topic config made it into the routes")
	}
	if _, ok := rt.Route("nope"); ok {
		t.Fatal("unknown topic has a route")
	}
	if got := rt.Topics(); !reflect.DeepEqual(got, []string{"T1", "T2"}) {
		t.Fatalf("topics = %v", got)
	}
}

func TestRouteTable_TopicsOnlyOnFirstOrChangedVersion(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4))))
	// Same data version, different table: ignored (periodic re-registration).
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 16), tc("T9", 1))))
	if q := mustRoute(t, rt, "T1").QueueDatas[0]; q.WriteQueueNums != 4 {
		t.Fatalf("unchanged data version updated queues: %+v", q)
	}
	if _, ok := rt.Route("T9"); ok {
		t.Fatal("unchanged data version added a topic")
	}
	// Changed version: applied.
	rt.Register(reg("b1", "a:1", 0, 1, topics(2, tc("T1", 16), tc("T9", 1))))
	if q := mustRoute(t, rt, "T1").QueueDatas[0]; q.WriteQueueNums != 16 {
		t.Fatalf("changed data version not applied: %+v", q)
	}
	mustRoute(t, rt, "T9")
	// Without DeleteTopicWithBrokerRegistration a topic missing from the
	// table stays (RocketMQ's default).
	rt.Register(reg("b1", "a:1", 0, 1, topics(3, tc("T1", 16))))
	mustRoute(t, rt, "T9")
}

func TestRouteTable_DeleteTopicWithBrokerRegistration(t *testing.T) {
	rt := NewRouteTable(TableConfig{DeleteTopicWithBrokerRegistration: true})
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4), tc("T9", 1))))
	rt.Register(reg("b2", "b:1", 0, 2, topics(1, tc("T9", 1))))
	rt.Register(reg("b1", "a:1", 0, 1, topics(2, tc("T1", 4))))
	r := mustRoute(t, rt, "T9")
	if len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b2" {
		t.Fatalf("T9 route = %+v, want b2 only", r)
	}
}

func TestRouteTable_Expiry(t *testing.T) {
	clk := newFakeClock()
	rt := NewRouteTable(TableConfig{Expiry: 10 * time.Second, Now: clk.Now})
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4))))
	rt.Register(reg("b1", "a:2", 1, 2, topics(1)))
	clk.Advance(6 * time.Second)
	rt.Register(reg("b1", "a:2", 1, 2, topics(1))) // the slave keeps registering
	if gone := rt.Expire(); len(gone) != 0 {
		t.Fatalf("expired too early: %v", gone)
	}
	clk.Advance(4 * time.Second)
	if gone := rt.Expire(); !reflect.DeepEqual(gone, []string{"a:1"}) {
		t.Fatalf("expired %v, want [a:1]", gone)
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{1: "a:2"}) {
		t.Fatalf("addrs after master expiry = %v", got)
	}
	clk.Advance(10 * time.Second)
	rt.Expire()
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("route survives the expiry of every address")
	}
	if ci := rt.ClusterInfo(); len(ci.BrokerAddrTable) != 0 || len(ci.ClusterAddrTable) != 0 {
		t.Fatalf("cluster info after expiry = %+v", ci)
	}
	if rt.Brokers() != 0 {
		t.Fatalf("brokers = %d", rt.Brokers())
	}
}

func TestRouteTable_PerBrokerExpiry(t *testing.T) {
	clk := newFakeClock()
	rt := NewRouteTable(TableConfig{Expiry: 100 * time.Second, Now: clk.Now})
	r := reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4)))
	r.Expiry = 5 * time.Second
	rt.Register(r)
	clk.Advance(5 * time.Second)
	if gone := rt.Expire(); len(gone) != 1 {
		t.Fatalf("per-broker expiry not honoured: %v", gone)
	}
}

func TestRouteTable_QueryDataVersionRefreshesLiveness(t *testing.T) {
	clk := newFakeClock()
	rt := NewRouteTable(TableConfig{Expiry: 10 * time.Second, Now: clk.Now})
	if changed, held := rt.QueryDataVersion("a:1", DataVersion{}); !changed || held != nil {
		t.Fatalf("unknown broker: changed=%v held=%v", changed, held)
	}
	rt.Register(reg("b1", "a:1", 0, 1, topics(7)))
	clk.Advance(9 * time.Second)
	changed, held := rt.QueryDataVersion("a:1", DataVersion{Timestamp: 1000, Counter: 7})
	if changed || held == nil || held.Counter != 7 {
		t.Fatalf("same version: changed=%v held=%v", changed, held)
	}
	if changed, _ := rt.QueryDataVersion("a:1", DataVersion{Timestamp: 1000, Counter: 8}); !changed {
		t.Fatal("different version reported unchanged")
	}
	clk.Advance(9 * time.Second)
	if gone := rt.Expire(); len(gone) != 0 {
		t.Fatalf("QUERY_DATA_VERSION did not refresh liveness; expired %v", gone)
	}
}

func TestRouteTable_ConnCloseRemovesAtOnce(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "a:1", 0, 7, topics(1, tc("T1", 4))))
	rt.Register(reg("b1", "a:2", 1, 8, topics(1)))
	rt.Register(reg("b2", "b:1", 0, 9, topics(1, tc("T1", 2))))
	if gone := rt.ConnClosed(99); len(gone) != 0 {
		t.Fatalf("unrelated connection removed %v", gone)
	}
	if gone := rt.ConnClosed(7); !reflect.DeepEqual(gone, []string{"a:1"}) {
		t.Fatalf("conn 7 removed %v", gone)
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{1: "a:2"}) {
		t.Fatalf("b1 addrs = %v", got)
	}
	rt.ConnClosed(8)
	r := mustRoute(t, rt, "T1")
	if len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b2" || len(r.BrokerDatas) != 1 {
		t.Fatalf("queue data of the empty group b1 was kept: %+v", r)
	}
	rt.ConnClosed(9)
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("route left after every connection closed")
	}
}

func TestRouteTable_RoleSwitch(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "n0:1", 0, 1, topics(1, tc("T1", 4))))
	rt.Register(reg("b1", "n1:1", 1, 2, topics(1, tc("T1", 4))))
	rt.Register(reg("b1", "n2:1", 2, 3, topics(1, tc("T1", 4))))

	// n1 becomes leader and registers as id 0 first: n0 must not stay id 0,
	// n1 must not stay id 1, and the queues never vanish.
	res, _ := rt.Register(reg("b1", "n1:1", 0, 2, topics(1, tc("T1", 4))))
	if res.MasterAddr != "" {
		t.Fatalf("new master told of a master: %+v", res)
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{0: "n1:1", 2: "n2:1"}) {
		t.Fatalf("after switch addrs = %v", got)
	}
	// The old leader re-registers as a slave and learns the new master.
	res, _ = rt.Register(reg("b1", "n0:1", 1, 1, topics(1, tc("T1", 4))))
	if res.MasterAddr != "n1:1" || res.HAServerAddr != "n1:1-ha" {
		t.Fatalf("old leader as slave got %+v", res)
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{0: "n1:1", 1: "n0:1", 2: "n2:1"}) {
		t.Fatalf("after re-registration addrs = %v", got)
	}
	// The displaced address's connection closing later removes nothing of n1.
	rt.ConnClosed(2)
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{1: "n0:1", 2: "n2:1"}) {
		t.Fatalf("after n1's conn closed addrs = %v", got)
	}
}

func TestRouteTable_SingleNodeStepDownKeepsQueues(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "n0:1", 0, 1, topics(1, tc("T1", 4))))
	// The only node loses leadership and registers as a slave: consumers
	// may still read from it, so the queues stay.
	rt.Register(reg("b1", "n0:1", 1, 1, topics(1, tc("T1", 4))))
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{1: "n0:1"}) {
		t.Fatalf("addrs = %v", got)
	}
}

func TestRouteTable_LateUnregisterIgnored(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	seen := rt.Seq() // an unregister arrives...
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4))))
	// ...and is applied after a registration that came later: ignored.
	if rt.Unregister(Unregistration{ClusterName: "c1", BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 0, ConnID: 1, SeenSeq: seen}) {
		t.Fatal("an unregister older than the registration removed it")
	}
	// An unregister from an old session (another connection) is ignored too.
	if rt.Unregister(Unregistration{ClusterName: "c1", BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 0, ConnID: 5, SeenSeq: rt.Seq()}) {
		t.Fatal("an unregister from another connection removed the registration")
	}
	// Mismatched id or name: ignored (the address is now a slave elsewhere).
	if rt.Unregister(Unregistration{BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 1, ConnID: 1, SeenSeq: rt.Seq()}) {
		t.Fatal("unregister with the wrong brokerId removed the entry")
	}
	if rt.Unregister(Unregistration{BrokerName: "b2", BrokerAddr: "a:1", BrokerID: 0, ConnID: 1, SeenSeq: rt.Seq()}) {
		t.Fatal("unregister with the wrong brokerName removed the entry")
	}
	if rt.Unregister(Unregistration{ClusterName: "c9", BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 0, ConnID: 1, SeenSeq: rt.Seq()}) {
		t.Fatal("unregister with the wrong cluster removed the entry")
	}
	mustRoute(t, rt, "T1")
	// A matching, current unregister removes it.
	if !rt.Unregister(Unregistration{ClusterName: "c1", BrokerName: "b1", BrokerAddr: "a:1", BrokerID: 0, ConnID: 1, SeenSeq: rt.Seq()}) {
		t.Fatal("matching unregister ignored")
	}
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("route left after unregister of the only broker")
	}
}

func TestRouteTable_DeleteTopic(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4), tc("T2", 4))))
	r2 := reg("b2", "b:1", 0, 2, topics(1, tc("T1", 4)))
	r2.ClusterName = "c2"
	rt.Register(r2)
	if rt.DeleteTopic("nope", "") {
		t.Fatal("deleted an unknown topic")
	}
	if !rt.DeleteTopic("T1", "c2") {
		t.Fatal("cluster-scoped delete removed nothing")
	}
	if r := mustRoute(t, rt, "T1"); len(r.QueueDatas) != 1 || r.QueueDatas[0].BrokerName != "b1" {
		t.Fatalf("T1 after delete in c2 = %+v", r)
	}
	if !rt.DeleteTopic("T1", "") {
		t.Fatal("delete removed nothing")
	}
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("T1 still routed")
	}
	mustRoute(t, rt, "T2")
	// An unchanged re-registration does not bring the topic back (only a
	// changed data version does, as in RocketMQ).
	rt.Register(reg("b1", "a:1", 0, 1, topics(1, tc("T1", 4), tc("T2", 4))))
	if _, ok := rt.Route("T1"); ok {
		t.Fatal("T1 came back without a data version change")
	}
}

func TestRouteTable_ClusterInfo(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	rt.Register(reg("b1", "a:1", 0, 1, topics(1)))
	rt.Register(reg("b1", "a:2", 1, 2, topics(1)))
	r := reg("b2", "b:1", 0, 3, topics(1))
	rt.Register(r)
	r = reg("b3", "c:1", 0, 4, topics(1))
	r.ClusterName = "c2"
	rt.Register(r)
	ci := rt.ClusterInfo()
	want := ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{
			"b1": {BrokerName: "b1", Cluster: "c1", BrokerAddrs: map[int64]string{0: "a:1", 1: "a:2"}},
			"b2": {BrokerName: "b2", Cluster: "c1", BrokerAddrs: map[int64]string{0: "b:1"}},
			"b3": {BrokerName: "b3", Cluster: "c2", BrokerAddrs: map[int64]string{0: "c:1"}},
		},
		ClusterAddrTable: map[string][]string{"c1": {"b1", "b2"}, "c2": {"b3"}},
	}
	if !reflect.DeepEqual(ci, want) {
		t.Fatalf("cluster info = %+v\nwant %+v", ci, want)
	}
}

func TestRouteTable_Concurrent(t *testing.T) {
	rt := NewRouteTable(TableConfig{Expiry: time.Hour})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				name := fmt.Sprintf("b%d", w)
				rt.Register(reg(name, fmt.Sprintf("%s:%d", name, i%3), int64(i%3), uint64(w*10+i%3+1), topics(int64(i), tc("T1", 4))))
				if i%50 == 0 {
					rt.ConnClosed(uint64(w*10 + 1))
				}
				rt.Expire()
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				if r, ok := rt.Route("T1"); ok {
					_ = r.AppendJSON(nil)
				}
				rt.ClusterInfo()
				rt.Topics()
			}
		}()
	}
	wg.Wait()
	r := mustRoute(t, rt, "T1")
	if len(r.BrokerDatas) != 4 {
		t.Fatalf("route after concurrent registration has %d groups, want 4", len(r.BrokerDatas))
	}
}

func TestRouteTable_StaleLeaderEpochRefused(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	withEpoch := func(r Registration, e int64) Registration { r.LeaderEpoch = e; return r }
	if _, err := rt.Register(withEpoch(reg("b1", "n0:1", 0, 1, topics(1, tc("T1", 4))), 3)); err != nil {
		t.Fatal(err)
	}
	// n1 wins an election in term 5 and registers as master.
	if _, err := rt.Register(withEpoch(reg("b1", "n1:1", 0, 2, topics(1, tc("T1", 4))), 5)); err != nil {
		t.Fatal(err)
	}
	// n0's delayed periodic registration as master (term 3) must not push n1 out.
	seq := rt.Seq()
	_, err := rt.Register(withEpoch(reg("b1", "n0:1", 0, 1, topics(1, tc("T1", 4))), 3))
	if !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale registration: err = %v", err)
	}
	if rt.Seq() != seq {
		t.Fatal("a refused registration changed the table's sequence")
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{0: "n1:1"}) {
		t.Fatalf("addrs = %v", got)
	}
	// As a slave n0 is welcome whatever its epoch; a Java broker (no epoch)
	// is not fenced; the same epoch re-registers fine.
	if _, err := rt.Register(withEpoch(reg("b1", "n0:1", 1, 1, topics(1)), 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Register(withEpoch(reg("b1", "n1:1", 0, 2, topics(1, tc("T1", 4))), 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Register(reg("b1", "n2:1", 0, 3, topics(1, tc("T1", 4)))); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(t, rt, "T1", "b1"); !reflect.DeepEqual(got, map[int64]string{0: "n2:1", 1: "n0:1"}) {
		t.Fatalf("addrs = %v", got)
	}
}

func TestRouteTable_AppendRouteJSONMatchesRoute(t *testing.T) {
	rt := NewRouteTable(TableConfig{})
	for g := range 20 {
		w := topics(1)
		for i := range 30 {
			if (i+g)%3 != 0 {
				name := fmt.Sprintf("T%d", i)
				w.TopicConfigTable[name] = tc(name, int32(g+1))
			}
		}
		name := fmt.Sprintf("b%02d", 19-g)
		for id := range g%4 + 1 {
			r := reg(name, fmt.Sprintf("10.%d.0.%d:10911", g, id), int64(id), uint64(g*4+id+1), w)
			if g == 5 && id == 1 {
				r.FilterServerList = []string{"f:1", "f:2"}
			}
			rt.Register(r)
		}
	}
	for i := range 31 {
		topic := fmt.Sprintf("T%d", i)
		for _, order := range []string{"", "b00:4;b01:4"} {
			got, ok := rt.AppendRouteJSON([]byte("prefix"), topic, order)
			r, wantOK := rt.Route(topic)
			if ok != wantOK {
				t.Fatalf("%s: found %v, Route found %v", topic, ok, wantOK)
			}
			if !ok {
				if string(got) != "prefix" {
					t.Fatalf("%s: buf changed on a miss: %q", topic, got)
				}
				continue
			}
			r.OrderTopicConf = order
			if want := r.AppendJSON([]byte("prefix")); string(got) != string(want) {
				t.Fatalf("%s:\n got %s\nwant %s", topic, got, want)
			}
		}
	}
	if r, _ := rt.Route("T2"); r.FilterServerTable == nil {
		t.Fatal("the filter server case was not exercised")
	}
}
