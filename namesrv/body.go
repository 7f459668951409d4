package namesrv

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Perm bits of a topic or queue (RocketMQ's PermName).
const (
	PermPriority = 8 // PERM_PRIORITY
	PermRead     = 4 // PERM_READ
	PermWrite    = 2 // PERM_WRITE
	PermInherit  = 1 // PERM_INHERIT
)

// MasterID is the brokerId of a group's master (the Raft leader in raftmq).
const MasterID int64 = 0

// Topic filter types (TopicConfig.TopicFilterType).
const (
	FilterSingleTag = "SINGLE_TAG"
	FilterMultiTag  = "MULTI_TAG"
)

// NamespaceOrderTopicConfig is the KV namespace whose entries (topic → order
// config) are returned in routes when orderMessageEnable is on and to brokers
// in the registration reply (RocketMQ's NAMESPACE_ORDER_TOPIC_CONFIG).
const NamespaceOrderTopicConfig = "ORDER_TOPIC_CONFIG"

// ErrBadBody marks a request body that cannot be decoded.
var ErrBadBody = errors.New("namesrv: bad body")

// DataVersion versions a broker's topic config table. JSON keys as Java's
// fastjson writes them (sorted). StateVersion exists in RocketMQ 5.x only.
type DataVersion struct {
	Counter      int64 `json:"counter"`
	StateVersion int64 `json:"stateVersion,omitempty"`
	Timestamp    int64 `json:"timestamp"`
}

// TopicConfig is one topic's config as a broker registers it.
type TopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int32             `json:"readQueueNums"`
	WriteQueueNums  int32             `json:"writeQueueNums"`
	Perm            int32             `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicSysFlag    int32             `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes,omitempty"`
}

// TopicConfigSerializeWrapper is the topic table a broker sends (also the
// body of GET_ALL_TOPIC_CONFIG).
type TopicConfigSerializeWrapper struct {
	DataVersion      DataVersion            `json:"dataVersion"`
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER.
type RegisterBrokerBody struct {
	FilterServerList            []string                    `json:"filterServerList"`
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
}

// QueueData describes the queues one broker group holds for a topic.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	Perm           int32  `json:"perm"`
	ReadQueueNums  int32  `json:"readQueueNums"`
	TopicSysFlag   int32  `json:"topicSysFlag"`
	WriteQueueNums int32  `json:"writeQueueNums"`
}

// BrokerData is one broker group: brokerId → address, id 0 being the master.
// It always marshals brokerAddrs, as {} when empty (the Go client panics
// without it).
type BrokerData struct {
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
	BrokerName  string           `json:"brokerName"`
	Cluster     string           `json:"cluster"`
}

// MarshalJSON writes the compact form with brokerAddrs always present.
func (b BrokerData) MarshalJSON() ([]byte, error) {
	var buf []byte
	buf = appendBrokerData(buf, &b)
	return buf, nil
}

// TopicRouteData is the reply body of GET_ROUTEINFO_BY_TOPIC. It always
// marshals compactly with brokerDatas and queueDatas present ([] when empty)
// and "filterServerTable":{} as Java writes it; orderTopicConf only when set.
type TopicRouteData struct {
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
}

// MarshalJSON writes the exact compact JSON the official clients parse.
func (r TopicRouteData) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(nil), nil
}

