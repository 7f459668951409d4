package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// core is the machinery every producer, consumer and admin client owns one of: the
// transport client, the route cache, the name-server list and the background loops.
// Nothing is shared between two clients, so Close of one never disturbs another.
type core struct {
	cfg      ClientConfig
	log      *slog.Logger
	clientID string
	tc       *transport.Client

	mu     sync.Mutex
	routes map[string]*topicRoute
	locks  map[string]*sync.Mutex // per-topic refresh serialisation
	nsNext atomic.Int64           // index of the name server to try first

	// heartbeat returns the HEART_BEAT body and the addresses to send it to; nil = none.
	heartbeat func() (*rmqbody.HeartbeatData, []string)

	failed    map[string]time.Time // address → last connection failure (guarded by mu)
	hbNow     chan struct{}        // a heartbeat is due now (a new broker address appeared)
	closing   chan struct{}
	base      context.Context // cancelled by close
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup
	closed    atomic.Bool
}

// topicRoute is one topic's route as last fetched.
type topicRoute struct {
	data    *namesrv.TopicRouteData
	brokers map[string]map[int64]string // brokerName → brokerId → addr
	write   []MessageQueue              // writable queues of groups with a master
	read    []MessageQueue              // readable queues
	fetched time.Time
}

func (r *topicRoute) master(brokerName string) string { return r.brokers[brokerName][0] }

// anyAddr returns an address of the group: the master, else the lowest-id node.
func (r *topicRoute) anyAddr(brokerName string) string {
	addrs := r.brokers[brokerName]
	if a := addrs[0]; a != "" {
		return a
	}
	ids := make([]int64, 0, len(addrs))
	for id := range addrs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) == 0 {
		return ""
	}
	return addrs[ids[0]]
}

func newTopicRoute(topic string, d *namesrv.TopicRouteData) *topicRoute {
	r := &topicRoute{data: d, brokers: map[string]map[int64]string{}, fetched: time.Now()}
	for _, b := range d.BrokerDatas {
		m := make(map[int64]string, len(b.BrokerAddrs))
		for id, a := range b.BrokerAddrs {
			m[id] = a
		}
		r.brokers[b.BrokerName] = m
	}
	for _, q := range d.QueueDatas {
		if q.Perm&namesrv.PermWrite != 0 && r.brokers[q.BrokerName][0] != "" {
			for i := range int(q.WriteQueueNums) {
				r.write = append(r.write, MessageQueue{Topic: topic, BrokerName: q.BrokerName, QueueID: i})
			}
		}
		if q.Perm&namesrv.PermRead != 0 {
			for i := range int(q.ReadQueueNums) {
				r.read = append(r.read, MessageQueue{Topic: topic, BrokerName: q.BrokerName, QueueID: i})
			}
		}
	}
	sortQueues(r.write)
	sortQueues(r.read)
	return r
}

// derive is the route a producer uses for a topic being auto-created from this (TBW102's)
// route: the same groups, at most maxQueues queues each.
func (r *topicRoute) derive(topic string, maxQueues int32) *topicRoute {
	d := *r.data
	d.QueueDatas = make([]namesrv.QueueData, len(r.data.QueueDatas))
	for i, q := range r.data.QueueDatas {
		q.ReadQueueNums = min(q.ReadQueueNums, maxQueues)
		q.WriteQueueNums = min(q.WriteQueueNums, maxQueues)
		d.QueueDatas[i] = q
	}
	out := newTopicRoute(topic, &d)
	out.fetched = r.fetched
	return out
}

// newAddress reports whether r lists an address (any id) that old did not.
func newAddress(old, r *topicRoute) bool {
	known := map[string]bool{}
	for _, addrs := range old.brokers {
		for _, a := range addrs {
			known[a] = true
		}
	}
	for _, addrs := range r.brokers {
		for _, a := range addrs {
			if !known[a] {
				return true
			}
		}
	}
	return false
}

