// Package promsink is a github.com/armon/go-metrics MetricSink that keeps the current value of
// every metric and writes them in the Prometheus text exposition format, version 0.0.4.
//
// Mapping from go-metrics:
//
//   - Names: the parts of a go-metrics key are joined with "_", every character outside
//     [a-zA-Z0-9_] becomes "_" and a leading digit gets a "_" in front; case is kept. With
//     service name "raftmq", raft's ["raft","commitTime"] is exposed as raftmq_raft_commitTime.
//     Label names are sanitised the same way; label values are escaped (\\, \", \n) and
//     invalid UTF-8 is replaced.
//   - SetGauge, SetGaugeWithLabels and EmitKey: a gauge holding the last value set.
//   - IncrCounter, IncrCounterWithLabels: a counter holding the cumulative total since the
//     sink was created (never reset, as Prometheus expects); totals are kept as float64.
//   - AddSample, AddSampleWithLabels (and so MeasureSince, whose unit is go-metrics'
//     TimerGranularity, milliseconds by default): a summary with a cumulative _count and _sum
//     and the quantiles 0.5, 0.9, 0.99 and 1 (the maximum) over a sliding window: the
//     observations of the last Window/2 to Window (Options.Window, 1 minute by default), at
//     most MaxWindowSamples per half window (the most recent ones). A quantile with no
//     observation in the window is NaN, as client_golang writes it.
//
// Two keys that sanitise to the same name and labels share one series. A name used with two
// kinds (say a gauge and a counter) gets the kind appended for the later one
// ("name_counter"), so that the output stays valid. Series are never forgotten; past
// Options.MaxSeries updates of new series are dropped and counted in
// promsink_dropped_updates_total.
//
// The output is sorted (families by name, series by their label text), so it is
// deterministic. Every method is safe for concurrent use. Updating an existing series takes
// a read lock, a hash of the key and labels and an atomic update (a short mutex for
// samples), without allocating.
package promsink

import (
	"bytes"
	"hash/maphash"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	metrics "github.com/armon/go-metrics"
)

// ContentType is the Content-Type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Defaults of Options.
const (
	DefaultWindow           = time.Minute
	DefaultMaxWindowSamples = 1024
	DefaultMaxSeries        = 20000
)

// quantiles are the quantiles a summary reports (1 is the window's maximum).
var quantiles = []float64{0.5, 0.9, 0.99, 1}

// Options tune a Sink; zero values take the defaults.
type Options struct {
	// Window is how far back the quantiles of a summary look (between Window/2 and Window).
	Window time.Duration
	// MaxWindowSamples bounds the observations kept per half window and summary series.
	MaxWindowSamples int
	// MaxSeries bounds the number of series; later new series are dropped (and counted).
	MaxSeries int
}

type kind uint8

const (
	kindGauge kind = iota + 1
	kindCounter
	kindSummary
)

func (k kind) String() string {
	switch k {
	case kindGauge:
		return "gauge"
	case kindCounter:
		return "counter"
	default:
		return "summary"
	}
}

// Sink is the Prometheus sink. Create it with New.
type Sink struct {
	opts Options
	seed maphash.Seed
	now  func() int64 // monotonic nanoseconds (tests replace it)

	mu       sync.RWMutex
	entries  map[uint64]*entry  // hash of (kind, raw key, raw labels) → entries (chained)
	families map[string]*family // by exposed name
	help     map[string]string  // exposed name → HELP text
	nseries  int

	collectors []Collector // guarded by mu
	dropped    atomic.Uint64
	discard    series // where dropped series' updates go
}

// entry is one raw go-metrics (kind, key, labels) seen so far: a copy of them, for
// comparison, and the series they feed.
type entry struct {
	kind   kind
	key    []string
	labels []metrics.Label
	s      *series
	next   *entry // same hash
}

type family struct {
	name   string
	kind   kind
	help   string // default HELP: the go-metrics key, dot-joined
	series map[string]*series
}

// series is one exposed time series (or summary).
type series struct {
	labels string // rendered label pairs without braces: `a="x",b="y"`, or ""

	bits atomic.Uint64 // gauge: math.Float32bits; counter: math.Float64bits of the total

	sum *summary // kindSummary only
}

