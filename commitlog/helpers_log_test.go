package commitlog

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

	"github.com/raftmq/raftmq/message"
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
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// testConfig is a store with tiny files: 64 KiB segments, 100-entry consume
// queue files, small index files, a fake clock and fake disk usage.
func testConfig(t testing.TB, dir string) Config {
	return Config{
		RootDir:                    dir,
		MappedFileSizeCommitLog:    64 << 10,
		MappedFileSizeConsumeQueue: 100 * CQEntrySize,
		MaxMessageSize:             4096,
		Index:                      IndexConfig{MaxHashSlots: 1024, MaxIndexCount: 4096},
		Logger:                     testLogger(t),
		DiskUsage:                  func(string) (float64, error) { return 0.10, nil },
		Now:                        func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local) },
	}
}

func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// tmsg builds a message; props are key, value pairs.
func tmsg(topic string, qid int32, body string, props ...string) *Message {
	var sb strings.Builder
	for i := 0; i+1 < len(props); i += 2 {
		sb.WriteString(props[i])
		sb.WriteByte(PropertyNameValueSep)
		sb.WriteString(props[i+1])
		sb.WriteByte(PropertySep)
	}
	return &Message{
		Topic: topic, QueueID: qid, BornTimestamp: tBaseTS - 5, BornHost: tBornHost, StoreHost: tStoreHost,
		Body: []byte(body), Properties: sb.String(),
	}
}

func mustAppend(t testing.TB, l *Log, idx uint64, ts int64, msgs ...*Message) []AppendResult {
	t.Helper()
	res, err := l.Append(AppendBatch{RaftIndex: idx, StoreTimestamp: ts, Messages: msgs})
	if err != nil {
		t.Fatalf("Append(idx %d): %v", idx, err)
	}
	return res
}

func mustGet(t testing.TB, l *Log, topic string, qid int32, off int64, maxMsgs, maxBytes int, filter func(int64) bool) *GetResult {
	t.Helper()
	r, err := l.GetMessages(topic, qid, off, maxMsgs, maxBytes, filter)
	if err != nil {
		t.Fatalf("GetMessages(%s/%d@%d): %v", topic, qid, off, err)
	}
	t.Cleanup(r.Release)
	return r
}

func decodeAll(t testing.TB, r *GetResult) []*MessageExt {
	t.Helper()
	var out []*MessageExt
	for i, b := range r.Buffers {
		m, n, err := message.DecodeRecord(b)
		if err != nil || n != len(b) {
			t.Fatalf("buffer %d: decode: n=%d len=%d err=%v", i, n, len(b), err)
		}
		out = append(out, m)
	}
	return out
}

// snapshotFiles reads every file under dir (relative path -> bytes),
// skipping the checkpoint temp file.
func snapshotFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = b
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func diffFiles(a, b map[string][]byte, only func(name string) bool) []string {
	var diffs []string
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	var sorted []string
	for k := range names {
		if only == nil || only(k) {
			sorted = append(sorted, k)
		}
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		x, okx := a[k]
		y, oky := b[k]
		switch {
		case !okx || !oky:
			diffs = append(diffs, fmt.Sprintf("%s: present %v vs %v", k, okx, oky))
		case !bytes.Equal(x, y):
			i := 0
			for i < len(x) && i < len(y) && x[i] == y[i] {
				i++
			}
			diffs = append(diffs, fmt.Sprintf("%s: differs at byte %d (len %d vs %d)", k, i, len(x), len(y)))
		}
	}
	return diffs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
