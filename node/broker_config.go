package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/internal/fsutil"
	"github.com/raftmq/raftmq/transport"
)

// ErrConfigKeyNotLive refuses an UPDATE_BROKER_CONFIG key that cannot change while the node
// runs (the remark names the key).
var ErrConfigKeyNotLive = errors.New("node: broker config key cannot change at run time")

// liveKeys are the broker.conf keys UPDATE_BROKER_CONFIG may change while the node runs. Every
// reader of these keys goes through Node.LiveConfig, so a change takes effect at the next use.
// An update applies to the node that received it only: broker config is per node (as in
// RocketMQ, where mqadmin updateBrokerConfig sends it to each broker), not replicated.
var liveKeys = map[string]string{
	"brokerPermission":            "the broker's read/write permission: sends, pulls and the routes registered with the name servers",
	"autoCreateTopicEnable":       "whether a send to an unknown topic creates it",
	"autoCreateSubscriptionGroup": "whether an unknown consumer group is created on first use",
	"defaultTopicQueueNums":       "the queue count of auto-created topics",
}

// storageKeys are read by the storage engine when it opens; changing them needs a restart.
var storageKeys = map[string]bool{
	"fileReservedTime": true, "deleteWhen": true, "diskMaxUsedSpaceRatio": true,
	"flushIntervalCommitLog": true, "flushCommitLogLeastPages": true, "flushCommitLogThoroughInterval": true,
	"flushIntervalConsumeQueue": true, "flushConsumeQueueLeastPages": true, "flushConsumeQueueThoroughInterval": true,
	"maxMessageSize": true, "mappedFileSizeCommitLog": true, "mappedFileSizeConsumeQueue": true,
}

// adminState is the node's admin-side state: the live copy of the broker config and the
// statistics. Its zero value is ready; init fills it from n.cfg on first use.
type adminState struct {
	once    sync.Once
	mu      sync.RWMutex
	live    Config
	version configVersion
	// permChanges counts brokerPermission changes on this node; it is added to the topic
	// table's DataVersion counter so that the name servers take the re-registered perms.
	permChanges int64
	stats       stats
}

// configVersion is the broker config's DataVersion (GET_BROKER_CONFIG ext "version").
type configVersion struct {
	Counter   int64 `json:"counter"`
	Timestamp int64 `json:"timestamp"`
}

func (n *Node) adminInit() *adminState {
	a := &n.admin
	a.once.Do(func() {
		a.live = n.cfg
		a.version = configVersion{Timestamp: time.Now().UnixMilli()}
		a.stats.init()
		n.loadLiveConfig(a)
	})
	return a
}

// liveConfigFile is where this node keeps the live keys UPDATE_BROKER_CONFIG set, so that a
// restart keeps them (RocketMQ writes them back into the broker's config file). It overrides
// broker.conf for those keys; delete it to go back to broker.conf.
func (n *Node) liveConfigFile() string {
	return filepath.Join(n.cfg.StorePathRootDir, "config", "live-broker.properties")
}

// loadLiveConfig applies the saved live keys, if any. A file that does not parse or gives an
// invalid config is ignored with a warning: the node starts with broker.conf's values.
func (n *Node) loadLiveConfig(a *adminState) {
	path := n.liveConfigFile()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		n.log.Warn("cannot read saved live broker config; using broker.conf", "path", path, "err", err)
		return
	}
	kv, err := parseConfigUpdate(string(b))
	next := a.live
	for k, v := range kv {
		spec, ok := lookupKey(k)
		if err != nil || !ok || liveKeys[spec.name] == "" {
			err = fmt.Errorf("key %q is not a live key", k)
			break
		}
		if err = spec.set(&next, v); err != nil {
			err = fmt.Errorf("%s=%q: %v", k, v, err)
			break
		}
	}
	if err == nil {
		err = next.Validate()
	}
	if err != nil {
		n.log.Warn("ignoring saved live broker config; using broker.conf", "path", path, "err", err)
		return
	}
	a.live = next
	n.log.Info("live broker config saved by UPDATE_BROKER_CONFIG overrides broker.conf", "path", path, "keys", len(kv))
}

// saveLiveConfig writes every live key's value to liveConfigFile atomically.
func (n *Node) saveLiveConfig(c *Config) error {
	path := n.liveConfigFile()
	var sb strings.Builder
	sb.WriteString("# Written by raftmq on UPDATE_BROKER_CONFIG; overrides broker.conf for these keys.\n")
	keys := strings.Split(liveKeyList(), ", ")
	for _, k := range keys {
		spec, _ := lookupKey(k)
		fmt.Fprintf(&sb, "%s=%s\n", k, spec.get(c))
	}
	if err := fsutil.WriteFileAtomic(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("node: save live broker config %s: %w", path, err)
	}
	return nil
}

// LiveConfig returns the node's broker config with the changes UPDATE_BROKER_CONFIG made on
// this node. Readers of the live keys (brokerPermission, autoCreateTopicEnable,
// autoCreateSubscriptionGroup, defaultTopicQueueNums) must use it instead of Config.
func (n *Node) LiveConfig() Config {
	a := n.adminInit()
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.live
}

// brokerPerm is the live brokerPermission.
func (n *Node) brokerPerm() int32 {
	a := n.adminInit()
	a.mu.RLock()
	defer a.mu.RUnlock()
	return int32(a.live.BrokerPermission)
}

