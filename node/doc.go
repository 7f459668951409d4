// Package node wires one raftmq broker node: broker.conf (Config) → commitlog → fsm → Raft
// (raft-boltdb/v2 log and stable store behind a LogCache, file snapshots, a TCP
// NetworkTransport) → the remoting server with one handler per request code → registration
// with the name servers.
//
// Roles follow Raft: the leader of the group registers as brokerId 0 and accepts writes;
// every other node registers as a slave and serves pulls up to what it has applied. Writes
// reaching a follower are forwarded to the leader's broker address or answered at once with a
// retriable error. Concurrent sends on the leader become one Raft entry (group commit).
//
// DESIGN.md beside this file explains the choices (durability per flushDiskType, role modes,
// error codes, forwarding, long polling).
package node
