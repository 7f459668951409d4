package body

// LockBatchRequest is the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ (client → broker): the
// queues an orderly consumer asks to lock or unlock.
type LockBatchRequest struct {
	ConsumerGroup string         `json:"consumerGroup"`
	ClientID      string         `json:"clientId"`
	MQSet         []MessageQueue `json:"mqSet"`
}

// LockBatchResponse is the reply body of LOCK_BATCH_MQ: the queues the client now holds.
// It is written as Java's broker writes it, each queue's keys sorted.
type LockBatchResponse struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// MarshalJSON implements json.Marshaler.
func (r LockBatchResponse) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 16+len(r.LockOKMQSet)*64), `{"lockOKMQSet":`...)
	if r.LockOKMQSet == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, q := range r.LockOKMQSet {
		if i > 0 {
			b = append(b, ',')
		}
		b = q.appendSorted(b)
	}
	return append(b, "]}"...), nil
}
