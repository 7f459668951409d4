package transport

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON header has a tiny fixed shape, so it is encoded and decoded by
// hand (see BenchmarkHeaderJSON for the comparison with encoding/json).

const hexDigits = "0123456789abcdef"

// appendJSONHeader writes {"code":..,"language":..,"version":..,"opaque":..,
// "flag":..,"remark":..,"extFields":{..}} with ext keys sorted. language is
// the RocketMQ name when there is one (as Go and Java send it), else a number.
func appendJSONHeader(dst []byte, c *Command, opaque, flag int32) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	if int(c.Language) < len(languageNames) {
		dst = append(dst, '"')
		dst = append(dst, languageNames[c.Language]...)
		dst = append(dst, '"')
	} else {
		dst = strconv.AppendInt(dst, int64(c.Language), 10)
	}
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	dst = append(dst, `,"extFields":{`...)
	if len(c.ExtFields) > 0 {
		var buf [16]string
		for i, k := range sortedKeys(c.ExtFields, buf[:]) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, c.ExtFields[k])
		}
	}
	return append(dst, "}}"...)
}

// appendJSONString quotes s. Bytes that are not valid UTF-8 pass through
// unchanged, so that any string survives an encode/decode round trip.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonDecoder is a cursor over a JSON header.
type jsonDecoder struct {
	b []byte
	i int
	// s is b as one string, made on the first extFields value: the values are substrings
	// of it, one allocation per header instead of one per field. vs, ve bound the last
	// value rawString or number returned inside b (vs < 0: it was unescaped into a copy).
	s      string
	vs, ve int
}

// valueString returns v, the value just read by rawString or number, as a string: a
// substring of the header when v lies in it, else a copy.
func (d *jsonDecoder) valueString(v []byte) string {
	if d.vs < 0 || d.ve-d.vs != len(v) {
		return string(v)
	}
	if d.s == "" {
		d.s = string(d.b)
	}
	return d.s[d.vs:d.ve]
}

func (d *jsonDecoder) skipWS() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// expect consumes c after optional whitespace.
func (d *jsonDecoder) expect(c byte) bool {
	d.skipWS()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jsonDecoder) peek() byte {
	d.skipWS()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return malformed("json header at byte %d: "+format, append([]any{d.i}, args...)...)
}

// decodeJSONHeader parses a JSON header. It accepts what Go and Java send:
// language as a name or a number, null remark/extFields, extFields values
// that are strings, numbers or booleans (turned into strings; null values
// are dropped), and unknown keys with any value.
func decodeJSONHeader(b []byte) (*Command, error) {
	d := jsonDecoder{b: b}
	cmd := &Command{}
	if !d.expect('{') {
		return nil, d.errorf("expected '{'")
	}
	if !d.expect('}') {
		for {
			key, ok, err := d.rawString()
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, d.errorf("expected a key")
			}
			if !d.expect(':') {
				return nil, d.errorf("expected ':' after %q", key)
			}
			if err := d.field(cmd, key); err != nil {
				return nil, err
			}
			if d.expect(',') {
				continue
			}
			if d.expect('}') {
				break
			}
			return nil, d.errorf("expected ',' or '}'")
		}
	}
	d.skipWS()
	if d.i != len(d.b) {
		return nil, d.errorf("trailing data after the header object")
	}
	return cmd, nil
}

func (d *jsonDecoder) field(cmd *Command, key []byte) error {
	switch string(key) {
	case "code":
		v, err := d.intValue("code", -1<<15, 1<<15-1)
		cmd.Code = int16(v)
		return err
	case "version":
		v, err := d.intValue("version", -1<<15, 1<<15-1)
		cmd.Version = int16(v)
		return err
	case "opaque":
		v, err := d.intValue("opaque", -1<<31, 1<<31-1)
		cmd.Opaque = int32(v)
		return err
	case "flag":
		v, err := d.intValue("flag", -1<<31, 1<<31-1)
		cmd.Flag = int32(v)
		return err
	case "language":
		if d.peek() == '"' {
			s, _, err := d.rawString()
			if err != nil {
				return err
			}
			cmd.Language, _ = ParseLanguage(string(s))
			return nil
		}
		if d.null() {
			return nil
		}
		v, err := d.intValue("language", 0, 255)
		cmd.Language = LanguageCode(v)
		return err
	case "remark":
		if d.null() {
			return nil
		}
		s, ok, err := d.rawString()
		if err != nil {
			return err
		}
		if !ok {
			return d.errorf("remark is not a string")
		}
		cmd.Remark = string(s)
		return nil
	case "extFields":
		return d.extFields(cmd)
	}
	return d.skipValue(0)
}