// summary holds a summary's state.
type summary struct {
	mu        sync.Mutex
	count     uint64
	sum       float64
	cur, prev []float32 // observations of the current and the previous half window
	curN      int       // observations added to cur (ring position once full)
	curStart  int64     // when cur began (monotonic ns); 0 = never
	prevStart int64
}

var epoch = time.Now()

// New returns an empty sink.
func New(opts Options) *Sink {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxWindowSamples <= 0 {
		opts.MaxWindowSamples = DefaultMaxWindowSamples
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	return &Sink{
		opts:     opts,
		seed:     maphash.MakeSeed(),
		now:      func() int64 { return int64(time.Since(epoch)) + 1 },
		entries:  map[uint64]*entry{},
		families: map[string]*family{},
		help:     map[string]string{},
		discard:  series{sum: &summary{}},
	}
}

var _ metrics.MetricSink = (*Sink)(nil)

// SetGauge implements metrics.MetricSink.
func (s *Sink) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels implements metrics.MetricSink.
func (s *Sink) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	s.lookup(kindGauge, key, labels).bits.Store(uint64(math.Float32bits(val)))
}

// EmitKey implements metrics.MetricSink: a key/value pair is kept as a gauge.
func (s *Sink) EmitKey(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

// IncrCounter implements metrics.MetricSink.
func (s *Sink) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }

// IncrCounterWithLabels implements metrics.MetricSink.
func (s *Sink) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	b := &s.lookup(kindCounter, key, labels).bits
	for {
		old := b.Load()
		if b.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+float64(val))) {
			return
		}
	}
}

// AddSample implements metrics.MetricSink.
func (s *Sink) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels implements metrics.MetricSink.
func (s *Sink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	sm := s.lookup(kindSummary, key, labels).sum
	now := s.now()
	half := int64(s.opts.Window / 2)
	sm.mu.Lock()
	sm.count++
	sm.sum += float64(val)
	if sm.curStart == 0 || now-sm.curStart >= half {
		sm.prev, sm.cur = sm.cur, sm.prev[:0]
		sm.prevStart, sm.curStart = sm.curStart, now
		sm.curN = 0
	}
	if len(sm.cur) < s.opts.MaxWindowSamples {
		sm.cur = append(sm.cur, val)
	} else {
		sm.cur[sm.curN%len(sm.cur)] = val
	}
	sm.curN++
	sm.mu.Unlock()
}

// SetHelp sets the HELP text of the metric a go-metrics key is exposed as (the full key, with
// the service name in front when go-metrics adds one). Without it HELP is "go-metrics key" and the dotted key.
func (s *Sink) SetHelp(key []string, help string) {
	name := sanitizeName(key)
	s.mu.Lock()
	s.help[name] = help
	s.mu.Unlock()
}

// hash hashes a raw (kind, key, labels) without allocating. Collisions only cost a
// comparison: entries are matched on the full key and labels.
func (s *Sink) hash(k kind, key []string, labels []metrics.Label) uint64 {
	h := uint64(k)
	for _, p := range key {
		h = mix(h, maphash.String(s.seed, p))
	}
	h = mix(h, uint64(len(key)))
	for _, l := range labels {
		h = mix(h, maphash.String(s.seed, l.Name))
		h = mix(h, maphash.String(s.seed, l.Value))
	}
	return h
}

// mix folds v into h (order-dependent).
func mix(h, v uint64) uint64 {
	h ^= v + 0x9e3779b97f4a7c15 + h<<6 + h>>2
	return h
}

func (e *entry) matches(k kind, key []string, labels []metrics.Label) bool {
	return e.kind == k && slices.Equal(e.key, key) && slices.Equal(e.labels, labels)
}

// lookup returns the series of a raw (kind, key, labels), creating it on first use.
func (s *Sink) lookup(k kind, key []string, labels []metrics.Label) *series {
	h := s.hash(k, key, labels)
	s.mu.RLock()
	for e := s.entries[h]; e != nil; e = e.next {
		if e.matches(k, key, labels) {
			s.mu.RUnlock()
			return e.s
		}
	}
	s.mu.RUnlock()
	return s.create(h, k, key, labels)
}

