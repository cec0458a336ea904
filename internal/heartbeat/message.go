package heartbeat

import (
	"fmt"
	"slices"
	"strings"
)

// Supported message versions. Version 1 messages carry no "ver" key.
const (
	Version1 = 1 // legacy: pools nested per listener, absolute counters
	Version2 = 2 // top-level pools keyed "<pool>:<listener>", absolute counters
	Version3 = 3 // like v2, but tx/rx/totconns/ereq are deltas (conns stays absolute)

	// MaxIDLength bounds every identifier (amphora, listener, pool, member)
	// accepted by Decode. Octavia uses 36-character UUIDs; the bound keeps a
	// hostile-but-authenticated sender from bloating the replay cache.
	MaxIDLength = 255
)

// Message is one amphora heartbeat as it appears on the wire (after the
// envelope has been verified and inflated). The same type covers versions 1–3;
// Version tells which layout applies.
type Message struct {
	// ID is the amphora UUID ("id").
	ID string
	// Seq is the per-agent sequence number ("seq"); it starts at 0 whenever
	// the amphora agent starts.
	Seq uint64
	// Version is 1, 2 or 3. Decode reports 1 for messages without "ver";
	// Encode treats 0 like 1 and omits the key.
	Version int
	// Listeners is keyed by listener id ("listeners").
	Listeners map[string]Listener
	// Pools is the top-level pool map of versions 2 and 3 ("pools"), keyed by
	// the haproxy backend name "<pool_id>:<listener_id>" or, for UDP/SCTP
	// (LVS) listeners, just "<pool_id>". Must be empty for version 1.
	Pools map[string]Pool
	// RecvTime is the receive time in seconds since the Unix epoch
	// ("recv_time"). Amphorae do not send it; the Receiver fills it in.
	RecvTime float64
}

// Listener is the per-listener entry of a heartbeat.
type Listener struct {
	// Status is the haproxy FRONTEND status: "OPEN" or "FULL" (other values
	// are passed through).
	Status string
	// Stats are the listener counters.
	Stats Stats
	// Pools is the nested pool map of version 1 messages, keyed by pool id.
	// Must be empty for versions 2 and 3.
	Pools map[string]Pool
}

// Stats are the counters reported per listener. For version 3 messages TX, RX,
// TotConns and EReq are deltas since the previous heartbeat; Conns is always
// the current (absolute) session count.
type Stats struct {
	TX       uint64 // "tx": bytes out (haproxy bout)
	RX       uint64 // "rx": bytes in (haproxy bin)
	Conns    uint64 // "conns": current sessions (haproxy scur)
	TotConns uint64 // "totconns": sessions (haproxy stot)
	EReq     uint64 // "ereq": request errors
}

// Pool is a pool (haproxy backend) entry.
type Pool struct {
	// Status is the BACKEND status, "UP" or "DOWN" (others passed through).
	Status string
	// Members maps member id to the haproxy server status, e.g. "UP", "DOWN",
	// "DRAIN", "MAINT", "no check", "UP 1/3".
	Members map[string]string
}

// Validate checks the invariants Decode enforces on every message it returns
// and Encode enforces before sending: non-empty bounded identifiers and
// statuses, a supported version, and pools only where the version puts them.
func (m *Message) Validate() error {
	if err := checkID("amphora id", m.ID); err != nil {
		return err
	}
	v := m.Version
	if v == 0 {
		v = Version1
	}
	if v < Version1 || v > Version3 {
		return fmt.Errorf("unsupported message version %d", m.Version)
	}
	for lid, l := range m.Listeners {
		if err := checkID("listener id", lid); err != nil {
			return err
		}
		if l.Status == "" {
			return fmt.Errorf("listener %q: empty status", lid)
		}
		if v >= Version2 && len(l.Pools) > 0 {
			return fmt.Errorf("listener %q: nested pools in a version %d message", lid, v)
		}
		if err := checkPools(l.Pools, false); err != nil {
			return fmt.Errorf("listener %q: %w", lid, err)
		}
	}
	if v == Version1 && len(m.Pools) > 0 {
		return fmt.Errorf("top-level pools in a version 1 message")
	}
	return checkPools(m.Pools, v >= Version2)
}

func checkPools(pools map[string]Pool, backendKeys bool) error {
	for key, p := range pools {
		if backendKeys {
			pid, lid, hasListener := strings.Cut(key, ":")
			if err := checkID("pool id", pid); err != nil {
				return err
			}
			if hasListener {
				if err := checkID("pool listener id", lid); err != nil {
					return err
				}
			}
		} else if err := checkID("pool id", key); err != nil {
			return err
		}
		if p.Status == "" {
			return fmt.Errorf("pool %q: empty status", key)
		}
		for mid, st := range p.Members {
			if err := checkID("member id", mid); err != nil {
				return fmt.Errorf("pool %q: %w", key, err)
			}
			if st == "" {
				return fmt.Errorf("pool %q member %q: empty status", key, mid)
			}
		}
	}
	return nil
}

