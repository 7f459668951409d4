package promsink

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metrics "github.com/armon/go-metrics"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fakeClock makes the sink's window deterministic.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64          { return c.ns }
func (c *fakeClock) add(d time.Duration) { c.ns += int64(d) }

func newTestSink(opts Options) (*Sink, *fakeClock) {
	s := New(opts)
	c := &fakeClock{ns: 1}
	s.now = c.now
	return s, c
}

func text(t *testing.T, s *Sink) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	s, clock := newTestSink(Options{})
	// What raft and raftmq report through go-metrics (service name "raftmq" in front).
	s.SetGauge([]string{"raftmq", "raft", "state", "leader"}, 1)
	s.SetGauge([]string{"raftmq", "runtime", "alloc_bytes"}, 0.1)
	s.EmitKey([]string{"raftmq", "emitted"}, 42)
	s.IncrCounter([]string{"raftmq", "raft", "apply"}, 1)
	s.IncrCounter([]string{"raftmq", "raft", "apply"}, 2)
	s.IncrCounterWithLabels([]string{"raftmq", "broker", "put", "messages", "total"}, 3, []metrics.Label{{Name: "topic", Value: "B"}})
	s.IncrCounterWithLabels([]string{"raftmq", "broker", "put", "messages", "total"}, 5, []metrics.Label{{Name: "topic", Value: "A"}})
	s.IncrCounterWithLabels([]string{"raftmq", "broker", "put", "messages", "total"}, 1e6, []metrics.Label{{Name: "topic", Value: "A"}})
	s.SetGaugeWithLabels([]string{"raftmq", "broker", "raft", "term"}, 7, []metrics.Label{{Name: "node", Value: "n1"}, {Name: "broker", Value: "broker-a"}})
	for i := 1; i <= 100; i++ {
		s.AddSample([]string{"raftmq", "raft", "commitTime"}, float32(i))
	}
	s.AddSampleWithLabels([]string{"raftmq", "broker", "send", "latency", "seconds"}, 0.25, []metrics.Label{{Name: "broker", Value: "b"}})
	// A name used as two kinds, and an idle summary.
	s.SetGauge([]string{"raftmq", "dual"}, 1)
	s.IncrCounter([]string{"raftmq", "dual"}, 1)
	s.AddSample([]string{"raftmq", "idle"}, 3)
	clock.add(2 * time.Minute)
	s.AddSample([]string{"raftmq", "raft", "commitTime"}, 1000) // the window moved: only this one is left
	for i := 1; i <= 100; i++ {
		s.AddSample([]string{"raftmq", "raft", "commitTime"}, float32(i))
	}
	s.SetHelp([]string{"raftmq", "raft", "apply"}, "Raft log entries applied.\nSecond line \\ backslash.")
	got := text(t, s)
	golden(t, "basic", got)
	if again := text(t, s); again != got {
		t.Errorf("second write differs:\n%s\n%s", got, again)
	}
}

func TestNamesAndEscaping(t *testing.T) {
	s, _ := newTestSink(Options{})
	s.SetGaugeWithLabels([]string{"raftmq", "weird.key-name", "9lives", "µs"}, 2, []metrics.Label{
		{Name: "path", Value: `C:\dir "quoted"` + "\nnext"},
		{Name: "bad-label.name", Value: "x"},
		{Name: "0digit", Value: "y"},
		{Name: "__reserved", Value: "z"},
		{Name: "utf8", Value: "caf\xc3\xa9 \xff"},
		{Name: "path", Value: "duplicate, dropped"},
	})
	s.AddSampleWithLabels([]string{"1st"}, 1, []metrics.Label{{Name: "quantile", Value: "user's"}})
	s.SetGauge(nil, 3)
	got := text(t, s)
	golden(t, "escaping", got)
	checkFormat(t, got)
}

// checkFormat checks every line against the text format's grammar (a subset: no timestamps).
func checkFormat(t *testing.T, out string) {
	t.Helper()
	name := `[a-zA-Z_:][a-zA-Z0-9_:]*`
	value := `(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?|Inf)|NaN)`
	lval := `"(?:[^"\\\n]|\\[\\"n])*"`
	sample := regexp.MustCompile(`^` + name + `(?:\{[a-zA-Z_][a-zA-Z0-9_]*=` + lval + `(?:,[a-zA-Z_][a-zA-Z0-9_]*=` + lval + `)*\})? ` + value + `$`)
	help := regexp.MustCompile(`^# HELP ` + name + ` (?:[^\\\n]|\\[\\n])*$`)
	typ := regexp.MustCompile(`^# TYPE ` + name + ` (?:counter|gauge|summary|histogram|untyped)$`)
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("output does not end with a newline")
	}
	types := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "# HELP "):
			if !help.MatchString(l) {
				t.Errorf("bad HELP line %q", l)
			}
		case strings.HasPrefix(l, "# TYPE "):
			if !typ.MatchString(l) {
				t.Errorf("bad TYPE line %q", l)
			}
			n := strings.Fields(l)[2]
			if types[n] {
				t.Errorf("TYPE of %s twice", n)
			}
			types[n] = true
		default:
			if !sample.MatchString(l) {
				t.Errorf("bad sample line %q", l)
			}
		}
	}
}

