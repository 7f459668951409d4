package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// Every row of the table, wrapped the way callers wrap, maps to its code; and the codes the
// Go client counts as stored never come from an error that means "not stored".
func TestCodes_Table(t *testing.T) {
	for _, row := range errorCodes {
		err := fmt.Errorf("step: %w", row.err)
		if got := codeFor(err); got != row.code {
			t.Errorf("%v -> %s, want %s", row.err, got, row.code)
		}
		switch row.code {
		case transport.FlushDiskTimeout, transport.SlaveNotAvailable, transport.FlushSlaveTimeout, transport.Success:
			t.Errorf("%v maps to %s, which the Go client counts as stored", row.err, row.code)
		}
	}
	if got := codeFor(errors.New("anything else")); got != transport.SystemError {
		t.Fatalf("unknown error -> %s", got)
	}
	cases := []struct {
		err  error
		want transport.ResponseCode
	}{
		{fmt.Errorf("append: %w", commitlog.ErrDiskFull), transport.ServiceNotAvailable},
		{fmt.Errorf("x: %w", raft.ErrEnqueueTimeout), transport.SystemBusy},
		{fmt.Errorf("x: %w", raft.ErrLeadershipLost), transport.ServiceNotAvailable},
		{fmt.Errorf("validate: %w", commitlog.ErrBodyTooLarge), transport.MessageIllegal},
		{fmt.Errorf("%w; leader is n1", ErrNotLeader), transport.ServiceNotAvailable},
		{ErrTopicNotExist, transport.TopicNotExist},
	}
	for _, c := range cases {
		r := errorResponse(c.err)
		if transport.ResponseCode(r.Code) != c.want || r.Remark != c.err.Error() {
			t.Errorf("%v -> %s %q", c.err, transport.ResponseCode(r.Code), r.Remark)
		}
	}
}

func batchRecord(flag int32, body []byte, props string) []byte {
	total := 20 + len(body) + 2 + len(props)
	b := make([]byte, total)
	binary.BigEndian.PutUint32(b, uint32(total))
	binary.BigEndian.PutUint32(b[12:], uint32(flag))
	binary.BigEndian.PutUint32(b[16:], uint32(len(body)))
	copy(b[20:], body)
	binary.BigEndian.PutUint16(b[20+len(body):], uint16(len(props)))
	copy(b[22+len(body):], props)
	return b
}

func TestDecodeBatchBody(t *testing.T) {
	var body []byte
	body = append(body, batchRecord(1, []byte("one"), "TAGS\x01a")...)
	body = append(body, batchRecord(2, []byte("two!"), "")...)
	items, err := decodeBatchBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || string(items[0].body) != "one" || items[0].props != "TAGS\x01a" || items[0].flag != 1 ||
		string(items[1].body) != "two!" || items[1].props != "" || items[1].flag != 2 {
		t.Fatalf("items %+v", items)
	}
	for _, bad := range [][]byte{nil, body[:len(body)-1], append(append([]byte{}, body...), 0, 0, 0), {0, 0, 0, 5}} {
		if _, err := decodeBatchBody(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("decode %x: %v", bad, err)
		}
	}
}

func FuzzDecodeBatchBody(f *testing.F) {
	f.Add(batchRecord(0, []byte("x"), "a\x01b"))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := decodeBatchBody(b)
		if err != nil {
			return
		}
		// Re-encoding the items gives the input back (every byte is accounted for).
		var out []byte
		for _, it := range items {
			out = append(out, batchRecord(it.flag, it.body, it.props)...)
		}
		if len(out) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(out), len(b))
		}
	})
}

func TestTagFilter(t *testing.T) {
	if tagFilter("") != nil || tagFilter(" * ") != nil {
		t.Fatal("match-all expressions must give no filter")
	}
	f := tagFilter("TagA || TagB")
	if !f(message.TagsHashCode("TagA")) || !f(message.TagsHashCode("TagB")) || f(message.TagsHashCode("TagC")) || f(0) {
		t.Fatal("tag set filter wrong")
	}
}

func TestParseSendHeader_ShortKeys(t *testing.T) {
	req := transport.NewRequest(transport.SendMessageV2, map[string]string{
		"a": "pg", "b": "T", "e": "3", "f": "1", "g": "1700000000000", "h": "7", "i": "K\x01v", "j": "2", "m": "false",
	}, []byte("x"))
	h, err := parseSendHeader(req)
	if err != nil {
		t.Fatal(err)
	}
	if h.topic != "T" || h.queueID != 3 || h.sysFlag != 1 || h.bornTimestamp != 1700000000000 || h.flag != 7 ||
		h.properties != "K\x01v" || h.reconsumeTimes != 2 || h.batch {
		t.Fatalf("header %+v", h)
	}
	if _, err := parseSendHeader(transport.NewRequest(transport.SendMessage, map[string]string{"topic": "T", "queueId": "x"}, nil)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad queueId: %v", err)
	}
}
