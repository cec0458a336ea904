// Package listing parses the query string of Octavia's v2 collection GETs
// (api-v2.md 0.5: limit, marker, page_reverse, sort, sort_key/sort_dir,
// fields, tags filters and attribute filters) with Octavia's 400 fault
// strings, and builds the <resource>_links pagination links.
//
// Octavia quirks kept on purpose: page_reverse is on only for the exact
// string "True"; a limit below 1 or "infinite" means no limit and prints as
// "limit=None" in links; links repeat only limit, sort and sort_key (never
// sort_dir or filters), with the raw values the client sent.
package listing

import (
	"fmt"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/ostia/ostia/aggregates"
)

// SortKey is one sort criterion.
type SortKey struct {
	Key  string
	Desc bool
}

// Tags are the tag filters; each list is the union of the repeated and
// comma-separated values.
type Tags struct {
	All    []string // tags: has all of them
	Any    []string // tags-any: has at least one
	NotAll []string // not-tags: excluded when it has all of them
	NotAny []string // not-tags-any: excluded when it has any of them
}

// Empty reports whether no tag filter is set.
func (t Tags) Empty() bool {
	return len(t.All) == 0 && len(t.Any) == 0 && len(t.NotAll) == 0 && len(t.NotAny) == 0
}

// Query is a parsed list request.
type Query struct {
	// Filters are equality filters by API attribute name; several values
	// for one attribute mean any of them.
	Filters map[string][]string
	Tags    Tags
	// Sort is the requested order followed by the created_at and id
	// tie-breakers (ascending) when the resource has them and they were
	// not requested.
	Sort []SortKey
	// Limit is the page size; 0 means no limit.
	Limit       int
	Marker      string
	PageReverse bool
	// Fields are the attributes to return (empty: all).
	Fields []string

	// The raw sort and sort_key values, repeated in links.
	rawSort, rawSortKey string
}

// Options describe the collection and the deployment's [api_settings].
type Options struct {
	// Attributes are the API attribute names that may be filtered and
	// sorted on. Empty allows any.
	Attributes []string
	// Tagged says whether the resource has tags (tags filters are ignored
	// otherwise, as Octavia does).
	Tagged bool
	// MaxLimit is pagination_max_limit; 0 means "infinite".
	MaxLimit int
	// DisableFiltering, DisableSorting, DisablePagination turn off
	// allow_filtering, allow_sorting and allow_pagination.
	DisableFiltering, DisableSorting, DisablePagination bool
}

// DefaultMaxLimit is Octavia's default pagination_max_limit.
const DefaultMaxLimit = 1000

// auxiliary are the parameters that are not filters.
func auxiliary(k string) bool {
	switch k {
	case "limit", "marker", "sort", "sort_key", "sort_dir", "fields", "page_reverse":
		return true
	}
	return false
}

func invalid(format string, args ...any) error {
	return aggregates.Errorf(aggregates.KindInvalid, format, args...)
}

// ErrInvalidFilter is Octavia's InvalidFilterArgument.
func ErrInvalidFilter() error {
	return invalid("One or more arguments are either duplicate or invalid")
}

// ErrInvalidMarker is Octavia's InvalidMarker, for a marker that names no
// object of the collection (the caller checks that).
func ErrInvalidMarker(marker string) error {
	return invalid("Supplied pagination marker '%s' is not valid.", marker)
}

// single returns the one value of a scalar parameter. Octavia crashes (500)
// on a repeated scalar parameter; Ostia refuses it as a duplicate argument.
func single(values url.Values, key string) (string, bool, error) {
	v, ok := values[key]
	if !ok || len(v) == 0 {
		return "", false, nil
	}
	if len(v) > 1 {
		return "", false, ErrInvalidFilter()
	}
	return v[0], true, nil
}

// Parse validates a list query string. Errors are *aggregates.Error of
// KindInvalid with Octavia's messages, checked in Octavia's order: limit,
// sort, filters, sort keys.
func Parse(values url.Values, opts Options) (*Query, error) {
	q := &Query{Filters: map[string][]string{}}
	allowed := func(k string) bool { return len(opts.Attributes) == 0 || slices.Contains(opts.Attributes, k) }

	for _, k := range []string{"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir"} {
		if _, _, err := single(values, k); err != nil {
			return nil, err
		}
	}
	limitRaw, hasLimit, _ := single(values, "limit")
	limit, err := parseLimit(limitRaw, hasLimit, opts.MaxLimit)
	if err != nil {
		return nil, err
	}
	sortKeys, err := parseSort(values)
	if err != nil {
		return nil, err
	}
	if !opts.DisablePagination {
		q.Limit = limit
		q.Marker, _, _ = single(values, "marker")
		pr, _, _ := single(values, "page_reverse")
		q.PageReverse = pr == "True"
	}
	q.rawSort, _, _ = single(values, "sort")
	q.rawSortKey, _, _ = single(values, "sort_key")
	q.Fields = slices.Clone(values["fields"])

	if !opts.DisableFiltering {
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if auxiliary(k) {
				continue
			}
			switch k {
			case "tags", "tags-any", "not-tags", "not-tags-any":
				if !opts.Tagged {
					continue
				}
				list := splitTags(values[k])
				switch k {
				case "tags":
					q.Tags.All = list
				case "tags-any":
					q.Tags.Any = list
				case "not-tags":
					q.Tags.NotAll = list
				default:
					q.Tags.NotAny = list
				}
				continue
			}
			if !allowed(k) {
				return nil, ErrInvalidFilter()
			}
			q.Filters[k] = slices.Clone(values[k])
		}
	}
	if !opts.DisableSorting {
		for _, sk := range sortKeys {
			if !allowed(sk.Key) {
				return nil, invalid("Supplied sort key '%s' is not valid.", sk.Key)
			}
		}
		for _, tb := range []string{"created_at", "id"} {
			if slices.ContainsFunc(sortKeys, func(s SortKey) bool { return s.Key == tb }) {
				continue
			}
			if len(opts.Attributes) == 0 || slices.Contains(opts.Attributes, tb) {
				sortKeys = append(sortKeys, SortKey{Key: tb})
			}
		}
		q.Sort = sortKeys
	}
	return q, nil
}

