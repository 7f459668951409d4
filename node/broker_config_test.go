package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// Perm bits through the node: a broker without write permission refuses sends, one without
// read permission refuses pulls, both with NO_PERMISSION (16) and a remark naming the broker.
func TestBrokerPermission_SendAndPull(t *testing.T) {
	for _, tc := range []struct {
		perm int
		req  func(topic string) *transport.Command
		what string
	}{
		{4, func(topic string) *transport.Command { return sendReq(topic, 0, []byte("x"), "") }, "send to a read-only broker"},
		{2, func(topic string) *transport.Command { return pullReq(topic, 0, 0, 1, 0, "*") }, "pull from a write-only broker"},
	} {
		c := testcluster.New(t, 1, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) { cfg.BrokerPermission = tc.perm }))
		l := c.Leader(t)
		wantErr(t, tc.what, invoke(t, c.Client(), l.Addr(), tc.req(c.Topic)), transport.NoPermission, l.Config().BrokerName)
		// The route carries the broker's permission for every topic (registerBrokerAll).
		testcluster.Eventually(t, 10*time.Second, func() error {
			if qd, ok := nsRoute(c, c.Topic); !ok || qd.Perm != int32(tc.perm) {
				return fmt.Errorf("%s: route %+v %v", tc.what, qd, ok)
			}
			return nil
		})
	}
}
