package node

import (
	"sync"
	"time"
)

// groupRates counts the messages each consumer group pulls from each topic on this node and
// reports them as a rate over the last minute: GET_CONSUME_STATS' consumeTps, as Java's
// broker derives it from its GROUP_GET_NUMS statistics (per topic@group, the last minute).
// Pulls served by a follower are counted on that follower, so a group reading from followers
// shows its rate there.
type groupRates struct {
	mu sync.Mutex
	m  map[groupTopic]*rateWindow
}

type groupTopic struct{ group, topic string }

// rateBuckets × rateBucket is the window consumeTps looks back over.
const (
	rateBuckets = 6
	rateBucket  = 10 * time.Second
	// maxRateKeys bounds the (group, topic) pairs tracked; pulls of further pairs are not
	// counted (their consumeTps reads 0) rather than letting a misbehaving client grow memory.
	maxRateKeys = 20000
)

// rateWindow holds the counts of the last rateBuckets buckets; epochs[i] is the bucket number
// (time / rateBucket) whose count counts[i] holds.
type rateWindow struct {
	epochs [rateBuckets]int64
	counts [rateBuckets]int64
}

func (w *rateWindow) add(epoch, n int64) {
	i := epoch % rateBuckets
	if w.epochs[i] != epoch {
		w.epochs[i], w.counts[i] = epoch, 0
	}
	w.counts[i] += n
}

// perSecond is the rate over the whole buckets before epoch plus the current one, over the
// time they span.
func (w *rateWindow) perSecond(now time.Time) float64 {
	epoch := now.UnixNano() / int64(rateBucket)
	var sum int64
	for i := range rateBuckets {
		if e := w.epochs[i]; e > epoch-rateBuckets && e <= epoch {
			sum += w.counts[i]
		}
	}
	// The window spans the rateBuckets-1 whole buckets before this one and the part of the
	// current bucket that has passed.
	span := time.Duration(rateBuckets-1)*rateBucket + time.Duration(now.UnixNano()%int64(rateBucket))
	return float64(sum) / span.Seconds()
}

// add counts n messages pulled by group from topic at now.
func (r *groupRates) add(group, topic string, n int, now time.Time) {
	if n <= 0 || group == "" {
		return
	}
	k := groupTopic{group, topic}
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.m[k]
	if w == nil {
		if r.m == nil {
			r.m = map[groupTopic]*rateWindow{}
		}
		if len(r.m) >= maxRateKeys {
			r.pruneLocked(now)
			if len(r.m) >= maxRateKeys {
				return
			}
		}
		w = &rateWindow{}
		r.m[k] = w
	}
	w.add(now.UnixNano()/int64(rateBucket), int64(n))
}

// tps is group's pull rate from topic over the last minute, or from all its topics when topic
// is "".
func (r *groupRates) tps(group, topic string, now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total float64
	for k, w := range r.m {
		if k.group == group && (topic == "" || k.topic == topic) {
			total += w.perSecond(now)
		}
	}
	return total
}

// pruneLocked drops the pairs with nothing counted in the window.
func (r *groupRates) pruneLocked(now time.Time) {
	for k, w := range r.m {
		if w.perSecond(now) == 0 {
			delete(r.m, k)
		}
	}
}
