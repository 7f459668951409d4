package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/raftmq/raftmq/client"
)

// A producer sends synchronously: the result means a Raft quorum of the broker group
// stored the message. Retryable failures (leader change, broker down) were already retried.
func ExampleProducer_Send() {
	p, err := client.NewProducer(client.ProducerConfig{
		ClientConfig: client.ClientConfig{NameServers: []string{"127.0.0.1:9876", "127.0.0.1:9877"}},
		Group:        "orders-producer",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.Send(ctx, &client.Message{
		Topic: "Orders",
		Tags:  "created",
		Keys:  []string{"order-42"},
		Body:  []byte(`{"id":42}`),
	})
	var e *client.Error
	switch {
	case errors.As(err, &e):
		log.Printf("broker %s refused: %s %s (retryable: %v)", e.Addr, e.Code, e.Remark, e.Retryable())
	case err != nil:
		log.Print(err)
	default:
		fmt.Println(res.Status, res.MsgID, res.Queue, res.QueueOffset)
	}
}

// Messages with one ShardingKey go to one queue, in order; an orderly consumer then sees
// them in that order.
func ExampleProducer_SendAsync() {
	p, err := client.NewProducer(client.ProducerConfig{
		ClientConfig: client.ClientConfig{NameServers: []string{"127.0.0.1:9876"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // waits for the callbacks of sends in flight

	for i := range 100 {
		msg := &client.Message{Topic: "Orders", ShardingKey: fmt.Sprint("customer-", i%10), Body: []byte("step")}
		err := p.SendAsync(context.Background(), msg, func(res *client.SendResult, err error) {
			if err != nil {
				log.Print(err)
			}
		})
		if err != nil {
			log.Print(err)
		}
	}
}

// A clustering push consumer: the group's members split the topic's queues; a listener
// that returns ConsumeRetryLater gets the messages again after a growing delay, and after
// MaxReconsumeTimes they go to %DLQ%<group>.
func ExamplePushConsumer() {
	c, err := client.NewPushConsumer(client.PushConsumerConfig{
		ClientConfig: client.ClientConfig{NameServers: []string{"127.0.0.1:9876"}},
		Group:        "billing",
		ConsumeFrom:  client.ConsumeFromFirst,
		Listener: func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
			for _, m := range msgs {
				fmt.Println(m.Topic, m.Tags, string(m.Body), m.ReconsumeTimes)
			}
			return client.ConsumeSuccess
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Subscribe("Orders", "created || paid"); err != nil {
		log.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer c.Close() // commits the offsets
	time.Sleep(time.Minute)
}

// A pull consumer controls positions itself.
func ExamplePullConsumer() {
	c, err := client.NewPullConsumer(client.PullConsumerConfig{
		ClientConfig: client.ClientConfig{NameServers: []string{"127.0.0.1:9876"}},
		Group:        "audit",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	queues, err := c.Queues(ctx, "Orders")
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Assign("*", queues...); err != nil {
		log.Fatal(err)
	}
	for _, q := range queues {
		_ = c.Seek(q, 0)
	}
	for range 10 {
		msgs, err := c.Poll(ctx)
		if err != nil {
			log.Print(err)
			continue
		}
		for _, m := range msgs {
			fmt.Println(m.Queue, m.QueueOffset, string(m.Body))
		}
	}
	if err := c.Commit(ctx); err != nil {
		log.Print(err)
	}
}

// A transactional producer: the half message is invisible until ExecuteLocal (or a later
// Check by the broker) says commit.
func ExampleProducer_SendInTransaction() {
	p, err := client.NewProducer(client.ProducerConfig{
		ClientConfig:        client.ClientConfig{NameServers: []string{"127.0.0.1:9876"}},
		Group:               "payments-tx",
		TransactionListener: paymentTx{},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	res, err := p.SendInTransaction(context.Background(), &client.Message{Topic: "Payments", Body: []byte("pay 10")}, "order-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.MsgID, res.State)
}

type paymentTx struct{}

func (paymentTx) ExecuteLocal(ctx context.Context, m *client.Message, arg any) client.TransactionState {
	return client.TxCommit // the local database transaction committed
}

func (paymentTx) Check(ctx context.Context, m *client.MessageExt) client.TransactionState {
	return client.TxCommit // look the outcome up by m.MsgID
}

// The admin client inspects and manages the cluster.
func ExampleAdmin() {
	a, err := client.NewAdmin(client.ClientConfig{NameServers: []string{"127.0.0.1:9876"}})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.CreateTopic(ctx, client.TopicConfig{Topic: "Orders", ReadQueues: 8, WriteQueues: 8}); err != nil {
		log.Fatal(err)
	}
	progress, err := a.ConsumerProgress(ctx, "billing", "Orders")
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range progress {
		fmt.Println(q.Queue, q.BrokerOffset, q.ConsumerOffset, q.Lag)
	}
}
