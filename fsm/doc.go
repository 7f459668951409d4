// Package fsm is the hashicorp/raft FSM (raft.FSM and raft.BatchingFSM) of one
// raftmq broker group. It applies committed raft entries to the commitlog
// (package commitlog) and to the replicated metadata: topics, subscription
// groups, consumer offsets and group members.
//
// An entry is a type byte (CommandType) and a msgpack body. CmdAppend, the hot
// path, carries a msgpack bin value holding a binary layout (see EncodeAppend)
// so that one entry decodes into a whole group-commit batch with a few
// allocations and no body copies. An unknown type or an undecodable body is
// fatal: Config.OnFatal is called and the entry fails, rather than letting
// this replica silently diverge.
//
// Apply is deterministic (the leader stamps times into commands; nothing reads
// a clock, randomness or map order) and idempotent on replay: an append at a
// raft index at or below Log.AppliedIndex and a metadata command at or below
// the index recorded in the metadata file are skipped.
//
// Flow commands (CmdDeliverScheduled, CmdEndTx, CmdTxCheck; flow.go) apply
// an append and a progress change in one entry behind a guard on the
// replicated state, so a delayed delivery or a transaction commit proposed by
// two leaders is applied once; the other returns an error wrapping ErrStale.
//
// Snapshots are small: the metadata plus the commitlog's position. A replica
// that restores a snapshot it is behind fetches the commitlog bytes it lacks
// through Config.Fetcher, whose server side is FSM.ReadCommitLog. DESIGN.md
// explains why.
//
// Concurrency: Apply, ApplyBatch, Snapshot and Restore are called by raft's FSM
// goroutine, one at a time. The read methods (Topic, Offset, WaitQueue, ...)
// and ReadCommitLog are safe for concurrent use with them.
package fsm
