package client

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ClientConfig is what producers, consumers and the admin client share. Zero values take the
// defaults (see DefaultClientConfig).
type ClientConfig struct {
	// NameServers lists the name servers as "host:port" (required); host may be an IP or a
	// DNS name, resolved at each dial. Each is tried in turn, so a dead, wrong or
	// unresolvable entry costs one failed dial, never the client.
	NameServers []string
	// InstanceName is the part after '@' in the client id "ip@instance"; default the process
	// id (a second client in the same process gets "pid-2", and so on, so that consumers of
	// one group in one process stay distinct).
	InstanceName string
	// RequestTimeout bounds one request (a send attempt, an offset call, a route lookup);
	// default 3 s.
	RequestTimeout time.Duration
	// RouteRefreshInterval is how often every used topic's route is refreshed; default 30 s.
	// Routes are also refreshed at once on a connection failure or a not-leader reply.
	RouteRefreshInterval time.Duration
	// HeartbeatInterval is how often HEART_BEAT goes to the brokers; default 30 s.
	HeartbeatInterval time.Duration
	// DialTimeout bounds a TCP connect; default 3 s.
	DialTimeout time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Client defaults.
const (
	DefaultRequestTimeout       = 3 * time.Second
	DefaultRouteRefreshInterval = 30 * time.Second
	DefaultHeartbeatInterval    = 30 * time.Second
	DefaultDialTimeout          = 3 * time.Second
)

// DefaultClientConfig returns the defaults (NameServers still has to be set).
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		RequestTimeout:       DefaultRequestTimeout,
		RouteRefreshInterval: DefaultRouteRefreshInterval,
		HeartbeatInterval:    DefaultHeartbeatInterval,
		DialTimeout:          DefaultDialTimeout,
	}
}

var instanceSeq atomic.Int64

func (c ClientConfig) withDefaults() ClientConfig {
	d := DefaultClientConfig()
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.RouteRefreshInterval == 0 {
		c.RouteRefreshInterval = d.RouteRefreshInterval
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.InstanceName == "" {
		n := instanceSeq.Add(1)
		c.InstanceName = strconv.Itoa(os.Getpid())
		if n > 1 {
			c.InstanceName += "-" + strconv.FormatInt(n, 10)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate reports the first invalid field.
func (c ClientConfig) Validate() error {
	if len(c.NameServers) == 0 {
		return fmt.Errorf("%w: NameServers is empty; give at least one ip:port", ErrInvalidConfig)
	}
	for _, a := range c.NameServers {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		p, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%w: NameServers entry %q is not host:port", ErrInvalidConfig, a)
		}
	}
	if strings.ContainsAny(c.InstanceName, "@ \x01\x02") {
		return fmt.Errorf("%w: InstanceName %q holds '@', a space or a separator", ErrInvalidConfig, c.InstanceName)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"RequestTimeout", c.RequestTimeout, 10 * time.Millisecond},
		{"RouteRefreshInterval", c.RouteRefreshInterval, 100 * time.Millisecond},
		{"HeartbeatInterval", c.HeartbeatInterval, 100 * time.Millisecond},
		{"DialTimeout", c.DialTimeout, 10 * time.Millisecond},
	} {
		if d.v != 0 && d.v < d.min {
			return fmt.Errorf("%w: %s %v is below the minimum %v (0 means the default)", ErrInvalidConfig, d.name, d.v, d.min)
		}
	}
	return nil
}

func validGroup(field, g string) error {
	if g == "" || len(g) > 255 {
		return fmt.Errorf("%w: %s %q must be 1..255 characters", ErrInvalidConfig, field, g)
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c == '%' || c == '|' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("%w: %s %q may hold only [%%|a-zA-Z0-9_-]", ErrInvalidConfig, field, g)
		}
	}
	return nil
}
