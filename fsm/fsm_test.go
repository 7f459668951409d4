package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/fsutil"
)

func TestEncodeAppend_RoundTrip(t *testing.T) {
	v6 := tmsg("TopicV6", 3, "body six", "TAGS", "x")
	v6.BornHost = netip.MustParseAddrPort("[2001:db8::1]:4000")
	v6.StoreHost = netip.MustParseAddrPort("[::ffff:10.1.2.3]:10911")
	zero := tmsg("Z", 0, "z")
	zero.BornHost, zero.StoreHost = netip.AddrPort{}, netip.AddrPort{}
	full := tmsg("Full", 7, "full body", "KEYS", "a b", "UNIQ_KEY", "U1")
	full.Flag, full.SysFlag, full.ReconsumeTimes, full.PreparedTxOffset = -3, commitlog.TxPreparedType, 5, 1<<40
	for _, c := range []*AppendCommand{
		{StoreTimestamp: tBaseTS},
		{StoreTimestamp: -1, Messages: []*commitlog.Message{tmsg("A", 0, "a")}},
		{StoreTimestamp: tBaseTS, Messages: []*commitlog.Message{v6, zero, full, tmsg("A", 1, "")}},
	} {
		b, err := EncodeAppend(c)
		if err != nil {
			t.Fatal(err)
		}
		ct, v, err := Decode(b)
		if err != nil || ct != CmdAppend {
			t.Fatalf("Decode: %v %v", ct, err)
		}
		got := v.(*AppendCommand)
		if got.StoreTimestamp != c.StoreTimestamp || len(got.Messages) != len(c.Messages) {
			t.Fatalf("got %+v want %+v", got, c)
		}
		for i, m := range c.Messages {
			want := *m
			g := *got.Messages[i]
			want.BornHost = netip.AddrPortFrom(want.BornHost.Addr().WithZone(""), want.BornHost.Port())
			if len(want.Body) == 0 {
				want.Body, g.Body = nil, nil
			}
			if !reflect.DeepEqual(g, want) {
				t.Fatalf("message %d: got %+v want %+v", i, g, want)
			}
		}
		// Encode dispatches to EncodeAppend.
		b2, err := Encode(CmdAppend, c)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("Encode(CmdAppend) differs: %v", err)
		}
	}
}

func TestEncode_Errors(t *testing.T) {
	if _, err := Encode(CommandType(99), &PutTopicCommand{}); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Encode(CmdPutTopic, &PutGroupCommand{}); err == nil {
		t.Fatal("mismatched value encoded")
	}
	if _, err := EncodeAppend(&AppendCommand{Messages: []*commitlog.Message{nil}}); err == nil {
		t.Fatal("nil message encoded")
	}
	if _, err := EncodeAppend(&AppendCommand{Messages: []*commitlog.Message{{Topic: strings.Repeat("t", 70000)}}}); err == nil {
		t.Fatal("huge topic encoded")
	}
	for _, c := range []struct {
		ct CommandType
		v  any
	}{
		{CmdPutTopic, PutTopicCommand{Topic: TopicConfig{TopicName: "x"}}},
		{CmdDeleteTopic, &DeleteTopicCommand{Topic: "x"}},
		{CmdPutGroup, &PutGroupCommand{Group: GroupConfig{GroupName: "g"}}},
		{CmdDeleteGroup, DeleteGroupCommand{Group: "g"}},
		{CmdCommitOffsets, &CommitOffsetsCommand{Entries: []OffsetEntry{{"g", "t", 1, 2}}}},
		{CmdSetMember, &SetMemberCommand{Member: Member{"n", "a", 1}}},
	} {
		b, err := Encode(c.ct, c.v)
		if err != nil {
			t.Fatalf("%v: %v", c.ct, err)
		}
		ct, v, err := Decode(b)
		if err != nil || ct != c.ct {
			t.Fatalf("%v: decode %v %v", c.ct, ct, err)
		}
		want := reflect.ValueOf(c.v)
		if want.Kind() == reflect.Pointer {
			want = want.Elem()
		}
		if !reflect.DeepEqual(reflect.ValueOf(v).Elem().Interface(), want.Interface()) {
			t.Fatalf("%v: round trip %+v != %+v", c.ct, v, c.v)
		}
	}
}

