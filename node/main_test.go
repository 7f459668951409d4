package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// raft v1.7.3 drops futures still queued in its FSM channel when it shuts down; the
	// batcher abandons its wait for them then (see batcher.wait): a bounded, shutdown-only leak.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error"))
}
