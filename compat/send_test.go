package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestSendModes sends with sync, async and oneway calls, with tags, keys and user
// properties, and checks a clustering push consumer receives each message once with all of
// them intact.
func TestSendModes(t *testing.T) {
	topic := unique("TSend")
	if err := shared.createTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler)

	mk := func(body, tag string) *primitive.Message {
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag(tag)
		m.WithKeys([]string{"k-" + body, "x-" + body})
		m.WithProperty("color", "blue-"+body)
		return m
	}
	var want []string
	ctx := context.Background()
	for i := range 5 {
		body := fmt.Sprintf("sync-%d", i)
		res, err := p.SendSync(ctx, mk(body, "TagSync"))
		if err != nil {
			t.Fatalf("sync send: %v", err)
		}
		if res.Status != primitive.SendOK || res.MsgID == "" || res.OffsetMsgID == "" || res.MessageQueue == nil {
			t.Fatalf("sync send result: %+v", res)
		}
		want = append(want, body)
	}
	async := make(chan error, 5)
	for i := range 5 {
		body := fmt.Sprintf("async-%d", i)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %v", res.Status)
			}
			async <- err
		}, mk(body, "TagAsync"))
		if err != nil {
			t.Fatalf("async send: %v", err)
		}
		want = append(want, body)
	}
	for range 5 {
		select {
		case err := <-async:
			if err != nil {
				t.Fatalf("async send callback: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("async send: no callback")
		}
	}
	for i := range 5 {
		body := fmt.Sprintf("oneway-%d", i)
		if err := p.SendOneWay(ctx, mk(body, "TagOneway")); err != nil {
			t.Fatalf("oneway send: %v", err)
		}
		want = append(want, body)
	}
	col.waitAll(t, 30*time.Second, want)
	for _, body := range want {
		ms := col.get(body)
		m := ms[0]
		tag := "Tag" + strings.ToUpper(body[:1]) + body[1:strings.IndexByte(body, '-')]
		if m.GetTags() != tag {
			t.Errorf("%s: tag %q, want %q", body, m.GetTags(), tag)
		}
		if m.GetKeys() != "k-"+body+" x-"+body {
			t.Errorf("%s: keys %q", body, m.GetKeys())
		}
		if m.GetProperty("color") != "blue-"+body {
			t.Errorf("%s: property color %q", body, m.GetProperty("color"))
		}
		if m.Topic != topic || m.ReconsumeTimes != 0 || m.MsgId == "" {
			t.Errorf("%s: topic %q reconsumeTimes %d msgId %q", body, m.Topic, m.ReconsumeTimes, m.MsgId)
		}
	}
}

// TestAutoCreateTopic sends to a topic nobody created: the producer falls back to TBW102's
// route and the broker creates the topic, which then has a route of its own.
func TestAutoCreateTopic(t *testing.T) {
	topic := unique("TAuto")
	p := newProducer(t, shared)
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("first")))
	if err != nil {
		t.Fatalf("send to new topic: %v", err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("send result: %+v", res)
	}
	if err := shared.waitRoute(topic, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("second"))); err != nil {
		t.Fatalf("second send: %v", err)
	}
	col.waitAll(t, 30*time.Second, []string{"first", "second"})
}

// TestSendBatch sends one batch (SEND_BATCH_MESSAGE with the short header keys a..m) with
// tags, keys and properties per message and consumes every entry.
func TestSendBatch(t *testing.T) {
	topic := unique("TBatch")
	if err := shared.createTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler)
	mk := func(body, tag string) *primitive.Message {
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag(tag)
		m.WithKeys([]string{"k-" + body, "x-" + body})
		m.WithProperty("color", "blue-"+body)
		return m
	}
	ctx := context.Background()
	var want []string
	var batch []*primitive.Message
	for i := range 5 {
		body := fmt.Sprintf("batch-%d", i)
		batch = append(batch, mk(body, "TagBatch"))
		want = append(want, body)
	}
	res, err := p.SendSync(ctx, batch...)
	if err != nil {
		t.Fatalf("batch send: %v", err)
	}
	if res.Status != primitive.SendOK || len(strings.Split(res.OffsetMsgID, ",")) != 5 {
		t.Fatalf("batch send result: %+v", res)
	}

	col.waitAll(t, 30*time.Second, want)
	for _, body := range want {
		m := col.get(body)[0]
		if m.GetTags() != "TagBatch" || m.GetKeys() != "k-"+body+" x-"+body || m.GetProperty("color") != "blue-"+body {
			t.Errorf("%s: tags %q keys %q color %q", body, m.GetTags(), m.GetKeys(), m.GetProperty("color"))
		}
	}
}
