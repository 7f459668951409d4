// Package compat holds raftmq's compatibility suite: tests that drive an in-process raftmq
// cluster (one name server and a 3-node DLedger broker group on 127.0.0.1, real TCP) with the
// unmodified official client github.com/apache/rocketmq-client-go/v2 v2.1.2.
//
// It is a separate Go module (replace github.com/raftmq/raftmq => ../) so that the main module
// never depends on the official client. Run it with `make compat`.
package compat