// topicDataVersion is the topic table's DataVersion as this node registers and reports it:
// the fsm's, with the counter raised by every live brokerPermission change (RocketMQ bumps
// the topic table's version when brokerPermission changes, so that the name servers take the
// new perms). Both parts only grow, so the counter grows with either change.
func (n *Node) topicDataVersion() fsm.DataVersion {
	dv := n.fsm.DataVersion()
	a := n.adminInit()
	a.mu.RLock()
	dv.Counter += a.permChanges
	a.mu.RUnlock()
	return dv
}

// registeredTopicPerm is the perm a topic is registered with: as RocketMQ's registerBrokerAll,
// a broker without read or write permission registers every topic with its own permission, so
// clients stop sending (or pulling) through the route.
func (n *Node) registeredTopicPerm(topicPerm int32) int32 {
	bp := n.brokerPerm()
	if bp&2 == 0 || bp&4 == 0 {
		return bp
	}
	return topicPerm
}

// UpdateBrokerConfig changes live keys of this node's broker config (properties text, as the
// body of UPDATE_BROKER_CONFIG). All keys are checked before any is applied: a key that cannot
// change at run time, an unknown key or an invalid value refuses the whole update. The live
// keys are saved (liveConfigFile) before the change applies, so a restart keeps them. It
// returns the canonical names of the keys changed.
func (n *Node) UpdateBrokerConfig(text string) ([]string, error) {
	if err := n.serving(); err != nil {
		return nil, err
	}
	p, err := parseConfigUpdate(text)
	if err != nil {
		return nil, fmt.Errorf("%w: update broker config: %v", ErrBadRequest, err)
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: update broker config: the body names no key", ErrBadRequest)
	}
	a := n.adminInit()
	a.mu.Lock()
	defer a.mu.Unlock()
	next := a.live
	var changed []string
	for _, raw := range keys {
		key, val := raw, p[raw]
		spec, ok := lookupKey(key)
		_, unused := ignoredKeys[key]
		switch {
		case !ok && unused:
			return nil, fmt.Errorf("%w: %s is a RocketMQ key raftmq does not use (live keys: %s)", ErrConfigKeyNotLive, key, liveKeyList())
		case !ok:
			hint := ""
			if s := suggestKey(key); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, fmt.Errorf("%w: unknown key %q%s; live keys: %s", ErrConfigKeyNotLive, key, hint, liveKeyList())
		case storageKeys[spec.name]:
			return nil, fmt.Errorf("%w: %s is read by the storage engine when it opens; edit broker.conf and restart the node (live keys: %s)",
				ErrConfigKeyNotLive, spec.name, liveKeyList())
		case liveKeys[spec.name] == "":
			return nil, fmt.Errorf("%w: %s; edit broker.conf and restart the node (live keys: %s)", ErrConfigKeyNotLive, spec.name, liveKeyList())
		}
		if err := spec.set(&next, val); err != nil {
			return nil, fmt.Errorf("%w: %s=%q: %v", ErrBadRequest, spec.name, val, err)
		}
		changed = append(changed, spec.name)
	}
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if err := n.saveLiveConfig(&next); err != nil {
		return nil, err // not applied: a restart would silently undo it
	}
	if next.BrokerPermission != a.live.BrokerPermission {
		a.permChanges++
	}
	a.live = next
	a.version.Counter++
	a.version.Timestamp = max(time.Now().UnixMilli(), a.version.Timestamp)
	n.log.Info("broker config updated on this node", "keys", changed)
	if n.regKick != nil {
		n.kickRegister() // the routes carry the (live) permission
	}
	return changed, nil
}

// parseConfigUpdate parses the properties text of UPDATE_BROKER_CONFIG: one key=value (or
// key:value) per line, blank lines and # or ! comments skipped, spaces around keys and values
// trimmed, the last of repeated keys wins. (magiconair/properties is not used on request
// bodies: its lexer goroutine leaks on some malformed input.)
func parseConfigUpdate(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		cut := strings.IndexAny(line, "=:")
		if cut < 0 {
			return nil, fmt.Errorf("line %d: %q is not key=value", i+1, line)
		}
		key, val := strings.TrimSpace(line[:cut]), strings.TrimSpace(line[cut+1:])
		if key == "" {
			return nil, fmt.Errorf("line %d: %q has no key", i+1, line)
		}
		out[key] = val
	}
	return out, nil
}

func liveKeyList() string {
	ks := make([]string, 0, len(liveKeys))
	for k := range liveKeys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// handleGetBrokerConfig serves GET_BROKER_CONFIG (26): body = every key as properties text
// (the live values of this node), ext version = the config's DataVersion JSON.
func (n *Node) handleGetBrokerConfig(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	a := n.adminInit()
	a.mu.RLock()
	body := a.live.Properties(true)
	v, _ := json.Marshal(a.version)
	a.mu.RUnlock()
	resp := transport.NewResponse(transport.Success, "")
	resp.SetExt("version", string(v))
	resp.Body = []byte(body)
	return resp
}

// handleUpdateBrokerConfig serves UPDATE_BROKER_CONFIG (25): body = properties text.
func (n *Node) handleUpdateBrokerConfig(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	changed, err := n.UpdateBrokerConfig(string(req.Body))
	if err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, fmt.Sprintf(
		"updated %s on this node (%s, %s) only: broker config is per node, send the update to every node of the group",
		strings.Join(changed, ", "), n.serverID, n.addr))
}
