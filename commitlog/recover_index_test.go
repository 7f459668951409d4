package commitlog

import (
	"os"
	"testing"
)

// TestRecoveryReindexesTornLastMessage: a crash after some, but not all, keys of the last
// message reached the index. Recovery must index that message whole again, and a second
// recovery must leave the same bytes.
func TestRecoveryReindexesTornLastMessage(t *testing.T) {
	l, err := Open(testConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.cfg
	mustAppend(t, l, 1, tBaseTS, tmsg("T", 0, "first", PropertyKeys, "a"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	last := mustAppend(t, l, 2, tBaseTS+1, tmsg("T", 0, "second", PropertyKeys, "b c d"))[0]
	l.crash()

	// Tear the index: only the first key of the last message survives.
	ix, err := OpenIndex(cfg.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Truncate(last.PhysicalOffset); err != nil {
		t.Fatal(err)
	}
	if err := ix.Put("T", "b", last.PhysicalOffset, tBaseTS+1); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, cfg)
	for _, key := range []string{"b", "c", "d"} {
		got, err := l.QueryByKey("T", key, 10, 0, tBaseTS+10)
		if err != nil || len(got) != 1 || got[0].PhysicalOffset != last.PhysicalOffset {
			t.Fatalf("QueryByKey(%q) = %d results, %v; want the last message", key, len(got), err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, cfg.RootDir)
	if err := os.WriteFile(cfg.AbortPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	after := snapshotFiles(t, cfg.RootDir)
	if d := diffFiles(before, after, func(name string) bool { return name != "checkpoint" && name != "abort" }); len(d) != 0 {
		t.Fatalf("second recovery changed files: %v", d)
	}
}
