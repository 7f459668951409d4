package node_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// TestChaos is the bounded chaos soak (make chaos): a 3-node group under 8 concurrent senders
// while a seeded fault loop kills or partitions one node at a time (the leader or a follower)
// and restores it, for RAFTMQ_CHAOS (a Go duration) per Raft log store. It checks that the
// group keeps recovering, that no term ever has two leaders, and at the end that every
// acknowledged message is stored exactly once in contiguous queues on byte-identical replicas.
// RAFTMQ_CHAOS_SEED replays a run's fault sequence (the seed is logged at the start).
func TestChaos(t *testing.T) {
	spec := os.Getenv("RAFTMQ_CHAOS")
	if spec == "" {
		t.Skip("chaos soak: run it with RAFTMQ_CHAOS=<duration>, e.g. `make chaos CHAOS_DURATION=30s` or " +
			"`RAFTMQ_CHAOS=30s go test -race -run '^TestChaos$' -v ./node`; RAFTMQ_CHAOS_SEED=<int64> replays a run")
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d <= 0 {
		t.Fatalf("RAFTMQ_CHAOS=%q: want a positive Go duration such as 30s or 5m", spec)
	}
	var seed int64
	fixed := false
	if s := os.Getenv("RAFTMQ_CHAOS_SEED"); s != "" {
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("RAFTMQ_CHAOS_SEED=%q: want an int64", s)
		}
		fixed = true
	}
	forEachLogStore(t, func(t *testing.T, store testcluster.Option) {
		s := seed
		if !fixed {
			s = time.Now().UnixNano()
		}
		runChaos(t, d, s, store)
	})
}

// Bounds of the chaos run. The hold and pause ranges are the brief's; the waits are generous
// because the race detector slows everything several times over.
const (
	chaosPauseMin    = time.Second     // quiet time between two faults: 1–3 s
	chaosPauseMax    = 3 * time.Second //
	chaosHoldMin     = time.Second     // how long a node stays down or cut off: 1–4 s
	chaosHoldMax     = 4 * time.Second //
	chaosProgressMax = 15 * time.Second
	chaosSettleMax   = 60 * time.Second
	chaosSenders     = 8
)

type chaosRun struct {
	t     *testing.T
	c     *testcluster.Cluster
	rng   *rand.Rand
	seed  int64
	start time.Time

	mu       sync.Mutex
	acked    map[string]bool
	sent     map[string]bool // every body ever sent (acknowledged or not)
	attempts atomic.Int64
	failures atomic.Int64 // errors and non-SUCCESS replies

	actions map[string]int
	nAction int
}

func (r *chaosRun) logf(format string, args ...any) {
	r.t.Helper()
	now := time.Now()
	r.t.Logf("[%s +%7.2fs] %s", now.Format("15:04:05.000"), now.Sub(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *chaosRun) ackedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// between returns a duration in [lo, hi) from the run's seeded generator.
func (r *chaosRun) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rng.Int63n(int64(hi-lo)))
}

