package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/raftmq/raftmq/transport"
)

// Server is a running name server: a RouteTable and a KVStore behind a
// transport.Server, and one goroutine that expires silent brokers.
type Server struct {
	cfg   Config
	log   *slog.Logger
	table *RouteTable
	kv    *KVStore
	mux   *transport.Mux
	ts    *transport.Server

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, listens, and starts serving and expiring brokers.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := OpenKVStore(cfg.KVConfigPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg,
		log: log,
		table: NewRouteTable(TableConfig{
			Expiry:                            cfg.BrokerChannelExpiredTime,
			DeleteTopicWithBrokerRegistration: cfg.DeleteTopicWithBrokerRegistration,
			Logger:                            log,
		}),
		kv:   kv,
		mux:  transport.NewMux(),
		stop: make(chan struct{}),
	}
	s.register()
	idle := cfg.ServerChannelMaxIdleTime
	if idle == 0 {
		idle = -1 // transport: < 0 disables
	}
	ts, err := transport.NewServer(transport.ServerConfig{
		Addr:        cfg.addr(),
		IdleTimeout: idle,
		OnConnClose: s.connClosed,
		Logger:      log,
	}, s.mux)
	if err != nil {
		return nil, fmt.Errorf("namesrv: %w", err)
	}
	s.ts = ts
	if err := ts.Start(); err != nil {
		ts.Close(context.Background()) //nolint:errcheck // already failing
		return nil, fmt.Errorf("namesrv: start: %w", err)
	}
	s.wg.Add(1)
	go s.scanLoop()
	log.Info("namesrv: serving", "addr", ts.Addr().String(),
		"brokerChannelExpiredTime", cfg.BrokerChannelExpiredTime.String(),
		"scanNotActiveBrokerInterval", cfg.ScanNotActiveBrokerInterval.String())
	return s, nil
}

// Addr returns the address the server listens on (ip:port).
func (s *Server) Addr() string { return s.ts.Addr().String() }

// Table returns the route table (for tests and embedding).
func (s *Server) Table() *RouteTable { return s.table }

// KV returns the KV config store.
func (s *Server) KV() *KVStore { return s.kv }

// Close stops the expiry scanner and the transport server (see
// transport.Server.Close for ctx). It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.closeErr = s.ts.Close(ctx)
		s.wg.Wait()
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("namesrv: close: %w", s.closeErr)
		}
		s.log.Info("namesrv: closed")
	})
	return s.closeErr
}

func (s *Server) scanLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ScanNotActiveBrokerInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			gone, conns := s.table.ExpireConns()
			s.scanned(gone) // metrics.go
			s.closeConns(conns)
		}
	}
}

// closeConns closes the connections with the given ids (expired brokers').
func (s *Server) closeConns(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	for _, c := range s.ts.Conns() {
		if slices.Contains(ids, c.ID()) {
			s.log.Info("namesrv: closing an expired broker's connection", "conn", c.ID(), "remote", c.RemoteAddr())
			_ = c.Close()
		}
	}
}

func (s *Server) connClosed(c *transport.Conn) {
	s.table.ConnClosed(c.ID())
}

func (s *Server) register() {
	h := func(code transport.RequestCode, f transport.HandlerFunc) { s.mux.HandleFunc(code, f) }
	h(transport.RegisterBroker, countRegistrations(s.handleRegister))
	h(transport.UnregisterBroker, s.handleUnregister)
	h(transport.GetRouteInfoByTopic, countRouteQueries(s.handleRoute))
	h(transport.GetBrokerClusterInfo, s.handleClusterInfo)
	h(transport.GetAllTopicListFromNameServer, s.handleTopicList)
	h(transport.DeleteTopicInNamesrv, s.handleDeleteTopic)
	h(transport.QueryDataVersion, s.handleQueryDataVersion)
	h(transport.PutKVConfig, s.handlePutKV)
	h(transport.GetKVConfig, s.handleGetKV)
	h(transport.DeleteKVConfig, s.handleDeleteKV)
	h(transport.GetKVListByNamespace, s.handleKVList)
	h(transport.WipeWritePermOfBroker, s.handleWritePerm(false))
	h(transport.AddWritePermOfBroker, s.handleWritePerm(true))
	h(transport.GetTopicsByCluster, s.handleTopicsByCluster)
}

// badRequest answers SYSTEM_ERROR with a remark naming the problem.
func badRequest(req *transport.Command, err error) *transport.Command {
	return transport.NewResponse(transport.SystemError,
		fmt.Sprintf("namesrv: %s: %v", transport.RequestCode(req.Code), err))
}

