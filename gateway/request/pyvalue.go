package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds a small model of the Python values WSME works on. Octavia
// parses request bodies with Python's json module and quotes the offending
// values in its fault strings with str(); reproducing those texts needs the
// body with its key order and Python's spelling of every value.

// pyKind is the Python type of a decoded JSON value.
type pyKind int

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyStr
	pyList
	pyDict
)

// pyValue is one JSON value as Python's json module would hold it.
type pyValue struct {
	kind  pyKind
	b     bool
	i     *big.Int
	f     float64
	s     string
	list  []*pyValue
	keys  []string // dict keys in insertion order
	items map[string]*pyValue
}

func (v *pyValue) typeName() string {
	switch v.kind {
	case pyNone:
		return "NoneType"
	case pyBool:
		return "bool"
	case pyInt:
		return "int"
	case pyFloat:
		return "float"
	case pyStr:
		return "str"
	case pyList:
		return "list"
	default:
		return "dict"
	}
}

func (v *pyValue) get(key string) (*pyValue, bool) {
	if v.kind != pyDict {
		return nil, false
	}
	c, ok := v.items[key]
	return c, ok
}

// errNotJSON reports a body Python's json.loads would refuse.
var errNotJSON = errors.New("request is not in valid JSON format")

// parseJSON decodes one JSON document keeping object key order. Duplicate
// keys keep their first position and their last value, as a Python dict does.
func parseJSON(data []byte) (*pyValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after JSON document: %w", errNotJSON)
	}
	return v, nil
}

// maxDepth bounds nesting so hostile bodies cannot exhaust the stack.
const maxDepth = 200

func parseValue(dec *json.Decoder, depth int) (*pyValue, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("JSON nested too deeply: %w", errNotJSON)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errNotJSON)
	}
	switch t := tok.(type) {
	case nil:
		return &pyValue{kind: pyNone}, nil
	case bool:
		return &pyValue{kind: pyBool, b: t}, nil
	case string:
		return &pyValue{kind: pyStr, s: t}, nil
	case json.Number:
		return numberValue(string(t))
	case json.Delim:
		switch t {
		case '[':
			out := &pyValue{kind: pyList}
			for dec.More() {
				c, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out.list = append(out.list, c)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("%v: %w", err, errNotJSON)
			}
			return out, nil
		case '{':
			out := &pyValue{kind: pyDict, items: map[string]*pyValue{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("%v: %w", err, errNotJSON)
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string: %w", errNotJSON)
				}
				c, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if _, dup := out.items[key]; !dup {
					out.keys = append(out.keys, key)
				}
				out.items[key] = c
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("%v: %w", err, errNotJSON)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v: %w", tok, errNotJSON)
}

// numberValue follows Python's json: integers stay exact, anything with a
// fraction or exponent is a float (overflowing to inf).
func numberValue(text string) (*pyValue, error) {
	if !strings.ContainsAny(text, ".eE") {
		i, ok := new(big.Int).SetString(text, 10)
		if !ok {
			return nil, fmt.Errorf("bad number %q: %w", text, errNotJSON)
		}
		return &pyValue{kind: pyInt, i: i}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("bad number %q: %w", text, errNotJSON)
	}
	return &pyValue{kind: pyFloat, f: f}, nil
}

// pyStrOf is Python's str(v): strings bare, everything else as repr.
func pyStrOf(v *pyValue) string {
	if v == nil {
		return "None"
	}
	if v.kind == pyStr {
		return v.s
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v).
func pyRepr(v *pyValue) string {
	var sb strings.Builder
	writeRepr(&sb, v)
	return sb.String()
}

func writeRepr(sb *strings.Builder, v *pyValue) {
	if v == nil {
		sb.WriteString("None")
		return
	}
	switch v.kind {
	case pyNone:
		sb.WriteString("None")
	case pyBool:
		if v.b {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case pyInt:
		sb.WriteString(v.i.String())
	case pyFloat:
		sb.WriteString(pyFloatRepr(v.f))
	case pyStr:
		sb.WriteString(pyStrRepr(v.s))
	case pyList:
		sb.WriteByte('[')
		for i, c := range v.list {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, c)
		}
		sb.WriteByte(']')
	case pyDict:
		sb.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(pyStrRepr(k))
			sb.WriteString(": ")
			writeRepr(sb, v.items[k])
		}
		sb.WriteByte('}')
	}
}

// pyFloatRepr spells a float as Python's repr does.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	a := math.Abs(f)
	if a != 0 && (a >= 1e16 || a < 1e-4) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyStrRepr quotes a string as Python's repr does.
func pyStrRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var sb strings.Builder
	sb.WriteByte(quote)
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
		switch {
		case r == rune(quote) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == utf8.RuneError && width == 1:
			fmt.Fprintf(&sb, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			sb.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			fmt.Fprintf(&sb, `\U%08x`, r)
		}
	}
	sb.WriteByte(quote)
	return sb.String()
}

// pyParseInt is Python's int(s) for a string: surrounding whitespace, a
// sign and single underscores between digits are allowed.
func pyParseInt(s string, base int) (*big.Int, bool) {
	t := strings.TrimSpace(s)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return nil, false
	}
	t = strings.ReplaceAll(t, "_", "")
	for _, r := range t {
		if r > unicode.MaxASCII {
			return nil, false
		}
	}
	i, ok := new(big.Int).SetString(t, base)
	if !ok {
		return nil, false
	}
	if neg {
		i.Neg(i)
	}
	return i, true
}
