package fsm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden_EntryFormat freezes the bytes of raft entries: they are in every
// raft log on disk, so an encoding change must be deliberate (a new
// appendVersion), never an accident.
func TestGolden_EntryFormat(t *testing.T) {
	m1 := tmsg("TopicA", 3, "hello", commitlog.PropertyTags, "t1", commitlog.PropertyKeys, "k1 k2")
	m1.Flag, m1.ReconsumeTimes, m1.PreparedTxOffset = 7, 2, 99
	m2 := tmsg("TopicB", 0, "world")
	m2.BornHost = netipMust("[2001:db8::5]:7000")
	var buf bytes.Buffer
	for _, e := range []struct {
		ct CommandType
		v  any
	}{
		{CmdAppend, &AppendCommand{StoreTimestamp: tBaseTS, Messages: []*commitlog.Message{m1, m2}}},
		{CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "TopicA", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG"}, Timestamp: tBaseTS}},
		{CmdDeleteTopic, &DeleteTopicCommand{Topic: "TopicA", Timestamp: tBaseTS}},
		{CmdPutGroup, &PutGroupCommand{Group: GroupConfig{GroupName: "G", ConsumeEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16}}},
		{CmdDeleteGroup, &DeleteGroupCommand{Group: "G"}},
		{CmdCommitOffsets, &CommitOffsetsCommand{Entries: []OffsetEntry{{"G", "TopicA", 1, 42}}}},
		{CmdSetMember, &SetMemberCommand{Member: Member{ServerID: "n0", BrokerAddr: "127.0.0.1:10911", BrokerID: 0}}},
	} {
		b, err := Encode(e.ct, e.v)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString(e.ct.String())
		buf.WriteByte(' ')
		buf.WriteString(hexString(b))
		buf.WriteByte('\n')
	}
	path := filepath.Join("testdata", "entries_v1.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("entry encoding changed:\n%s\nwant\n%s", buf.Bytes(), want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// TestReadersDuringApply runs the read side while entries are applied and
// snapshots are taken (meaningful under -race).
func TestReadersDuringApply(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	logs := workload(t, 300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-r.fsm.WaitQueue("TopicA", 1):
			}
			r.fsm.Topics()
			r.fsm.Groups()
			r.fsm.Offset("G1", "TopicA", 1)
			r.fsm.Members()
			r.fsm.DataVersion()
			if _, err := r.fsm.ReadCommitLog(r.log.MinPhysOffset(), 4096); err != nil {
				t.Error(err)
				return
			}
			reads++
		}
	}()
	for i, l := range logs {
		r.fsm.ApplyBatch([]*raft.Log{l})
		if i%50 == 0 {
			takeSnapshot(t, r.fsm)
		}
	}
	close(stop)
	wg.Wait()
	if reads == 0 {
		t.Fatal("the reader never woke up")
	}
}
