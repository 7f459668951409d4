package fsm

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	tStoreHost = netip.MustParseAddrPort("127.0.0.1:10911")
	tBornHost  = netip.MustParseAddrPort("10.0.0.7:51234")
)

const tBaseTS = int64(1_700_000_000_000)

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// logConfig is a commitlog with tiny files (64 KiB segments) and a fixed
// clock at noon, so that retention ("04") never runs.
func logConfig(t testing.TB, dir string) commitlog.Config {
	return commitlog.Config{
		RootDir:                    dir,
		MappedFileSizeCommitLog:    64 << 10,
		MappedFileSizeConsumeQueue: 100 * commitlog.CQEntrySize,
		MaxMessageSize:             4096,
		Index:                      commitlog.IndexConfig{MaxHashSlots: 1024, MaxIndexCount: 4096},
		Logger:                     testLogger(t),
		DiskUsage:                  func(string) (float64, error) { return 0.10, nil },
		Now:                        func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local) },
	}
}

// replica is a commitlog and an FSM over one directory.
type replica struct {
	t    testing.TB
	dir  string
	cfg  commitlog.Config
	log  *commitlog.Log
	fsm  *FSM
	fcfg Config
}

func newReplica(t testing.TB, dir string, mod func(*Config)) *replica {
	t.Helper()
	r := &replica{t: t, dir: dir, cfg: logConfig(t, dir)}
	r.open(mod)
	t.Cleanup(r.close)
	return r
}

func newReplicaCfg(t testing.TB, cfg commitlog.Config, mod func(*Config)) *replica {
	t.Helper()
	r := &replica{t: t, dir: cfg.RootDir, cfg: cfg}
	r.open(mod)
	t.Cleanup(r.close)
	return r
}

func (r *replica) open(mod func(*Config)) {
	r.t.Helper()
	l, err := commitlog.Open(r.cfg)
	if err != nil {
		r.t.Fatalf("commitlog.Open: %v", err)
	}
	c := Config{Log: l, MetaPath: filepath.Join(r.dir, "meta"), Logger: testLogger(r.t)}
	if mod != nil {
		mod(&c)
	}
	f, err := New(c)
	if err != nil {
		l.Close()
		r.t.Fatalf("fsm.New: %v", err)
	}
	r.log, r.fsm, r.fcfg = l, f, c
}

// close closes the FSM (writing the meta file) and the log.
func (r *replica) close() {
	if r.fsm != nil {
		if err := r.fsm.Close(); err != nil {
			r.t.Errorf("fsm.Close: %v", err)
		}
		r.fsm = nil
	}
	if r.log != nil {
		if err := r.log.Close(); err != nil {
			r.t.Errorf("log.Close: %v", err)
		}
		r.log = nil
	}
}

// crash closes the log only: the meta file stays as the last Snapshot wrote it.
func (r *replica) crash() {
	if r.log != nil {
		r.log.Close()
		r.log = nil
	}
	r.fsm = nil
}

func (r *replica) reopen(mod func(*Config)) {
	r.t.Helper()
	r.open(mod)
}

// files reads every file of the commitlog and consume queues (and, with
// meta, the meta file) under dir.
func files(t testing.TB, dir string, meta bool) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !(strings.HasPrefix(rel, "commitlog/") || strings.HasPrefix(rel, "consumequeue/") || (meta && rel == "meta")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read files of %s: %v", dir, err)
	}
	return out
}

func diffFiles(a, b map[string][]byte) []string {
	var d []string
	for k, v := range a {
		w, ok := b[k]
		switch {
		case !ok:
			d = append(d, "only in first: "+k)
		case !bytes.Equal(v, w):
			d = append(d, "differs: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "only in second: "+k)
		}
	}
	sort.Strings(d)
	return d
}

func requireSameFiles(t testing.TB, a, b map[string][]byte) {
	t.Helper()
	if len(a) == 0 {
		t.Fatal("no files to compare")
	}
	if d := diffFiles(a, b); len(d) > 0 {
		t.Fatalf("files differ: %v", d)
	}
}

func tmsg(topic string, qid int32, body string, props ...string) *commitlog.Message {
	var sb strings.Builder
	for i := 0; i+1 < len(props); i += 2 {
		if i > 0 {
			sb.WriteByte(commitlog.PropertySep)
		}
		sb.WriteString(props[i])
		sb.WriteByte(commitlog.PropertyNameValueSep)
		sb.WriteString(props[i+1])
	}
	return &commitlog.Message{
		Topic: topic, QueueID: qid, BornTimestamp: tBaseTS - 5, BornHost: tBornHost, StoreHost: tStoreHost,
		Body: []byte(body), Properties: sb.String(),
	}
}

func entry(t testing.TB, idx uint64, ct CommandType, v any) *raft.Log {
	t.Helper()
	b, err := Encode(ct, v)
	if err != nil {
		t.Fatalf("Encode(%v): %v", ct, err)
	}
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: b}
}

