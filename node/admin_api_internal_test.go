package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// wantCodes is the error -> response code contract, written independently of errorCodes:
// every row of the table must appear here with the same code, so a new or changed row is a
// deliberate decision. The groups say why.
var wantCodes = map[error]transport.ResponseCode{
	// certainly not stored, retriable elsewhere
	ErrNotLeader: transport.ServiceNotAvailable, raft.ErrNotLeader: transport.ServiceNotAvailable,
	ErrNoLeader: transport.ServiceNotAvailable, ErrShuttingDown: transport.ServiceNotAvailable,
	raft.ErrRaftShutdown: transport.ServiceNotAvailable, ErrFatal: transport.ServiceNotAvailable,
	commitlog.ErrClosed: transport.ServiceNotAvailable, fsm.ErrClosed: transport.ServiceNotAvailable,
	fsm.ErrFatal: transport.ServiceNotAvailable, commitlog.ErrDiskFull: transport.ServiceNotAvailable,
	// certainly not proposed: SYSTEM_BUSY is only ever this
	ErrNotStored: transport.SystemBusy, raft.ErrEnqueueTimeout: transport.SystemBusy,
	// outcome unknown, retried (at-least-once)
	raft.ErrLeadershipLost: transport.ServiceNotAvailable, raft.ErrLeadershipTransferInProgress: transport.ServiceNotAvailable,
	// missing things, permissions
	ErrTopicNotExist: transport.TopicNotExist, fsm.ErrTopicNotExist: transport.TopicNotExist,
	ErrNoPermission: transport.NoPermission, ErrConfigKeyNotLive: transport.NoPermission,
	ErrGroupNotExist: transport.SubscriptionGroupNotExist, fsm.ErrGroupNotExist: transport.SubscriptionGroupNotExist,
	ErrQueryNotFound: transport.QueryNotFound, ErrMessageNotFound: transport.SystemError,
	commitlog.ErrOffsetOutOfRange: transport.SystemError, ErrQueueID: transport.SystemError,
	// illegal messages
	commitlog.ErrInvalidTopic: transport.MessageIllegal, commitlog.ErrBodyTooLarge: transport.MessageIllegal,
	commitlog.ErrEmptyBody: transport.MessageIllegal, commitlog.ErrPropertiesTooLarge: transport.MessageIllegal,
	commitlog.ErrInvalidProperties: transport.MessageIllegal, commitlog.ErrInvalidQueueID: transport.MessageIllegal,
	commitlog.ErrMessageTooLarge: transport.MessageIllegal,
	// malformed requests
	ErrBadRequest: transport.SystemError, transport.ErrMissingField: transport.SystemError, transport.ErrBadField: transport.SystemError,
}

func TestCodes_EveryRowIsInTheContract(t *testing.T) {
	seen := map[error]bool{}
	for _, row := range errorCodes {
		want, ok := wantCodes[row.err]
		if !ok {
			t.Errorf("row %v -> %s is not in wantCodes: decide its code there", row.err, row.code)
			continue
		}
		seen[row.err] = true
		// Through codeFor, wrapped as callers wrap: an earlier row must not shadow this one.
		if got := codeFor(fmt.Errorf("step: %w", row.err)); got != want {
			t.Errorf("%v -> %s, want %s", row.err, got, want)
		}
		if want == transport.SystemBusy && !errors.Is(row.err, ErrNotStored) && !errors.Is(row.err, raft.ErrEnqueueTimeout) {
			t.Errorf("%v maps to SYSTEM_BUSY, which must mean 'certainly not stored'", row.err)
		}
	}
	for err := range wantCodes {
		if !seen[err] && codeFor(err) != wantCodes[err] {
			t.Errorf("%v: in the contract but not in the table (-> %s)", err, codeFor(err))
		}
	}
}

// The remarks carry the distinguishing detail: disk usage, the leader, the key.
func TestCodes_Remarks(t *testing.T) {
	r := errorResponse(fmt.Errorf("%w; leader is n2", ErrNotLeader))
	if !strings.Contains(r.Remark, "leader is n2") {
		t.Errorf("not-leader remark %q", r.Remark)
	}
	r = errorResponse(fmt.Errorf("%w: fileReservedTime ...", ErrConfigKeyNotLive))
	if transport.ResponseCode(r.Code) != transport.NoPermission || !strings.Contains(r.Remark, "fileReservedTime") {
		t.Errorf("refused key: %s %q", transport.ResponseCode(r.Code), r.Remark)
	}
}

