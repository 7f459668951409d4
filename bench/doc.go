// Package bench is raftmq's built-in benchmark (`raftmq bench producer|consumer|e2e`): producers
// and consumers built on package client, driven with RocketMQ's benchmark flags (-w workers,
// -s size, -q count, -y async, -b batch, -ri report interval), against a running cluster or an
// embedded one (a name server and a 3-node DLedger group started in-process on 127.0.0.1).
//
// Every report interval it prints messages/s, MB/s and the latency distribution (avg, p50, p99,
// p999, max) of the sends, and for consumers the end-to-end latency from a message's born
// timestamp to its consumption; only successes count towards throughput, failures are counted
// apart. At the end it prints a Summary (text, or JSON with --json), which in embedded mode also
// carries the Raft term before and after the run and the process heap.
//
// Latencies go into Histogram, a small log-linear histogram in the spirit of HdrHistogram:
// 128 linear sub-buckets per power of two, so every recorded value is known to within 1/128
// (under 0.8 %), in a fixed 58 KiB array with no allocation per record.
package bench
