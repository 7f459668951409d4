package namesrv

import (
	"context"

	metrics "github.com/armon/go-metrics"

	"github.com/raftmq/raftmq/transport"
)

// The name server reports through the global go-metrics API, like broker nodes (see
// node/metrics.go); with service name "raftmq" the key namesrv.brokers is exposed as
// raftmq_namesrv_brokers. The gauges are refreshed by the expiry scan (every
// scanNotActiveBrokerInterval) and carry the server's listen address as label namesrv.

var (
	keyRegistrations = []string{"namesrv", "registrations", "total"}
	keyRouteQueries  = []string{"namesrv", "route", "queries", "total"}
	keyExpired       = []string{"namesrv", "brokers", "expired", "total"}
	keyBrokers       = []string{"namesrv", "brokers"}
	keyTopics        = []string{"namesrv", "topics"}

	labelsOK       = []metrics.Label{{Name: "result", Value: "ok"}}
	labelsError    = []metrics.Label{{Name: "result", Value: "error"}}
	labelsFound    = []metrics.Label{{Name: "result", Value: "found"}}
	labelsNotFound = []metrics.Label{{Name: "result", Value: "not_found"}}
)

// MetricDescription is one metric the name server reports: its go-metrics key without the
// service name, and its HELP text.
type MetricDescription struct {
	Key  []string
	Help string
}

// MetricDescriptions lists the name server's metrics, for the sinks' HELP lines.
func MetricDescriptions() []MetricDescription {
	return []MetricDescription{
		{keyRegistrations, "REGISTER_BROKER requests, by result: ok, or error (refused, e.g. a deposed leader's stale leaderEpoch, or malformed)."},
		{keyRouteQueries, "GET_ROUTEINFO_BY_TOPIC requests, by result: found, not_found (TOPIC_NOT_EXIST), error."},
		{keyExpired, "Brokers dropped after brokerChannelExpiredTime without registration."},
		{keyBrokers, "Live broker addresses in the route table."},
		{keyTopics, "Topics in the route table."},
	}
}

// ReportMetrics sets the route table's gauges now (brokers, topics). The expiry scan calls
// it every scanNotActiveBrokerInterval; call it before reading the sinks for current values.
func (s *Server) ReportMetrics() {
	l := []metrics.Label{{Name: "namesrv", Value: s.Addr()}}
	metrics.SetGaugeWithLabels(keyBrokers, float32(s.table.Brokers()), l)
	metrics.SetGaugeWithLabels(keyTopics, float32(len(s.table.Topics())), l)
}

// countRegistrations wraps the REGISTER_BROKER handler to count its results.
func countRegistrations(f transport.HandlerFunc) transport.HandlerFunc {
	return func(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
		resp := f(ctx, conn, req)
		l := labelsError
		if resp.Code == int16(transport.Success) {
			l = labelsOK
		}
		metrics.IncrCounterWithLabels(keyRegistrations, 1, l)
		return resp
	}
}

// countRouteQueries wraps the GET_ROUTEINFO_BY_TOPIC handler to count its results.
func countRouteQueries(f transport.HandlerFunc) transport.HandlerFunc {
	return func(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
		resp := f(ctx, conn, req)
		l := labelsError
		switch transport.ResponseCode(resp.Code) {
		case transport.Success:
			l = labelsFound
		case transport.TopicNotExist:
			l = labelsNotFound
		}
		metrics.IncrCounterWithLabels(keyRouteQueries, 1, l)
		return resp
	}
}

// scanned records an expiry scan: the brokers it dropped, and the gauges.
func (s *Server) scanned(expired []string) {
	if len(expired) > 0 {
		metrics.IncrCounter(keyExpired, float32(len(expired)))
	}
	s.ReportMetrics()
}