// AppendJSON appends the route's JSON to buf (what MarshalJSON returns).
func (r *TopicRouteData) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"brokerDatas":[`...)
	for i := range r.BrokerDatas {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendBrokerData(buf, &r.BrokerDatas[i])
	}
	buf = append(buf, `],"filterServerTable":`...)
	if len(r.FilterServerTable) == 0 {
		buf = append(buf, "{}"...)
	} else {
		b, _ := json.Marshal(r.FilterServerTable) // map[string][]string cannot fail
		buf = append(buf, b...)
	}
	if r.OrderTopicConf != "" {
		buf = append(buf, `,"orderTopicConf":`...)
		buf = appendJSONString(buf, r.OrderTopicConf)
	}
	buf = append(buf, `,"queueDatas":[`...)
	for i := range r.QueueDatas {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendQueueData(buf, r.QueueDatas[i])
	}
	buf = append(buf, "]}"...)
	return buf
}

func appendQueueData(buf []byte, q QueueData) []byte {
	buf = append(buf, `{"brokerName":`...)
	buf = appendJSONString(buf, q.BrokerName)
	buf = append(buf, `,"perm":`...)
	buf = strconv.AppendInt(buf, int64(q.Perm), 10)
	buf = append(buf, `,"readQueueNums":`...)
	buf = strconv.AppendInt(buf, int64(q.ReadQueueNums), 10)
	buf = append(buf, `,"topicSysFlag":`...)
	buf = strconv.AppendInt(buf, int64(q.TopicSysFlag), 10)
	buf = append(buf, `,"writeQueueNums":`...)
	buf = strconv.AppendInt(buf, int64(q.WriteQueueNums), 10)
	return append(buf, '}')
}

// appendBrokerData writes {"brokerAddrs":{"0":"a:p",...},"brokerName":..,"cluster":..}
// with ids in ascending order and no whitespace.
func appendBrokerData(buf []byte, b *BrokerData) []byte {
	buf = append(buf, `{"brokerAddrs":{`...)
	var idsArr [8]int64
	ids := idsArr[:0]
	for id := range b.BrokerAddrs {
		ids = append(ids, id)
	}
	sortInt64s(ids)
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = strconv.AppendInt(buf, id, 10)
		buf = append(buf, `":`...)
		buf = appendJSONString(buf, b.BrokerAddrs[id])
	}
	buf = append(buf, `},"brokerName":`...)
	buf = appendJSONString(buf, b.BrokerName)
	buf = append(buf, `,"cluster":`...)
	buf = appendJSONString(buf, b.Cluster)
	buf = append(buf, '}')
	return buf
}

func sortInt64s(s []int64) {
	for i := 1; i < len(s); i++ { // insertion sort: groups have a handful of ids
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appendJSONString appends s as a JSON string. Plain ASCII (the usual case
// for names and addresses) is copied directly; anything else goes through
// encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// DecodeTopicRouteData decodes a route body. Besides standard JSON it
// accepts fastjson's unquoted integer map keys ({0:"a:p"}) that Java name
// servers send to old clients.
func DecodeTopicRouteData(data []byte) (*TopicRouteData, error) {
	var r TopicRouteData
	if err := unmarshalLenient(data, &r); err != nil {
		return nil, fmt.Errorf("%w: route: %v", ErrBadBody, err)
	}
	return &r, nil
}

// DecodeClusterInfo decodes a GET_BROKER_CLUSTER_INFO body, accepting
// fastjson's unquoted integer keys as DecodeTopicRouteData does.
func DecodeClusterInfo(data []byte) (*ClusterInfo, error) {
	var c ClusterInfo
	if err := unmarshalLenient(data, &c); err != nil {
		return nil, fmt.Errorf("%w: cluster info: %v", ErrBadBody, err)
	}
	return &c, nil
}

func unmarshalLenient(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	fixed, ok := quoteBareKeys(data)
	if !ok {
		return err
	}
	if err2 := json.Unmarshal(fixed, v); err2 != nil {
		return err
	}
	return nil
}

// quoteBareKeys rewrites bare integer object keys ({0:"x",1:"y"}) into quoted
// ones. It reports false when nothing was changed.
func quoteBareKeys(data []byte) ([]byte, bool) {
	out := make([]byte, 0, len(data)+16)
	inStr, esc, changed := false, false, false
	prev := byte(0) // last non-space byte outside strings
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
				prev = c
			}
			continue
		}
		if c == '"' {
			inStr = true
			out = append(out, c)
			continue
		}
		if (prev == '{' || prev == ',') && (c == '-' || (c >= '0' && c <= '9')) {
			j := i + 1
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			k := j
			for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
				k++
			}
			if k < len(data) && data[k] == ':' {
				out = append(out, '"')
				out = append(out, data[i:j]...)
				out = append(out, '"')
				changed = true
				i = j - 1
				prev = '"'
				continue
			}
		}
		out = append(out, c)
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			prev = c
		}
	}
	return out, changed
}

// ClusterInfo is the reply body of GET_BROKER_CLUSTER_INFO.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// TopicList is the reply body of GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
type TopicList struct {
	BrokerAddr string   `json:"brokerAddr,omitempty"`
	TopicList  []string `json:"topicList"`
}

// KVTable is the body of GET_KVLIST_BY_NAMESPACE and of a registration reply
// (the order-topic namespace).
type KVTable struct {
	Table map[string]string `json:"table"`
}

// Limits on a compressed REGISTER_BROKER body, so a hostile deflate stream
// cannot make the name server allocate without bound.
const (
	maxInflatedBody = 64 << 20
	maxInflatedItem = 16 << 20
)