func splitTags(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

// parseLimit is PaginationHelper._parse_limit with Python's int().
func parseLimit(raw string, given bool, maxLimit int) (int, error) {
	if !given {
		return maxLimit, nil
	}
	if raw == "infinite" {
		return 0, nil
	}
	n, ok := pyInt(raw)
	if !ok {
		return 0, invalid("Supplied pagination limit '%s' is not valid.", raw)
	}
	if n.Sign() <= 0 {
		return 0, nil
	}
	if maxLimit > 0 && n.Cmp(big.NewInt(int64(maxLimit))) > 0 {
		return maxLimit, nil
	}
	if !n.IsInt64() || n.Int64() > math.MaxInt32 {
		return math.MaxInt32, nil
	}
	return int(n.Int64()), nil
}

// pyInt is Python's int(s).
func pyInt(s string) (*big.Int, bool) {
	t := strings.TrimFunc(s, unicode.IsSpace)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg, t = t[0] == '-', t[1:]
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return nil, false
	}
	t = strings.ReplaceAll(t, "_", "")
	for _, r := range t {
		if r < '0' || r > '9' {
			return nil, false
		}
	}
	n, ok := new(big.Int).SetString(t, 10)
	if ok && neg {
		n.Neg(n)
	}
	return n, ok
}

// parseDir is _validate_sort_dir.
func parseDir(d string) (bool, error) {
	switch strings.ToLower(d) {
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, invalid("Supplied sort direction '%s' is not valid.", strings.ToLower(d))
}

// parseSort is _parse_sort_keys: sort=k1:dir,k2 or sort_key/sort_dir.
func parseSort(values url.Values) ([]SortKey, error) {
	var out []SortKey
	if sort, _, _ := single(values, "sort"); sort != "" {
		for _, part := range strings.Split(sort, ",") {
			comps := strings.Split(part, ":")
			switch len(comps) {
			case 1:
				out = append(out, SortKey{Key: comps[0]})
			case 2:
				desc, err := parseDir(comps[1])
				if err != nil {
					return nil, err
				}
				out = append(out, SortKey{Key: comps[0], Desc: desc})
			default:
				quoted := make([]string, len(comps))
				for i, c := range comps {
					quoted[i] = "'" + strings.ReplaceAll(c, "'", `\'`) + "'"
				}
				return nil, invalid("Supplied sort key '[%s]' is not valid.", strings.Join(quoted, ", "))
			}
		}
		return out, nil
	}
	keys, _, _ := single(values, "sort_key")
	if keys == "" {
		return nil, nil
	}
	dirsRaw, _, _ := single(values, "sort_dir")
	var dirs []string
	if dirsRaw != "" {
		dirs = strings.Split(dirsRaw, ",")
	}
	for i, k := range strings.Split(keys, ",") {
		d := "asc"
		if i < len(dirs) {
			d = dirs[i]
		}
		desc, err := parseDir(d)
		if err != nil {
			return nil, err
		}
		out = append(out, SortKey{Key: k, Desc: desc})
	}
	return out, nil
}

// Link is one pagination link.
type Link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// Links builds Octavia's <resource>_links for a page. pathURL is the
// collection URL without query (for example
// "http://127.0.0.1:9876/v2/lbaas/loadbalancers"); ids are the ids of the
// page's objects in order. The result is never nil (an empty page has []).
func (q *Query) Links(pathURL string, ids []string) []Link {
	links := []Link{}
	if len(ids) == 0 {
		return links
	}
	limit := "None"
	if q.Limit > 0 {
		limit = fmt.Sprint(q.Limit)
	}
	base := []string{"limit=" + limit}
	if q.rawSort != "" {
		base = append(base, "sort="+q.rawSort)
	}
	if q.rawSortKey != "" {
		base = append(base, "sort_key="+q.rawSortKey)
	}
	if q.Marker != "" {
		prev := append(slices.Clone(base), "marker="+ids[0], "page_reverse=True")
		links = append(links, Link{Rel: "previous", Href: pathURL + "?" + strings.Join(prev, "&")})
	}
	if q.Limit == 0 || len(ids) >= q.Limit {
		next := append(slices.Clone(base), "marker="+ids[len(ids)-1])
		links = append(links, Link{Rel: "next", Href: pathURL + "?" + strings.Join(next, "&")})
	}
	return links
}