func newCore(cfg ClientConfig, handler transport.Handler) (*core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	for i, a := range cfg.NameServers {
		cfg.NameServers[i] = strings.TrimSpace(a)
	}
	tc, err := transport.NewClient(transport.ClientConfig{
		DialTimeout: cfg.DialTimeout,
		Handler:     handler,
		Logger:      cfg.Logger.With("component", "transport"),
	})
	if err != nil {
		return nil, fmt.Errorf("client: transport: %w", err)
	}
	c := &core{
		cfg:      cfg,
		log:      cfg.Logger,
		clientID: localIP().String() + "@" + cfg.InstanceName,
		tc:       tc,
		routes:   map[string]*topicRoute{},
		locks:    map[string]*sync.Mutex{},
		closing:  make(chan struct{}),
		hbNow:    make(chan struct{}, 1),
		failed:   map[string]time.Time{},
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	c.log = c.log.With("clientID", c.clientID)
	return c, nil
}

// start launches the route-refresh and heartbeat loops.
func (c *core) start() {
	c.goFunc(c.routeLoop)
	c.goFunc(c.heartbeatLoop)
}

func (c *core) goFunc(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// close stops the loops and closes every connection; idempotent.
func (c *core) close() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.closing)
		c.cancel()
		c.wg.Wait()
		_ = c.tc.Close()
	})
}

// ctx returns a context cancelled when the core closes (and after d, when d > 0).
func (c *core) ctx(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if d > 0 {
		ctx, cancel = context.WithTimeout(parent, d)
	} else {
		ctx, cancel = context.WithCancel(parent)
	}
	stop := context.AfterFunc(c.base, cancel)
	return ctx, func() { stop(); cancel() }
}

// sleep waits d, or until ctx or the core ends; false when it ended.
func (c *core) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.closing:
		return false
	}
}

