package namesrv

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "namesrv.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeConf(t, `# a RocketMQ-style namesrv.conf
listenPort=19876
bindAddress = 0.0.0.0
scanNotActiveBrokerInterval=2000
brokerChannelExpiredTime: 30000
serverChannelMaxIdleTimeSeconds=60
kvConfigPath=/tmp/x/kvConfig.json
orderMessageEnable=true
returnOrderTopicConfigToBroker=false
enableAllTopicList=false
deleteTopicWithBrokerRegistration=true
rocketmqHome=/opt/rocketmq
listenPortt=1
`)
	cfg, warns, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ListenPort:                        19876,
		BindAddress:                       "0.0.0.0",
		ScanNotActiveBrokerInterval:       2 * time.Second,
		BrokerChannelExpiredTime:          30 * time.Second,
		ServerChannelMaxIdleTime:          time.Minute,
		KVConfigPath:                      "/tmp/x/kvConfig.json",
		OrderMessageEnable:                true,
		ReturnOrderTopicConfigToBroker:    false,
		EnableAllTopicList:                false,
		DeleteTopicWithBrokerRegistration: true,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config = %+v\nwant %+v", cfg, want)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], `"listenPortt"`) || !strings.Contains(warns[1], `"rocketmqHome"`) {
		t.Fatalf("warnings = %q", warns)
	}
	// Properties prints what LoadConfig reads back.
	back, warns, err := LoadConfig(writeConf(t, cfg.Properties()))
	if err != nil || len(warns) != 0 || !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip: %+v %q %v", back, warns, err)
	}
	if !strings.Contains(cfg.Properties(), "listenPort=19876\n") {
		t.Fatalf("properties:\n%s", cfg.Properties())
	}
}

func TestLoadConfig_Defaults(t *testing.T) {
	cfg, warns, err := LoadConfig(writeConf(t, ""))
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Fatalf("empty file = %+v", cfg)
	}
	if cfg.ListenPort != 9876 || cfg.BrokerChannelExpiredTime != 120*time.Second || cfg.addr() != "127.0.0.1:9876" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestLoadConfig_InvalidValuesNameTheKey(t *testing.T) {
	for _, line := range []string{
		"listenPort=70000",
		"listenPort=abc",
		"bindAddress=localhost",
		"scanNotActiveBrokerInterval=0",
		"brokerChannelExpiredTime=-5",
		"serverChannelMaxIdleTimeSeconds=x",
		"orderMessageEnable=yes please",
		"enableAllTopicList=2",
	} {
		key := strings.SplitN(line, "=", 2)[0]
		_, _, err := LoadConfig(writeConf(t, line+"\n"))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v, want ErrConfig naming %s", line, err, key)
		}
	}
	if _, _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.conf")); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.ListenAddr = "nonsense"
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ListenAddr") {
		t.Fatalf("bad ListenAddr: %v", err)
	}
	c = DefaultConfig()
	c.BrokerChannelExpiredTime = 0
	c.ScanNotActiveBrokerInterval = 0
	err := c.Validate()
	if !strings.Contains(err.Error(), "brokerChannelExpiredTime") || !strings.Contains(err.Error(), "scanNotActiveBrokerInterval") {
		t.Fatalf("both errors named: %v", err)
	}
}
