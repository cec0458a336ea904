package healthmanager

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	healthv1 "github.com/ostia/ostia/proto/ostia/health/v1"
)

// healthRow is one heartbeat to record in amphora_health.
type healthRow struct {
	amphoraID, lbID string
	seq             uint64
	receivedAt      time.Time
	live            bool // refreshes last_seen (and may release a claim)
}

// upsertHealth records heartbeats (at most one per amphora) under the
// sequence rule (see the package documentation) and returns the amphorae
// whose heartbeat was applied. A heartbeat that counts for liveness and
// arrives after the failover claim releases it.
func upsertHealth(ctx context.Context, tx pgx.Tx, rows []healthRow, interval time.Duration, now time.Time) (map[string]bool, error) {
	n := len(rows)
	ids, lbs := make([]string, n), make([]string, n)
	seqs, recv, live := make([]int64, n), make([]time.Time, n), make([]bool, n)
	for i, r := range rows {
		ids[i], lbs[i], seqs[i], recv[i], live[i] = r.amphoraID, r.lbID, int64(r.seq), r.receivedAt, r.live
	}
	res, err := tx.Query(ctx, `
INSERT INTO amphora_health AS h (amphora_id, loadbalancer_id, last_seq, last_received_at, last_seen, updated_at)
SELECT u.id, u.lb, u.seq, u.recv, CASE WHEN u.live THEN u.recv END, $6
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::bool[]) AS u(id, lb, seq, recv, live)
ON CONFLICT (amphora_id) DO UPDATE SET
  loadbalancer_id  = excluded.loadbalancer_id,
  last_seq         = excluded.last_seq,
  last_received_at = excluded.last_received_at,
  last_seen  = CASE WHEN excluded.last_seen IS NOT NULL AND (h.last_seen IS NULL OR excluded.last_seen > h.last_seen)
                    THEN excluded.last_seen ELSE h.last_seen END,
  busy       = CASE WHEN h.busy AND excluded.last_seen IS NOT NULL AND excluded.last_seen > h.claimed_at
                    THEN false ELSE h.busy END,
  claimed_by = CASE WHEN h.busy AND excluded.last_seen IS NOT NULL AND excluded.last_seen > h.claimed_at
                    THEN '' ELSE h.claimed_by END,
  claimed_at = CASE WHEN h.busy AND excluded.last_seen IS NOT NULL AND excluded.last_seen > h.claimed_at
                    THEN NULL ELSE h.claimed_at END,
  updated_at = excluded.updated_at
WHERE excluded.last_seq > h.last_seq
   OR (excluded.last_received_at > h.last_received_at
       AND excluded.last_seq * $7::bigint
           <= CAST(EXTRACT(EPOCH FROM (excluded.last_received_at - h.last_received_at)) * 1000 AS BIGINT) + $7::bigint)
RETURNING amphora_id`, ids, lbs, seqs, recv, live, now, interval.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("record amphora health: %w", err)
	}
	applied, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record amphora health: %w", err)
	}
	out := make(map[string]bool, len(applied))
	for _, id := range applied {
		out[id] = true
	}
	return out, nil
}

