package fsm

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/vmihailenco/msgpack/v5"
)

// benchBatch is the group-commit batch of the brief: 64 messages of 1 KiB.
func benchBatch(seq int) *AppendCommand {
	body := []byte(strings.Repeat("x", 1024))
	c := &AppendCommand{StoreTimestamp: tBaseTS + int64(seq)}
	for i := range 64 {
		props := fmt.Sprintf("TAGS\x01TagA\x02KEYS\x01key%d\x02UNIQ_KEY\x01AC1100010000%08X%04X\x02WAIT\x01true", i, seq, i)
		c.Messages = append(c.Messages, &commitlog.Message{
			Topic: "BenchTopic", QueueID: int32(i % 8), BornTimestamp: tBaseTS, BornHost: tBornHost,
			StoreHost: tStoreHost, Body: body, Properties: props,
		})
	}
	return c
}

func BenchmarkEncodeAppend(b *testing.B) {
	c := benchBatch(0)
	b.SetBytes(64 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeAppend(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAppend(b *testing.B) {
	data, _ := EncodeAppend(benchBatch(0))
	b.SetBytes(64 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The msgpack encoding of the same struct, for comparison with the
// hand-rolled layout (what EncodeAppend would cost as plain msgpack).
func BenchmarkEncodeAppendMsgpack(b *testing.B) {
	c := benchBatch(0)
	b.SetBytes(64 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := msgpack.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAppendMsgpack(b *testing.B) {
	data, err := msgpack.Marshal(benchBatch(0))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		var c AppendCommand
		if err := msgpack.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyAppend applies one raft entry of 64 x 1 KiB messages per
// op to a real commitlog (256 MiB segments, background flush): decode,
// append, consume-queue and index dispatch, waiter notification.
func BenchmarkApplyAppend(b *testing.B) {
	cfg := commitlog.DefaultConfig(b.TempDir())
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.Now = func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local) }
	cfg.DiskUsage = func(string) (float64, error) { return 0.10, nil }
	l, err := commitlog.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	f, err := New(Config{Log: l, MetaPath: cfg.RootDir + "/meta"})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const distinct = 64
	var entries [distinct][]byte
	for i := range entries {
		entries[i], _ = EncodeAppend(benchBatch(i))
	}
	b.SetBytes(64 * 1024)
	b.ReportAllocs()
	idx := uint64(0)
	for b.Loop() {
		idx++
		resp := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: entries[idx%distinct]})
		if _, ok := resp.(*AppendResponse); !ok {
			b.Fatalf("apply: %v", resp)
		}
	}
}
