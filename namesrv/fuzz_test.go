package namesrv

import (
	"context"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/transport"
)

// FuzzHandlers feeds arbitrary ext fields and bodies to every name-server
// request code: each must be answered (never nil, never a panic), and a
// SYSTEM_ERROR must carry a remark.
func FuzzHandlers(f *testing.F) {
	codes := []transport.RequestCode{
		transport.RegisterBroker, transport.UnregisterBroker, transport.GetRouteInfoByTopic,
		transport.GetBrokerClusterInfo, transport.GetAllTopicListFromNameServer, transport.DeleteTopicInNamesrv,
		transport.QueryDataVersion, transport.PutKVConfig, transport.GetKVConfig, transport.DeleteKVConfig,
		transport.GetKVListByNamespace, transport.WipeWritePermOfBroker, transport.AddWritePermOfBroker,
		transport.GetTopicsByCluster,
	}
	plain, _ := EncodeRegisterBrokerBody(sampleBody(), false)
	comp, _ := EncodeRegisterBrokerBody(sampleBody(), true)
	f.Add(uint8(0), "brokerName=b1;brokerAddr=a:1;clusterName=c1;brokerId=0", plain)
	f.Add(uint8(0), "brokerName=b1;brokerAddr=a:1;clusterName=c1;brokerId=1;compressed=true", comp)
	f.Add(uint8(1), "brokerName=b1;brokerAddr=a:1;brokerId=0", []byte(nil))
	f.Add(uint8(2), "topic=T1", []byte(nil))
	f.Add(uint8(6), "brokerAddr=a:1", []byte(`{"counter":1,"timestamp":2}`))
	f.Add(uint8(7), "namespace=n;key=k;value=v", []byte(nil))
	f.Add(uint8(0), "brokerName=b1;brokerAddr=a:1;clusterName=c1;brokerId=0;bodyCrc32=5;leaderEpoch=-3;heartbeatTimeoutMillis=1", []byte("{}"))

	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(context.Background()) })

	f.Fuzz(func(t *testing.T, code uint8, ext string, body []byte) {
		fields := map[string]string{}
		for _, kv := range strings.Split(ext, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		req := transport.NewRequest(codes[int(code)%len(codes)], fields, body)
		resp := s.mux.ServeRemoting(context.Background(), nil, req)
		if resp == nil {
			t.Fatalf("no reply to %v", req)
		}
		if resp.Code == int16(transport.SystemError) && resp.Remark == "" {
			t.Fatalf("SYSTEM_ERROR without remark for %v", req)
		}
		// Whatever state the request left, lookups still work.
		if r, ok := s.table.Route("T1"); ok {
			_ = r.AppendJSON(nil)
		}
		s.table.ClusterInfo()
	})
}