func TestDecode_Corrupt(t *testing.T) {
	good, _ := EncodeAppend(&AppendCommand{StoreTimestamp: 1, Messages: []*commitlog.Message{tmsg("A", 0, "abc", "TAGS", "t")}})
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        good[:10],
		"truncated":    good[:len(good)-1],
		"bad envelope": append([]byte{byte(CmdAppend), 0xC4}, good[2:]...),
		"bad version":  func() []byte { c := bytes.Clone(good); c[6] = 9; return c }(),
		"huge count":   func() []byte { c := bytes.Clone(good); c[15] = 0xFF; return c }(),
		"bad host":     func() []byte { c := bytes.Clone(good); c[appendPrefixSize+30] = 5; return c }(),
		"bad msgpack":  {byte(CmdPutTopic), 0xC1},
	} {
		if _, _, err := Decode(b); !errors.Is(err, ErrCorruptCommand) {
			t.Errorf("%s: err = %v, want ErrCorruptCommand", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := EncodeAppend(&AppendCommand{StoreTimestamp: 1, Messages: []*commitlog.Message{tmsg("A", 0, "abc", "TAGS", "t"), tmsg("B", 1, "de")}})
	f.Add(b)
	p, _ := Encode(CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "x"}})
	f.Add(p)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ct, v, err := Decode(data)
		if err != nil {
			return
		}
		if ct == CmdAppend {
			re, err := EncodeAppend(v.(*AppendCommand))
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			ct2, v2, err := Decode(re)
			if err != nil || ct2 != ct || !reflect.DeepEqual(v, v2) {
				t.Fatalf("re-decode differs: %v", err)
			}
		}
	})
}

