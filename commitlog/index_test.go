package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openTestIndex(t testing.TB, dir string, slots, count int) *Index {
	t.Helper()
	ix, err := OpenIndex(IndexConfig{Dir: dir, MaxHashSlots: slots, MaxIndexCount: count})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func mustPut(t testing.TB, ix *Index, topic, key string, phys, ts int64) {
	t.Helper()
	if err := ix.Put(topic, key, phys, ts); err != nil {
		t.Fatalf("Put(%s, %s, %d): %v", topic, key, phys, err)
	}
}

func query(t testing.TB, ix *Index, topic, key string, max int, begin, end int64) []int64 {
	t.Helper()
	got, err := ix.Query(topic, key, max, begin, end)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantOffsets(t testing.TB, got []int64, want ...int64) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}
}

const all = math.MaxInt64

// fillIndex puts n messages at offsets 100*i with store time 1000+i, keys "k<i%3>" and
// "u<i>" in topic T.
func fillIndex(t testing.TB, ix *Index, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		mustPut(t, ix, "T", fmt.Sprintf("k%d", i%3), int64(100*i), int64(1000+i))
		mustPut(t, ix, "T", fmt.Sprintf("u%d", i), int64(100*i), int64(1000+i))
	}
}

func TestIndexPutQuery(t *testing.T) {
	for _, slots := range []int{1, 2, 7, 1000} { // 1 slot: every key collides in one chain
		t.Run(fmt.Sprintf("slots=%d", slots), func(t *testing.T) {
			ix := openTestIndex(t, t.TempDir(), slots, 1000)
			if ix.EndPhysOffset() != -1 || ix.BeginPhysOffset() != -1 {
				t.Fatal("empty index has offsets")
			}
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all))
			fillIndex(t, ix, 0, 10)
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 900, 600, 300, 0)
			wantOffsets(t, query(t, ix, "T", "k1", 0, 0, all), 700, 400, 100)
			wantOffsets(t, query(t, ix, "T", "u5", 0, 0, all), 500)
			wantOffsets(t, query(t, ix, "T", "k0", 2, 0, all), 900, 600)     // max results
			wantOffsets(t, query(t, ix, "T", "k0", 0, 1003, 1006), 600, 300) // time range, inclusive
			wantOffsets(t, query(t, ix, "T", "k0", 0, 1007, 1008))           // nothing in range
			wantOffsets(t, query(t, ix, "Other", "k0", 0, 0, all))           // topic is part of the key
			wantOffsets(t, query(t, ix, "T", "u", 0, 0, all))                // no prefix match
			if ix.EndPhysOffset() != 900 || ix.BeginPhysOffset() != 0 {
				t.Fatalf("end %d begin %d", ix.EndPhysOffset(), ix.BeginPhysOffset())
			}
		})
	}
}

func TestIndexSameKeyTwiceInOneMessage(t *testing.T) {
	ix := openTestIndex(t, t.TempDir(), 4, 100)
	mustPut(t, ix, "T", "dup", 10, 1)
	mustPut(t, ix, "T", "dup", 10, 1) // KEYS "dup dup" or UNIQ_KEY == key
	mustPut(t, ix, "T", "dup", 20, 2)
	wantOffsets(t, query(t, ix, "T", "dup", 0, 0, all), 20, 10)
}

func TestIndexPutOrder(t *testing.T) {
	ix := openTestIndex(t, t.TempDir(), 4, 100)
	mustPut(t, ix, "T", "a", 10, 1)
	mustPut(t, ix, "T", "b", 10, 1)
	if err := ix.Put("T", "c", 9, 1); !errors.Is(err, ErrIndexOrder) {
		t.Fatalf("lower offset: %v", err)
	}
	if err := ix.Put("T", "", 11, 1); err != nil { // empty key: ignored
		t.Fatal(err)
	}
	if ix.EndPhysOffset() != 10 {
		t.Fatalf("end %d", ix.EndPhysOffset())
	}
}

func indexFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.idx"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

func TestIndexRollover(t *testing.T) {
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 3, 4) // 4 entries per file: 2 messages
	fillIndex(t, ix, 0, 10)           // 20 entries: 5 files
	files := indexFiles(t, dir)
	if len(files) != 5 {
		t.Fatalf("files %v", files)
	}
	// Names come from the first entry: store time 1000+2i ms in UTC, physical offset.
	if files[0] != "19700101000001000_00000000000000000000_0.idx" ||
		files[1] != "19700101000001002_00000000000000000200_0.idx" {
		t.Fatalf("names %v", files)
	}
	wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 900, 600, 300, 0)
	wantOffsets(t, query(t, ix, "T", "k2", 0, 0, all), 800, 500, 200)
	wantOffsets(t, query(t, ix, "T", "k0", 3, 1001, all), 900, 600, 300)
	for i := 0; i < 10; i++ {
		wantOffsets(t, query(t, ix, "T", fmt.Sprintf("u%d", i), 0, 0, all), int64(100*i))
	}
}