// requireExt returns the ext fields named, or an error naming the first
// missing one.
func requireExt(req *transport.Command, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		v, ok := req.ExtFields[k]
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: %s", transport.ErrMissingField, k)
		}
		out[i] = v
	}
	return out, nil
}

func optBool(req *transport.Command, key string) (bool, error) {
	if v, ok := req.ExtFields[key]; !ok || v == "" {
		return false, nil
	}
	return req.ExtBool(key)
}

func optInt64(req *transport.Command, key string) (int64, error) {
	if v, ok := req.ExtFields[key]; !ok || v == "" {
		return 0, nil
	}
	return req.ExtInt64(key)
}

func ok(body []byte) *transport.Command {
	r := transport.NewResponse(transport.Success, "")
	r.Body = body
	return r
}

func (s *Server) handleRegister(_ context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "brokerName", "brokerAddr", "clusterName")
	if err != nil {
		return badRequest(req, err)
	}
	id, err := req.ExtInt64("brokerId")
	if err != nil {
		return badRequest(req, err)
	}
	if id < 0 {
		return badRequest(req, fmt.Errorf("%w: brokerId=%d must not be negative", transport.ErrBadField, id))
	}
	compressed, err := optBool(req, "compressed")
	if err != nil {
		return badRequest(req, err)
	}
	crc, err := optInt64(req, "bodyCrc32")
	if err != nil {
		return badRequest(req, err)
	}
	if crc != 0 {
		if got := int64(crc32.ChecksumIEEE(req.Body) & 0x7FFFFFFF); got != crc {
			return badRequest(req, fmt.Errorf("bodyCrc32=%d does not match the body's %d", crc, got))
		}
	}
	hbMillis, err := optInt64(req, "heartbeatTimeoutMillis")
	if err != nil {
		return badRequest(req, err)
	}
	epoch, err := optInt64(req, "leaderEpoch")
	if err != nil {
		return badRequest(req, err)
	}
	body, err := DecodeRegisterBrokerBody(req.Body, compressed)
	if err != nil {
		return badRequest(req, err)
	}
	r := Registration{
		ClusterName:      v[2],
		BrokerName:       v[0],
		BrokerAddr:       v[1],
		BrokerID:         id,
		HAServerAddr:     req.Ext("haServerAddr"),
		Topics:           body.TopicConfigSerializeWrapper,
		FilterServerList: body.FilterServerList,
		LeaderEpoch:      epoch,
	}
	if hbMillis > 0 {
		r.Expiry = time.Duration(hbMillis) * time.Millisecond
	}
	if conn != nil {
		r.ConnID = conn.ID()
	}
	res, err := s.table.Register(r)
	if err != nil {
		return transport.NewResponse(transport.SystemError, err.Error())
	}
	if conn != nil && conn.Err() != nil {
		// The connection closed while we registered; OnConnClose may have
		// run before the entry existed, so drop it here.
		s.table.ConnClosed(conn.ID())
	}
	s.log.Debug("namesrv: broker registered", "cluster", r.ClusterName, "brokerName", r.BrokerName,
		"brokerId", r.BrokerID, "addr", r.BrokerAddr, "topics", len(r.Topics.TopicConfigTable))
	resp := ok(nil)
	if res.MasterAddr != "" {
		resp.SetExt("masterAddr", res.MasterAddr)
		resp.SetExt("haServerAddr", res.HAServerAddr)
	}
	if s.cfg.ReturnOrderTopicConfigToBroker {
		if m := s.kv.List(NamespaceOrderTopicConfig); len(m) > 0 {
			resp.Body, _ = json.Marshal(KVTable{Table: m})
		}
	}
	return resp
}

func (s *Server) handleUnregister(_ context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	seen := s.table.Seq() // before anything else: registrations after this are newer
	v, err := requireExt(req, "brokerName", "brokerAddr")
	if err != nil {
		return badRequest(req, err)
	}
	id, err := req.ExtInt64("brokerId")
	if err != nil {
		return badRequest(req, err)
	}
	u := Unregistration{ClusterName: req.Ext("clusterName"), BrokerName: v[0], BrokerAddr: v[1], BrokerID: id, SeenSeq: seen}
	if conn != nil {
		u.ConnID = conn.ID()
	}
	if !s.table.Unregister(u) {
		r := ok(nil)
		r.Remark = "no matching current registration; nothing removed"
		return r
	}
	return ok(nil)
}