func TestApply_EachCommand(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	f := r.fsm
	idx := uint64(0)
	apply := func(ct CommandType, v any) any {
		idx++
		return f.Apply(entry(t, idx, ct, v))
	}
	if resp := apply(CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "T1", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}, Timestamp: 111}); resp != nil {
		t.Fatalf("put topic: %v", resp)
	}
	if tc, ok := f.Topic("T1"); !ok || tc.WriteQueueNums != 4 {
		t.Fatalf("topic T1: %+v %v", tc, ok)
	}
	if dv := f.DataVersion(); dv != (DataVersion{Timestamp: 111, Counter: 1}) {
		t.Fatalf("data version %+v", dv)
	}
	apply(CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "A0", ReadQueueNums: 1, WriteQueueNums: 1}, Timestamp: 222})
	if got := f.Topics(); len(got) != 2 || got[0].TopicName != "A0" || got[1].TopicName != "T1" {
		t.Fatalf("topics %+v", got)
	}

	w := f.WaitQueue("T1", 2)
	other := f.WaitQueue("T1", 3)
	resp := apply(CmdAppend, &AppendCommand{StoreTimestamp: 333, Messages: []*commitlog.Message{tmsg("T1", 2, "m1"), tmsg("T1", 2, "m2")}})
	ar, ok := resp.(*AppendResponse)
	if !ok || len(ar.Results) != 2 || ar.Results[0].QueueOffset != 0 || ar.Results[1].QueueOffset != 1 || ar.Results[1].PhysicalOffset <= 0 {
		t.Fatalf("append response %#v", resp)
	}
	select {
	case <-w:
	default:
		t.Fatal("waiter of T1/2 not woken")
	}
	select {
	case <-other:
		t.Fatal("waiter of T1/3 woken")
	default:
	}
	if r.log.AppliedIndex() != idx || f.AppliedIndex() != idx {
		t.Fatalf("applied %d/%d want %d", r.log.AppliedIndex(), f.AppliedIndex(), idx)
	}
	m, err := r.log.ReadMessage(ar.Results[1].PhysicalOffset)
	if err != nil || string(m.Body) != "m2" || m.StoreTimestamp != 333 {
		t.Fatalf("stored message %+v %v", m, err)
	}

	// A batch the commitlog refuses is the entry's result on every replica, not fatal.
	if err, _ := apply(CmdAppend, &AppendCommand{StoreTimestamp: 1, Messages: []*commitlog.Message{tmsg("bad topic!", 0, "x")}}).(error); !errors.Is(err, commitlog.ErrInvalidTopic) || errors.Is(err, ErrFatal) {
		t.Fatalf("invalid topic: %v", err)
	}

	apply(CmdPutGroup, &PutGroupCommand{Group: GroupConfig{GroupName: "G", ConsumeEnable: true, RetryMaxTimes: 16}})
	apply(CmdPutGroup, &PutGroupCommand{Group: GroupConfig{GroupName: "G0"}})
	if g, ok := f.Group("G"); !ok || !g.ConsumeEnable || g.RetryMaxTimes != 16 {
		t.Fatalf("group %+v %v", g, ok)
	}
	apply(CmdCommitOffsets, &CommitOffsetsCommand{Entries: []OffsetEntry{{"G", "T1", 2, 1}, {"G", "A0", 0, 7}, {"G0", "A0", 0, 3}}})
	apply(CmdCommitOffsets, &CommitOffsetsCommand{Entries: []OffsetEntry{{"G", "T1", 2, 2}}})
	if o, ok := f.Offset("G", "T1", 2); !ok || o != 2 {
		t.Fatalf("offset after last write %d %v", o, ok)
	}
	apply(CmdSetMember, &SetMemberCommand{Member: Member{ServerID: "n1", BrokerAddr: "127.0.0.1:20911", BrokerID: 1}})
	apply(CmdSetMember, &SetMemberCommand{Member: Member{ServerID: "n0", BrokerAddr: "127.0.0.1:10911"}})
	apply(CmdSetMember, &SetMemberCommand{Member: Member{ServerID: "n1", BrokerAddr: "127.0.0.1:20912", BrokerID: 2}})
	if ms := f.Members(); len(ms) != 2 || ms[0].ServerID != "n0" || ms[1].BrokerAddr != "127.0.0.1:20912" || ms[1].BrokerID != 2 {
		t.Fatalf("members %+v", ms)
	}
	if m, ok := f.Member("n1"); !ok || m.BrokerID != 2 {
		t.Fatalf("member n1 %+v", m)
	}

	// Deleting a topic drops its offsets and consume queues and bumps the version.
	wd := f.WaitQueue("T1", 2)
	if resp := apply(CmdDeleteTopic, &DeleteTopicCommand{Topic: "T1", Timestamp: 444}); resp != nil {
		t.Fatalf("delete topic: %v", resp)
	}
	<-wd
	if _, ok := f.Topic("T1"); ok {
		t.Fatal("T1 still there")
	}
	if _, ok := f.Offset("G", "T1", 2); ok {
		t.Fatal("offset of deleted topic kept")
	}
	if _, ok := f.Offset("G", "A0", 0); !ok {
		t.Fatal("offset of another topic dropped")
	}
	if got := r.log.QueueIDs("T1"); len(got) != 0 {
		t.Fatalf("consume queues of T1 kept: %v", got)
	}
	if dv := f.DataVersion(); dv != (DataVersion{Timestamp: 444, Counter: 3}) {
		t.Fatalf("data version %+v", dv)
	}
	if err, _ := apply(CmdDeleteTopic, &DeleteTopicCommand{Topic: "nope", Timestamp: 555}).(error); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("delete missing topic: %v", err)
	}
	if dv := f.DataVersion(); dv.Counter != 3 {
		t.Fatalf("data version bumped by a no-op: %+v", dv)
	}

	// Deleting a group drops its offsets only.
	if resp := apply(CmdDeleteGroup, &DeleteGroupCommand{Group: "G"}); resp != nil {
		t.Fatalf("delete group: %v", resp)
	}
	if _, ok := f.Offset("G", "A0", 0); ok {
		t.Fatal("offset of deleted group kept")
	}
	if _, ok := f.Offset("G0", "A0", 0); !ok {
		t.Fatal("offset of another group dropped")
	}
	if gs := f.Groups(); len(gs) != 1 || gs[0].GroupName != "G0" {
		t.Fatalf("groups %+v", gs)
	}
	if err, _ := apply(CmdDeleteGroup, &DeleteGroupCommand{Group: "G"}).(error); !errors.Is(err, ErrGroupNotExist) {
		t.Fatalf("delete missing group: %v", err)
	}

	// Non-command entries advance the applied index only.
	idx++
	if resp := f.Apply(&raft.Log{Index: idx, Type: raft.LogConfiguration}); resp != nil || f.AppliedIndex() != idx {
		t.Fatalf("configuration entry: %v applied %d", resp, f.AppliedIndex())
	}
}

