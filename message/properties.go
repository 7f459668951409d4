package message

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Property string separators: "k\x01v\x02k\x01v" (Java 4.9 writes no trailing \x02, the Go
// client does; both forms are accepted everywhere).
const (
	PropertyNameValueSep = '\x01'
	PropertySep          = '\x02'
)

// Property keys, RocketMQ's MessageConst names and values.
const (
	PropertyKeys                   = "KEYS"              // space-separated keys (KeySeparator)
	PropertyTags                   = "TAGS"              // the tag; its TagsHashCode goes into the consume queue
	PropertyWaitStoreMsgOK         = "WAIT"              // missing means true
	PropertyDelayLevel             = "DELAY"             // delay level 1..18
	PropertyRetryTopic             = "RETRY_TOPIC"       // original topic of a %RETRY% message
	PropertyRealTopic              = "REAL_TOPIC"        // topic of a delayed or half message
	PropertyRealQueueID            = "REAL_QID"          // queue of a delayed or half message
	PropertyTransactionPrepared    = "TRAN_MSG"          // "true" on a half (prepared) message
	PropertyProducerGroup          = "PGROUP"            // producer group of a transactional message
	PropertyMinOffset              = "MIN_OFFSET"        // added by clients on pull
	PropertyMaxOffset              = "MAX_OFFSET"        // added by clients on pull
	PropertyBuyerID                = "BUYER_ID"          //
	PropertyOriginMessageID        = "ORIGIN_MESSAGE_ID" // msg id of the message sent back for retry
	PropertyTransferFlag           = "TRANSFER_FLAG"     //
	PropertyCorrectionFlag         = "CORRECTION_FLAG"   //
	PropertyMQ2Flag                = "MQ2_FLAG"          //
	PropertyReconsumeTime          = "RECONSUME_TIME"    //
	PropertyMsgRegion              = "MSG_REGION"        //
	PropertyTraceSwitch            = "TRACE_ON"          //
	PropertyUniqKey                = "UNIQ_KEY"          // client-generated message id
	PropertyMaxReconsumeTimes      = "MAX_RECONSUME_TIMES"
	PropertyConsumeStartTimestamp  = "CONSUME_START_TIME"
	PropertyTranPreparedQueueOff   = "TRAN_PREPARED_QUEUE_OFFSET"
	PropertyTransactionCheckTimes  = "TRANSACTION_CHECK_TIMES"
	PropertyCheckImmunityTimeInSec = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropertyInstanceID             = "INSTANCE_ID"
	PropertyCorrelationID          = "CORRELATION_ID"
	PropertyReplyToClient          = "REPLY_TO_CLIENT"
	PropertyTTL                    = "TTL"
	PropertyReplyArriveTime        = "ARRIVE_TIME"
	PropertyPushReplyTime          = "PUSH_REPLY_TIME"
	PropertyCluster                = "CLUSTER"
	PropertyMsgType                = "MSG_TYPE"
	PropertyShardingKey            = "SHARDING_KEY"

	// KeySeparator separates the keys in the KEYS property.
	KeySeparator = " "
)

// NextProperty splits the first "k\x01v" pair off props. ok is false when props is empty.
// A pair without \x01 yields the whole pair as key and hasSep=false.
func NextProperty(props string) (key, value, rest string, hasSep, ok bool) {
	if props == "" {
		return "", "", "", false, false
	}
	pair := props
	if i := strings.IndexByte(props, PropertySep); i >= 0 {
		pair, rest = props[:i], props[i+1:]
	}
	if j := strings.IndexByte(pair, PropertyNameValueSep); j >= 0 {
		return pair[:j], pair[j+1:], rest, true, true
	}
	return pair, "", rest, false, true
}

// GetProperty returns the value of key in a raw property string without building a map. When
// a key occurs more than once the last value wins, as in ParseProperties.
func GetProperty(props, key string) (string, bool) {
	var val string
	found := false
	for {
		k, v, rest, hasSep, ok := NextProperty(props)
		if !ok {
			return val, found
		}
		if hasSep && k == key {
			val, found = v, true
		}
		props = rest
	}
}

// ParseProperties parses a raw property string into a map (the last value of a repeated key
// wins). Pairs without \x01 are skipped.
func ParseProperties(props string) map[string]string {
	m := make(map[string]string, strings.Count(props, string(PropertyNameValueSep)))
	for {
		k, v, rest, hasSep, ok := NextProperty(props)
		if !ok {
			return m
		}
		if hasSep && k != "" {
			m[k] = v
		}
		props = rest
	}
}

// ValidateProperties checks that props is a sequence of "key\x01value" pairs separated by
// \x02 (a trailing \x02 allowed) with non-empty keys and exactly one \x01 per pair, so that
// every key and value survives a round trip. Errors wrap ErrInvalidProperties.
func ValidateProperties(props string) error {
	pos := 0
	for props != "" {
		pair := props
		i := strings.IndexByte(props, PropertySep)
		if i >= 0 {
			pair, props = props[:i], props[i+1:]
		} else {
			props = ""
		}
		j := strings.IndexByte(pair, PropertyNameValueSep)
		switch {
		case j < 0:
			return fmt.Errorf("%w: pair at byte %d has no \\x01 separator", ErrInvalidProperties, pos)
		case j == 0:
			return fmt.Errorf("%w: empty key at byte %d", ErrInvalidProperties, pos)
		case strings.IndexByte(pair[j+1:], PropertyNameValueSep) >= 0:
			return fmt.Errorf("%w: value of %q contains \\x01", ErrInvalidProperties, pair[:j])
		}
		pos += len(pair) + 1
	}
	return nil
}

func checkProperty(k, v string) error {
	if k == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidProperties)
	}
	if strings.ContainsAny(k, "\x01\x02") {
		return fmt.Errorf("%w: key %q contains \\x01 or \\x02", ErrInvalidProperties, k)
	}
	if strings.ContainsAny(v, "\x01\x02") {
		return fmt.Errorf("%w: value of %q contains \\x01 or \\x02", ErrInvalidProperties, k)
	}
	return nil
}

