package body

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// HeartbeatData is the body of HEART_BEAT (client → broker): the client's producer and
// consumer groups and the consumers' subscriptions.
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
}

// ProducerData is one producer group of a HeartbeatData.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// ConsumerData is one consumer group of a HeartbeatData.
type ConsumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`      // CONSUME_PASSIVELY (push), CONSUME_ACTIVELY (pull)
	MessageModel        string             `json:"messageModel"`     // CLUSTERING, BROADCASTING
	ConsumeFromWhere    string             `json:"consumeFromWhere"` // CONSUME_FROM_LAST_OFFSET, ...
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// SubscriptionData is one topic's subscription: in a HeartbeatData and in a
// ConsumerConnection's subscriptionTable.
type SubscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"` // the tag expression, "*" for every tag
	TagsSet         []string `json:"tagsSet"`
	CodeSet         CodeSet  `json:"codeSet"`
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"` // TAG (or SQL92)
}

// CodeSet is SubscriptionData.codeSet, the hash codes of the subscribed tags. Java writes
// them as JSON numbers ([65]), the Go clients as strings (["65"]). UnmarshalJSON reads both,
// even mixed, and sets Quoted when it saw a string; MarshalJSON writes the codes as strings
// when Quoted, else as numbers, and nil as [].
type CodeSet struct {
	Codes  []int64
	Quoted bool
}

// MarshalJSON implements json.Marshaler.
func (c CodeSet) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(c.Codes)*12)
	b = append(b, '[')
	for i, code := range c.Codes {
		if i > 0 {
			b = append(b, ',')
		}
		if c.Quoted {
			b = append(b, '"')
		}
		b = strconv.AppendInt(b, code, 10)
		if c.Quoted {
			b = append(b, '"')
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON implements json.Unmarshaler. A code is an integer, bare or quoted (spaces
// inside the quotes are ignored); anything else is an error that names it.
func (c *CodeSet) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := CodeSet{}
	if raw != nil {
		out.Codes = make([]int64, 0, len(raw))
	}
	for _, r := range raw {
		b := bytes.TrimSpace(r)
		if len(b) > 1 && b[0] == '"' {
			s, err := strconv.Unquote(string(b))
			if err != nil {
				return err
			}
			b = []byte(strings.TrimSpace(s))
			out.Quoted = true
		}
		v, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("code %s is not an integer", b)
		}
		out.Codes = append(out.Codes, v)
	}
	*c = out
	return nil
}