// workload is a deterministic mix of every command over n entries,
// starting at raft index 1; appends dominate and roll several segments.
func workload(t testing.TB, n int) []*raft.Log {
	t.Helper()
	var out []*raft.Log
	for i := 1; i <= n; i++ {
		idx := uint64(i)
		ts := tBaseTS + int64(i)*1000
		switch {
		case i == 1:
			out = append(out, entry(t, idx, CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "TopicA", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}, Timestamp: ts}))
		case i == 2:
			out = append(out, entry(t, idx, CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: "TopicB", ReadQueueNums: 2, WriteQueueNums: 2, Perm: 6}, Timestamp: ts}))
		case i == 3:
			out = append(out, entry(t, idx, CmdPutGroup, &PutGroupCommand{Group: GroupConfig{GroupName: "G1", ConsumeEnable: true, RetryMaxTimes: 16}}))
		case i == 4:
			out = append(out, entry(t, idx, CmdSetMember, &SetMemberCommand{Member: Member{ServerID: "n0", BrokerAddr: "127.0.0.1:10911"}}))
		case i%10 == 5:
			out = append(out, entry(t, idx, CmdCommitOffsets, &CommitOffsetsCommand{Entries: []OffsetEntry{
				{Group: "G1", Topic: "TopicA", QueueID: int32(i % 4), Offset: int64(i)},
				{Group: "G2", Topic: "TopicB", QueueID: 1, Offset: int64(i * 2)},
			}}))
		case i%37 == 0:
			out = append(out, entry(t, idx, CmdPutTopic, &PutTopicCommand{Topic: TopicConfig{TopicName: fmt.Sprintf("T%d", i), ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}, Timestamp: ts}))
		case i%53 == 0:
			out = append(out, entry(t, idx, CmdDeleteTopic, &DeleteTopicCommand{Topic: "TopicB", Timestamp: ts}))
		default:
			var msgs []*commitlog.Message
			for j := range 1 + i%5 {
				topic := "TopicA"
				if j%2 == 1 {
					topic = "TopicB"
				}
				m := tmsg(topic, int32((i+j)%4), strings.Repeat(fmt.Sprint(i, "-", j, ";"), 20+i%60),
					commitlog.PropertyTags, fmt.Sprint("tag", i%3), commitlog.PropertyKeys, fmt.Sprintf("k%d", i),
					commitlog.PropertyUniqKey, fmt.Sprintf("U%05d%d", i, j))
				m.StoreHost = tStoreHost
				msgs = append(msgs, m)
			}
			out = append(out, entry(t, idx, CmdAppend, &AppendCommand{StoreTimestamp: ts, Messages: msgs}))
		}
	}
	return out
}

func applyAll(t testing.TB, f *FSM, logs []*raft.Log) []any {
	t.Helper()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
		if err, ok := out[i].(error); ok && errorsIsFatal(err) {
			t.Fatalf("apply index %d: %v", l.Index, err)
		}
	}
	return out
}

func errorsIsFatal(err error) bool {
	return err != nil && strings.Contains(err.Error(), ErrFatal.Error())
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queueState is every queue's (min, max) offset.
func queueState(l *commitlog.Log) string {
	var sb strings.Builder
	for _, topic := range l.Topics() {
		for _, q := range l.QueueIDs(topic) {
			fmt.Fprintf(&sb, "%s/%d:%d-%d ", topic, q, l.MinOffset(topic, q), l.MaxOffset(topic, q))
		}
	}
	return sb.String()
}

// metaDump renders the FSM's metadata.
func metaDump(f *FSM) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dv=%+v\n", f.DataVersion())
	for _, tc := range f.Topics() {
		fmt.Fprintf(&sb, "topic %+v\n", tc)
	}
	for _, g := range f.Groups() {
		fmt.Fprintf(&sb, "group %+v\n", g)
		for _, o := range f.Offsets(g.GroupName) {
			fmt.Fprintf(&sb, "  offset %+v\n", o)
		}
	}
	for _, o := range f.Offsets("G2") {
		fmt.Fprintf(&sb, "  offset %+v\n", o)
	}
	for _, m := range f.Members() {
		fmt.Fprintf(&sb, "member %+v\n", m)
	}
	return sb.String()
}

func readFileT(path string) ([]byte, error) { return os.ReadFile(path) }

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
