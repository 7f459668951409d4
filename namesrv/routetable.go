package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// Registration is one REGISTER_BROKER as the route table applies it.
type Registration struct {
	ClusterName  string
	BrokerName   string
	BrokerAddr   string
	BrokerID     int64
	HAServerAddr string
	// Topics is the broker's topic table; used only when BrokerID is 0 and
	// this is the first registration of the address or DataVersion changed.
	Topics TopicConfigSerializeWrapper
	// FilterServerList is kept per address and returned in routes.
	FilterServerList []string
	// Expiry overrides the table's expiry for this broker when > 0
	// (RocketMQ 5.x's heartbeatTimeoutMillis).
	Expiry time.Duration
	// ConnID identifies the connection the registration came on (0: none).
	// Closing that connection removes the broker at once.
	ConnID uint64
	// LeaderEpoch (raftmq's ext field leaderEpoch, e.g. the Raft term in
	// which the node became leader; 0 = not sent, as by Java brokers) fences
	// stale masters: an id-0 registration whose epoch is below the highest
	// epoch an id-0 registration of the group has carried is refused with
	// ErrStaleEpoch, so a deposed leader's late registration cannot push the
	// real leader out of the route.
	LeaderEpoch int64
}

// ErrStaleEpoch is returned by Register for an id-0 registration with an
// outdated LeaderEpoch.
var ErrStaleEpoch = errors.New("namesrv: stale leader epoch")

// RegisterResult is what a registration tells the broker: for a slave, the
// current master's address and HA (Raft) address; empty for a master or when
// the group has no master yet.
type RegisterResult struct {
	MasterAddr   string
	HAServerAddr string
	// Seq is the registration's sequence number in this table.
	Seq uint64
}

// Unregistration is one UNREGISTER_BROKER.
type Unregistration struct {
	ClusterName string
	BrokerName  string
	BrokerAddr  string
	BrokerID    int64
	// ConnID is the connection the request came on (0: unknown).
	ConnID uint64
	// SeenSeq is the table's Seq() when the request arrived. A registration
	// with a larger sequence number is newer than the unregister.
	SeenSeq uint64
}

// liveInfo is one registered address. Invariant: every liveInfo is listed in
// exactly one broker group's addrs under its id, and every listed address
// has a liveInfo.
type liveInfo struct {
	cluster     string
	brokerName  string
	brokerID    int64
	addr        string
	haAddr      string
	lastUpdate  time.Time
	expiry      time.Duration
	dataVersion DataVersion
	connID      uint64
	seq         uint64
	filters     []string
}

type brokerGroup struct {
	cluster string
	name    string
	addrs   map[int64]string
	// epoch is the highest LeaderEpoch an id-0 registration of this group
	// has carried (0: none). It lives as long as the group.
	epoch int64
}

// TableConfig configures a RouteTable.
type TableConfig struct {
	// Expiry is how long a broker stays without re-registering (default 120 s).
	Expiry time.Duration
	// DeleteTopicWithBrokerRegistration removes, on a changed master
	// registration, the topics of that group that are missing from its table
	// (RocketMQ 5.x's deleteTopicWithBrokerRegistration; default false).
	DeleteTopicWithBrokerRegistration bool
	// Now is the clock (default time.Now); tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// RouteTable is the name server's in-memory state: clusters, broker groups,
// live addresses and each topic's queues per group. It is safe for
// concurrent use; lookups share a read lock.
//
// Rules:
//   - Topic configs are taken from brokerId 0 only, and only on the first
//     registration of that address as id 0 or when its DataVersion changed.
//   - An address is listed once: registering under a new id (or a new group)
//     removes its old entry. A different address registering as id 0 of a
//     group displaces the previous id-0 address, which is dropped until it
//     registers again (normally as a slave).
//   - A broker is removed when its connection closes, when it has not
//     registered for its expiry, or by a matching UNREGISTER_BROKER (see
//     Unregister). A group left with no address loses its queue data.
type RouteTable struct {
	cfg TableConfig
	log *slog.Logger

	mu       sync.RWMutex
	seq      uint64
	clusters map[string]map[string]struct{} // cluster → brokerNames
	groups   map[string]*brokerGroup        // brokerName → group
	live     map[string]*liveInfo           // addr → info
	topics   map[string]map[string]QueueData
}

// NewRouteTable returns an empty table.
func NewRouteTable(cfg TableConfig) *RouteTable {
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultBrokerExpiry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RouteTable{
		cfg:      cfg,
		log:      log,
		clusters: map[string]map[string]struct{}{},
		groups:   map[string]*brokerGroup{},
		live:     map[string]*liveInfo{},
		topics:   map[string]map[string]QueueData{},
	}
}

// Seq returns the sequence number of the latest registration.
func (t *RouteTable) Seq() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.seq
}

