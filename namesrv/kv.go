package namesrv

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/raftmq/raftmq/internal/fsutil"
)

// KVStore is the name server's namespaced key/value config
// (PUT/GET/DELETE_KV_CONFIG). With a path it is persisted as RocketMQ's
// kvConfig.json ({"configTable":{ns:{k:v}}}) after every change; with an
// empty path it lives in memory only. Safe for concurrent use.
type KVStore struct {
	path string
	mu   sync.RWMutex
	tbl  map[string]map[string]string
}

type kvFile struct {
	ConfigTable map[string]map[string]string `json:"configTable"`
}

// OpenKVStore loads path when it exists (an empty path means memory only).
func OpenKVStore(path string) (*KVStore, error) {
	s := &KVStore{path: path, tbl: map[string]map[string]string{}}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namesrv: read kv config %s: %w", path, err)
	}
	if len(data) == 0 {
		return s, nil
	}
	var f kvFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("namesrv: parse kv config %s: %w", path, err)
	}
	for ns, m := range f.ConfigTable {
		if m != nil {
			s.tbl[ns] = m
		}
	}
	return s, nil
}

// Put sets namespace/key to value and persists the table.
func (s *KVStore) Put(namespace, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.tbl[namespace]
	if m == nil {
		m = map[string]string{}
		s.tbl[namespace] = m
	}
	m[key] = value
	return s.persistLocked()
}

// Get returns the value of namespace/key.
func (s *KVStore) Get(namespace, key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.tbl[namespace][key]
	return v, ok
}

// Delete removes namespace/key (a missing key is not an error).
func (s *KVStore) Delete(namespace, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.tbl[namespace]
	if _, ok := m[key]; !ok {
		return nil
	}
	delete(m, key)
	if len(m) == 0 {
		delete(s.tbl, namespace)
	}
	return s.persistLocked()
}

// List returns a copy of namespace's entries (nil when empty).
func (s *KVStore) List(namespace string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.tbl[namespace]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Namespaces returns the namespaces, sorted.
func (s *KVStore) Namespaces() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := make([]string, 0, len(s.tbl))
	for ns := range s.tbl {
		l = append(l, ns)
	}
	sort.Strings(l)
	return l
}

// persistLocked writes the table atomically.
func (s *KVStore) persistLocked() error {
	if s.path == "" {
		return nil
	}
	data, err := json.Marshal(kvFile{ConfigTable: s.tbl})
	if err != nil {
		return fmt.Errorf("namesrv: encode kv config: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.path, data, 0o644); err != nil {
		return fmt.Errorf("namesrv: write kv config %s: %w", s.path, err)
	}
	return nil
}
