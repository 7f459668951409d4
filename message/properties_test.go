package message

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestGetProperty(t *testing.T) {
	props := "KEYS\x01k1 k2\x02TAGS\x01TagA\x02EMPTY\x01\x02UNIQ_KEY\x01ABC\x02TAGS\x01TagB"
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"KEYS", "k1 k2", true},
		{"TAGS", "TagB", true}, // last wins, as in a map
		{"EMPTY", "", true},
		{"UNIQ_KEY", "ABC", true},
		{"MISSING", "", false},
		{"KEY", "", false},
		{"", "", false},
	} {
		got, ok := GetProperty(props, tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("GetProperty(%q) = %q %v, want %q %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
	// Trailing separator (Go client) and none (Java 4.9) read the same.
	for _, p := range []string{"TAGS\x01x\x02", "TAGS\x01x"} {
		if v, ok := GetProperty(p, "TAGS"); v != "x" || !ok {
			t.Errorf("GetProperty(%q) = %q %v", p, v, ok)
		}
	}
	if v, ok := GetProperty("", "TAGS"); ok || v != "" {
		t.Error("empty props")
	}
	if a := testing.AllocsPerRun(100, func() { GetProperty(props, "UNIQ_KEY") }); a != 0 {
		t.Fatalf("GetProperty allocates %v", a)
	}
}

func TestParseEncodeProperties(t *testing.T) {
	m := map[string]string{"TAGS": "TagA", "KEYS": "a b", "WAIT": "true", "EMPTY": ""}
	s := EncodeProperties(m)
	if want := "EMPTY\x01\x02KEYS\x01a b\x02TAGS\x01TagA\x02WAIT\x01true"; s != want {
		t.Fatalf("EncodeProperties = %q, want %q (sorted, no trailing separator)", s, want)
	}
	if got := ParseProperties(s); !maps.Equal(got, m) {
		t.Fatalf("ParseProperties = %v", got)
	}
	if got := ParseProperties(s + "\x02"); !maps.Equal(got, m) {
		t.Fatalf("ParseProperties with trailing separator = %v", got)
	}
	if err := ValidateProperties(s); err != nil {
		t.Fatal(err)
	}
	if EncodeProperties(nil) != "" || len(ParseProperties("")) != 0 {
		t.Fatal("empty")
	}
	bs, err := BuildProperties(m)
	if err != nil || bs != s {
		t.Fatalf("BuildProperties = %q %v", bs, err)
	}
	for _, bad := range []map[string]string{
		{"": "v"}, {"a\x01": "v"}, {"a": "v\x02"}, {"a": "\x01"},
	} {
		if _, err := BuildProperties(bad); !errors.Is(err, ErrInvalidProperties) {
			t.Fatalf("BuildProperties(%q) err = %v", bad, err)
		}
		bad["OK"] = "1"
		if got := EncodeProperties(bad); got != "OK\x011" {
			t.Fatalf("EncodeProperties(%q) = %q, want only the valid entry", bad, got)
		}
	}
	if _, err := BuildProperties(map[string]string{"k": strings.Repeat("v", MaxPropertiesLen)}); !errors.Is(err, ErrPropertiesTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func TestValidateProperties(t *testing.T) {
	for _, ok := range []string{"", "a\x01", "a\x01b", "a\x01b\x02", "a\x01b\x02c\x01d", "a\x01b\x02c\x01d\x02"} {
		if err := ValidateProperties(ok); err != nil {
			t.Errorf("ValidateProperties(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a", "\x01b", "a\x01b\x02\x02", "a\x01b\x01c", "a\x01b\x02c", "\x02"} {
		if err := ValidateProperties(bad); !errors.Is(err, ErrInvalidProperties) {
			t.Errorf("ValidateProperties(%q) = %v", bad, err)
		}
	}
}

func TestSetDeleteProperty(t *testing.T) {
	for _, tc := range []struct {
		props, key, val, want string
	}{
		{"", "WAIT", "false", "WAIT\x01false"},
		{"DELAY\x013\x02TAGS\x01a", "WAIT", "false", "DELAY\x013\x02TAGS\x01a\x02WAIT\x01false"},
		{"DELAY\x013\x02TAGS\x01a\x02", "WAIT", "false", "DELAY\x013\x02TAGS\x01a\x02WAIT\x01false\x02"},
		{"DELAY\x013\x02TAGS\x01a", "DELAY", "4", "DELAY\x014\x02TAGS\x01a"},
	} {
		got, err := SetProperty(tc.props, tc.key, tc.val)
		if err != nil || got != tc.want {
			t.Errorf("SetProperty(%q, %q, %q) = %q %v, want %q", tc.props, tc.key, tc.val, got, err, tc.want)
		}
	}
	if _, err := SetProperty("", "K", "a\x02"); !errors.Is(err, ErrInvalidProperties) {
		t.Fatal(err)
	}
	for _, tc := range []struct{ props, key, want string }{
		{"DELAY\x013\x02TAGS\x01a", "DELAY", "TAGS\x01a"},
		{"DELAY\x013\x02TAGS\x01a\x02", "TAGS", "DELAY\x013\x02"},
		{"DELAY\x013\x02", "DELAY", ""},
		{"TAGS\x01a", "NONE", "TAGS\x01a"},
		{"A\x011\x02B\x012\x02A\x013", "A", "B\x012"},
	} {
		if got := DeleteProperty(tc.props, tc.key); got != tc.want {
			t.Errorf("DeleteProperty(%q, %q) = %q, want %q", tc.props, tc.key, got, tc.want)
		}
	}
}

func TestSplitKeys(t *testing.T) {
	var got []string
	SplitKeys(" k1  k2 k3 ", func(k string) { got = append(got, k) })
	if strings.Join(got, ",") != "k1,k2,k3" {
		t.Fatalf("SplitKeys = %q", got)
	}
	SplitKeys("", func(string) { t.Fatal("called for empty") })
}

func TestTagsHashCode(t *testing.T) {
	// Expected values are Java's String.hashCode(), computed from the UTF-16 definition
	// s[0]*31^(n-1) + ... + s[n-1] with int32 overflow.
	for _, tc := range []struct {
		s    string
		want int64
	}{
		{"", 0},
		{"TagA", 2598919},
		{"hello world", 1794106052},
		{"Hello World", -862545276}, // int32 overflow, negative
		{"é", 233},                  // U+00E9, two UTF-8 bytes, one UTF-16 unit
		{"a中", 23020},               // 97*31 + 0x4E2D
		{"😀", 1772899},              // U+1F600 = D83D DE00: 0xD83D*31 + 0xDE00
		{"TagA||TagB", 1789476431},
		{"标签-😀-tag", -1339494810},
		{"ÄÖÜ äöü ß", 337049555},
	} {
		if got := TagsHashCode(tc.s); got != tc.want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func BenchmarkTagsHashCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		TagsHashCode("TagA||TagB-order-created")
	}
}

func BenchmarkGetProperty(b *testing.B) {
	props := "KEYS\x01order-1 order-2\x02TAGS\x01TagA\x02UNIQ_KEY\x01C0A80114D43118B4AAC21B6A5D700000\x02WAIT\x01true"
	b.ReportAllocs()
	for b.Loop() {
		GetProperty(props, "UNIQ_KEY")
	}
}
