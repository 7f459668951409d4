package bench

import (
	"sync"
	"time"
)

// stats counts one side (sends or consumption) of a run: per interval and in total.
type stats struct {
	mu            sync.Mutex
	interval      Histogram
	total         Histogram
	iOK, iFailed  uint64
	iBytes        uint64
	tOK, tFailed  uint64
	tBytes        uint64
	lastProgress  time.Time
	intervalStart time.Time
}

// success records n messages of bytes body bytes and one latency sample.
func (s *stats) success(n, bytes int, lat time.Duration) {
	s.mu.Lock()
	s.interval.Record(int64(lat))
	s.total.Record(int64(lat))
	s.iOK += uint64(n)
	s.tOK += uint64(n)
	s.iBytes += uint64(bytes)
	s.tBytes += uint64(bytes)
	s.lastProgress = time.Now()
	s.mu.Unlock()
}

// failure records n failed messages.
func (s *stats) failure(n int) {
	s.mu.Lock()
	s.iFailed += uint64(n)
	s.tFailed += uint64(n)
	s.mu.Unlock()
}

// reset forgets everything recorded (the end of a warm-up).
func (s *stats) reset(now time.Time) {
	s.mu.Lock()
	s.interval.Reset()
	s.total.Reset()
	s.iOK, s.iFailed, s.iBytes, s.tOK, s.tFailed, s.tBytes = 0, 0, 0, 0, 0, 0
	s.lastProgress, s.intervalStart = now, now
	s.mu.Unlock()
}

func (s *stats) okTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tOK
}

func (s *stats) sinceProgress(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.lastProgress)
}

// Throughput is one side of a run (sends or consumption): successes, failures, rates and the
// latency distribution (sends: request → reply, one sample per call, so per batch with -b;
// consumption: born → consumed, per message).
type Throughput struct {
	OK         uint64  `json:"ok"`
	Failed     uint64  `json:"failed"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	Latency    Latency `json:"latency"`
}

// takeInterval returns the interval's numbers over d and starts a new interval.
func (s *stats) takeInterval(d time.Duration) Throughput {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := throughput(s.iOK, s.iFailed, s.iBytes, d, &s.interval)
	s.interval.Reset()
	s.iOK, s.iFailed, s.iBytes = 0, 0, 0
	return t
}

func (s *stats) totals(d time.Duration) Throughput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return throughput(s.tOK, s.tFailed, s.tBytes, d, &s.total)
}

func throughput(ok, failed, bytes uint64, d time.Duration, h *Histogram) Throughput {
	t := Throughput{OK: ok, Failed: failed, Latency: h.Latency()}
	if sec := d.Seconds(); sec > 0 {
		t.MsgsPerSec = float64(ok) / sec
		t.MBPerSec = float64(bytes) / sec / (1 << 20)
	}
	return t
}