// forgetAmphorae deletes health rows (amphora deleted or without a load
// balancer), which also drops any failover claim.
func forgetAmphorae(ctx context.Context, db execer, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, `DELETE FROM amphora_health WHERE amphora_id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("delete amphora health rows: %w", err)
	}
	return nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

type statKey struct{ listener, amphora string }

type rawCounters struct {
	present bool      // a listener_stats row exists
	raw     *[4]int64 // last absolute counters (in, out, totconns, ereq); nil: no baseline
}

// statUpdate is the change one heartbeat makes to one listener_stats row.
type statUpdate struct {
	key        statKey
	lbID       string
	delta      [4]int64 // bytes_in, bytes_out, total_connections, request_errors
	active     int64
	raw        *[4]int64
	receivedAt time.Time
}

func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// statDeltas turns a heartbeat's counters into increments. Version 3
// counters are deltas already. For versions 1 and 2 (absolute totals) the
// increment is current-previous per counter; a counter lower than before
// means haproxy restarted (counters reset), so the whole current value is
// new. The first heartbeat of a listener on an amphora counts fully; the
// first absolute heartbeat after delta heartbeats (agent downgrade) only
// sets the baseline.
func statDeltas(hb *healthv1.AmphoraHeartbeat, lbID string, prev map[statKey]rawCounters) []statUpdate {
	out := make([]statUpdate, 0, len(hb.GetListeners()))
	for lid, l := range hb.GetListeners() {
		c := l.GetCounters()
		cur := [4]int64{clamp(c.GetBytesIn()), clamp(c.GetBytesOut()), clamp(c.GetTotalConnections()), clamp(c.GetRequestErrors())}
		u := statUpdate{key: statKey{lid, hb.GetAmphoraId()}, lbID: lbID, active: clamp(c.GetActiveConnections()),
			receivedAt: receivedAt(hb)}
		if hb.GetDeltaCounters() {
			u.delta = cur
		} else {
			p := prev[u.key]
			raw := cur
			u.raw = &raw
			switch {
			case !p.present:
				u.delta = cur
			case p.raw == nil:
				// baseline only
			default:
				for i := range cur {
					if cur[i] >= p.raw[i] {
						u.delta[i] = cur[i] - p.raw[i]
					} else {
						u.delta[i] = cur[i]
					}
				}
			}
		}
		prev[u.key] = rawCounters{present: true, raw: u.raw}
		out = append(out, u)
	}
	return out
}

// loadRawCounters reads the baselines of the given rows.
func loadRawCounters(ctx context.Context, tx pgx.Tx, keys []statKey) (map[statKey]rawCounters, error) {
	out := make(map[statKey]rawCounters, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ls, as := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		ls[i], as[i] = k.listener, k.amphora
	}
	rows, err := tx.Query(ctx, `
SELECT s.listener_id, s.amphora_id, s.raw_bytes_in, s.raw_bytes_out, s.raw_total_connections, s.raw_request_errors
  FROM listener_stats s
  JOIN unnest($1::text[], $2::text[]) AS k(l, a) ON s.listener_id = k.l AND s.amphora_id = k.a`, ls, as)
	if err != nil {
		return nil, fmt.Errorf("read listener counters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k statKey
		var in, outb, tot, ereq *int64
		if err := rows.Scan(&k.listener, &k.amphora, &in, &outb, &tot, &ereq); err != nil {
			return nil, fmt.Errorf("read listener counters: %w", err)
		}
		rc := rawCounters{present: true}
		if in != nil && outb != nil && tot != nil && ereq != nil {
			rc.raw = &[4]int64{*in, *outb, *tot, *ereq}
		}
		out[k] = rc
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read listener counters: %w", err)
	}
	return out, nil
}

// writeStats adds the increments to listener_stats and to the history
// bucket of their receive time. updates holds at most one row per key.
func writeStats(ctx context.Context, tx pgx.Tx, updates []statUpdate, bucket time.Duration) error {
	if len(updates) == 0 {
		return nil
	}
	n := len(updates)
	ls, as, lbs := make([]string, n), make([]string, n), make([]string, n)
	var d [4][]int64
	var raw [4][]*int64
	for i := range 4 {
		d[i] = make([]int64, n)
		raw[i] = make([]*int64, n)
	}
	active, at, buckets := make([]int64, n), make([]time.Time, n), make([]time.Time, n)
	for j, u := range updates {
		ls[j], as[j], lbs[j] = u.key.listener, u.key.amphora, u.lbID
		for i := range 4 {
			d[i][j] = u.delta[i]
			if u.raw != nil {
				v := u.raw[i]
				raw[i][j] = &v
			}
		}
		active[j], at[j], buckets[j] = u.active, u.receivedAt, u.receivedAt.Truncate(bucket).UTC()
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO listener_stats AS s (listener_id, amphora_id, loadbalancer_id, bytes_in, bytes_out, total_connections,
       request_errors, active_connections, raw_bytes_in, raw_bytes_out, raw_total_connections, raw_request_errors, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
       $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::timestamptz[])
ON CONFLICT (listener_id, amphora_id) DO UPDATE SET
  loadbalancer_id       = excluded.loadbalancer_id,
  bytes_in              = s.bytes_in + excluded.bytes_in,
  bytes_out             = s.bytes_out + excluded.bytes_out,
  total_connections     = s.total_connections + excluded.total_connections,
  request_errors        = s.request_errors + excluded.request_errors,
  active_connections    = excluded.active_connections,
  raw_bytes_in          = excluded.raw_bytes_in,
  raw_bytes_out         = excluded.raw_bytes_out,
  raw_total_connections = excluded.raw_total_connections,
  raw_request_errors    = excluded.raw_request_errors,
  updated_at            = excluded.updated_at`,
		ls, as, lbs, d[0], d[1], d[2], d[3], active, raw[0], raw[1], raw[2], raw[3], at); err != nil {
		return fmt.Errorf("write listener statistics: %w", err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO listener_stats_history AS h (listener_id, amphora_id, bucket_start, loadbalancer_id, bytes_in, bytes_out,
       total_connections, request_errors, max_active_connections, samples)
SELECT u.l, u.a, u.b, u.lb, u.i, u.o, u.t, u.e, u.c, 1
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
       $8::bigint[], $9::bigint[]) AS u(l, a, b, lb, i, o, t, e, c)
ON CONFLICT (listener_id, amphora_id, bucket_start) DO UPDATE SET
  bytes_in               = h.bytes_in + excluded.bytes_in,
  bytes_out              = h.bytes_out + excluded.bytes_out,
  total_connections      = h.total_connections + excluded.total_connections,
  request_errors         = h.request_errors + excluded.request_errors,
  max_active_connections = GREATEST(h.max_active_connections, excluded.max_active_connections),
  samples                = h.samples + 1`,
		ls, as, buckets, lbs, d[0], d[1], d[2], d[3], active); err != nil {
		return fmt.Errorf("write listener statistics history: %w", err)
	}
	return nil
}

// ListenerStats are a listener's counters summed over its amphorae (the
// Octavia API's GET /listeners/{id}/stats).
type ListenerStats struct {
	BytesIn, BytesOut, ActiveConnections, TotalConnections, RequestErrors int64
}

// ReadListenerStats sums a listener's counters over every amphora that
// served it, so totals survive failovers.
func ReadListenerStats(ctx context.Context, pool *pgxpool.Pool, listenerID string) (ListenerStats, error) {
	var s ListenerStats
	err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(bytes_in),0), COALESCE(SUM(bytes_out),0), COALESCE(SUM(active_connections),0),
	       COALESCE(SUM(total_connections),0), COALESCE(SUM(request_errors),0)
	  FROM listener_stats WHERE listener_id = $1`, listenerID).
		Scan(&s.BytesIn, &s.BytesOut, &s.ActiveConnections, &s.TotalConnections, &s.RequestErrors)
	if err != nil {
		return s, fmt.Errorf("read statistics of listener %s: %w", listenerID, err)
	}
	return s, nil
}