// Register applies a broker registration. It fails only with ErrStaleEpoch.
func (t *RouteTable) Register(r Registration) (RegisterResult, error) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.groups[r.BrokerName]; g != nil && r.BrokerID == MasterID && r.LeaderEpoch > 0 && r.LeaderEpoch < g.epoch {
		holder := g.addrs[MasterID]
		t.log.Warn("namesrv: refusing master registration with a stale leader epoch", "brokerName", r.BrokerName,
			"addr", r.BrokerAddr, "epoch", r.LeaderEpoch, "groupEpoch", g.epoch, "master", holder)
		return RegisterResult{}, fmt.Errorf("%w: %s registers %s as brokerId 0 with leaderEpoch %d < %d (master %q)",
			ErrStaleEpoch, r.BrokerAddr, r.BrokerName, r.LeaderEpoch, g.epoch, holder)
	}
	t.seq++

	prev := t.live[r.BrokerAddr]
	first := prev == nil
	if prev != nil && (prev.brokerName != r.BrokerName || prev.brokerID != r.BrokerID || prev.cluster != r.ClusterName) {
		// The address moved: a slave became master, the old master a slave,
		// or the broker was renamed. Drop its old entry first.
		t.log.Info("namesrv: broker address changed role", "addr", r.BrokerAddr,
			"oldBrokerName", prev.brokerName, "oldBrokerId", prev.brokerID,
			"brokerName", r.BrokerName, "brokerId", r.BrokerID)
		t.removeLocked(prev, r.BrokerName)
		first = true
	}

	names := t.clusters[r.ClusterName]
	if names == nil {
		names = map[string]struct{}{}
		t.clusters[r.ClusterName] = names
	}
	names[r.BrokerName] = struct{}{}
	g := t.groups[r.BrokerName]
	if g == nil {
		g = &brokerGroup{cluster: r.ClusterName, name: r.BrokerName, addrs: map[int64]string{}}
		t.groups[r.BrokerName] = g
	}
	if g.cluster != r.ClusterName {
		// A group moved to another cluster: follow the latest registration.
		if old := t.clusters[g.cluster]; old != nil {
			delete(old, g.name)
			if len(old) == 0 {
				delete(t.clusters, g.cluster)
			}
		}
		g.cluster = r.ClusterName
	}
	if holder, ok := g.addrs[r.BrokerID]; ok && holder != r.BrokerAddr {
		// Another address held this id (for id 0: the old leader). It is no
		// longer listed; it must register again to come back.
		t.log.Info("namesrv: broker id taken over", "brokerName", r.BrokerName, "brokerId", r.BrokerID,
			"oldAddr", holder, "newAddr", r.BrokerAddr)
		if li := t.live[holder]; li != nil {
			t.removeLocked(li, r.BrokerName)
		} else {
			delete(g.addrs, r.BrokerID)
		}
	}
	g.addrs[r.BrokerID] = r.BrokerAddr
	if r.BrokerID == MasterID && r.LeaderEpoch > g.epoch {
		g.epoch = r.LeaderEpoch
	}

	li := prev
	if first {
		li = &liveInfo{}
	}
	changed := first || li.dataVersion != r.Topics.DataVersion
	*li = liveInfo{
		cluster:     r.ClusterName,
		brokerName:  r.BrokerName,
		brokerID:    r.BrokerID,
		addr:        r.BrokerAddr,
		haAddr:      r.HAServerAddr,
		lastUpdate:  now,
		expiry:      r.Expiry,
		dataVersion: r.Topics.DataVersion,
		connID:      r.ConnID,
		seq:         t.seq,
		filters:     r.FilterServerList,
	}
	t.live[r.BrokerAddr] = li

	if r.BrokerID == MasterID && changed {
		t.applyTopicsLocked(r.BrokerName, r.Topics.TopicConfigTable)
	}

	res := RegisterResult{Seq: t.seq}
	if r.BrokerID != MasterID {
		if m, ok := g.addrs[MasterID]; ok {
			if ml := t.live[m]; ml != nil {
				res.MasterAddr = m
				res.HAServerAddr = ml.haAddr
			}
		}
	}
	return res, nil
}

