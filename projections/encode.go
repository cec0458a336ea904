package projections

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/ostia/ostia/projections/views"
)

// appendJSON appends the JSON encoding of a rendered view value to buf. It
// produces exactly what encoding/json produces for the same value (sorted
// object keys, HTML-safe string escapes) but without reflection for the
// value types the views use; anything else falls back to encoding/json.
// Rendering the views (read-model rows; the audit trail's before/after
// objects when a trail is read) is much of a replay's CPU time, and
// encoding/json's reflection and per-map key sorting were most of that.
func appendJSON(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendString(buf, x)
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int32:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case uint32:
		return strconv.AppendUint(buf, uint64(x), 10), nil
	case views.Object:
		if x == nil {
			return append(buf, "null"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendString(buf, k); err != nil {
				return nil, err
			}
			buf = append(buf, ':')
			if buf, err = appendJSON(buf, x[k]); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	case []views.Object:
		if x == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		var err error
		for i, o := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendJSON(buf, o); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case []string:
		if x == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		var err error
		for i, s := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendString(buf, s); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case map[string]string:
		if x == nil {
			return append(buf, "null"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendString(buf, k); err != nil {
				return nil, err
			}
			buf = append(buf, ':')
			if buf, err = appendString(buf, x[k]); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode view value %T: %w", v, err)
	}
	return append(buf, b...), nil
}

// appendString appends a JSON string. Plain printable ASCII without the
// characters encoding/json escapes is copied; anything else goes through
// encoding/json so the escapes are identical.
func appendString(buf []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil {
				return nil, fmt.Errorf("encode string: %w", err)
			}
			return append(buf, b...), nil
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"'), nil
}