func TestFormatOfEverything(t *testing.T) {
	s, _ := newTestSink(Options{})
	s.AddCollector(RuntimeCollector())
	s.SetGauge([]string{"g"}, float32(math.Inf(1)))
	s.SetGauge([]string{"h"}, float32(math.NaN()))
	s.IncrCounter([]string{"c"}, 0.5)
	s.AddSample([]string{"s"}, -1.5)
	out := text(t, s)
	checkFormat(t, out)
	for _, want := range []string{"g +Inf\n", "h NaN\n", "c 0.5\n", `s{quantile="0.5"} -1.5` + "\n", "s_sum -1.5\n", "s_count 1\n",
		"\n# TYPE go_goroutines gauge\ngo_goroutines ", "\n# TYPE process_cpu_seconds_total counter\n", "process_resident_memory_bytes ",
		`go_info{version="go`, "process_open_fds ", "process_start_time_seconds "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCollectorCannotShadowSinkFamily(t *testing.T) {
	s, _ := newTestSink(Options{})
	s.SetGauge([]string{"go", "goroutines"}, 5)
	s.AddCollector(func(add func(Metric)) {
		add(Metric{Name: "go_goroutines", Help: "x", Type: "gauge", Value: 9})
		add(Metric{Name: "extra", Help: "y", Type: "counter", Labels: []metrics.Label{{Name: "b", Value: "2"}}, Value: 2})
		add(Metric{Name: "extra", Help: "y", Type: "counter", Labels: []metrics.Label{{Name: "b", Value: "1"}}, Value: 1})
	})
	got := text(t, s)
	want := "# HELP extra y\n# TYPE extra counter\nextra{b=\"1\"} 1\nextra{b=\"2\"} 2\n" +
		"# HELP go_goroutines go-metrics key go.goroutines\n# TYPE go_goroutines gauge\ngo_goroutines 5\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMaxSeries(t *testing.T) {
	s, _ := newTestSink(Options{MaxSeries: 2})
	s.IncrCounter([]string{"a"}, 1)
	s.IncrCounter([]string{"b"}, 1)
	s.IncrCounter([]string{"c"}, 1) // dropped
	s.IncrCounter([]string{"a"}, 1) // existing: kept
	got := text(t, s)
	if !strings.Contains(got, "\na 2\n") || !strings.Contains(got, "\nb 1\n") || strings.Contains(got, "\nc ") ||
		!strings.Contains(got, "promsink_dropped_updates_total 1\n") {
		t.Errorf("unexpected output:\n%s", got)
	}
}

func TestSameNameDifferentRawKeysShareSeries(t *testing.T) {
	s, _ := newTestSink(Options{})
	s.IncrCounterWithLabels([]string{"a.b"}, 1, []metrics.Label{{Name: "x", Value: "1"}, {Name: "y", Value: "2"}})
	s.IncrCounterWithLabels([]string{"a_b"}, 2, []metrics.Label{{Name: "y", Value: "2"}, {Name: "x", Value: "1"}})
	if got := text(t, s); !strings.HasSuffix(got, "a_b{x=\"1\",y=\"2\"} 3\n") {
		t.Errorf("got\n%s", got)
	}
}

func TestCountersNeverReset(t *testing.T) {
	s, clock := newTestSink(Options{})
	s.IncrCounter([]string{"c"}, 3)
	s.AddSample([]string{"s"}, 3)
	text(t, s)
	clock.add(time.Hour)
	s.IncrCounter([]string{"c"}, 4)
	got := text(t, s)
	for _, want := range []string{"\nc 7\n", "\ns_count 1\n", "\ns_sum 3\n", `s{quantile="0.99"} NaN`} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
}

func TestSummaryWindowBounded(t *testing.T) {
	s, clock := newTestSink(Options{MaxWindowSamples: 10, Window: 10 * time.Second})
	for i := range 1000 {
		s.AddSample([]string{"s"}, float32(i))
	}
	got := text(t, s)
	// Only the 10 most recent observations (990..999) are kept for the quantiles.
	for _, want := range []string{`s{quantile="0.5"} 994`, `s{quantile="1"} 999`, "s_count 1000\n", "s_sum 499500\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	clock.add(6 * time.Second) // next half window: the previous one still counts
	s.AddSample([]string{"s"}, 5000)
	if got := text(t, s); !strings.Contains(got, `s{quantile="1"} 5000`) || !strings.Contains(got, `s{quantile="0.5"} 995`) {
		t.Errorf("after one half window:\n%s", got)
	}
	clock.add(6 * time.Second) // 12 s after the first ones: they left the window
	s.AddSample([]string{"s"}, 7)
	if got := text(t, s); !strings.Contains(got, `s{quantile="0.5"} 7`) || !strings.Contains(got, `s{quantile="1"} 5000`) {
		t.Errorf("after two half windows:\n%s", got)
	}
}

func TestServeHTTP(t *testing.T) {
	s, _ := newTestSink(Options{})
	s.IncrCounter([]string{"c"}, 1)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(rec.Body.String(), "\nc 1\n") {
		t.Errorf("body %q", rec.Body.String())
	}
}

// TestConcurrent hammers every method while writing; run with -race.
func TestConcurrent(t *testing.T) {
	s := New(Options{})
	s.AddCollector(RuntimeCollector())
	const workers, rounds = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			labels := []metrics.Label{{Name: "w", Value: strconv.Itoa(w % 2)}}
			for i := range rounds {
				s.IncrCounter([]string{"c"}, 1)
				s.IncrCounterWithLabels([]string{"cl"}, 1, labels)
				s.AddSampleWithLabels([]string{"s"}, float32(i), labels)
				s.SetGaugeWithLabels([]string{"g"}, float32(i), labels)
				s.IncrCounter([]string{"new", strconv.Itoa(i % 50)}, 1)
				if i%500 == 0 {
					s.SetHelp([]string{"c"}, fmt.Sprint("help ", i))
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := s.WriteText(&bytes.Buffer{}); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	got := text(t, s)
	checkFormat(t, got)
	for _, want := range []string{
		fmt.Sprintf("\nc %d\n", workers*rounds),
		fmt.Sprintf("\ncl{w=\"0\"} %d\n", workers/2*rounds),
		fmt.Sprintf("\ns_count{w=\"1\"} %d\n", workers/2*rounds),
		fmt.Sprintf("\nnew_7 %d\n", workers*rounds/50),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q", want)
		}
	}
}

func BenchmarkIncrCounter(b *testing.B) {
	s := New(Options{})
	key := []string{"raftmq", "broker", "put", "messages", "total"}
	labels := []metrics.Label{{Name: "topic", Value: "TopicTest"}}
	b.ReportAllocs()
	for b.Loop() {
		s.IncrCounterWithLabels(key, 1, labels)
	}
}

func BenchmarkIncrCounterParallel(b *testing.B) {
	s := New(Options{})
	key := []string{"raftmq", "broker", "put", "messages", "total"}
	labels := []metrics.Label{{Name: "topic", Value: "TopicTest"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.IncrCounterWithLabels(key, 1, labels)
		}
	})
}

func BenchmarkAddSample(b *testing.B) {
	s := New(Options{})
	key := []string{"raftmq", "broker", "send", "latency", "seconds"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s.AddSample(key, float32(i%1000))
	}
}

// BenchmarkGlobalIncrCounter is the whole cost seen by a caller of the global go-metrics API
// with this sink installed (go-metrics copies the key and labels on every call).
func BenchmarkGlobalIncrCounter(b *testing.B) {
	cfg := metrics.DefaultConfig("raftmq")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false
	m, err := metrics.New(cfg, New(Options{}))
	if err != nil {
		b.Fatal(err)
	}
	key := []string{"broker", "put", "messages", "total"}
	labels := []metrics.Label{{Name: "topic", Value: "TopicTest"}}
	b.ReportAllocs()
	for b.Loop() {
		m.IncrCounterWithLabels(key, 1, labels)
	}
}

func BenchmarkWriteText(b *testing.B) {
	s := New(Options{})
	for i := range 200 {
		s.IncrCounterWithLabels([]string{"c", strconv.Itoa(i % 20)}, 1, []metrics.Label{{Name: "topic", Value: strconv.Itoa(i)}})
		s.AddSample([]string{"s", strconv.Itoa(i % 10)}, float32(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.WriteText(io.Discard)
	}
}

// BenchmarkGlobalPerSend is what raftmq adds to one acknowledged send through the global
// go-metrics API (two counters with a topic label and a latency sample), with the sinks
// cmd/raftmq installs (in-memory and this one) and with go-metrics' default blackhole.
func BenchmarkGlobalPerSend(b *testing.B) {
	for _, v := range []struct {
		name string
		sink func() metrics.MetricSink
	}{
		{"blackhole", func() metrics.MetricSink { return &metrics.BlackholeSink{} }},
		{"prom", func() metrics.MetricSink { return New(Options{}) }},
		{"inmem+prom", func() metrics.MetricSink {
			return metrics.FanoutSink{metrics.NewInmemSink(10*time.Second, time.Minute), New(Options{})}
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := metrics.DefaultConfig("raftmq")
			cfg.EnableHostname = false
			cfg.EnableRuntimeMetrics = false
			m, err := metrics.New(cfg, v.sink())
			if err != nil {
				b.Fatal(err)
			}
			msgs := []string{"broker", "put", "messages", "total"}
			byts := []string{"broker", "put", "bytes", "total"}
			lat := []string{"broker", "send", "latency", "seconds"}
			labels := []metrics.Label{{Name: "topic", Value: "TopicTest"}}
			b.ReportAllocs()
			for b.Loop() {
				m.IncrCounterWithLabels(msgs, 1, labels)
				m.IncrCounterWithLabels(byts, 1100, labels)
				m.AddSample(lat, 0.0021)
			}
		})
	}
}
