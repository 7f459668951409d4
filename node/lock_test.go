package node

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/raftmq/raftmq/transport/body"
)

func TestLockManager(t *testing.T) {
	lm := newLockManager(time.Minute)
	t0 := time.Unix(1000, 0)
	mq := func(q int) body.MessageQueue { return body.MessageQueue{Topic: "T", BrokerName: "b", QueueID: q} }
	ids := func(mqs []body.MessageQueue) []int {
		var out []int
		for _, m := range mqs {
			out = append(out, m.QueueID)
		}
		return out
	}
	if got := ids(lm.tryLock("g", "c1", []body.MessageQueue{mq(0), mq(1)}, t0)); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("c1 got %v", got)
	}
	if got := ids(lm.tryLock("g", "c2", []body.MessageQueue{mq(1), mq(2)}, t0.Add(time.Second))); !slices.Equal(got, []int{2}) {
		t.Fatalf("c2 got %v", got)
	}
	// Another group is independent.
	if got := ids(lm.tryLock("g2", "c2", []body.MessageQueue{mq(1)}, t0)); !slices.Equal(got, []int{1}) {
		t.Fatalf("other group: %v", got)
	}
	// Renewal at 50 s keeps queue 0 for c1 past the first minute.
	lm.tryLock("g", "c1", []body.MessageQueue{mq(0)}, t0.Add(50*time.Second))
	if got := ids(lm.tryLock("g", "c2", []body.MessageQueue{mq(0), mq(1)}, t0.Add(61*time.Second))); !slices.Equal(got, []int{1}) {
		t.Fatalf("at 61 s c2 got %v, want only the lapsed queue 1", got)
	}
	if h := lm.holder("g", mq(0), t0.Add(61*time.Second)); h != "c1" {
		t.Fatalf("holder of 0: %q", h)
	}
	// Only the holder unlocks.
	lm.unlock("g", "c2", []body.MessageQueue{mq(0)})
	if h := lm.holder("g", mq(0), t0.Add(62*time.Second)); h != "c1" {
		t.Fatalf("c2 unlocked c1's queue: holder %q", h)
	}
	lm.unlock("g", "c1", []body.MessageQueue{mq(0)})
	if h := lm.holder("g", mq(0), t0.Add(62*time.Second)); h != "" {
		t.Fatalf("after unlock: holder %q", h)
	}
	// Lapsed locks are forgotten eventually.
	lm.expire(t0.Add(time.Hour))
	if len(lm.groups) != 0 {
		t.Fatalf("expire left %v", lm.groups)
	}
}

func TestSubscriptionFilter(t *testing.T) {
	hb := `{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[` +
		`{"topic":"T","subString":"A || B","tagsSet":["A","B"],"codeSet":["65",66]},` +
		`{"topic":"U","subString":"*","tagsSet":[],"codeSet":[]},` +
		`{"topic":"V","subString":"C","tagsSet":["C"]}]}]}`
	var d body.HeartbeatData
	if err := jsonUnmarshal([]byte(hb), &d); err != nil {
		t.Fatal(err)
	}
	var subs []subscriptionData
	for _, s := range d.ConsumerDataSet[0].SubscriptionDataSet {
		subs = append(subs, subscriptionData(s))
	}
	f := subs[0].filter()
	if f == nil || !f(65) || !f(66) || f(67) {
		t.Fatal("codeSet filter (strings and numbers) wrong")
	}
	if subs[1].filter() != nil {
		t.Fatal("* must not filter")
	}
	if f := subs[2].filter(); f == nil || f(65) {
		t.Fatal("tagsSet filter wrong")
	}
	if diff := subsDiff(map[string]subscriptionData{"T": subs[0]}, map[string]subscriptionData{"T": subs[2]}); diff == "" {
		t.Fatal("different expressions not detected")
	}
	if diff := subsDiff(map[string]subscriptionData{"T": subs[0]}, map[string]subscriptionData{"T": subs[0]}); diff != "" {
		t.Fatalf("same subscriptions reported: %s", diff)
	}
}

func FuzzHeartbeatBody(f *testing.F) {
	f.Add([]byte(`{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"T","subString":"A","codeSet":["65"]}]}]}`))
	f.Add([]byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d body.HeartbeatData
		if jsonUnmarshal(b, &d) == nil {
			for _, c := range d.ConsumerDataSet {
				for _, s := range c.SubscriptionDataSet {
					if fl := subscriptionData(s).filter(); fl != nil {
						fl(1)
					}
				}
			}
		}
		var l body.LockBatchRequest
		_ = jsonUnmarshal(b, &l)
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
