package namesrv

import (
	"context"
	"fmt"
	"testing"

	"github.com/raftmq/raftmq/transport"
)

// benchTable builds a table of groups×3 nodes holding topics topics, each
// topic on every fourth group (so a route lists several groups).
func benchTable(b *testing.B, groups, ntopics int) *RouteTable {
	b.Helper()
	rt := NewRouteTable(TableConfig{})
	for g := range groups {
		w := topics(1)
		for i := range ntopics {
			if i%4 == g%4 {
				name := fmt.Sprintf("topic-%05d", i)
				w.TopicConfigTable[name] = tc(name, 8)
			}
		}
		name := fmt.Sprintf("broker-%02d", g)
		for id := range 3 {
			rt.Register(reg(name, fmt.Sprintf("10.0.%d.%d:10911", g, id), int64(id), uint64(g*3+id+1), w))
		}
	}
	return rt
}

// BenchmarkGetRouteInfo: one route lookup and its JSON, as the
// GET_ROUTEINFO_BY_TOPIC handler does it (AppendRouteJSON), with 10,000
// topics on 16 groups of 3 nodes, each route listing 4 groups.
func BenchmarkGetRouteInfo(b *testing.B) {
	rt := benchTable(b, 16, 10000)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%05d", i)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		var ok bool
		buf, ok = rt.AppendRouteJSON(buf[:0], names[i%len(names)], "")
		if !ok {
			b.Fatal("no route")
		}
		i++
	}
}

// BenchmarkGetRouteInfoStruct is the same through Route (a TopicRouteData
// copy) and AppendJSON.
func BenchmarkGetRouteInfoStruct(b *testing.B) {
	rt := benchTable(b, 16, 10000)
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%05d", i)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r, ok := rt.Route(names[i%len(names)])
		if !ok {
			b.Fatal("no route")
		}
		buf = r.AppendJSON(buf[:0])
		i++
	}
}

// BenchmarkGetRouteInfoParallel is the same from every CPU at once (lookups
// share the read lock).
func BenchmarkGetRouteInfoParallel(b *testing.B) {
	rt := benchTable(b, 16, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%05d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 1024)
		i := 0
		for pb.Next() {
			var ok bool
			buf, ok = rt.AppendRouteJSON(buf[:0], names[i%len(names)], "")
			if !ok {
				b.Fatal("no route")
			}
			i++
		}
	})
}

// BenchmarkGetRouteInfoTCP is a full round trip over loopback TCP.
func BenchmarkGetRouteInfoTCP(b *testing.B) {
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	c, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	req := RegisterBrokerRequest{ClusterName: "c1", BrokerName: "b1", BrokerAddr: "10.0.0.1:10911", Topics: topics(1)}
	for i := range 1000 {
		name := fmt.Sprintf("topic-%05d", i)
		req.Topics.TopicConfigTable[name] = tc(name, 8)
	}
	if _, err := RegisterBroker(ctx, c, s.Addr(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := GetRouteInfo(ctx, c, s.Addr(), fmt.Sprintf("topic-%05d", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