func (d *jsonDecoder) extFields(cmd *Command) error {
	if d.null() {
		return nil
	}
	if !d.expect('{') {
		return d.errorf("extFields is not an object")
	}
	if d.expect('}') {
		return nil
	}
	for {
		kb, ok, err := d.rawString()
		if err != nil {
			return err
		}
		if !ok {
			return d.errorf("expected an extFields key")
		}
		key := internKey(kb)
		if !d.expect(':') {
			return d.errorf("expected ':' after extFields key %q", key)
		}
		switch c := d.peek(); {
		case c == '"':
			v, _, err := d.rawString()
			if err != nil {
				return err
			}
			if cmd.ExtFields == nil {
				cmd.ExtFields = make(map[string]string, 8)
			}
			cmd.ExtFields[key] = d.valueString(v)
		case c == '-' || (c >= '0' && c <= '9'):
			num, err := d.number()
			if err != nil {
				return err
			}
			if cmd.ExtFields == nil {
				cmd.ExtFields = make(map[string]string, 8)
			}
			cmd.ExtFields[key] = d.valueString(num)
		case c == 't' || c == 'f':
			v, err := d.boolean()
			if err != nil {
				return err
			}
			if cmd.ExtFields == nil {
				cmd.ExtFields = make(map[string]string, 8)
			}
			cmd.ExtFields[key] = strconv.FormatBool(v)
		default:
			if !d.null() {
				return d.errorf("extFields value of %q is not a string, number or boolean", key)
			}
		}
		if d.expect(',') {
			continue
		}
		if d.expect('}') {
			return nil
		}
		return d.errorf("expected ',' or '}' in extFields")
	}
}

func (d *jsonDecoder) literal(lit string) bool {
	d.skipWS()
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

func (d *jsonDecoder) null() bool { return d.literal("null") }

func (d *jsonDecoder) boolean() (bool, error) {
	if d.literal("true") {
		return true, nil
	}
	if d.literal("false") {
		return false, nil
	}
	return false, d.errorf("bad literal")
}

// number returns the raw text of a JSON number.
func (d *jsonDecoder) number() ([]byte, error) {
	d.skipWS()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, d.errorf("bad number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, d.errorf("bad number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errorf("bad number")
		}
	}
	d.vs, d.ve = start, d.i
	return d.b[start:d.i], nil
}

// intValue parses an integer in [lo, hi]; null reads as 0.
func (d *jsonDecoder) intValue(name string, lo, hi int64) (int64, error) {
	if d.null() {
		return 0, nil
	}
	num, err := d.number()
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseInt(string(num), 10, 64)
	if perr != nil || v < lo || v > hi {
		return 0, d.errorf("%s=%s is not an integer in [%d, %d]", name, num, lo, hi)
	}
	return v, nil
}

// rawString parses a string and returns its unescaped bytes, which alias the
// input when there are no escapes. ok is false (and nothing consumed) when
// the next value is not a string.
func (d *jsonDecoder) rawString() (s []byte, ok bool, err error) {
	if d.peek() != '"' {
		return nil, false, nil
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s = d.b[start:d.i]
			d.vs, d.ve = start, d.i
			d.i++
			return s, true, nil
		}
		if c == '\\' {
			d.vs = -1
			return d.escapedString(start)
		}
		if c < 0x20 {
			return nil, false, d.errorf("control character in string")
		}
		d.i++
	}
	return nil, false, d.errorf("unterminated string")
}

func (d *jsonDecoder) escapedString(start int) ([]byte, bool, error) {
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return out, true, nil
		case c < 0x20:
			return nil, false, d.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, false, d.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					var ok2 bool
					if r2, ok2 = d.hex4(); !ok2 {
						return nil, false, d.errorf("bad \\u escape")
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
					} else {
						d.i = save // lone surrogate; reread the second escape on its own
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false, d.errorf("bad escape \\%c", e)
		}
	}
	return nil, false, d.errorf("unterminated string")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// maxJSONDepth bounds the nesting of skipped values.
const maxJSONDepth = 64

// skipValue skips any JSON value (used for unknown keys).
func (d *jsonDecoder) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return d.errorf("nesting deeper than %d", maxJSONDepth)
	}
	switch c := d.peek(); {
	case c == '"':
		_, _, err := d.rawString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case c == 't' || c == 'f':
		_, err := d.boolean()
		return err
	case c == 'n':
		if d.null() {
			return nil
		}
		return d.errorf("bad literal")
	case c == '{':
		d.i++
		if d.expect('}') {
			return nil
		}
		for {
			if _, ok, err := d.rawString(); err != nil || !ok {
				if err == nil {
					err = d.errorf("expected a key")
				}
				return err
			}
			if !d.expect(':') {
				return d.errorf("expected ':'")
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			if d.expect(',') {
				continue
			}
			if d.expect('}') {
				return nil
			}
			return d.errorf("expected ',' or '}'")
		}
	case c == '[':
		d.i++
		if d.expect(']') {
			return nil
		}
		for {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			if d.expect(',') {
				continue
			}
			if d.expect(']') {
				return nil
			}
			return d.errorf("expected ',' or ']'")
		}
	}
	return d.errorf("unexpected character")
}