func (t *RouteTable) applyTopicsLocked(brokerName string, table map[string]TopicConfig) {
	for name, tc := range table {
		if tc.TopicName != "" {
			name = tc.TopicName
		}
		qds := t.topics[name]
		if qds == nil {
			qds = map[string]QueueData{}
			t.topics[name] = qds
		}
		qds[brokerName] = QueueData{
			BrokerName:     brokerName,
			Perm:           tc.Perm,
			ReadQueueNums:  tc.ReadQueueNums,
			TopicSysFlag:   tc.TopicSysFlag,
			WriteQueueNums: tc.WriteQueueNums,
		}
	}
	if !t.cfg.DeleteTopicWithBrokerRegistration {
		return
	}
	for name, qds := range t.topics {
		if _, ok := qds[brokerName]; !ok {
			continue
		}
		if _, ok := table[name]; ok {
			continue
		}
		delete(qds, brokerName)
		if len(qds) == 0 {
			delete(t.topics, name)
		}
	}
}

// removeLocked drops one live address: its group entry, the group and its
// queue data when it was the last address, and the cluster's name when the
// group is gone. Group keep is never dropped (the caller is about to add an
// address to it, so consumers never see its queues vanish mid-switch).
func (t *RouteTable) removeLocked(li *liveInfo, keep string) {
	delete(t.live, li.addr)
	g := t.groups[li.brokerName]
	if g == nil {
		return
	}
	if a, ok := g.addrs[li.brokerID]; ok && a == li.addr {
		delete(g.addrs, li.brokerID)
	}
	if len(g.addrs) > 0 || g.name == keep {
		return
	}
	delete(t.groups, g.name)
	if names := t.clusters[g.cluster]; names != nil {
		delete(names, g.name)
		if len(names) == 0 {
			delete(t.clusters, g.cluster)
		}
	}
	for topic, qds := range t.topics {
		if _, ok := qds[g.name]; ok {
			delete(qds, g.name)
			if len(qds) == 0 {
				delete(t.topics, topic)
			}
		}
	}
	t.log.Info("namesrv: broker group has no address left; its queues are removed", "brokerName", g.name)
}

// Unregister applies an UNREGISTER_BROKER and reports whether an entry was
// removed. The late-unregister rule: the entry is removed only if
//   - the address is registered with the same brokerName and brokerId (and
//     cluster, when given), and
//   - its registration is not newer than the unregister: its sequence number
//     is ≤ u.SeenSeq (taken when the request arrived), and, when both are
//     known, it came on the same connection as the unregister (a
//     registration on another connection is another session of the broker,
//     e.g. after a restart or reconnect, and outlives a stale unregister).
func (t *RouteTable) Unregister(u Unregistration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	li := t.live[u.BrokerAddr]
	if li == nil || li.brokerName != u.BrokerName || li.brokerID != u.BrokerID {
		return false
	}
	if u.ClusterName != "" && li.cluster != u.ClusterName {
		return false
	}
	if li.seq > u.SeenSeq {
		t.log.Info("namesrv: ignoring unregister older than the registration", "addr", u.BrokerAddr,
			"brokerName", u.BrokerName, "brokerId", u.BrokerID)
		return false
	}
	if li.connID != 0 && u.ConnID != 0 && li.connID != u.ConnID {
		t.log.Info("namesrv: ignoring unregister from another connection than the registration",
			"addr", u.BrokerAddr, "brokerName", u.BrokerName, "brokerId", u.BrokerID)
		return false
	}
	t.removeLocked(li, "")
	t.log.Info("namesrv: broker unregistered", "addr", u.BrokerAddr, "brokerName", u.BrokerName, "brokerId", u.BrokerID)
	return true
}

