package namesrv

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/magiconair/properties"
)

// Defaults (RocketMQ's where it has one).
const (
	DefaultListenPort = 9876
	// DefaultBrokerExpiry is RocketMQ's BROKER_CHANNEL_EXPIRED_TIME.
	DefaultBrokerExpiry = 120 * time.Second
	// DefaultScanInterval is NamesrvConfig.scanNotActiveBrokerInterval.
	DefaultScanInterval = 5 * time.Second
	// DefaultIdleTimeout is NettyServerConfig.serverChannelMaxIdleTimeSeconds.
	DefaultIdleTimeout = 120 * time.Second
)

// ErrConfig marks an invalid configuration.
var ErrConfig = errors.New("namesrv: invalid config")

// Config is the name server's configuration. The properties keys (namesrv.conf)
// are given beside each field.
type Config struct {
	// ListenPort (listenPort) is the TCP port, default 9876.
	ListenPort int
	// BindAddress (bindAddress) is the IP to listen on, default 127.0.0.1;
	// set 0.0.0.0 to serve other hosts.
	BindAddress string
	// ListenAddr, when set, overrides BindAddress:ListenPort (tests use
	// "127.0.0.1:0"). Not a properties key.
	ListenAddr string
	// ScanNotActiveBrokerInterval (scanNotActiveBrokerInterval, ms) is how
	// often expired brokers are looked for, default 5000.
	ScanNotActiveBrokerInterval time.Duration
	// BrokerChannelExpiredTime (brokerChannelExpiredTime, ms) is how long a
	// broker stays without re-registering, default 120000 (a constant in
	// RocketMQ). A broker may ask for another value per registration
	// (heartbeatTimeoutMillis).
	BrokerChannelExpiredTime time.Duration
	// ServerChannelMaxIdleTime (serverChannelMaxIdleTimeSeconds, s) closes
	// connections idle that long, default 120.
	ServerChannelMaxIdleTime time.Duration
	// KVConfigPath (kvConfigPath) persists the KV config; empty keeps it in
	// memory only (the default: raftmq name servers are stateless).
	KVConfigPath string
	// OrderMessageEnable (orderMessageEnable) adds the topic's entry of the
	// ORDER_TOPIC_CONFIG KV namespace to its route as orderTopicConf.
	OrderMessageEnable bool
	// ReturnOrderTopicConfigToBroker (returnOrderTopicConfigToBroker) sends
	// the ORDER_TOPIC_CONFIG namespace in registration replies; default true.
	ReturnOrderTopicConfigToBroker bool
	// EnableAllTopicList (enableAllTopicList) allows
	// GET_ALL_TOPIC_LIST_FROM_NAMESERVER; default true.
	EnableAllTopicList bool
	// DeleteTopicWithBrokerRegistration (deleteTopicWithBrokerRegistration)
	// drops a group's topics missing from its master's changed table.
	DeleteTopicWithBrokerRegistration bool
	// Logger receives the name server's logs; nil discards them.
	Logger *slog.Logger `json:"-"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ListenPort:                     DefaultListenPort,
		BindAddress:                    "127.0.0.1",
		ScanNotActiveBrokerInterval:    DefaultScanInterval,
		BrokerChannelExpiredTime:       DefaultBrokerExpiry,
		ServerChannelMaxIdleTime:       DefaultIdleTimeout,
		ReturnOrderTopicConfigToBroker: true,
		EnableAllTopicList:             true,
	}
}

// Validate checks every field; the error names the key and the limit.
func (c Config) Validate() error {
	var errs []error
	if c.ListenAddr == "" {
		if c.ListenPort < 0 || c.ListenPort > 65535 {
			errs = append(errs, fmt.Errorf("%w: listenPort %d must be within 0..65535", ErrConfig, c.ListenPort))
		}
		if c.BindAddress != "" && net.ParseIP(c.BindAddress) == nil {
			errs = append(errs, fmt.Errorf("%w: bindAddress %q must be an IP address", ErrConfig, c.BindAddress))
		}
	} else if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("%w: ListenAddr %q must be host:port: %v", ErrConfig, c.ListenAddr, err))
	}
	if c.ScanNotActiveBrokerInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: scanNotActiveBrokerInterval %v must be at least 1ms", ErrConfig, c.ScanNotActiveBrokerInterval))
	}
	if c.BrokerChannelExpiredTime < time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: brokerChannelExpiredTime %v must be at least 1ms", ErrConfig, c.BrokerChannelExpiredTime))
	}
	if c.ServerChannelMaxIdleTime < 0 {
		errs = append(errs, fmt.Errorf("%w: serverChannelMaxIdleTimeSeconds %v must not be negative", ErrConfig, c.ServerChannelMaxIdleTime))
	}
	return errors.Join(errs...)
}

// addr is the address to listen on.
func (c Config) addr() string {
	if c.ListenAddr != "" {
		return c.ListenAddr
	}
	return net.JoinHostPort(c.BindAddress, strconv.Itoa(c.ListenPort))
}

// knownJavaKeys are RocketMQ NamesrvConfig / NettyServerConfig keys that are
// accepted for compatibility but have no effect here.
var knownJavaKeys = map[string]bool{
	"rocketmqHome": true, "configStorePath": true, "productEnvName": true, "clusterTest": true,
	"clientRequestThreadPoolNums": true, "defaultThreadPoolNums": true,
	"clientRequestThreadPoolQueueCapacity": true, "defaultThreadPoolQueueCapacity": true,
	"unRegisterBrokerQueueCapacity": true, "supportActingMaster": true, "enableTopicList": true,
	"notifyMinBrokerIdChanged": true, "enableControllerInNamesrv": true, "needWaitForService": true,
	"waitSecondsForService": true, "configBlackList": true, "serverWorkerThreads": true,
	"serverCallbackExecutorThreads": true, "serverSelectorThreads": true,
	"serverOnewaySemaphoreValue": true, "serverAsyncSemaphoreValue": true,
	"serverSocketSndBufSize": true, "serverSocketRcvBufSize": true,
	"serverPooledByteBufAllocatorEnable": true, "useEpollNativeSelector": true,
	"writeBufferHighWaterMark": true, "writeBufferLowWaterMark": true,
}

// LoadConfig reads a Java properties file over DefaultConfig. Unknown keys
// and RocketMQ keys without effect are returned as warnings (one per key,
// naming it); an invalid value is an error naming the key.
func LoadConfig(path string) (Config, []string, error) {
	l := properties.Loader{Encoding: properties.UTF8, DisableExpansion: true}
	p, err := l.LoadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("namesrv: load config %s: %w", path, err)
	}
	cfg, warns, err := ParseConfig(p.Map())
	if err != nil {
		return Config{}, warns, fmt.Errorf("namesrv: config %s: %w", path, err)
	}
	return cfg, warns, nil
}

// ParseConfig applies key/value pairs (as read from namesrv.conf) over
// DefaultConfig and validates the result.
func ParseConfig(kv map[string]string) (Config, []string, error) {
	cfg := DefaultConfig()
	var warns []string
	var errs []error
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(kv[k])
		bad := func(want string) {
			errs = append(errs, fmt.Errorf("%w: %s=%q: want %s", ErrConfig, k, v, want))
		}
		ms := func(dst *time.Duration) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				bad("a positive number of milliseconds")
				return
			}
			*dst = time.Duration(n) * time.Millisecond
		}
		boolean := func(dst *bool) {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("true or false")
				return
			}
			*dst = b
		}
		switch k {
		case "listenPort":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				bad("a port number 0..65535")
				continue
			}
			cfg.ListenPort = n
		case "bindAddress":
			if net.ParseIP(v) == nil {
				bad("an IP address")
				continue
			}
			cfg.BindAddress = v
		case "scanNotActiveBrokerInterval":
			ms(&cfg.ScanNotActiveBrokerInterval)
		case "brokerChannelExpiredTime":
			ms(&cfg.BrokerChannelExpiredTime)
		case "serverChannelMaxIdleTimeSeconds":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				bad("a number of seconds ≥ 0 (0 = never)")
				continue
			}
			cfg.ServerChannelMaxIdleTime = time.Duration(n) * time.Second
		case "kvConfigPath":
			cfg.KVConfigPath = v
		case "orderMessageEnable":
			boolean(&cfg.OrderMessageEnable)
		case "returnOrderTopicConfigToBroker":
			boolean(&cfg.ReturnOrderTopicConfigToBroker)
		case "enableAllTopicList":
			boolean(&cfg.EnableAllTopicList)
		case "deleteTopicWithBrokerRegistration":
			boolean(&cfg.DeleteTopicWithBrokerRegistration)
		default:
			if knownJavaKeys[k] {
				warns = append(warns, fmt.Sprintf("namesrv config key %q is a RocketMQ key without effect in raftmq; ignored", k))
			} else {
				warns = append(warns, fmt.Sprintf("unknown namesrv config key %q; ignored", k))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, warns, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, warns, err
	}
	return cfg, warns, nil
}

// Properties prints the effective configuration in namesrv.conf form (what
// `raftmq namesrv -p` prints); LoadConfig of the output yields c again.
func (c Config) Properties() string {
	var b strings.Builder
	w := func(k string, v any) { fmt.Fprintf(&b, "%s=%v\n", k, v) }
	w("listenPort", c.ListenPort)
	w("bindAddress", c.BindAddress)
	w("scanNotActiveBrokerInterval", c.ScanNotActiveBrokerInterval.Milliseconds())
	w("brokerChannelExpiredTime", c.BrokerChannelExpiredTime.Milliseconds())
	w("serverChannelMaxIdleTimeSeconds", int64(c.ServerChannelMaxIdleTime/time.Second))
	w("kvConfigPath", c.KVConfigPath)
	w("orderMessageEnable", c.OrderMessageEnable)
	w("returnOrderTopicConfigToBroker", c.ReturnOrderTopicConfigToBroker)
	w("enableAllTopicList", c.EnableAllTopicList)
	w("deleteTopicWithBrokerRegistration", c.DeleteTopicWithBrokerRegistration)
	return b.String()
}