// AmphoraHealth is an amphora_health row.
type AmphoraHealth struct {
	AmphoraID, LoadBalancerID string
	LastSeq                   int64
	LastReceivedAt            time.Time
	LastSeen                  *time.Time
	Busy                      bool
	ClaimedBy                 string
	FailoverStopped           bool
}

// ErrNoHealthRow is returned by ReadAmphoraHealth for an amphora without a row.
var ErrNoHealthRow = errors.New("healthmanager: no amphora_health row")

// ReadAmphoraHealth returns the health row of an amphora.
func ReadAmphoraHealth(ctx context.Context, pool *pgxpool.Pool, amphoraID string) (AmphoraHealth, error) {
	var h AmphoraHealth
	err := pool.QueryRow(ctx, `SELECT amphora_id, loadbalancer_id, last_seq, last_received_at, last_seen, busy, claimed_by, failover_stopped
	  FROM amphora_health WHERE amphora_id = $1`, amphoraID).
		Scan(&h.AmphoraID, &h.LoadBalancerID, &h.LastSeq, &h.LastReceivedAt, &h.LastSeen, &h.Busy, &h.ClaimedBy, &h.FailoverStopped)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("%w for amphora %s", ErrNoHealthRow, amphoraID)
	}
	if err != nil {
		return h, fmt.Errorf("read health of amphora %s: %w", amphoraID, err)
	}
	return h, nil
}
