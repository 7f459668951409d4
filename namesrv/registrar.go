package namesrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync"
	"time"

	"github.com/raftmq/raftmq/transport"
)

// ErrTopicNotExist is returned by GetRouteInfo when the name server answers
// TOPIC_NOT_EXIST.
var ErrTopicNotExist = errors.New("namesrv: topic does not exist")

// ResponseError is a non-SUCCESS reply from a name server.
type ResponseError struct {
	Addr   string
	Op     transport.RequestCode
	Code   transport.ResponseCode
	Remark string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("namesrv %s: %s: %s: %s", e.Addr, e.Op, e.Code, e.Remark)
}

// Is makes errors.Is(err, ErrTopicNotExist) true for TOPIC_NOT_EXIST.
func (e *ResponseError) Is(target error) bool {
	return target == ErrTopicNotExist && e.Code == transport.TopicNotExist
}

// RegisterBrokerRequest is what a broker node registers.
type RegisterBrokerRequest struct {
	ClusterName  string
	BrokerName   string
	BrokerAddr   string // ip:listenPort the clients dial
	BrokerID     int64  // 0 for the Raft leader, ≥ 1 for the others
	HAServerAddr string // the node's Raft address
	Topics       TopicConfigSerializeWrapper
	// FilterServerList is sent as is (normally empty).
	FilterServerList []string
	// Compressed sends the body in RocketMQ's compressed form (which drops
	// topicSysFlag and order, as Java's does).
	Compressed bool
	// HeartbeatTimeout asks the name server to expire this broker after
	// this long without registration instead of its default (0: default).
	HeartbeatTimeout time.Duration
	// LeaderEpoch, when > 0, is sent as ext leaderEpoch (a raftmq
	// extension): the Raft term in which this node became leader. A name
	// server refuses an id-0 registration whose epoch is lower than one it
	// has seen for the group (see RouteTable.Register).
	LeaderEpoch int64
}

// RegisterBrokerResult is a name server's answer to a registration.
type RegisterBrokerResult struct {
	MasterAddr   string // for a slave: the group's master address ("" if none)
	HAServerAddr string // for a slave: the master's HA (Raft) address
	// OrderTopicConf is the ORDER_TOPIC_CONFIG KV namespace, if any.
	OrderTopicConf map[string]string
}

// RegisterBroker registers req with the name server at namesrvAddr.
func RegisterBroker(ctx context.Context, c *transport.Client, namesrvAddr string, req RegisterBrokerRequest) (*RegisterBrokerResult, error) {
	body, err := encodeRegisterBody(req)
	if err != nil {
		return nil, err
	}
	return registerEncoded(ctx, c, namesrvAddr, req, body)
}

func encodeRegisterBody(req RegisterBrokerRequest) ([]byte, error) {
	return EncodeRegisterBrokerBody(&RegisterBrokerBody{
		FilterServerList:            req.FilterServerList,
		TopicConfigSerializeWrapper: req.Topics,
	}, req.Compressed)
}

func registerEncoded(ctx context.Context, c *transport.Client, namesrvAddr string, req RegisterBrokerRequest, body []byte) (*RegisterBrokerResult, error) {
	cmd, err := registerCommand(req, body)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, c, namesrvAddr, cmd)
	if err != nil {
		return nil, err
	}
	res := &RegisterBrokerResult{MasterAddr: resp.Ext("masterAddr"), HAServerAddr: resp.Ext("haServerAddr")}
	if len(resp.Body) > 0 {
		var kv KVTable
		if err := json.Unmarshal(resp.Body, &kv); err != nil {
			return nil, fmt.Errorf("namesrv %s: register broker: decode reply body: %w", namesrvAddr, err)
		}
		res.OrderTopicConf = kv.Table
	}
	return res, nil
}

func registerCommand(req RegisterBrokerRequest, body []byte) (*transport.Command, error) {
	if req.BrokerName == "" || req.BrokerAddr == "" || req.ClusterName == "" {
		return nil, fmt.Errorf("namesrv: register broker: ClusterName, BrokerName and BrokerAddr are required (got %q, %q, %q)",
			req.ClusterName, req.BrokerName, req.BrokerAddr)
	}
	ext := map[string]string{
		"brokerName":   req.BrokerName,
		"brokerAddr":   req.BrokerAddr,
		"clusterName":  req.ClusterName,
		"haServerAddr": req.HAServerAddr,
		"brokerId":     strconv.FormatInt(req.BrokerID, 10),
		"compressed":   strconv.FormatBool(req.Compressed),
		"bodyCrc32":    strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)&0x7FFFFFFF), 10),
	}
	if req.LeaderEpoch > 0 {
		ext["leaderEpoch"] = strconv.FormatInt(req.LeaderEpoch, 10)
	}
	if req.HeartbeatTimeout > 0 {
		ext["heartbeatTimeoutMillis"] = strconv.FormatInt(req.HeartbeatTimeout.Milliseconds(), 10)
	}
	return transport.NewRequest(transport.RegisterBroker, ext, body), nil
}