// ConnClosed removes every broker that registered over connection id and
// returns their addresses.
func (t *RouteTable) ConnClosed(id uint64) []string {
	if id == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []string
	for _, li := range t.live {
		if li.connID == id {
			gone = append(gone, li.addr)
			t.removeLocked(li, "")
		}
	}
	for _, a := range gone {
		t.log.Info("namesrv: broker connection closed; broker removed", "addr", a)
	}
	return gone
}

// Expire removes brokers whose last registration is older than their expiry
// and returns their addresses.
func (t *RouteTable) Expire() []string {
	gone, _ := t.ExpireConns()
	return gone
}

// ExpireConns is Expire that also returns the connections the expired brokers
// registered over and that no remaining broker uses, for the server to close
// (as RocketMQ closes an expired broker's channel: a half-open connection
// does not linger until its idle timeout).
func (t *RouteTable) ExpireConns() (gone []string, conns []uint64) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		for _, li := range t.live {
			conns = slices.DeleteFunc(conns, func(id uint64) bool { return id == li.connID })
		}
	}()
	for _, li := range t.live {
		exp := li.expiry
		if exp <= 0 {
			exp = t.cfg.Expiry
		}
		if now.Sub(li.lastUpdate) >= exp {
			gone = append(gone, li.addr)
			if li.connID != 0 && !slices.Contains(conns, li.connID) {
				conns = append(conns, li.connID)
			}
			t.removeLocked(li, "")
			t.log.Warn("namesrv: broker expired", "addr", li.addr, "brokerName", li.brokerName,
				"brokerId", li.brokerID, "silentFor", now.Sub(li.lastUpdate).String())
		}
	}
	return gone, conns
}

// QueryDataVersion reports whether dv differs from the version the table
// holds for addr (true when addr is unknown), returns the held version (nil
// when unknown), and refreshes addr's liveness like a registration does.
func (t *RouteTable) QueryDataVersion(addr string, dv DataVersion) (changed bool, held *DataVersion) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	li := t.live[addr]
	if li == nil {
		return true, nil
	}
	li.lastUpdate = now
	v := li.dataVersion
	return v != dv, &v
}

// Route returns the route of topic, or false when the topic is unknown or
// none of its groups is registered.
func (t *RouteTable) Route(topic string) (TopicRouteData, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	qds := t.topics[topic]
	if len(qds) == 0 {
		return TopicRouteData{}, false
	}
	r := TopicRouteData{
		QueueDatas:  make([]QueueData, 0, len(qds)),
		BrokerDatas: make([]BrokerData, 0, len(qds)),
	}
	for name, qd := range qds {
		r.QueueDatas = append(r.QueueDatas, qd)
		g := t.groups[name]
		if g == nil {
			continue
		}
		addrs := make(map[int64]string, len(g.addrs))
		for id, a := range g.addrs {
			addrs[id] = a
			if li := t.live[a]; li != nil && len(li.filters) > 0 {
				if r.FilterServerTable == nil {
					r.FilterServerTable = map[string][]string{}
				}
				r.FilterServerTable[a] = append([]string(nil), li.filters...)
			}
		}
		r.BrokerDatas = append(r.BrokerDatas, BrokerData{BrokerName: name, Cluster: g.cluster, BrokerAddrs: addrs})
	}
	if len(r.BrokerDatas) == 0 {
		return TopicRouteData{}, false
	}
	sort.Slice(r.QueueDatas, func(i, j int) bool { return r.QueueDatas[i].BrokerName < r.QueueDatas[j].BrokerName })
	sort.Slice(r.BrokerDatas, func(i, j int) bool { return r.BrokerDatas[i].BrokerName < r.BrokerDatas[j].BrokerName })
	return r, true
}

// ClusterInfo returns every group and every cluster's group names.
func (t *RouteTable) ClusterInfo() ClusterInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ci := ClusterInfo{
		BrokerAddrTable:  make(map[string]BrokerData, len(t.groups)),
		ClusterAddrTable: make(map[string][]string, len(t.clusters)),
	}
	for name, g := range t.groups {
		addrs := make(map[int64]string, len(g.addrs))
		for id, a := range g.addrs {
			addrs[id] = a
		}
		ci.BrokerAddrTable[name] = BrokerData{BrokerName: name, Cluster: g.cluster, BrokerAddrs: addrs}
	}
	for c, names := range t.clusters {
		l := make([]string, 0, len(names))
		for n := range names {
			l = append(l, n)
		}
		sort.Strings(l)
		ci.ClusterAddrTable[c] = l
	}
	return ci
}