func TestIndexRolloverOneMessageFillsFiles(t *testing.T) {
	// A message with more keys than a file holds: files share the first entry's time and
	// offset and get distinct, ordered names.
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 2, 2)
	for i := 0; i < 5; i++ {
		mustPut(t, ix, "T", fmt.Sprintf("key%d", i), 100, 5)
	}
	mustPut(t, ix, "T", "key0", 200, 6)
	if files := indexFiles(t, dir); len(files) != 3 || !strings.HasSuffix(files[1], "_1.idx") {
		t.Fatalf("files %v", files)
	}
	wantOffsets(t, query(t, ix, "T", "key0", 0, 0, all), 200, 100)
	wantOffsets(t, query(t, ix, "T", "key4", 0, 0, all), 100)
	ix.Close()
	ix = openTestIndex(t, dir, 2, 2)
	wantOffsets(t, query(t, ix, "T", "key0", 0, 0, all), 200, 100)
	wantOffsets(t, query(t, ix, "T", "key3", 0, 0, all), 100)
}

func TestIndexTruncate(t *testing.T) {
	for _, tc := range []struct {
		name         string
		slots, count int
	}{
		{"one file", 3, 1000},
		{"many files", 3, 4},
		{"one slot", 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ix := openTestIndex(t, dir, tc.slots, tc.count)
			fillIndex(t, ix, 0, 10)
			if err := ix.Truncate(450); err != nil { // keeps messages 0..4
				t.Fatal(err)
			}
			if ix.EndPhysOffset() != 400 {
				t.Fatalf("end after truncate %d", ix.EndPhysOffset())
			}
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 300, 0)
			wantOffsets(t, query(t, ix, "T", "u7", 0, 0, all))
			// Re-put the same offsets with other keys: the old keys must not come back.
			for i := 5; i < 10; i++ {
				mustPut(t, ix, "T", fmt.Sprintf("new%d", i%2), int64(100*i), int64(2000+i))
			}
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 300, 0)
			wantOffsets(t, query(t, ix, "T", "k2", 0, 0, all), 200)
			wantOffsets(t, query(t, ix, "T", "u6", 0, 0, all))
			wantOffsets(t, query(t, ix, "T", "new1", 0, 0, all), 900, 700, 500)
			wantOffsets(t, query(t, ix, "T", "new0", 0, 2006, all), 800, 600)
			// The same after a reopen.
			ix.Close()
			ix = openTestIndex(t, dir, tc.slots, tc.count)
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 300, 0)
			wantOffsets(t, query(t, ix, "T", "new1", 0, 0, all), 900, 700, 500)
			wantOffsets(t, query(t, ix, "T", "u8", 0, 0, all))
			// Truncate at an exact message offset removes it; truncating to 0 empties all.
			if err := ix.Truncate(900); err != nil {
				t.Fatal(err)
			}
			wantOffsets(t, query(t, ix, "T", "new1", 0, 0, all), 700, 500)
			if err := ix.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if ix.EndPhysOffset() != -1 || len(indexFiles(t, dir)) != 0 {
				t.Fatalf("after Truncate(0): end %d files %v", ix.EndPhysOffset(), indexFiles(t, dir))
			}
			fillIndex(t, ix, 0, 3)
			wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 0)
		})
	}
}

// TestIndexTruncateRestoresBytes checks that truncating removes entries exactly: the file
// is byte-identical to one that never had them.
func TestIndexTruncateRestoresBytes(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ixA := openTestIndex(t, a, 3, 100)
	ixB := openTestIndex(t, b, 3, 100)
	fillIndex(t, ixA, 0, 6)
	fillIndex(t, ixB, 0, 10)
	if err := ixB.Truncate(600); err != nil {
		t.Fatal(err)
	}
	ixA.Close()
	ixB.Close()
	fa, fb := indexFiles(t, a), indexFiles(t, b)
	if !slices.Equal(fa, fb) || len(fa) != 1 {
		t.Fatalf("files %v vs %v", fa, fb)
	}
	da, _ := os.ReadFile(filepath.Join(a, fa[0]))
	db, _ := os.ReadFile(filepath.Join(b, fb[0]))
	if string(da) != string(db) {
		t.Fatal("truncated index differs from one built without the removed entries")
	}
}

