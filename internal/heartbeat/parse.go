package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting of JSON values (heartbeats need 5 levels; the
// rest is slack for unknown keys).
const maxDepth = 32

// parseMessage parses an inflated heartbeat document strictly:
//
//   - the document is valid UTF-8 holding exactly one JSON object (RFC 8259
//     syntax; nesting bounded by maxDepth);
//   - keys match exactly (case-sensitive) and no key appears twice in an
//     object the heartbeat defines;
//   - id is a non-empty string; seq, ver and all counters are non-negative
//     JSON integers (no fraction or exponent); statuses are non-empty strings;
//     null is never accepted for a known key;
//   - id, seq and listeners are required; every listener has status and stats
//     with all five counters; every pool has status and members;
//   - ver, when present, is 1, 2 or 3; versions 2 and 3 require top-level
//     pools and forbid nested listener pools, version 1 the reverse.
//
// Unknown keys are skipped (after a syntax check) so that additive agent
// changes do not break decoding.
func parseMessage(doc []byte) (Message, error) {
	if !utf8.Valid(doc) {
		return Message{}, errors.New("document is not valid UTF-8")
	}
	s := scanner{data: doc}
	var (
		m                                      Message
		haveID, haveSeq, haveVer, haveRecvTime bool
		haveListeners, havePools               bool
	)
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "id":
			if err = once(&haveID, key); err == nil {
				m.ID, err = s.str()
			}
		case "seq":
			if err = once(&haveSeq, key); err == nil {
				m.Seq, err = s.uint()
			}
		case "ver":
			var v uint64
			if err = once(&haveVer, key); err == nil {
				if v, err = s.uint(); err == nil && (v < Version1 || v > Version3) {
					err = fmt.Errorf("unsupported version %d", v)
				}
				m.Version = int(v)
			}
		case "recv_time":
			if err = once(&haveRecvTime, key); err == nil {
				m.RecvTime, err = s.float()
			}
		case "listeners":
			if err = once(&haveListeners, key); err == nil {
				m.Listeners, err = s.listeners()
			}
		case "pools":
			if err = once(&havePools, key); err == nil {
				m.Pools, err = s.pools()
			}
		default:
			return s.skip()
		}
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	if s.ws(); s.pos != len(s.data) {
		return Message{}, s.errorf("trailing data after the heartbeat object")
	}
	switch {
	case !haveID:
		return Message{}, errors.New(`missing "id"`)
	case !haveSeq:
		return Message{}, errors.New(`missing "seq"`)
	case !haveListeners:
		return Message{}, errors.New(`missing "listeners"`)
	}
	if !haveVer {
		m.Version = Version1
	}
	if m.Version >= Version2 && !havePools {
		return Message{}, fmt.Errorf(`missing "pools" in a version %d message`, m.Version)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	// Canonical form: pool maps that the version does not use are nil (an
	// empty "pools": {} where no pools belong is tolerated).
	if m.Version == Version1 {
		m.Pools = nil
	}
	for id, l := range m.Listeners {
		if len(l.Pools) == 0 && l.Pools != nil {
			l.Pools = nil
			m.Listeners[id] = l
		}
	}
	return m, nil
}

func once(seen *bool, key string) error {
	if *seen {
		return fmt.Errorf("duplicate key %q", key)
	}
	*seen = true
	return nil
}

func (s *scanner) listeners() (map[string]Listener, error) {
	out := make(map[string]Listener)
	err := s.object(func(id string) error {
		if _, dup := out[id]; dup {
			return fmt.Errorf("duplicate listener %q", id)
		}
		l, err := s.listener()
		if err != nil {
			return fmt.Errorf("listener %q: %w", id, err)
		}
		out[id] = l
		return nil
	})
	return out, err
}

func (s *scanner) listener() (Listener, error) {
	var (
		l                                Listener
		haveStatus, haveStats, havePools bool
	)
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "status":
			if err = once(&haveStatus, key); err == nil {
				l.Status, err = s.str()
			}
		case "stats":
			if err = once(&haveStats, key); err == nil {
				l.Stats, err = s.stats()
			}
		case "pools":
			if err = once(&havePools, key); err == nil {
				l.Pools, err = s.pools()
			}
		default:
			return s.skip()
		}
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return Listener{}, err
	case !haveStatus:
		return Listener{}, errors.New(`missing "status"`)
	case !haveStats:
		return Listener{}, errors.New(`missing "stats"`)
	}
	return l, nil
}

