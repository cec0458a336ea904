package openstack

import (
	"maps"
	"slices"
	"strings"
)

// maxTagLen is Neutron's tag length limit.
const maxTagLen = 255

// encodeTags turns ownership pairs into Neutron tags "key=value", sorted.
// Keys may not contain '='; neither keys nor values may contain ',' (the
// tag list filter separator).
func encodeTags(tags map[string]string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := tags[k]
		if k == "" || strings.ContainsAny(k, "=,") || strings.Contains(v, ",") {
			return nil, badInput("tag %q=%q: keys must be non-empty without '=' or ',', values without ','", k, v)
		}
		t := k + "=" + v
		if len(t) > maxTagLen {
			return nil, badInput("tag %q is longer than %d characters", t, maxTagLen)
		}
		out = append(out, t)
	}
	return out, nil
}

// decodeTags reads "key=value" tags; other tags (set by someone else) are
// skipped.
func decodeTags(tags []string) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		if k, v, ok := strings.Cut(t, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// contains reports whether have holds every pair of want.
func contains(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
