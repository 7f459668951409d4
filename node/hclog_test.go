package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHCLog(l, "raft", hclog.Info)
	h.Debug("hidden")
	h.Named("net").With("peer", "n1").Warn("heartbeat failed", "err", "timeout")
	h.StandardLogger(nil).Print("[ERR] raft-net: boom")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("debug below level was logged: %s", out)
	}
	for _, want := range []string{"level=WARN", "component=raft.net", "peer=n1", "err=timeout", "level=ERROR", "raft-net: boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	h.SetLevel(hclog.Debug)
	if !h.IsDebug() || h.IsTrace() {
		t.Errorf("levels: debug=%v trace=%v", h.IsDebug(), h.IsTrace())
	}
}