func (s *scanner) stats() (Stats, error) {
	var (
		st   Stats
		seen uint8
	)
	fields := [...]struct {
		key string
		dst *uint64
	}{{"tx", &st.TX}, {"rx", &st.RX}, {"conns", &st.Conns}, {"totconns", &st.TotConns}, {"ereq", &st.EReq}}
	err := s.object(func(key string) error {
		for i, f := range fields {
			if f.key != key {
				continue
			}
			if seen&(1<<i) != 0 {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen |= 1 << i
			v, err := s.uint()
			if err != nil {
				return fmt.Errorf("%q: %w", key, err)
			}
			*f.dst = v
			return nil
		}
		return s.skip()
	})
	if err != nil {
		return Stats{}, err
	}
	for i, f := range fields {
		if seen&(1<<i) == 0 {
			return Stats{}, fmt.Errorf("missing %q", f.key)
		}
	}
	return st, nil
}

func (s *scanner) pools() (map[string]Pool, error) {
	out := make(map[string]Pool)
	err := s.object(func(id string) error {
		if _, dup := out[id]; dup {
			return fmt.Errorf("duplicate pool %q", id)
		}
		p, err := s.pool()
		if err != nil {
			return fmt.Errorf("pool %q: %w", id, err)
		}
		out[id] = p
		return nil
	})
	return out, err
}

func (s *scanner) pool() (Pool, error) {
	var (
		p                       Pool
		haveStatus, haveMembers bool
	)
	err := s.object(func(key string) error {
		var err error
		switch key {
		case "status":
			if err = once(&haveStatus, key); err == nil {
				p.Status, err = s.str()
			}
		case "members":
			if err = once(&haveMembers, key); err == nil {
				p.Members, err = s.members()
			}
		default:
			return s.skip()
		}
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return Pool{}, err
	case !haveStatus:
		return Pool{}, errors.New(`missing "status"`)
	case !haveMembers:
		return Pool{}, errors.New(`missing "members"`)
	}
	return p, nil
}

func (s *scanner) members() (map[string]string, error) {
	out := make(map[string]string)
	err := s.object(func(id string) error {
		if _, dup := out[id]; dup {
			return fmt.Errorf("duplicate member %q", id)
		}
		st, err := s.str()
		if err != nil {
			return fmt.Errorf("member %q: %w", id, err)
		}
		out[id] = st
		return nil
	})
	return out, err
}

// scanner is a minimal strict JSON reader over an in-memory document. The
// document must already be valid UTF-8.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) describe() string {
	switch c := s.peek(); {
	case c == 0:
		return "end of document"
	case c == 'n' && s.hasPrefix("null"):
		return "null"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	default:
		return strconv.QuoteRune(rune(c))
	}
}

func (s *scanner) hasPrefix(lit string) bool {
	return len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit
}

// object reads an object, calling fn for each key with the scanner positioned
// at the value; fn must consume the value.
func (s *scanner) object(fn func(key string) error) error {
	if s.peek() != '{' {
		return s.errorf("want an object, got %s", s.describe())
	}
	if s.depth++; s.depth > maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("want a key, got %s", s.describe())
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.errorf("want ':' after key %q", key)
		}
		s.pos++
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return s.errorf("want ',' or '}', got %s", s.describe())
		}
	}
}

func (s *scanner) array() error {
	if s.depth++; s.depth > maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	s.pos++ // '['
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := s.skip(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return s.errorf("want ',' or ']', got %s", s.describe())
		}
	}
}

// skip reads and discards any JSON value.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func(string) error { return s.skip() })
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str()
		return err
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if s.hasPrefix(lit) {
				s.pos += len(lit)
				return nil
			}
		}
		return s.errorf("invalid literal")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := s.number()
		return err
	default:
		return s.errorf("want a value, got %s", s.describe())
	}
}

// str reads a string. Strings without escapes are sliced directly; the rare
// escaped ones are decoded by encoding/json.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.errorf("want a string, got %s", s.describe())
	}
	start := s.pos
	escaped := false
	for i := start + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			if !escaped {
				return string(s.data[start+1 : i]), nil
			}
			var out string
			if err := json.Unmarshal(s.data[start:s.pos], &out); err != nil {
				s.pos = start
				return "", s.errorf("invalid string: %v", err)
			}
			return out, nil
		case c == '\\':
			escaped = true
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			s.pos = i
			return "", s.errorf("control character in string")
		}
	}
	return "", s.errorf("unterminated string")
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	d, start := s.data, s.pos
	i := start
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return nil, s.errorf("want a number, got %s", s.describe())
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return nil, s.errorf("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, s.errorf("invalid number")
		}
	}
	s.pos = i
	return d[start:i], nil
}

// uint reads a non-negative integer (no fraction or exponent) that fits in
// 64 bits.
func (s *scanner) uint() (uint64, error) {
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want a non-negative integer, got %s", n)
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("integer %s overflows 64 bits", n)
		}
		u = u*10 + d
	}
	return u, nil
}

// float reads a finite number.
func (s *scanner) float() (float64, error) {
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("want a finite number, got %s", n)
	}
	return f, nil
}