func TestStats_TPSWindows(t *testing.T) {
	var s stats
	s.init()
	t0 := time.Date(2026, 1, 1, 23, 59, 0, 0, time.Local)
	if p, g := s.tps(10*time.Second, t0, 0, 0); p != 0 || g != 0 {
		t.Fatalf("no samples: %v %v", p, g)
	}
	// 100 puts/s and 10 gets/s for 700 s: the ring keeps the last 600 samples.
	for i := 0; i <= 700; i++ {
		s.sample(t0.Add(time.Duration(i)*time.Second), int64(100*i), int64(10*i))
	}
	now := t0.Add(700 * time.Second)
	for _, w := range []time.Duration{10 * time.Second, time.Minute, 10 * time.Minute} {
		p, g := s.tps(w, now, 70_000, 7_000)
		if math.Abs(p-100) > 1e-9 || math.Abs(g-10) > 1e-9 {
			t.Errorf("window %v: put %v get %v", w, p, g)
		}
	}
	// Older than the ring: the oldest sample is used (599 s back).
	if p, _ := s.tps(time.Hour, now, 70_000, 7_000); math.Abs(p-100) > 1e-9 {
		t.Errorf("window beyond the ring: %v", p)
	}
	// Midnight passed at sample 60: today's morning is the total then, yesterday's the first.
	pm, py, gm, gy := s.mornings()
	if pm != 6000 || py != 0 || gm != 600 || gy != 0 {
		t.Errorf("mornings %d %d %d %d", pm, py, gm, gy)
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 3 << 30: "3.00 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("%d: %q, want %q", in, got, want)
		}
	}
}

func TestTopicStatsJSON(t *testing.T) {
	got := string(topicStatsJSON("b1", "T1", []QueueStats{{QueueID: 0, MinOffset: 1, MaxOffset: 5, LastUpdateTimestamp: 7}, {QueueID: 1}}))
	want := `{"offsetTable":{{"brokerName":"b1","queueId":0,"topic":"T1"}:{"lastUpdateTimestamp":7,"maxOffset":5,"minOffset":1},` +
		`{"brokerName":"b1","queueId":1,"topic":"T1"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestParseGroupConfig(t *testing.T) {
	g, err := ParseGroupConfig([]byte(`{"groupName":"g1","retryMaxTimes":5,"consumeEnable":false,"attributes":{}}`))
	want := DefaultGroupConfig("g1")
	want.RetryMaxTimes, want.ConsumeEnable = 5, false
	if err != nil || g != want {
		t.Fatalf("%+v %v", g, err)
	}
	// The JSON written by 201 parses back to the same config.
	b, _ := json.Marshal(groupToJSON(want))
	if g2, err := ParseGroupConfig(b); err != nil || g2 != want {
		t.Fatalf("round trip %s: %+v %v", b, g2, err)
	}
	for _, bad := range []string{"", "null", "[]", `{"groupName":1}`, `{"groupName":"g","brokerId":-1}`, `{"groupName":"g","retryMaxTimes":-2}`,
		`{"groupName":"g","retryQueueNums":2000}`, `{"groupName":"g","whichBrokerWhenConsumeSlowly":-1}`, `{"groupName":"` + strings.Repeat("x", 300) + `"}`} {
		if _, err := ParseGroupConfig([]byte(bad)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseGroupConfig(f *testing.F) {
	f.Add([]byte(`{"groupName":"g","retryMaxTimes":3}`))
	f.Add([]byte(`{"groupName":"a b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGroupConfig(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if message.ValidateTopic(g.GroupName) != nil || g.RetryQueueNums < 0 || g.BrokerID < 0 {
			t.Fatalf("accepted %+v", g)
		}
	})
}