// RegisterAllResult is the outcome of one name server in RegisterAll.
type RegisterAllResult struct {
	Addr   string
	Result *RegisterBrokerResult // nil when Err is set
	Err    error
}

// RegisterAll registers req with every name server concurrently and returns
// one result per address, in the order of addrs. The body is encoded once.
func RegisterAll(ctx context.Context, c *transport.Client, addrs []string, req RegisterBrokerRequest) []RegisterAllResult {
	out := make([]RegisterAllResult, len(addrs))
	body, err := encodeRegisterBody(req)
	if err != nil {
		for i, a := range addrs {
			out[i] = RegisterAllResult{Addr: a, Err: err}
		}
		return out
	}
	var wg sync.WaitGroup
	for i, a := range addrs {
		out[i].Addr = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Result, out[i].Err = registerEncoded(ctx, c, a, req, body)
		}()
	}
	wg.Wait()
	return out
}

// UnregisterBrokerRequest identifies the registration to remove.
type UnregisterBrokerRequest struct {
	ClusterName string
	BrokerName  string
	BrokerAddr  string
	BrokerID    int64
}

// UnregisterBroker asks the name server at namesrvAddr to drop a
// registration. The name server ignores it (and still answers SUCCESS) when
// a newer registration of that address exists or it came on another
// connection (see RouteTable.Unregister); send it over the same
// transport.Client that registered.
func UnregisterBroker(ctx context.Context, c *transport.Client, namesrvAddr string, req UnregisterBrokerRequest) error {
	cmd := transport.NewRequest(transport.UnregisterBroker, map[string]string{
		"brokerName":  req.BrokerName,
		"brokerAddr":  req.BrokerAddr,
		"clusterName": req.ClusterName,
		"brokerId":    strconv.FormatInt(req.BrokerID, 10),
	}, nil)
	_, err := invoke(ctx, c, namesrvAddr, cmd)
	return err
}

// UnregisterAll unregisters from every name server concurrently; the
// errors are per address (nil on success), in the order of addrs.
func UnregisterAll(ctx context.Context, c *transport.Client, addrs []string, req UnregisterBrokerRequest) []error {
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = UnregisterBroker(ctx, c, a, req)
		}()
	}
	wg.Wait()
	return errs
}

// GetRouteInfo asks the name server at addr for topic's route. An unknown
// topic gives an error matching ErrTopicNotExist.
func GetRouteInfo(ctx context.Context, c *transport.Client, addr, topic string) (*TopicRouteData, error) {
	resp, err := invoke(ctx, c, addr, transport.NewRequest(transport.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
	if err != nil {
		return nil, err
	}
	r, err := DecodeTopicRouteData(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("namesrv %s: route of %s: %w", addr, topic, err)
	}
	return r, nil
}

// GetClusterInfo asks the name server at addr for every broker group.
func GetClusterInfo(ctx context.Context, c *transport.Client, addr string) (*ClusterInfo, error) {
	resp, err := invoke(ctx, c, addr, transport.NewRequest(transport.GetBrokerClusterInfo, nil, nil))
	if err != nil {
		return nil, err
	}
	ci, err := DecodeClusterInfo(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("namesrv %s: cluster info: %w", addr, err)
	}
	return ci, nil
}

// QueryDataVersion asks whether the name server at namesrvAddr holds a
// different topic-table version for brokerAddr than dv (true when it does
// not know the broker); it also refreshes the broker's liveness there.
func QueryDataVersion(ctx context.Context, c *transport.Client, namesrvAddr string, req RegisterBrokerRequest, dv DataVersion) (bool, error) {
	body, _ := json.Marshal(dv)
	resp, err := invoke(ctx, c, namesrvAddr, transport.NewRequest(transport.QueryDataVersion, map[string]string{
		"brokerName":  req.BrokerName,
		"brokerAddr":  req.BrokerAddr,
		"clusterName": req.ClusterName,
		"brokerId":    strconv.FormatInt(req.BrokerID, 10),
	}, body))
	if err != nil {
		return false, err
	}
	changed, err := resp.ExtBool("changed")
	if err != nil {
		return false, fmt.Errorf("namesrv %s: query data version: %w", namesrvAddr, err)
	}
	return changed, nil
}

// invoke sends cmd and turns a non-SUCCESS reply into a *ResponseError.
func invoke(ctx context.Context, c *transport.Client, addr string, cmd *transport.Command) (*transport.Command, error) {
	op := transport.RequestCode(cmd.Code)
	resp, err := c.Invoke(ctx, addr, cmd)
	if err != nil {
		return nil, fmt.Errorf("namesrv %s: %s: %w", addr, op, err)
	}
	if resp.Code != int16(transport.Success) {
		return nil, &ResponseError{Addr: addr, Op: op, Code: transport.ResponseCode(resp.Code), Remark: resp.Remark}
	}
	return resp, nil
}