func TestApply_UnknownCommandIsFatal(t *testing.T) {
	for name, data := range map[string][]byte{
		"unknown type": {0x7F, 0x80},
		"zero type":    {0x00},
		"corrupt body": {byte(CmdAppend), 1, 2, 3},
	} {
		t.Run(name, func(t *testing.T) {
			var fatal atomic.Pointer[error]
			var calls atomic.Int32
			r := newReplica(t, t.TempDir(), func(c *Config) {
				c.OnFatal = func(err error) { calls.Add(1); fatal.Store(&err) }
			})
			f := r.fsm
			f.Apply(entry(t, 1, CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "A"}}))
			err, _ := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data}).(error)
			if err == nil || !errors.Is(err, ErrFatal) {
				t.Fatalf("apply: %v", err)
			}
			if name != "corrupt body" && !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("apply: %v, want ErrUnknownCommand", err)
			}
			if calls.Load() != 1 || fatal.Load() == nil {
				t.Fatalf("OnFatal called %d times", calls.Load())
			}
			if f.AppliedIndex() != 1 {
				t.Fatalf("applied index moved past the failed entry: %d", f.AppliedIndex())
			}
			// Later entries are refused: this replica no longer matches the group.
			err, _ = f.Apply(entry(t, 3, CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "B"}})).(error)
			if !errors.Is(err, ErrFatal) {
				t.Fatalf("apply after fatal: %v", err)
			}
			if _, ok := f.Topic("B"); ok {
				t.Fatal("applied after a fatal error")
			}
			if _, err := f.Snapshot(); !errors.Is(err, ErrFatal) {
				t.Fatalf("snapshot after fatal: %v", err)
			}
			if calls.Load() != 1 {
				t.Fatalf("OnFatal called %d times", calls.Load())
			}
		})
	}
}

func TestApply_CommitlogErrorIsFatal(t *testing.T) {
	var calls atomic.Int32
	r := newReplica(t, t.TempDir(), func(c *Config) { c.OnFatal = func(error) { calls.Add(1) } })
	if err := r.log.Close(); err != nil {
		t.Fatal(err)
	}
	err, _ := r.fsm.Apply(entry(t, 1, CmdAppend, &AppendCommand{Messages: []*commitlog.Message{tmsg("A", 0, "x")}})).(error)
	if !errors.Is(err, ErrFatal) || !errors.Is(err, commitlog.ErrClosed) || calls.Load() != 1 {
		t.Fatalf("apply on a closed log: %v (OnFatal %d)", err, calls.Load())
	}
}

func TestApplyBatch_EqualsApply_Deterministic(t *testing.T) {
	logs := workload(t, 400)
	a := newReplica(t, t.TempDir(), nil)
	b := newReplica(t, t.TempDir(), nil)
	c := newReplica(t, t.TempDir(), nil)
	ra := applyAll(t, a.fsm, logs)
	rb := b.fsm.ApplyBatch(logs)
	var rc []any
	for i := 0; i < len(logs); i += 7 {
		rc = append(rc, c.fsm.ApplyBatch(logs[i:min(i+7, len(logs))])...)
	}
	if !reflect.DeepEqual(ra, rb) || !reflect.DeepEqual(ra, rc) {
		t.Fatal("ApplyBatch responses differ from Apply's")
	}
	if a.log.MaxPhysOffset() < 4*(64<<10) {
		t.Fatalf("workload did not roll segments: %d", a.log.MaxPhysOffset())
	}
	if _, err := b.fsm.Snapshot(); err != nil { // flush timing must not matter
		t.Fatal(err)
	}
	wantMeta := metaDump(a.fsm)
	if metaDump(b.fsm) != wantMeta || metaDump(c.fsm) != wantMeta {
		t.Fatalf("metadata differs:\n%s\n%s", wantMeta, metaDump(b.fsm))
	}
	a.close()
	b.close()
	c.close()
	fa := files(t, a.dir, true)
	requireSameFiles(t, fa, files(t, b.dir, true))
	requireSameFiles(t, fa, files(t, c.dir, true))
	if _, ok := fa["meta"]; !ok {
		t.Fatal("no meta file compared")
	}
}