// EncodeRegisterBrokerBody encodes b for REGISTER_BROKER. With compressed
// false it is plain JSON. With compressed true it is RocketMQ 4.9's form: a
// zlib (Deflate) stream of int32-length-prefixed items: the DataVersion JSON,
// the topic count, each topic as "name readQ writeQ perm filterType" (Java
// drops topicSysFlag and order in this form), then the filterServerList JSON.
func EncodeRegisterBrokerBody(b *RegisterBrokerBody, compressed bool) ([]byte, error) {
	if !compressed {
		body := *b
		if body.FilterServerList == nil {
			body.FilterServerList = []string{}
		}
		if body.TopicConfigSerializeWrapper.TopicConfigTable == nil {
			body.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
		}
		out, err := json.Marshal(&body)
		if err != nil {
			return nil, fmt.Errorf("namesrv: encode register body: %w", err)
		}
		return out, nil
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("namesrv: encode register body: %w", err)
	}
	writeItem := func(p []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(p)))
		zw.Write(l[:])
		zw.Write(p)
	}
	dv, err := json.Marshal(b.TopicConfigSerializeWrapper.DataVersion)
	if err != nil {
		return nil, fmt.Errorf("namesrv: encode register body: %w", err)
	}
	writeItem(dv)
	var cnt [4]byte
	binary.BigEndian.PutUint32(cnt[:], uint32(len(b.TopicConfigSerializeWrapper.TopicConfigTable)))
	zw.Write(cnt[:])
	for _, tc := range b.TopicConfigSerializeWrapper.TopicConfigTable {
		ft := tc.TopicFilterType
		if ft == "" {
			ft = FilterSingleTag
		}
		line := fmt.Sprintf("%s %d %d %d %s", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, tc.Perm, ft)
		writeItem([]byte(line))
	}
	fsl := b.FilterServerList
	if fsl == nil {
		fsl = []string{}
	}
	fj, err := json.Marshal(fsl)
	if err != nil {
		return nil, fmt.Errorf("namesrv: encode register body: %w", err)
	}
	writeItem(fj)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("namesrv: encode register body: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeRegisterBrokerBody decodes a REGISTER_BROKER body in either form. An
// empty body is an empty table with DataVersion zero (as Java treats it).
// Errors wrap ErrBadBody.
func DecodeRegisterBrokerBody(data []byte, compressed bool) (*RegisterBrokerBody, error) {
	out := &RegisterBrokerBody{}
	out.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
	if len(data) == 0 {
		return out, nil
	}
	if !compressed {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%w: register broker body: %v", ErrBadBody, err)
		}
		if out.TopicConfigSerializeWrapper.TopicConfigTable == nil {
			out.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
		}
		for name, tc := range out.TopicConfigSerializeWrapper.TopicConfigTable {
			if tc.TopicName == "" {
				tc.TopicName = name
				out.TopicConfigSerializeWrapper.TopicConfigTable[name] = tc
			}
		}
		return out, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed register broker body: %v", ErrBadBody, err)
	}
	defer zr.Close()
	r := &io.LimitedReader{R: zr, N: maxInflatedBody}
	readInt := func(what string) (int, error) {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, fmt.Errorf("%w: compressed register broker body: %s: %v", ErrBadBody, what, err)
		}
		n := int32(binary.BigEndian.Uint32(l[:]))
		if n < 0 {
			return 0, fmt.Errorf("%w: compressed register broker body: %s: negative %d", ErrBadBody, what, n)
		}
		return int(n), nil
	}
	readItem := func(what string) ([]byte, error) {
		n, err := readInt(what + " length")
		if err != nil {
			return nil, err
		}
		if n > maxInflatedItem || int64(n) > r.N {
			return nil, fmt.Errorf("%w: compressed register broker body: %s length %d too large", ErrBadBody, what, n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, fmt.Errorf("%w: compressed register broker body: %s: %v", ErrBadBody, what, err)
		}
		return p, nil
	}
	dv, err := readItem("dataVersion")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(dv, &out.TopicConfigSerializeWrapper.DataVersion); err != nil {
		return nil, fmt.Errorf("%w: compressed register broker body: dataVersion: %v", ErrBadBody, err)
	}
	n, err := readInt("topic count")
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		item, err := readItem("topic config")
		if err != nil {
			return nil, err
		}
		tc, err := parseTopicConfigLine(string(item))
		if err != nil {
			return nil, err
		}
		out.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	fj, err := readItem("filterServerList")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(fj, &out.FilterServerList); err != nil {
		return nil, fmt.Errorf("%w: compressed register broker body: filterServerList: %v", ErrBadBody, err)
	}
	// RocketMQ 5.x appends a topic-queue-mapping section; it is ignored.
	return out, nil
}

// parseTopicConfigLine parses Java's TopicConfig.encode() form:
// "name readQ writeQ perm filterType[ attributesJSON]".
func parseTopicConfigLine(s string) (TopicConfig, error) {
	f := strings.SplitN(s, " ", 6)
	if len(f) < 5 {
		return TopicConfig{}, fmt.Errorf("%w: topic config %q: want 5 fields", ErrBadBody, s)
	}
	tc := TopicConfig{TopicName: f[0], TopicFilterType: f[4]}
	nums := []*int32{&tc.ReadQueueNums, &tc.WriteQueueNums, &tc.Perm}
	names := []string{"readQueueNums", "writeQueueNums", "perm"}
	for i, p := range nums {
		v, err := strconv.ParseInt(f[i+1], 10, 32)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("%w: topic config %q: %s: %v", ErrBadBody, s, names[i], err)
		}
		*p = int32(v)
	}
	if len(f) == 6 && f[5] != "" {
		var attrs map[string]string
		if json.Unmarshal([]byte(f[5]), &attrs) == nil {
			tc.Attributes = attrs
		}
	}
	return tc, nil
}