func TestIndexReopen(t *testing.T) {
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 5, 7)
	fillIndex(t, ix, 0, 10)
	if err := ix.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := ix.Query("T", "k0", 0, 0, all); err == nil {
		t.Fatal("query after close")
	}
	// Reopen with another config: existing files keep their own slot/entry counts.
	ix = openTestIndex(t, dir, 11, 3)
	if ix.EndPhysOffset() != 900 || ix.BeginPhysOffset() != 0 {
		t.Fatalf("end %d begin %d", ix.EndPhysOffset(), ix.BeginPhysOffset())
	}
	wantOffsets(t, query(t, ix, "T", "k1", 0, 0, all), 700, 400, 100)
	fillIndex(t, ix, 10, 5)
	wantOffsets(t, query(t, ix, "T", "k1", 0, 0, all), 1300, 1000, 700, 400, 100)
}

// lastIndexFile returns the path of the newest index file.
func lastIndexFile(t *testing.T, dir string) string {
	files := indexFiles(t, dir)
	return filepath.Join(dir, files[len(files)-1])
}

func TestIndexReopenTornEntry(t *testing.T) {
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 3, 100)
	fillIndex(t, ix, 0, 5) // 10 entries
	ix.Close()
	// A crash after the entries and slots of message 4 were written but before the count
	// was bumped: the header says 8 entries.
	path := lastIndexFile(t, dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(data[ihCount:], 8)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ix = openTestIndex(t, dir, 3, 100)
	if ix.EndPhysOffset() != 300 {
		t.Fatalf("end %d, want 300 (count is the truth)", ix.EndPhysOffset())
	}
	wantOffsets(t, query(t, ix, "T", "k1", 0, 0, all), 100)
	wantOffsets(t, query(t, ix, "T", "u4", 0, 0, all))
	wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 300, 0)
	// Recovery re-dispatches message 4 with its keys.
	mustPut(t, ix, "T", "k1", 400, 1004)
	mustPut(t, ix, "T", "u4", 400, 1004)
	wantOffsets(t, query(t, ix, "T", "k1", 0, 0, all), 400, 100)
	wantOffsets(t, query(t, ix, "T", "u4", 0, 0, all), 400)
}