// Topics returns every topic name, sorted.
func (t *RouteTable) Topics() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	l := make([]string, 0, len(t.topics))
	for n := range t.topics {
		l = append(l, n)
	}
	sort.Strings(l)
	return l
}

// DeleteTopic removes topic's queue data, only from the groups of cluster
// when cluster is not empty. It reports whether anything was removed.
func (t *RouteTable) DeleteTopic(topic, cluster string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	qds := t.topics[topic]
	if qds == nil {
		return false
	}
	if cluster == "" {
		delete(t.topics, topic)
		return true
	}
	removed := false
	for name := range t.clusters[cluster] {
		if _, ok := qds[name]; ok {
			delete(qds, name)
			removed = true
		}
	}
	if len(qds) == 0 {
		delete(t.topics, topic)
	}
	return removed
}

// Brokers returns the number of live broker addresses.
func (t *RouteTable) Brokers() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.live)
}

// SetWritePerm clears (writable false) the write bit of every queue the
// group brokerName holds, or sets the queues to read+write (writable true),
// as RocketMQ's WIPE_/ADD_WRITE_PERM_OF_BROKER do; it returns how many
// topics it touched. The next changed-version master registration replaces
// the perms again.
func (t *RouteTable) SetWritePerm(brokerName string, writable bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, qds := range t.topics {
		qd, ok := qds[brokerName]
		if !ok {
			continue
		}
		if writable {
			qd.Perm = PermRead | PermWrite
		} else {
			qd.Perm &^= PermWrite
		}
		qds[brokerName] = qd
		n++
	}
	return n
}

// TopicsByCluster returns, sorted, the topics with queues on any group of
// cluster.
func (t *RouteTable) TopicsByCluster(cluster string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := t.clusters[cluster]
	l := []string{}
	for topic, qds := range t.topics {
		for n := range names {
			if _, ok := qds[n]; ok {
				l = append(l, topic)
				break
			}
		}
	}
	sort.Strings(l)
	return l
}

// AppendRouteJSON appends topic's route JSON to buf, byte for byte what
// Route followed by AppendJSON (with OrderTopicConf set to orderTopicConf)
// produces, without building the intermediate TopicRouteData. It reports
// false, leaving buf as it was, when Route would.
func (t *RouteTable) AppendRouteJSON(buf []byte, topic, orderTopicConf string) ([]byte, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	qds := t.topics[topic]
	if len(qds) == 0 {
		return buf, false
	}
	var namesArr [16]string
	names := namesArr[:0]
	for name := range qds {
		names = append(names, name)
	}
	sortStrings(names)
	start := len(buf)
	buf = append(buf, `{"brokerDatas":[`...)
	n := 0
	hasFilters := false
	for _, name := range names {
		g := t.groups[name]
		if g == nil {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendBrokerData(buf, &BrokerData{BrokerName: name, Cluster: g.cluster, BrokerAddrs: g.addrs})
		for _, a := range g.addrs {
			if li := t.live[a]; li != nil && len(li.filters) > 0 {
				hasFilters = true
			}
		}
	}
	if n == 0 {
		return buf[:start], false
	}
	buf = append(buf, `],"filterServerTable":`...)
	if hasFilters {
		fst := map[string][]string{}
		for _, name := range names {
			if g := t.groups[name]; g != nil {
				for _, a := range g.addrs {
					if li := t.live[a]; li != nil && len(li.filters) > 0 {
						fst[a] = li.filters
					}
				}
			}
		}
		b, _ := json.Marshal(fst)
		buf = append(buf, b...)
	} else {
		buf = append(buf, "{}"...)
	}
	if orderTopicConf != "" {
		buf = append(buf, `,"orderTopicConf":`...)
		buf = appendJSONString(buf, orderTopicConf)
	}
	buf = append(buf, `,"queueDatas":[`...)
	for i, name := range names {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendQueueData(buf, qds[name])
	}
	return append(buf, "]}"...), true
}

func sortStrings(s []string) {
	if len(s) > 16 {
		sort.Strings(s)
		return
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
