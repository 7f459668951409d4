package node

import "context"

// Test hooks for package node_test.

// FetchCommitLogForTest runs the node's snapshot fetcher.
func (n *Node) FetchCommitLogForTest(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
	return (&fetcher{n: n}).FetchCommitLog(ctx, from, maxBytes)
}

// FetchCandidatesForTest returns the fetcher's known members and the name servers' view.
func (n *Node) FetchCandidatesForTest(ctx context.Context) (known, fromNS []string) {
	f := &fetcher{n: n}
	return f.known(), f.fromNameServers(ctx)
}