func TestReplay_AfterReopen_AppliesNothingTwice(t *testing.T) {
	logs := workload(t, 300)
	for _, mode := range []string{"clean close", "crash after snapshot", "crash without snapshot", "meta file lost"} {
		t.Run(mode, func(t *testing.T) {
			r := newReplica(t, t.TempDir(), nil)
			applyAll(t, r.fsm, logs[:150])
			if mode == "crash after snapshot" {
				if _, err := r.fsm.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			applyAll(t, r.fsm, logs[150:])
			wantMeta := metaDump(r.fsm)
			wantQueues := queueState(r.log)
			if mode == "clean close" {
				r.close()
			} else {
				r.crash()
			}
			if mode == "meta file lost" {
				if err := os.Remove(r.fcfg.MetaPath); err != nil {
					t.Fatal(err)
				}
			}
			before := files(t, r.dir, false)
			r.reopen(nil)
			// Raft replays everything after its snapshot (here: from 1).
			resps := applyAll(t, r.fsm, logs)
			for i, resp := range resps {
				if ar, ok := resp.(*AppendResponse); ok && len(ar.Results) != 0 {
					t.Fatalf("entry %d appended again", logs[i].Index)
				}
			}
			if got := metaDump(r.fsm); got != wantMeta {
				t.Fatalf("metadata after replay:\n%s\nwant\n%s", got, wantMeta)
			}
			if got := queueState(r.log); got != wantQueues {
				t.Fatalf("queues after replay:\n%s\nwant\n%s", got, wantQueues)
			}
			r.close()
			requireSameFiles(t, before, files(t, r.dir, false))
		})
	}
}

func TestDiskCovers(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	if r.fsm.DiskCovers(1) {
		t.Fatal("empty FSM covers index 1")
	}
	logs := workload(t, 60)
	applyAll(t, r.fsm, logs)
	// A topic deletion (index 53) writes the meta file.
	if !r.fsm.DiskCovers(53) || r.fsm.DiskCovers(54) {
		t.Fatal("DiskCovers after the deletion at 53")
	}
	if _, err := r.fsm.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if !r.fsm.DiskCovers(60) || !r.fsm.DiskCovers(10) || r.fsm.DiskCovers(61) {
		t.Fatal("DiskCovers after a snapshot at 60")
	}
	r.crash()
	r.reopen(nil)
	if !r.fsm.DiskCovers(60) {
		t.Fatal("reopened replica does not cover 60")
	}
	// A commitlog that lost what the meta file saw does not cover.
	if err := r.log.Reset(0, 0); err != nil {
		t.Fatal(err)
	}
	if r.fsm.DiskCovers(60) {
		t.Fatal("covers with an empty commitlog")
	}
}

func TestWaitQueue_Close(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	w := r.fsm.WaitQueue("A", 0)
	if w != r.fsm.WaitQueue("A", 0) {
		t.Fatal("waiters of one queue do not share a channel")
	}
	if err := r.fsm.Close(); err != nil {
		t.Fatal(err)
	}
	<-w
	<-r.fsm.WaitQueue("B", 1)
	if err := r.fsm.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err, _ := r.fsm.Apply(entry(t, 1, CmdPutGroup, &PutGroupCommand{})).(error); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
}

func TestNew_Errors(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Log") {
		t.Fatalf("no log: %v", err)
	}
	r := newReplica(t, t.TempDir(), nil)
	if _, err := New(Config{Log: r.log}); err == nil || !strings.Contains(err.Error(), "MetaPath") {
		t.Fatalf("no meta path: %v", err)
	}
	if _, err := New(Config{Log: r.log, MetaPath: "x", FetchBytes: 10}); err == nil || !strings.Contains(err.Error(), "FetchBytes") {
		t.Fatalf("tiny fetch: %v", err)
	}
	if _, err := r.fsm.Snapshot(); err != nil {
		t.Fatal(err)
	}
	b, err := readFileT(r.fcfg.MetaPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xFF
	if err := fsutil.WriteFileAtomic(r.fcfg.MetaPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(r.fcfg); !errors.Is(err, ErrCorruptMeta) {
		t.Fatalf("corrupt meta file: %v", err)
	}
}