func runChaos(t *testing.T, d time.Duration, seed int64, store testcluster.Option) {
	t.Logf("chaos: seed %d (replay with RAFTMQ_CHAOS_SEED=%d), duration %v", seed, seed, d)
	c := testcluster.New(t, 3, testcluster.Quiet(), store)
	r := &chaosRun{
		t: t, c: c, rng: rand.New(rand.NewSource(seed)), seed: seed, start: time.Now(),
		acked: map[string]bool{}, sent: map[string]bool{}, actions: map[string]int{},
	}
	addrs := make([]string, c.N())
	for i := range c.N() {
		addrs[i] = c.Node(i).Addr() // a restarted node keeps its address
	}

	// Senders: distinct bodies to random live nodes, never retried.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range chaosSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(w) + 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var live []int
				for i := range c.N() {
					if c.Node(i) != nil {
						live = append(live, i)
					}
				}
				if len(live) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				i := seq.Add(1)
				body := fmt.Sprintf("chaos-w%d-%d", w, i)
				r.mu.Lock()
				r.sent[body] = true
				r.mu.Unlock()
				r.attempts.Add(1)
				resp, err := send(context.Background(), c.Client(), addrs[live[rng.Intn(len(live))]], c.Topic, int(i%4), []byte(body))
				if err == nil && resp.Code == int16(transport.Success) {
					r.mu.Lock()
					r.acked[body] = true
					r.mu.Unlock()
					continue
				}
				r.failures.Add(1)
				time.Sleep(5 * time.Millisecond) // a refused connection fails at once: no busy loop
			}
		}()
	}

	// Split-brain sampler: a term never has two leaders (Raft's election safety), among all
	// running nodes and over the whole run (a restarted node keeps its term in its stable store).
	// State and term are separate atomics: a reading counts only when the term is the same
	// before and after the state (raft sets the state before the term when it steps down).
	sampleStop := make(chan struct{})
	sampleDone := make(chan struct{})
	var samples atomic.Int64
	leaderOf := map[uint64]string{} // term -> leader seen; only the sampler touches it until sampleDone
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-tick.C:
			}
			samples.Add(1)
			for _, nd := range c.Live() {
				rf := nd.Raft()
				if rf == nil {
					continue
				}
				t1 := rf.CurrentTerm()
				st := rf.State()
				t2 := rf.CurrentTerm()
				if st != raft.Leader || t1 != t2 {
					continue
				}
				if prev, ok := leaderOf[t1]; ok && prev != nd.ServerID() {
					t.Errorf("split brain: term %d has two leaders, %s and %s (+%.2fs)", t1, prev, nd.ServerID(), time.Since(r.start).Seconds())
				}
				leaderOf[t1] = nd.ServerID()
			}
		}
	}()

	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() {
			close(stop)
			close(sampleStop)
			wg.Wait()
			<-sampleDone
		})
	}
	defer stopAll() // on a failure too: nothing outlives the test

	testcluster.Eventually(t, chaosProgressMax, func() error {
		if n := r.ackedCount(); n < 100 {
			return fmt.Errorf("%d acknowledged before the first fault", n)
		}
		return nil
	})
	r.logf("warm-up done: %d acknowledged", r.ackedCount())

	deadline := r.start.Add(d)
	for time.Now().Before(deadline) {
		time.Sleep(min(r.between(chaosPauseMin, chaosPauseMax), max(time.Until(deadline), 0)))
		if !time.Now().Before(deadline) {
			break
		}
		r.fault()
	}

	// Everything back, senders stopped, all replicas caught up.
	c.Heal()
	for i := range c.N() {
		if c.Node(i) == nil {
			r.logf("final: restart n%d", i)
			c.Restart(t, i)
		}
	}
	stopAll()
	r.logf("senders stopped: %d attempts, %d acknowledged, %d failed or unanswered", r.attempts.Load(), r.ackedCount(), r.failures.Load())
	leader := r.settle()

	seen, total := readAll(t, c, leader.Addr())
	var stored int64
	for q := range 4 {
		stored += leader.Store().MaxOffset(c.Topic, int32(q))
	}
	if int64(total) != stored {
		t.Errorf("pulled %d messages from the leader, its queues hold %d", total, stored)
	}
	var lost, dup, unknown []string
	for body := range r.acked {
		if seen[body] == 0 {
			lost = append(lost, body)
		}
	}
	ackedStored := 0
	for body, n := range seen {
		if n > 1 {
			dup = append(dup, fmt.Sprintf("%s x%d", body, n))
		}
		if !r.sent[body] {
			unknown = append(unknown, body)
		}
		if r.acked[body] {
			ackedStored++
		}
	}
	report := func(what string, l []string) {
		if len(l) > 0 {
			sort.Strings(l)
			t.Errorf("%d %s (seed %d), e.g. %s", len(l), what, seed, strings.Join(l[:min(len(l), 20)], ", "))
		}
	}
	report("acknowledged messages lost", lost)
	report("messages stored more than once (senders never retry)", dup)
	report("stored bodies never sent", unknown)
	c.EnsureSame(t)

	kinds := make([]string, 0, len(r.actions))
	for k, n := range r.actions {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	r.logf("chaos done (seed %d): %d faults [%s]; %d sends, %d acknowledged, %d stored (%d acknowledged + %d unacknowledged that committed); "+
		"%d split-brain samples over %d terms with a leader; elapsed %v",
		seed, r.nAction, strings.Join(kinds, " "), r.attempts.Load(), len(r.acked), total, ackedStored, total-ackedStored,
		samples.Load(), len(leaderOf), time.Since(r.start).Round(time.Millisecond))
}