func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty %s", what)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%s longer than %d bytes", what, MaxIDLength)
	}
	return nil
}

// View is the version-independent, normalised form of a heartbeat: what the
// health manager needs for liveness, operating status and statistics.
type View struct {
	AmphoraID string
	Seq       uint64
	Version   int
	// DeltaCounters is true when the listener byte/session/error counters are
	// deltas since the previous heartbeat (version 3) rather than absolute
	// values; ActiveConnections is always absolute.
	DeltaCounters bool
	// Listeners is keyed by listener id.
	Listeners map[string]ListenerHealth
	// Pools is keyed by pool id (the ":<listener_id>" backend suffix of
	// version 2/3 keys is stripped; version 1 nested pools are lifted up).
	Pools map[string]PoolHealth
}

// ListenerHealth is the status and counters of one listener.
type ListenerHealth struct {
	Status string
	Stats  Counters
}

// Counters are listener statistics named like Octavia's listener_statistics
// columns.
type Counters struct {
	BytesIn           uint64 // rx
	BytesOut          uint64 // tx
	ActiveConnections uint64 // conns (always absolute)
	TotalConnections  uint64 // totconns
	RequestErrors     uint64 // ereq
}

// PoolHealth is the status of one pool and its members.
type PoolHealth struct {
	Status string
	// Members maps member id to the reported haproxy status.
	Members map[string]string
	// Listeners lists (sorted) the listener ids whose haproxy backend reported
	// this pool; empty for UDP/SCTP pools reported without a listener suffix.
	Listeners []string
}

// View returns the normalised form of m. A pool reported through several
// listeners (one haproxy backend per listener) is merged deterministically:
// the most severe pool status wins, members are united and, for a member
// reported with different statuses, the most severe status wins.
func (m *Message) View() View {
	v := View{
		AmphoraID:     m.ID,
		Seq:           m.Seq,
		Version:       max(m.Version, Version1),
		DeltaCounters: m.Version >= Version3,
		Listeners:     make(map[string]ListenerHealth, len(m.Listeners)),
		Pools:         make(map[string]PoolHealth, len(m.Pools)),
	}
	for lid, l := range m.Listeners {
		v.Listeners[lid] = ListenerHealth{
			Status: l.Status,
			Stats: Counters{
				BytesIn:           l.Stats.RX,
				BytesOut:          l.Stats.TX,
				ActiveConnections: l.Stats.Conns,
				TotalConnections:  l.Stats.TotConns,
				RequestErrors:     l.Stats.EReq,
			},
		}
		if v.Version == Version1 {
			for pid, p := range l.Pools {
				mergePool(v.Pools, pid, lid, p)
			}
		}
	}
	if v.Version >= Version2 {
		for key, p := range m.Pools {
			pid, lid, _ := strings.Cut(key, ":")
			mergePool(v.Pools, pid, lid, p)
		}
	}
	for pid, p := range v.Pools {
		slices.Sort(p.Listeners)
		v.Pools[pid] = p
	}
	return v
}

func mergePool(dst map[string]PoolHealth, pid, lid string, p Pool) {
	cur, seen := dst[pid]
	if !seen {
		cur = PoolHealth{Status: p.Status, Members: make(map[string]string, len(p.Members))}
	} else if worse(poolSeverity, p.Status, cur.Status) {
		cur.Status = p.Status
	}
	if lid != "" && !slices.Contains(cur.Listeners, lid) {
		cur.Listeners = append(cur.Listeners, lid)
	}
	for mid, st := range p.Members {
		if old, ok := cur.Members[mid]; !ok || worse(memberSeverity, st, old) {
			cur.Members[mid] = st
		}
	}
	dst[pid] = cur
}

// worse reports whether status a should replace b: higher severity wins, ties
// are broken by byte order so the result does not depend on map iteration.
func worse(severity func(string) int, a, b string) bool {
	sa, sb := severity(a), severity(b)
	if sa != sb {
		return sa > sb
	}
	return a < b
}

func poolSeverity(s string) int {
	switch s {
	case "UP":
		return 0
	case "DOWN":
		return 2
	}
	return 1
}

func memberSeverity(s string) int {
	switch {
	case strings.HasPrefix(s, "DOWN"):
		return 5
	case s == "MAINT":
		return 4
	case s == "DRAIN":
		return 3
	case strings.HasPrefix(s, "UP"):
		return 0
	case s == "no check":
		return 1
	}
	return 2
}