// invoke sends req to addr with the request timeout (or ctx's, when shorter).
func (c *core) invoke(ctx context.Context, addr string, req *transport.Command, timeout time.Duration) (*transport.Command, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if timeout <= 0 {
		timeout = c.cfg.RequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.tc.Invoke(ctx, addr, req)
	if err != nil && c.closed.Load() {
		return nil, ErrClosed
	}
	return resp, err
}

// suspectFor is how long an address that failed at the connection level is avoided while
// the route still lists it: long enough for the name server to notice a dead leader and list
// the new one, short enough that a glitch on a live broker costs little.
const suspectFor = time.Second

// markFailed records a connection-level failure of addr; markOK clears it.
func (c *core) markFailed(addr string) {
	c.mu.Lock()
	c.failed[addr] = time.Now()
	c.mu.Unlock()
}

func (c *core) markOK(addr string) {
	c.mu.Lock()
	if _, ok := c.failed[addr]; ok {
		delete(c.failed, addr)
	}
	c.mu.Unlock()
}

func (c *core) suspect(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.failed[addr]
	if ok && time.Since(t) >= suspectFor {
		delete(c.failed, addr)
		return false
	}
	return ok
}

// ---- routes ----

// route returns topic's cached route, fetching it when unknown.
func (c *core) route(ctx context.Context, topic string) (*topicRoute, error) {
	c.mu.Lock()
	r := c.routes[topic]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	return c.refreshRoute(ctx, topic, time.Time{})
}

// cachedRoute returns the cached route or nil.
func (c *core) cachedRoute(topic string) *topicRoute {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routes[topic]
}

// refreshRoute fetches topic's route now unless one was fetched after since (so that many
// callers failing at once cause one lookup). The last good route stays cached when every
// name server fails.
func (c *core) refreshRoute(ctx context.Context, topic string, since time.Time) (*topicRoute, error) {
	c.mu.Lock()
	l := c.locks[topic]
	if l == nil {
		l = &sync.Mutex{}
		c.locks[topic] = l
	}
	c.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	if r := c.cachedRoute(topic); r != nil && !since.IsZero() && r.fetched.After(since) {
		return r, nil
	}
	d, err := c.fetchRoute(ctx, topic)
	if err != nil {
		if errors.Is(err, ErrTopicNotExist) {
			c.mu.Lock()
			delete(c.routes, topic)
			c.mu.Unlock()
		}
		return nil, err
	}
	r := newTopicRoute(topic, d)
	c.mu.Lock()
	old := c.routes[topic]
	c.routes[topic] = r
	c.mu.Unlock()
	if old != nil && newAddress(old, r) {
		// A broker node the brokers' consumer tables may not know yet: tell it now rather
		// than at the next HeartbeatInterval.
		select {
		case c.hbNow <- struct{}{}:
		default:
		}
	}
	return r, nil
}

// fetchRoute asks the name servers in turn, starting with the last one that answered.
func (c *core) fetchRoute(ctx context.Context, topic string) (*namesrv.TopicRouteData, error) {
	var errs []string
	notExist := false
	n := len(c.cfg.NameServers)
	start := int(c.nsNext.Load())
	for i := range n {
		idx := (start + i) % n
		addr := c.cfg.NameServers[idx]
		actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		d, err := namesrv.GetRouteInfo(actx, c.tc, addr, topic)
		cancel()
		if err == nil {
			c.nsNext.Store(int64(idx))
			return d, nil
		}
		if c.closed.Load() {
			return nil, ErrClosed
		}
		if errors.Is(err, namesrv.ErrTopicNotExist) {
			notExist = true
			c.nsNext.Store(int64(idx))
			continue
		}
		errs = append(errs, addr+": "+err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	if notExist {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotExist, topic)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("client: route of %s: %w (tried %s)", topic, err, strings.Join(errs, "; "))
	}
	return nil, fmt.Errorf("%w: route of %s: tried %s", ErrNameServer, topic, strings.Join(errs, "; "))
}

// routeLoop refreshes every cached route each RouteRefreshInterval.
func (c *core) routeLoop() {
	t := time.NewTicker(c.cfg.RouteRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		c.mu.Lock()
		topics := make([]string, 0, len(c.routes))
		for tp := range c.routes {
			topics = append(topics, tp)
		}
		c.mu.Unlock()
		for _, tp := range topics {
			ctx, cancel := c.ctx(context.Background(), 0)
			if _, err := c.refreshRoute(ctx, tp, time.Now().Add(-c.cfg.RouteRefreshInterval/2)); err != nil && !errors.Is(err, ErrClosed) {
				c.log.Warn("route refresh failed; keeping the last good route", "topic", tp, "err", err)
			}
			cancel()
		}
	}
}

// masterOf finds brokerName's master address in any cached route.
func (c *core) masterOf(brokerName string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *topicRoute
	for _, r := range c.routes {
		if _, ok := r.brokers[brokerName]; ok && (best == nil || r.fetched.After(best.fetched)) {
			best = r
		}
	}
	if best == nil {
		return ""
	}
	return best.master(brokerName)
}

// anyAddrOf returns the master of brokerName, else any node of it.
func (c *core) anyAddrOf(brokerName string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *topicRoute
	for _, r := range c.routes {
		if _, ok := r.brokers[brokerName]; ok && (best == nil || r.fetched.After(best.fetched)) {
			best = r
		}
	}
	if best == nil {
		return ""
	}
	return best.anyAddr(brokerName)
}

// brokerAddrs returns every address (all ids) of the given topics' routes, sorted.
func (c *core) brokerAddrs(topics []string, mastersOnly bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := map[string]bool{}
	for _, tp := range topics {
		r := c.routes[tp]
		if r == nil {
			continue
		}
		for _, addrs := range r.brokers {
			for id, a := range addrs {
				if !mastersOnly || id == 0 {
					set[a] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// masterFor waits (polling the name servers) until brokerName has a master, or ctx ends.
func (c *core) masterFor(ctx context.Context, topic, brokerName string) (string, error) {
	delay := 50 * time.Millisecond
	for {
		if a := c.masterOf(brokerName); a != "" {
			return a, nil
		}
		if _, err := c.refreshRoute(ctx, topic, time.Now()); err != nil && !Retryable(err) {
			return "", err
		}
		if a := c.masterOf(brokerName); a != "" {
			return a, nil
		}
		if !c.sleep(ctx, delay) {
			if c.closed.Load() {
				return "", ErrClosed
			}
			return "", fmt.Errorf("%w: broker group %s has no master: %w", ErrNoRoute, brokerName, ctx.Err())
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// ---- heartbeats ----

func (c *core) heartbeatLoop() {
	// The first heartbeat goes out at once (Start sends one synchronously too).
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		case <-c.hbNow:
		}
		ctx, cancel := c.ctx(context.Background(), 0)
		c.sendHeartbeats(ctx)
		cancel()
	}
}

// sendHeartbeats sends HEART_BEAT to every address the owner names; it reports how many
// brokers accepted it.
func (c *core) sendHeartbeats(parent context.Context) int {
	if c.heartbeat == nil {
		return 0
	}
	hb, addrs := c.heartbeat()
	if hb == nil || len(addrs) == 0 {
		return 0
	}
	body, err := json.Marshal(hb)
	if err != nil {
		c.log.Error("encode heartbeat", "err", err)
		return 0
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := c.ctx(parent, 0)
			defer cancel()
			resp, err := c.invoke(ctx, a, transport.NewRequest(transport.HeartBeat, nil, body), 0)
			switch {
			case err != nil:
				c.log.Debug("heartbeat failed", "broker", a, "err", err)
			case resp.ResponseCode() != transport.Success:
				c.log.Debug("heartbeat refused", "broker", a, "err", replyError("HEART_BEAT", a, resp))
			default:
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// pickRandom returns a random element of s ("" when empty).
func pickRandom(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[rand.IntN(len(s))]
}