func (s *Sink) create(h uint64, k kind, key []string, labels []metrics.Label) *series {
	name := sanitizeName(key)
	lbl := renderLabels(labels, k == kindSummary)
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.entries[h]; e != nil; e = e.next {
		if e.matches(k, key, labels) {
			return e.s
		}
	}
	f := s.families[name]
	if f != nil && f.kind != k {
		// The name is taken by another kind: keep the output valid.
		name += "_" + k.String()
		f = s.families[name]
		if f != nil && f.kind != k {
			s.dropped.Add(1)
			return &s.discard
		}
	}
	var sr *series
	if f != nil {
		sr = f.series[lbl]
	}
	if sr == nil {
		if s.nseries >= s.opts.MaxSeries {
			s.dropped.Add(1)
			return &s.discard
		}
		if f == nil {
			f = &family{name: name, kind: k, help: "go-metrics key " + strings.Join(key, "."), series: map[string]*series{}}
			s.families[name] = f
		}
		sr = &series{labels: lbl}
		if k == kindSummary {
			sr.sum = &summary{}
		}
		f.series[lbl] = sr
		s.nseries++
	}
	s.entries[h] = &entry{kind: k, key: slices.Clone(key), labels: slices.Clone(labels), s: sr, next: s.entries[h]}
	return sr
}

// sanitizeName joins a go-metrics key into a Prometheus metric name.
func sanitizeName(key []string) string {
	var b strings.Builder
	for i, p := range key {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(p)
	}
	return sanitize(b.String())
}

// sanitize maps s onto [a-zA-Z_][a-zA-Z0-9_]*: one "_" per other character (rune).
func sanitize(s string) string {
	if s == "" {
		return "_"
	}
	b := make([]byte, 0, len(s)+1)
	if s[0] >= '0' && s[0] <= '9' {
		b = append(b, '_')
	}
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' {
			b = append(b, byte(c))
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// renderLabels renders labels sorted by name, names sanitised (a later duplicate name is
// dropped; names starting with "__", reserved by Prometheus, lose one "_"; "quantile" on a
// summary becomes "_quantile"), values escaped.
func renderLabels(labels []metrics.Label, summary bool) string {
	if len(labels) == 0 {
		return ""
	}
	type pair struct{ name, value string }
	ps := make([]pair, 0, len(labels))
	seen := map[string]bool{}
	for _, l := range labels {
		n := sanitize(l.Name)
		if strings.HasPrefix(n, "__") {
			n = n[1:]
		}
		if summary && n == "quantile" {
			n = "_quantile"
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		ps = append(ps, pair{n, l.Value})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	var b []byte
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.name...)
		b = append(b, `="`...)
		b = appendEscaped(b, p.value, true)
		b = append(b, '"')
	}
	return string(b)
}

// appendEscaped escapes \ and newline (and " when quote), and replaces invalid UTF-8.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// Metric is one value a Collector adds at scrape time.
type Metric struct {
	Name   string // already a valid Prometheus name
	Help   string
	Type   string // "gauge" or "counter"
	Labels []metrics.Label
	Value  float64
}

// Collector adds metrics computed when the sink is written (see RuntimeCollector).
type Collector func(add func(Metric))

// AddCollector registers c; it is called on every WriteText.
func (s *Sink) AddCollector(c Collector) {
	s.mu.Lock()
	s.collectors = append(s.collectors, c)
	s.mu.Unlock()
}

// ServeHTTP writes the exposition.
func (s *Sink) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	_ = s.WriteText(w)
}

// outFamily is a family as it is written: a snapshot of the sink's, or a collector's.
type outFamily struct {
	name, help, typ string
	series          []*series
	kind            kind
	values          []Metric // collector metrics
}

