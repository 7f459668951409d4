package transport_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/raftmq/raftmq/transport"
)

func Example() {
	mux := transport.NewMux()
	mux.HandleFunc(transport.GetRouteInfoByTopic, func(ctx context.Context, c *transport.Conn, req *transport.Command) *transport.Command {
		topic := req.Ext("topic")
		if topic != "T1" {
			return transport.NewResponse(transport.TopicNotExist, "no route for "+topic)
		}
		resp := transport.NewResponse(transport.Success, "")
		resp.Body = []byte(`{"brokerDatas":[],"queueDatas":[]}`)
		return resp
	})
	srv, err := transport.NewServer(transport.ServerConfig{Addr: "127.0.0.1:0"}, mux)
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	defer srv.Close(context.Background())

	cl, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	for _, topic := range []string{"T1", "T2"} {
		req := transport.NewRequest(transport.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil)
		resp, err := cl.Invoke(context.Background(), srv.Addr().String(), req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(strings.TrimSpace(resp.ResponseCode().String() + " " + resp.Remark))
	}
	// Output:
	// SUCCESS(0)
	// TOPIC_NOT_EXIST(17) no route for T2
}