// fault injects one single failure, holds it 1–4 s, restores it and checks that the group
// acknowledges sends again within chaosProgressMax.
func (r *chaosRun) fault() {
	t, c := r.t, r.c
	kind := []string{"kill-leader", "kill-follower", "partition-leader", "partition-follower"}[r.rng.Intn(4)]
	pick := r.rng.Intn(c.N() - 1) // which follower, drawn always so the seed fixes the sequence
	hold := r.between(chaosHoldMin, chaosHoldMax)
	li := c.Index(c.Leader(t))
	target := li
	if strings.HasSuffix(kind, "follower") {
		var fs []int
		for i := range c.N() {
			if i != li {
				fs = append(fs, i)
			}
		}
		target = fs[pick]
	}
	r.actions[kind]++
	r.nAction++
	before := r.ackedCount()
	killed := strings.HasPrefix(kind, "kill")
	r.logf("fault %d: %s n%d (leader n%d), hold %v; %d acknowledged", r.nAction, kind, target, li, hold.Round(time.Millisecond), before)
	if killed {
		c.Kill(t, target)
	} else {
		c.Partition(target)
	}
	time.Sleep(hold)
	at := r.ackedCount()
	if killed {
		r.logf("restore %d: restart n%d; %d acknowledged (+%d while down)", r.nAction, target, at, at-before)
		c.Restart(t, target)
	} else {
		r.logf("restore %d: heal n%d; %d acknowledged (+%d while cut off)", r.nAction, target, at, at-before)
		c.Heal()
	}
	restored := time.Now()
	at = r.ackedCount()
	testcluster.Eventually(t, chaosProgressMax, func() error {
		if n := r.ackedCount(); n <= at {
			return fmt.Errorf("no send acknowledged since restore %d (%s n%d, seed %d): still %d", r.nAction, kind, target, r.seed, n)
		}
		return nil
	})
	r.logf("progress after restore %d: first new acknowledgement within %v", r.nAction, time.Since(restored).Round(time.Millisecond))
}

// settle waits until one ready leader has applied its whole log and every node has applied
// as much, and returns that leader.
func (r *chaosRun) settle() *node.Node {
	t, c := r.t, r.c
	var leader *node.Node
	testcluster.Eventually(t, chaosSettleMax, func() error {
		var ls []*node.Node
		for _, nd := range c.Live() {
			if nd.LeaderReady() {
				ls = append(ls, nd)
			}
		}
		if len(ls) != 1 {
			return fmt.Errorf("%d ready leaders", len(ls))
		}
		l := ls[0]
		last := l.Raft().LastIndex()
		for _, nd := range c.Live() {
			if a := nd.Raft().AppliedIndex(); a < last {
				return fmt.Errorf("%s applied %d, leader %s's last index is %d", nd.ServerID(), a, l.ServerID(), last)
			}
		}
		leader = l
		return nil
	})
	c.WaitApplied(t, leader.FSM().AppliedIndex())
	r.logf("settled: leader %s, last index %d applied everywhere", leader.ServerID(), leader.Raft().LastIndex())
	return leader
}