// WriteText writes every metric in the text exposition format 0.0.4.
func (s *Sink) WriteText(w io.Writer) error {
	s.mu.RLock()
	out := make([]outFamily, 0, len(s.families)+1)
	for _, f := range s.families {
		of := outFamily{name: f.name, help: f.help, typ: f.kind.String(), kind: f.kind, series: make([]*series, 0, len(f.series))}
		if h, ok := s.help[f.name]; ok {
			of.help = h
		}
		for _, sr := range f.series {
			of.series = append(of.series, sr)
		}
		out = append(out, of)
	}
	collectors := slices.Clone(s.collectors)
	s.mu.RUnlock()

	byName := map[string]int{}
	for i, f := range out {
		byName[f.name] = i
	}
	add := func(m Metric) {
		i, ok := byName[m.Name]
		if ok && (out[i].kind != 0 || out[i].typ != m.Type) {
			return // a go-metrics family or a different type owns the name
		}
		if !ok {
			out = append(out, outFamily{name: m.Name, help: m.Help, typ: m.Type})
			i = len(out) - 1
			byName[m.Name] = i
		}
		out[i].values = append(out[i].values, m)
	}
	for _, c := range collectors {
		c(add)
	}
	if d := s.dropped.Load(); d > 0 {
		add(Metric{Name: "promsink_dropped_updates_total", Help: "Updates of new series dropped because the sink already holds MaxSeries series (or the name was taken by another kind).", Type: "counter", Value: float64(d)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })

	var b []byte
	now := s.now()
	var scratch []float32
	for _, f := range out {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.typ...)
		b = append(b, '\n')
		if f.kind == 0 {
			lines := make([][]byte, 0, len(f.values))
			for _, m := range f.values {
				var l []byte
				l = append(l, f.name...)
				l = appendLabelSet(l, renderLabels(m.Labels, false), "")
				l = append(l, ' ')
				l = appendFloat64(l, m.Value)
				l = append(l, '\n')
				lines = append(lines, l)
			}
			slices.SortFunc(lines, bytes.Compare)
			for _, l := range lines {
				b = append(b, l...)
			}
			continue
		}
		sort.Slice(f.series, func(i, j int) bool { return f.series[i].labels < f.series[j].labels })
		for _, sr := range f.series {
			switch f.kind {
			case kindGauge:
				b = append(b, f.name...)
				b = appendLabelSet(b, sr.labels, "")
				b = append(b, ' ')
				b = appendFloat32(b, math.Float32frombits(uint32(sr.bits.Load())))
				b = append(b, '\n')
			case kindCounter:
				b = append(b, f.name...)
				b = appendLabelSet(b, sr.labels, "")
				b = append(b, ' ')
				b = appendFloat64(b, math.Float64frombits(sr.bits.Load()))
				b = append(b, '\n')
			case kindSummary:
				b, scratch = s.appendSummary(b, f.name, sr, now, scratch)
			}
		}
	}
	_, err := w.Write(b)
	return err
}

func (s *Sink) appendSummary(b []byte, name string, sr *series, now int64, scratch []float32) ([]byte, []float32) {
	sm := sr.sum
	window := int64(s.opts.Window)
	sm.mu.Lock()
	count, sum := sm.count, sm.sum
	scratch = scratch[:0]
	if sm.curStart != 0 && now-sm.curStart < window {
		scratch = append(scratch, sm.cur...)
	}
	if sm.prevStart != 0 && now-sm.prevStart < window {
		scratch = append(scratch, sm.prev...)
	}
	sm.mu.Unlock()
	slices.Sort(scratch)
	for _, q := range quantiles {
		b = append(b, name...)
		b = appendLabelSet(b, sr.labels, `quantile="`+strconv.FormatFloat(q, 'g', -1, 64)+`"`)
		b = append(b, ' ')
		if len(scratch) == 0 {
			b = append(b, "NaN"...)
		} else {
			i := int(math.Ceil(q*float64(len(scratch)))) - 1
			b = appendFloat32(b, scratch[min(max(i, 0), len(scratch)-1)])
		}
		b = append(b, '\n')
	}
	b = append(b, name...)
	b = append(b, "_sum"...)
	b = appendLabelSet(b, sr.labels, "")
	b = append(b, ' ')
	b = appendFloat64(b, sum)
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, "_count"...)
	b = appendLabelSet(b, sr.labels, "")
	b = append(b, ' ')
	b = strconv.AppendUint(b, count, 10)
	b = append(b, '\n')
	return b, scratch
}

func appendLabelSet(b []byte, labels, extra string) []byte {
	if labels == "" && extra == "" {
		return b
	}
	b = append(b, '{')
	b = append(b, labels...)
	if labels != "" && extra != "" {
		b = append(b, ',')
	}
	b = append(b, extra...)
	return append(b, '}')
}

// appendFloat64 writes v as Prometheus reads it: integers without exponent, else Go's
// shortest 'g' form, NaN, +Inf, -Inf.
func appendFloat64(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendFloat32 writes a float32 in its shortest form (0.1, not 0.10000000149011612).
func appendFloat32(b []byte, v float32) []byte {
	f := float64(v)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 32)
}