// UpdateBrokerConfig on a bare Node (no Raft): the rules, all-or-nothing, the version.
func TestUpdateBrokerConfig_Rules(t *testing.T) {
	cfg, _, err := ParseConfig("brokerName=b1\nbrokerIP1=127.0.0.1\nstorePathRootDir="+t.TempDir()+"\n", LoadOptions{NamesrvAddr: "127.0.0.1:9876"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: cfg}
	n.log = slog.New(slog.DiscardHandler)
	v0 := n.adminInit().version
	changed, err := n.UpdateBrokerConfig("brokerPermission = 2\ndefaultTopicQueueNums=16\n")
	if err != nil || strings.Join(changed, ",") != "brokerPermission,defaultTopicQueueNums" {
		t.Fatalf("%v %v", changed, err)
	}
	if lc := n.LiveConfig(); lc.BrokerPermission != 2 || lc.DefaultTopicQueueNums != 16 || n.cfg.BrokerPermission != 6 {
		t.Fatalf("live %+v", lc)
	}
	if v := n.admin.version; v.Counter != v0.Counter+1 {
		t.Fatalf("version %+v -> %+v", v0, v)
	}
	// A read-only (here write-only) broker registers every topic with its own permission.
	if p := n.registeredTopicPerm(6); p != 2 {
		t.Fatalf("registered perm %d", p)
	}
	for _, text := range []string{
		"defaultTopicQueueNums=8\nlistenPort=1", // one refused key refuses all
		"defaultTopicQueueNums=8\nbrokerPermission=x",
		"deleteWhen=04", "diskMaxUsedSpaceRatio=80", "flushIntervalCommitLog=100", "nosuchkey=1", "=", "novalue", "\n# comment only\n",
	} {
		if _, err := n.UpdateBrokerConfig(text); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
	if lc := n.LiveConfig(); lc.DefaultTopicQueueNums != 16 || lc.BrokerPermission != 2 {
		t.Fatalf("a refused update changed the config: %+v", lc)
	}
	if n.admin.permChanges != 1 {
		t.Fatalf("permChanges %d", n.admin.permChanges)
	}
	if _, err := n.UpdateBrokerConfig("brokerPermission=6"); err != nil || n.registeredTopicPerm(4) != 4 || n.admin.permChanges != 2 {
		t.Fatalf("restore: %v perm %d changes %d", err, n.registeredTopicPerm(4), n.admin.permChanges)
	}
	// Saved: a node started again over the same store root has the live values; a damaged
	// file is ignored (broker.conf's values).
	if _, err := n.UpdateBrokerConfig("brokerPermission=4\ndefaultTopicQueueNums=12"); err != nil {
		t.Fatal(err)
	}
	n2 := &Node{cfg: cfg, log: n.log}
	if lc := n2.LiveConfig(); lc.BrokerPermission != 4 || lc.DefaultTopicQueueNums != 12 {
		t.Fatalf("after restart: perm %d queues %d", lc.BrokerPermission, lc.DefaultTopicQueueNums)
	}
	for _, bad := range []string{"brokerPermission=77\n", "listenPort=1\n", "garbage\n"} {
		if err := os.WriteFile(n.liveConfigFile(), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if lc := (&Node{cfg: cfg, log: n.log}).LiveConfig(); lc.BrokerPermission != 6 || lc.ListenPort != cfg.ListenPort {
			t.Fatalf("%q applied: perm %d", bad, lc.BrokerPermission)
		}
	}
	// Every live key is a real key and none is a storage key.
	for k := range liveKeys {
		if _, ok := lookupKey(k); !ok || storageKeys[k] {
			t.Errorf("live key %q", k)
		}
	}
	for k := range storageKeys {
		if _, ok := lookupKey(k); !ok {
			t.Errorf("storage key %q is not a config key", k)
		}
	}
}

func FuzzParseConfigUpdate(f *testing.F) {
	f.Add("brokerPermission=4\n# c\nautoCreateTopicEnable : false\r\n")
	f.Add("=\n\\")
	f.Fuzz(func(t *testing.T, text string) {
		kv, err := parseConfigUpdate(text)
		if err != nil {
			return
		}
		for k, v := range kv {
			if k == "" || k != strings.TrimSpace(k) || v != strings.TrimSpace(v) || strings.ContainsAny(k, "\n=:") {
				t.Fatalf("key %q value %q from %q", k, v, text)
			}
		}
	})
}