func (s *Server) handleRoute(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "topic")
	if err != nil {
		return badRequest(req, err)
	}
	orderConf := ""
	if s.cfg.OrderMessageEnable {
		orderConf, _ = s.kv.Get(NamespaceOrderTopicConfig, v[0])
	}
	body, found := s.table.AppendRouteJSON(make([]byte, 0, 512), v[0], orderConf)
	if !found {
		return transport.NewResponse(transport.TopicNotExist, "No topic route info in name server for the topic: "+v[0])
	}
	return ok(body)
}

func (s *Server) handleClusterInfo(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	body, err := json.Marshal(s.table.ClusterInfo())
	if err != nil {
		return badRequest(req, err)
	}
	return ok(body)
}

func (s *Server) handleTopicList(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	if !s.cfg.EnableAllTopicList {
		return transport.NewResponse(transport.SystemError, "namesrv: GET_ALL_TOPIC_LIST_FROM_NAMESERVER is disabled (enableAllTopicList=false)")
	}
	body, err := json.Marshal(TopicList{TopicList: s.table.Topics()})
	if err != nil {
		return badRequest(req, err)
	}
	return ok(body)
}

func (s *Server) handleDeleteTopic(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "topic")
	if err != nil {
		return badRequest(req, err)
	}
	if s.table.DeleteTopic(v[0], req.Ext("clusterName")) {
		s.log.Info("namesrv: topic deleted", "topic", v[0], "cluster", req.Ext("clusterName"))
	}
	return ok(nil)
}

func (s *Server) handleQueryDataVersion(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "brokerAddr")
	if err != nil {
		return badRequest(req, err)
	}
	var dv DataVersion
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &dv); err != nil {
			return badRequest(req, fmt.Errorf("%w: dataVersion: %v", ErrBadBody, err))
		}
	}
	changed, held := s.table.QueryDataVersion(v[0], dv)
	resp := ok(nil)
	resp.SetExt("changed", strconv.FormatBool(changed))
	if held != nil {
		resp.Body, _ = json.Marshal(held)
	}
	return resp
}

func (s *Server) handlePutKV(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "namespace", "key")
	if err != nil {
		return badRequest(req, err)
	}
	value, present := req.ExtFields["value"]
	if !present {
		return badRequest(req, fmt.Errorf("%w: value", transport.ErrMissingField))
	}
	if err := s.kv.Put(v[0], v[1], value); err != nil {
		return transport.NewResponse(transport.SystemError, err.Error())
	}
	return ok(nil)
}

func (s *Server) handleGetKV(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "namespace", "key")
	if err != nil {
		return badRequest(req, err)
	}
	value, found := s.kv.Get(v[0], v[1])
	if !found {
		return transport.NewResponse(transport.QueryNotFound, "No config item, Namespace: "+v[0]+" Key: "+v[1])
	}
	resp := ok(nil)
	resp.SetExt("value", value)
	return resp
}

func (s *Server) handleDeleteKV(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "namespace", "key")
	if err != nil {
		return badRequest(req, err)
	}
	if err := s.kv.Delete(v[0], v[1]); err != nil {
		return transport.NewResponse(transport.SystemError, err.Error())
	}
	return ok(nil)
}

func (s *Server) handleKVList(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "namespace")
	if err != nil {
		return badRequest(req, err)
	}
	m := s.kv.List(v[0])
	if len(m) == 0 {
		return transport.NewResponse(transport.QueryNotFound, "No config item, Namespace: "+v[0])
	}
	body, err := json.Marshal(KVTable{Table: m})
	if err != nil {
		return badRequest(req, err)
	}
	return ok(body)
}

func (s *Server) handleWritePerm(writable bool) transport.HandlerFunc {
	countKey := "wipeTopicCount"
	if writable {
		countKey = "addTopicCount"
	}
	return func(_ context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
		v, err := requireExt(req, "brokerName")
		if err != nil {
			return badRequest(req, err)
		}
		n := s.table.SetWritePerm(v[0], writable)
		peer := ""
		if conn != nil {
			peer = conn.RemoteAddr().String()
		}
		s.log.Info("namesrv: write permission of broker changed", "brokerName", v[0], "writable", writable, "topics", n, "peer", peer)
		resp := ok(nil)
		resp.SetExt(countKey, strconv.Itoa(n))
		return resp
	}
}

func (s *Server) handleTopicsByCluster(_ context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	v, err := requireExt(req, "cluster")
	if err != nil {
		return badRequest(req, err)
	}
	body, err := json.Marshal(TopicList{TopicList: s.table.TopicsByCluster(v[0])})
	if err != nil {
		return badRequest(req, err)
	}
	return ok(body)
}
