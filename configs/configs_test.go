// Package configs_test starts every deployment in configs/ from its files, as shipped, and checks
// that it serves a send and a pull. Only what would clash on a shared machine is changed: ports
// are remapped to free ones (consistently, dLegerPeers included), data goes to a temp dir and the
// admin HTTP address is turned off.
package configs_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/client"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestEveryModeStartsFromItsFilesAndServes(t *testing.T) {
	for _, mode := range []struct {
		dir   string
		files []string // start order: masters before their slaves
	}{
		{"1m", []string{"broker-a.conf"}},
		{"2m", []string{"broker-a.conf", "broker-b.conf"}},
		{"2m-2s-async", []string{"broker-a.conf", "broker-b.conf", "broker-a-s.conf", "broker-b-s.conf"}},
		{"2m-2s-sync", []string{"broker-a.conf", "broker-b.conf", "broker-a-s.conf", "broker-b-s.conf"}},
		{"dledger", []string{"broker-a-n0.conf", "broker-a-n1.conf", "broker-a-n2.conf"}},
	} {
		t.Run(mode.dir, func(t *testing.T) {
			if testing.Short() && mode.dir != "1m" {
				t.Skip("short mode: only the single master")
			}
			entries, err := os.ReadDir(mode.dir)
			if err != nil {
				t.Fatal(err)
			}
			var shipped []string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".conf") {
					shipped = append(shipped, e.Name())
				}
			}
			if mode.dir == "dledger" {
				shipped = slices.DeleteFunc(shipped, func(s string) bool { return strings.HasPrefix(s, "broker-b") })
			}
			slices.Sort(shipped)
			want := slices.Clone(mode.files)
			slices.Sort(want)
			if !slices.Equal(shipped, want) {
				t.Fatalf("%s holds %v, the test starts %v", mode.dir, shipped, mode.files)
			}
			runMode(t, mode.dir, mode.files)
		})
	}
}

func runMode(t *testing.T, dir string, files []string) {
	nsCfg := namesrv.DefaultConfig()
	nsCfg.ListenAddr, nsCfg.Logger = "127.0.0.1:0", logger(t)
	ns, err := namesrv.New(nsCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close(context.Background()) })

	ports := map[int]int{} // shipped port -> free port
	remap := func(p int) int {
		if _, ok := ports[p]; !ok {
			ports[p] = freePort(t)
		}
		return ports[p]
	}
	var cluster string
	for _, f := range files {
		cfg, warnings, err := node.LoadConfig(filepath.Join(dir, f), node.LoadOptions{NamesrvAddr: ns.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) > 0 {
			t.Errorf("%s/%s: warnings %q", dir, f, warnings)
		}
		if cfg.StorePathRootDir == "" || !strings.Contains(readFile(t, filepath.Join(dir, f)), "storePathRootDir=") {
			t.Errorf("%s/%s does not set storePathRootDir", dir, f)
		}
		cluster = cfg.BrokerClusterName
		cfg.ListenPort = remap(cfg.ListenPort)
		cfg.HAListenPort = remap(cfg.HAListenPort)
		for i, p := range cfg.DLegerPeers {
			host, port, _ := net.SplitHostPort(p.Addr)
			n, _ := strconv.Atoi(port)
			cfg.DLegerPeers[i].Addr = net.JoinHostPort(host, strconv.Itoa(remap(n)))
		}
		cfg.AdminListenAddr = ""
		root := t.TempDir()
		cfg.StorePathRootDir = root
		cfg.StorePathCommitLog, cfg.StorePathConsumeQueue, cfg.StorePathIndex = "", "", ""
		cfg.StoreCheckpoint, cfg.AbortFile, cfg.RaftDir = "", "", ""
		cfg.MappedFileSizeCommitLog = 8 << 20 // keep the test's disk use small
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s/%s: %v", dir, f, err)
		}
		n, err := node.New(cfg, node.Options{Logger: logger(t).With("file", f), RegisterInterval: time.Second})
		if err != nil {
			t.Fatalf("%s/%s: start: %v", dir, f, err)
		}
		t.Cleanup(func() { _ = n.Close() })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cc := client.ClientConfig{NameServers: []string{ns.Addr()}, RouteRefreshInterval: time.Second, Logger: logger(t)}
	admin, err := client.NewAdmin(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topic := "ConfigsTest"
	groups := map[string]bool{}
	for {
		err := admin.CreateTopic(ctx, client.TopicConfig{Topic: topic, ReadQueues: 2, WriteQueues: 2, Cluster: cluster})
		if err == nil {
			info, err := admin.ClusterInfo(ctx)
			if err == nil {
				for name, bd := range info.BrokerAddrTable {
					if bd.BrokerAddrs[0] != "" {
						groups[name] = true
					}
				}
			}
		}
		want := len(files)
		if dir == "2m-2s-async" || dir == "2m-2s-sync" {
			want = 2
		} else if dir == "dledger" {
			want = 1
		}
		if err == nil && len(groups) == want {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster never ready: %d of %d groups have a master; last error %v", len(groups), want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	pcfg := client.DefaultProducerConfig()
	pcfg.ClientConfig = cc
	pcfg.MaxAttempts = 5
	p, err := client.NewProducer(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := map[string]bool{}
	for i := range 8 {
		body := fmt.Sprintf("%s-%d", dir, i)
		if _, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte(body), Tags: "T"}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		sent[body] = true
	}

	ccfg := client.DefaultPullConsumerConfig()
	ccfg.ClientConfig = cc
	ccfg.Group = "configs-test"
	ccfg.ConsumeFrom = client.ConsumeFromFirst
	ccfg.PollTimeout = time.Second
	pc, err := client.NewPullConsumer(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	queues, err := pc.Queues(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Assign("*", queues...); err != nil {
		t.Fatal(err)
	}
	for len(sent) > 0 {
		msgs, err := pc.Poll(ctx)
		if err != nil && ctx.Err() != nil {
			t.Fatalf("pulled all but %d messages: %v", len(sent), err)
		}
		for _, m := range msgs {
			delete(sent, string(m.Body))
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