func TestIndexOpenRemovesEmptyAndRejectsCorrupt(t *testing.T) {
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 3, 2)
	fillIndex(t, ix, 0, 2) // 4 entries, 2 files
	ix.Close()
	// A file created but never counted (crash right after creation).
	path := lastIndexFile(t, dir)
	data, _ := os.ReadFile(path)
	binary.BigEndian.PutUint32(data[ihCount:], 0)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ix = openTestIndex(t, dir, 3, 2)
	if n := len(indexFiles(t, dir)); n != 1 || ix.EndPhysOffset() != 0 {
		t.Fatalf("files %d end %d", n, ix.EndPhysOffset())
	}
	ix.Close()
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"count", func(b []byte) []byte { binary.BigEndian.PutUint32(b[ihCount:], 3); return b }},
		{"size", func(b []byte) []byte { return b[:len(b)-1] }},
		{"short", func(b []byte) []byte { return b[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, "x.idx"), tc.mut(slices.Clone(data)), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenIndex(IndexConfig{Dir: d}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestIndexDeleteBefore(t *testing.T) {
	dir := t.TempDir()
	ix := openTestIndex(t, dir, 3, 4)
	fillIndex(t, ix, 0, 10) // files hold messages {0,1} {2,3} {4,5} {6,7} {8,9}
	if err := ix.DeleteBefore(450); err != nil {
		t.Fatal(err)
	}
	if n := len(indexFiles(t, dir)); n != 3 || ix.BeginPhysOffset() != 400 {
		t.Fatalf("files %d begin %d", n, ix.BeginPhysOffset())
	}
	wantOffsets(t, query(t, ix, "T", "k0", 0, 0, all), 900, 600)
	wantOffsets(t, query(t, ix, "T", "u4", 0, 0, all), 400)
	if err := ix.DeleteBefore(10_000); err != nil {
		t.Fatal(err)
	}
	if len(indexFiles(t, dir)) != 0 || ix.EndPhysOffset() != -1 {
		t.Fatal("not everything deleted")
	}
	fillIndex(t, ix, 20, 1)
	wantOffsets(t, query(t, ix, "T", "u20", 0, 0, all), 2000)
}

func TestIndexConfigValidate(t *testing.T) {
	for _, c := range []IndexConfig{{}, {Dir: "x", MaxHashSlots: -1}, {Dir: "x", MaxIndexCount: 1 << 30}} {
		if err := c.Validate(); err == nil {
			t.Fatalf("%+v valid", c)
		}
	}
	if err := (IndexConfig{Dir: "x"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIndexConcurrentQuery(t *testing.T) {
	ix := openTestIndex(t, t.TempDir(), 7, 50)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := ix.Query("T", "k1", 0, 0, all)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 1; i < len(got); i++ {
				if got[i] >= got[i-1] {
					t.Errorf("not newest first: %v", got)
					return
				}
			}
		}
	}()
	fillIndex(t, ix, 0, 200)
	close(done)
	wg.Wait()
	if got := query(t, ix, "T", "k1", 1000, 0, all); len(got) != 67 {
		t.Fatalf("%d results", len(got))
	}
}

func BenchmarkIndexPut(b *testing.B) {
	ix := openTestIndex(b, b.TempDir(), 1<<20, 4<<20)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("order-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := ix.Put("TopicTest", keys[i%len(keys)], int64(i)*200, 1700000000000+int64(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkIndexQuery(b *testing.B) {
	ix := openTestIndex(b, b.TempDir(), 1<<16, 1<<18)
	for i := 0; i < 1<<17; i++ {
		mustPut(b, ix, "TopicTest", fmt.Sprintf("order-%d", i%(1<<14)), int64(i)*200, 1700000000000+int64(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		got, err := ix.Query("TopicTest", fmt.Sprintf("order-%d", i%(1<<14)), 32, 0, all)
		if err != nil || len(got) != 8 {
			b.Fatalf("%v %v", got, err)
		}
		i++
	}
}

// TestIndexModel runs random puts, truncates, reopens and torn reopens against an in-memory
// model and compares every query.
func TestIndexModel(t *testing.T) {
	type ent struct {
		key      string
		phys, ts int64
	}
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			dir := t.TempDir()
			slots, count := 1+r.IntN(8), 1+r.IntN(12)
			ix := openTestIndex(t, dir, slots, count)
			var model []ent
			var phys int64
			keys := []string{"a", "b", "c", "d", "e", "order-1", "order-2", "中文"}
			check := func(step int) {
				t.Helper()
				for _, k := range keys {
					begin, end := int64(r.IntN(200)), int64(100+r.IntN(400))
					max := 1 + r.IntN(6)
					var want []int64
					for i := len(model) - 1; i >= 0 && len(want) < max; i-- {
						e := model[i]
						if e.key == k && e.ts >= begin && e.ts <= end && (len(want) == 0 || want[len(want)-1] != e.phys) {
							want = append(want, e.phys)
						}
					}
					got := query(t, ix, "T", k, max, begin, end)
					if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
						t.Fatalf("step %d key %s [%d,%d] max %d: got %v want %v", step, k, begin, end, max, got, want)
					}
				}
				wantEnd := int64(-1)
				if len(model) > 0 {
					wantEnd = model[len(model)-1].phys
				}
				if got := ix.EndPhysOffset(); got != wantEnd {
					t.Fatalf("step %d: end %d want %d", step, got, wantEnd)
				}
			}
			for step := 0; step < 300; step++ {
				op := r.IntN(20)
				if testing.Verbose() {
					t.Logf("step %d op %d model %v", step, op, model)
				}
				switch {
				case op < 14: // a message with 1..3 keys
					phys += int64(1 + r.IntN(50))
					ts := int64(r.IntN(500))
					for n := 1 + r.IntN(3); n > 0; n-- {
						k := keys[r.IntN(len(keys))]
						mustPut(t, ix, "T", k, phys, ts)
						model = append(model, ent{k, phys, ts})
					}
				case op < 17: // truncate
					off := r.Int64N(phys + 2)
					if err := ix.Truncate(off); err != nil {
						t.Fatal(err)
					}
					for len(model) > 0 && model[len(model)-1].phys >= off {
						model = model[:len(model)-1]
					}
					if off <= phys {
						phys = off // offsets may be reused after a truncate
					}
				case op < 19: // clean reopen
					if err := ix.Close(); err != nil {
						t.Fatal(err)
					}
					ix = openTestIndex(t, dir, slots, count)
				default: // torn reopen: the last k entries were never counted
					if err := ix.Close(); err != nil {
						t.Fatal(err)
					}
					if files := indexFiles(t, dir); len(files) > 0 {
						// The newest file by physical offset: store times are not monotonic here,
						// so the name order is not the file order.
						slices.SortFunc(files, func(a, b string) int {
							pa, pb := strings.Split(a, "_"), strings.Split(b, "_")
							return strings.Compare(pa[1]+pa[2], pb[1]+pb[2])
						})
						path := filepath.Join(dir, files[len(files)-1])
						data, err := os.ReadFile(path)
						if err != nil {
							t.Fatal(err)
						}
						n := binary.BigEndian.Uint32(data[ihCount:])
						k := uint32(r.IntN(int(n) + 1))
						binary.BigEndian.PutUint32(data[ihCount:], n-k)
						if err := os.WriteFile(path, data, 0o644); err != nil {
							t.Fatal(err)
						}
						model = model[:len(model)-int(k)]
						if len(model) > 0 {
							phys = max(phys, model[len(model)-1].phys)
						}
					}
					ix = openTestIndex(t, dir, slots, count)
				}
				check(step)
			}
		})
	}
}