// BuildProperties encodes m as a raw property string with keys sorted (deterministic) and no
// trailing \x02 (as Java 4.9). Empty keys and keys or values containing \x01 or \x02 are
// rejected with ErrInvalidProperties; so is a result of MaxPropertiesLen bytes or more
// (ErrPropertiesTooLarge).
func BuildProperties(m map[string]string) (string, error) {
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		if err := checkProperty(k, v); err != nil {
			return "", err
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	if n > 0 {
		n--
	}
	if n > MaxPropertiesLen {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrPropertiesTooLarge, n, MaxPropertiesLen)
	}
	slices.Sort(keys)
	var sb strings.Builder
	sb.Grow(n)
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(PropertySep)
		}
		sb.WriteString(k)
		sb.WriteByte(PropertyNameValueSep)
		sb.WriteString(m[k])
	}
	return sb.String(), nil
}

// BuildSortedProperties is BuildProperties for pairs given as key, value, key, value...
// whose keys are distinct and already in ascending order: the same string BuildProperties
// makes of the same map, without building or sorting one. Pairs with an empty value are
// left out, as callers leave unset fields out of the map. A key out of order is an error.
func BuildSortedProperties(kv ...string) (string, error) {
	n := 0
	prev := ""
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		if v == "" {
			continue
		}
		if err := checkProperty(k, v); err != nil {
			return "", err
		}
		if k <= prev {
			return "", fmt.Errorf("%w: key %q not after %q", ErrInvalidProperties, k, prev)
		}
		prev = k
		n += len(k) + len(v) + 2
	}
	if n > 0 {
		n--
	}
	if n > MaxPropertiesLen {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrPropertiesTooLarge, n, MaxPropertiesLen)
	}
	b := make([]byte, 0, n)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if len(b) > 0 {
			b = append(b, PropertySep)
		}
		b = append(b, kv[i]...)
		b = append(b, PropertyNameValueSep)
		b = append(b, kv[i+1]...)
	}
	return string(b), nil
}

