package raftlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// discardLogger drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// captureLogger records every log record for inspection.
type captureHandler struct {
	mu   *sync.Mutex
	recs *[]string
}

func newCapture() (*slog.Logger, func() []string) {
	var mu sync.Mutex
	var recs []string
	h := captureHandler{mu: &mu, recs: &recs}
	return slog.New(h), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(recs)
	}
}

func (h captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h captureHandler) WithGroup(string) slog.Handler            { return h }
func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, b.String())
	h.mu.Unlock()
	return nil
}

// payload is the deterministic Data of entry (index, term), n bytes long.
func payload(index, term uint64, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	b := make([]byte, n)
	var seed [16]byte
	binary.LittleEndian.PutUint64(seed[0:8], index)
	binary.LittleEndian.PutUint64(seed[8:16], term)
	for i := range b {
		b[i] = seed[i%16] ^ byte(i*7)
	}
	if n >= 16 {
		copy(b, seed[:])
	}
	return b
}

// entry builds a Log whose Data is payload(index, term, n).
func entry(index, term uint64, n int) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       payload(index, term, n),
		AppendedAt: time.Unix(1_700_000_000, int64(index)),
	}
}

// entries builds entries first..first+count-1 with n-byte data.
func entries(first uint64, count int, term uint64, n int) []*raft.Log {
	out := make([]*raft.Log, count)
	for i := range out {
		out[i] = entry(first+uint64(i), term, n)
	}
	return out
}

func mustOpen(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	// Closed before the directory is removed (cleanups run last first), even when the
	// test reassigned its variable after a defer s.Close(): a store left open keeps its
	// background goroutine, which may create next.wal while the directory is removed.
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustStore(t testing.TB, s *Store, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs [%d..%d]: %v", logs[0].Index, logs[len(logs)-1].Index, err)
	}
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkRange asserts the store holds exactly first..last and every entry matches want
// (keyed by index).
func checkRange(t testing.TB, s *Store, first, last uint64, want map[uint64]*raft.Log) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("range [%d, %d], want [%d, %d]", f, l, first, last)
	}
	var got raft.Log
	if first > 0 {
		for _, idx := range []uint64{first - 1, last + 1} {
			if err := s.GetLog(idx, &got); !errors.Is(err, raft.ErrLogNotFound) {
				t.Fatalf("GetLog(%d) outside [%d, %d]: %v, want ErrLogNotFound", idx, first, last, err)
			}
		}
	}
	if last == 0 {
		if err := s.GetLog(1, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(1) on empty log: %v", err)
		}
		return
	}
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if w, ok := want[i]; ok {
			sameLog(t, &got, w)
		} else if want != nil {
			t.Fatalf("entry %d present but not expected", i)
		}
	}
}

// sameLog asserts every field round-tripped, including nil versus empty slices.
func sameLog(t testing.TB, got, want *raft.Log) {
	t.Helper()
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type {
		t.Fatalf("entry %d: index/term/type %d/%d/%v, want %d/%d/%v", want.Index,
			got.Index, got.Term, got.Type, want.Index, want.Term, want.Type)
	}
	if !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		t.Fatalf("entry %d: data %d bytes (nil %v), want %d bytes (nil %v)", want.Index,
			len(got.Data), got.Data == nil, len(want.Data), want.Data == nil)
	}
	if !bytes.Equal(got.Extensions, want.Extensions) || (got.Extensions == nil) != (want.Extensions == nil) {
		t.Fatalf("entry %d: extensions %q (nil %v), want %q (nil %v)", want.Index,
			got.Extensions, got.Extensions == nil, want.Extensions, want.Extensions == nil)
	}
	if !got.AppendedAt.Equal(want.AppendedAt) || got.AppendedAt.IsZero() != want.AppendedAt.IsZero() {
		t.Fatalf("entry %d: appended at %v, want %v", want.Index, got.AppendedAt, want.AppendedAt)
	}
	if want.AppendedAt.IsZero() && got.AppendedAt != (time.Time{}) {
		t.Fatalf("entry %d: zero appended-at came back as %#v", want.Index, got.AppendedAt)
	}
}

func index(logs ...[]*raft.Log) map[uint64]*raft.Log {
	m := map[uint64]*raft.Log{}
	for _, ls := range logs {
		for _, l := range ls {
			m[l.Index] = l
		}
	}
	return m
}

// segmentFiles lists the segment files of dir in index order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if _, ok := parseSegmentName(de.Name()); ok {
			out = append(out, filepath.Join(dir, de.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// waitSealed waits until the background goroutine has sealed every segment but the last
// and is idle (so that it has also dropped them from the page cache).
func waitSealed(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.RLock()
		done := true
		for i := 0; i+1 < len(s.segs); i++ {
			if g := s.segs[i]; g.version != formatV1 && g.sealEnd != g.size {
				done = false
			}
		}
		s.mu.RUnlock()
		if done && !s.bgBusy.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the background to seal the rolled segments")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitSpare waits until the background goroutine has the next segment ready.
func waitSpare(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.spareMu.Lock()
		ready := s.spare != nil
		s.spareMu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the background to pre-create the next segment")
		}
		time.Sleep(time.Millisecond)
	}
}
