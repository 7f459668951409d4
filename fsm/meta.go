package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"

	"github.com/vmihailenco/msgpack/v5"
)

// Format of the metadata file (Config.MetaPath) and of a snapshot, which are
// the same bytes:
//
//	magic    4   "RMQF"
//	version  4   metaVersion (1)
//	crc      4   CRC-32C of payload
//	length   4   len(payload)
//	payload      msgpack of metaState
//
// Every table in metaState is a slice sorted by its key, so the bytes depend
// only on the state, never on map iteration order: two replicas that applied
// the same entries write identical files.
const (
	metaMagic      = "RMQF"
	metaVersion    = 1
	metaHeaderSize = 16
	// maxMetaSize bounds what Restore and New read (a metadata file of a
	// million topics and offsets is well below it).
	maxMetaSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// metaState is the persisted and snapshotted form of the metadata.
type metaState struct {
	// Applied is the raft index this metadata reflects: metadata commands at
	// or below it are skipped on replay.
	Applied     uint64        `msgpack:"ai"`
	DataVersion DataVersion   `msgpack:"dv"`
	Topics      []TopicConfig `msgpack:"tp"`
	Groups      []GroupConfig `msgpack:"gr"`
	Offsets     []OffsetEntry `msgpack:"of"`
	Members     []Member      `msgpack:"mb"`
	// Deleted lists topic deletions in apply order with the commitlog end
	// at the time, so that Restore can delete consume queues at the same
	// point of the log while installing fetched records.
	Deleted []tombstone `msgpack:"dt"`
	// The commitlog's position when the state was captured (after a flush):
	// what a replica restoring this snapshot needs, and what DiskCovers
	// checks the local log against.
	LogApplied uint64 `msgpack:"la"`
	LogMinPhys int64  `msgpack:"ln"`
	LogMaxPhys int64  `msgpack:"lx"`

	// Flow holds delayed-delivery progress and transaction state (flow.go);
	// absent when empty, so older files and snapshots decode unchanged.
	Flow *flowState `msgpack:"fl,omitempty"`
}

func encodeMeta(st *metaState) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(make([]byte, metaHeaderSize))
	enc := msgpack.NewEncoder(&buf)
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("fsm: encode metadata: %w", err)
	}
	b := buf.Bytes()
	payload := b[metaHeaderSize:]
	copy(b, metaMagic)
	binary.BigEndian.PutUint32(b[4:], metaVersion)
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(payload, castagnoli))
	binary.BigEndian.PutUint32(b[12:], uint32(len(payload)))
	return b, nil
}

func decodeMeta(b []byte) (*metaState, error) {
	if len(b) < metaHeaderSize || string(b[:4]) != metaMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptMeta)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != metaVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptMeta, v)
	}
	payload := b[metaHeaderSize:]
	if n := binary.BigEndian.Uint32(b[12:]); uint64(n) != uint64(len(payload)) {
		return nil, fmt.Errorf("%w: length %d, have %d bytes", ErrCorruptMeta, n, len(payload))
	}
	if crc := crc32.Checksum(payload, castagnoli); crc != binary.BigEndian.Uint32(b[8:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptMeta)
	}
	st := new(metaState)
	if err := msgpack.Unmarshal(payload, st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptMeta, err)
	}
	return st, nil
}

// readMetaFile returns nil, nil when the file does not exist.
func readMetaFile(path string) (*metaState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fsm: read metadata %s: %w", path, err)
	}
	st, err := decodeMeta(b)
	if err != nil {
		return nil, fmt.Errorf("fsm: read metadata %s: %w", path, err)
	}
	return st, nil
}

// tables is the in-memory metadata.
type tables struct {
	dv      DataVersion
	topics  map[string]TopicConfig
	groups  map[string]GroupConfig
	offsets map[offsetKey]int64
	members map[string]Member
	deleted []tombstone

	sched      map[int32]int64 // delay level -> next schedule-queue offset to deliver
	txDone     map[int64]bool  // resolved half messages by physical offset
	txChecks   map[int64]int32 // back-checks sent per pending half
	txProgress int64           // half-queue offset below which all halves are resolved
}

// tombstone is a topic deletion: the commitlog ended at PhysOffset when
// raft entry Index deleted Topic's consume queues.
type tombstone struct {
	Topic      string `msgpack:"t"`
	PhysOffset int64  `msgpack:"o"`
	Index      uint64 `msgpack:"i"`
}

type offsetKey struct {
	group, topic string
	queue        int32
}

func newTables() tables {
	return tables{
		topics:   map[string]TopicConfig{},
		groups:   map[string]GroupConfig{},
		offsets:  map[offsetKey]int64{},
		members:  map[string]Member{},
		sched:    map[int32]int64{},
		txDone:   map[int64]bool{},
		txChecks: map[int64]int32{},
	}
}

func tablesFrom(st *metaState) tables {
	t := newTables()
	if st == nil {
		return t
	}
	t.dv = st.DataVersion
	for _, tc := range st.Topics {
		t.topics[tc.TopicName] = tc
	}
	for _, g := range st.Groups {
		t.groups[g.GroupName] = g
	}
	for _, o := range st.Offsets {
		t.offsets[offsetKey{o.Group, o.Topic, o.QueueID}] = o.Offset
	}
	for _, m := range st.Members {
		t.members[m.ServerID] = m
	}
	t.deleted = append([]tombstone(nil), st.Deleted...)
	t.importFlow(st.Flow)
	return t
}

// export fills the tables of st, sorted.
func (t *tables) export(st *metaState) {
	st.DataVersion = t.dv
	st.Topics = sortedTopics(t.topics)
	st.Groups = sortedGroups(t.groups)
	st.Offsets = make([]OffsetEntry, 0, len(t.offsets))
	for k, v := range t.offsets {
		st.Offsets = append(st.Offsets, OffsetEntry{Group: k.group, Topic: k.topic, QueueID: k.queue, Offset: v})
	}
	sort.Slice(st.Offsets, func(i, j int) bool {
		a, b := st.Offsets[i], st.Offsets[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.QueueID < b.QueueID
	})
	st.Members = sortedMembers(t.members)
	st.Deleted = append([]tombstone(nil), t.deleted...)
	st.Flow = t.exportFlow()
}

func sortedTopics(m map[string]TopicConfig) []TopicConfig {
	out := make([]TopicConfig, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TopicName < out[j].TopicName })
	return out
}

func sortedGroups(m map[string]GroupConfig) []GroupConfig {
	out := make([]GroupConfig, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupName < out[j].GroupName })
	return out
}

func sortedMembers(m map[string]Member) []Member {
	out := make([]Member, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServerID < out[j].ServerID })
	return out
}
