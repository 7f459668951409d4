package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), argv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs(t, "raftmq", "version")
	if code != 0 || !strings.HasPrefix(out, "raftmq ") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	code, _, errOut := runArgs(t, "raftmq", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}

func TestNamesrvPrintConfigThroughAlias(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "namesrv.conf")
	if err := os.WriteFile(conf, []byte("listenPort=19877\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runArgs(t, "/usr/local/bin/mqnamesrv", "-c", conf, "-p")
	if code != 0 || !strings.Contains(out, "listenPort=19877\n") {
		t.Fatalf("code %d out %q stderr %q", code, out, errOut)
	}
}

func TestNamesrvBadFlagAndMissingConfig(t *testing.T) {
	if code, _, _ := runArgs(t, "raftmq", "namesrv", "-nosuchflag"); code != 2 {
		t.Fatalf("bad flag: code %d, want 2", code)
	}
	code, _, errOut := runArgs(t, "raftmq", "namesrv", "-c", "/nonexistent/namesrv.conf")
	if code != 1 || !strings.Contains(errOut, "/nonexistent/namesrv.conf") {
		t.Fatalf("missing config: code %d stderr %q", code, errOut)
	}
}
