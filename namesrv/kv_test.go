package namesrv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestKVStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kvConfig.json")
	s, err := OpenKVStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("b", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("a", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := s.Namespaces(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("namespaces = %v", got)
	}
	if err := s.Delete("a", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("a", "missing"); err != nil {
		t.Fatal(err)
	}
	if got := s.Namespaces(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("namespaces after delete = %v", got)
	}
	if s.List("a") != nil {
		t.Fatal("emptied namespace still listed")
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries", len(entries))
	}
	// A corrupt file is an error naming it, not an empty store.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := OpenKVStore(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("corrupt kv file: %v", err)
	}
	// Memory only.
	m, _ := OpenKVStore("")
	if err := m.Put("n", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get("n", "k"); !ok || v != "v" {
		t.Fatal("memory store lost a value")
	}
}

func TestRegistrarErrors(t *testing.T) {
	c := newClient(t)
	if _, err := RegisterBroker(context.Background(), c, "127.0.0.1:1", RegisterBrokerRequest{BrokerName: "b"}); err == nil ||
		!strings.Contains(err.Error(), "ClusterName") {
		t.Fatalf("incomplete request: %v", err)
	}
	s := startServer(t, nil)
	_, err := GetRouteInfo(ctxT(t), c, s.Addr(), "none")
	var re *ResponseError
	if !errors.As(err, &re) || !strings.Contains(re.Error(), s.Addr()) || !strings.Contains(re.Error(), "TOPIC_NOT_EXIST") {
		t.Fatalf("error text = %v", err)
	}
	if errors.Is(&ResponseError{Code: 1}, ErrTopicNotExist) {
		t.Fatal("SYSTEM_ERROR matches ErrTopicNotExist")
	}
	if _, err := GetClusterInfo(ctxT(t), c, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("dead name server: %v", err)
	}
}