// EncodeProperties is BuildProperties for callers whose maps are known to be valid: entries
// BuildProperties would reject (empty key, \x01 or \x02 in a key or value) are left out, so the
// result always parses back to the remaining entries. Size is not checked; Validate does.
func EncodeProperties(m map[string]string) string {
	clean := m
	for k, v := range m {
		if checkProperty(k, v) != nil {
			clean = make(map[string]string, len(m))
			for k, v := range m {
				if checkProperty(k, v) == nil {
					clean[k] = v
				}
			}
			break
		}
	}
	keys := make([]string, 0, len(clean))
	for k := range clean {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(PropertySep)
		}
		sb.WriteString(k)
		sb.WriteByte(PropertyNameValueSep)
		sb.WriteString(clean[k])
	}
	return sb.String()
}

// SetProperty returns props with key set to value: an existing pair (every occurrence) is
// replaced in place, otherwise the pair is appended. Order and the trailing-separator style of
// props are otherwise kept, so the result is deterministic. Errors wrap ErrInvalidProperties.
func SetProperty(props, key, value string) (string, error) {
	if err := checkProperty(key, value); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(len(props) + len(key) + len(value) + 2)
	trailing := strings.HasSuffix(props, string(PropertySep))
	replaced := false
	first := true
	for rest := props; ; {
		k, v, r, hasSep, ok := NextProperty(rest)
		if !ok {
			break
		}
		rest = r
		if !first {
			sb.WriteByte(PropertySep)
		}
		first = false
		sb.WriteString(k)
		if hasSep {
			sb.WriteByte(PropertyNameValueSep)
			if k == key {
				v, replaced = value, true
			}
			sb.WriteString(v)
		}
	}
	if !replaced {
		if !first {
			sb.WriteByte(PropertySep)
		}
		sb.WriteString(key)
		sb.WriteByte(PropertyNameValueSep)
		sb.WriteString(value)
	}
	if trailing {
		sb.WriteByte(PropertySep)
	}
	return sb.String(), nil
}

// DeleteProperty returns props without any pair whose key is key; everything else, including
// the trailing-separator style, is kept.
func DeleteProperty(props, key string) string {
	if _, ok := GetProperty(props, key); !ok {
		return props
	}
	var sb strings.Builder
	sb.Grow(len(props))
	trailing := strings.HasSuffix(props, string(PropertySep))
	first := true
	for rest := props; ; {
		k, v, r, hasSep, ok := NextProperty(rest)
		if !ok {
			break
		}
		rest = r
		if hasSep && k == key {
			continue
		}
		if !first {
			sb.WriteByte(PropertySep)
		}
		first = false
		sb.WriteString(k)
		if hasSep {
			sb.WriteByte(PropertyNameValueSep)
			sb.WriteString(v)
		}
	}
	if trailing && !first {
		sb.WriteByte(PropertySep)
	}
	return sb.String()
}

// SplitKeys calls fn for every non-empty key of a KEYS property value (keys are separated by
// spaces), without allocating.
func SplitKeys(keys string, fn func(key string)) {
	for keys != "" {
		k := keys
		if i := strings.IndexByte(keys, ' '); i >= 0 {
			k, keys = keys[:i], keys[i+1:]
		} else {
			keys = ""
		}
		if k != "" {
			fn(k)
		}
	}
}

// TagsHashCode is Java's String.hashCode() of the whole TAGS value: s[0]*31^(n-1) + ... over
// the UTF-16 code units of the string, with int32 overflow, widened to int64; 0 for "". Each
// invalid UTF-8 byte counts as one U+FFFD (Java's decoder may fold a truncated sequence into a
// single U+FFFD; tags from the clients are valid UTF-8).
func TagsHashCode(tags string) int64 {
	var h int32
	for i := 0; i < len(tags); {
		c := tags[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(tags[i:])
		i += size
		if r > 0xFFFF {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return int64(h)
}
