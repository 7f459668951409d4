package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
)

// TestRunE2EAgainstClusterWithoutTheTopic runs e2e against an existing cluster (not embedded)
// whose name servers do not know the topic yet: bench creates it before its consumers start.
func TestRunE2EAgainstClusterWithoutTheTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	c.Leader(t)
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.Mode = ModeE2E
	cfg.NameServers = []string{c.NS.Addr()}
	cfg.Topic = "BenchNewTopic"
	cfg.Queues = 2
	cfg.Workers = 2
	cfg.Duration = time.Second
	cfg.ReportInterval = 500 * time.Millisecond
	cfg.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if sum.Send == nil || sum.Consume == nil || sum.Send.OK == 0 || sum.Consume.OK < sum.Send.OK {
		t.Fatalf("sent %+v consumed %+v", sum.Send, sum.Consume)
	}
	tc, ok := c.Leader(t).FSM().Topic("BenchNewTopic")
	if !ok || tc.WriteQueueNums != 2 {
		t.Fatalf("topic created as %+v %v, want 2 queues", tc, ok)
	}
}
