package healthmanager

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// EventSource reads an aggregate's events after a version;
// *eventstore.Store implements it.
type EventSource interface {
	Load(ctx context.Context, aggregateType, aggregateID string, afterVersion int64) ([]*eventsv1.Envelope, error)
}

// cached is one aggregate's state kept up to date incrementally: before
// use, the stream's head version is read from the streams table (one query
// per batch for all ids) and only newer events are loaded and applied.
type cached[S any] struct {
	mu      sync.Mutex
	state   S
	version int64
}

// stateCache caches load-balancer and amphora states for the consumer.
// Entries are never evicted (a few KiB per load balancer); a process
// serving millions of load balancers would need an LRU here.
type stateCache struct {
	pool *pgxpool.Pool
	src  EventSource
	reg  *events.Registry

	mu   sync.Mutex
	lbs  map[string]*cached[*lb.State]
	amps map[string]*cached[*amphora.State]
}

func newStateCache(pool *pgxpool.Pool, src EventSource, reg *events.Registry) *stateCache {
	return &stateCache{pool: pool, src: src, reg: reg,
		lbs: map[string]*cached[*lb.State]{}, amps: map[string]*cached[*amphora.State]{}}
}

// headVersions returns the stream versions of ids (absent: no stream).
func (c *stateCache) headVersions(ctx context.Context, aggType string, ids []string) (map[string]int64, error) {
	rows, err := c.pool.Query(ctx, `SELECT aggregate_id, version FROM streams WHERE aggregate_type = $1 AND aggregate_id = ANY($2)`,
		aggType, ids)
	if err != nil {
		return nil, fmt.Errorf("read %s stream versions: %w", aggType, err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(ids))
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("read %s stream versions: %w", aggType, err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s stream versions: %w", aggType, err)
	}
	return out, nil
}

// catchUp brings one entry to version head.
func catchUp[S interface {
	Apply(payload proto.Message) error
}](ctx context.Context, c *stateCache, aggType, id string, e *cached[S], head int64, fresh func() S) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version == head {
		return nil
	}
	if e.version > head { // cannot happen with an append-only store; start over
		e.state, e.version = fresh(), 0
	}
	envs, err := c.src.Load(ctx, aggType, id, e.version)
	if err != nil {
		return fmt.Errorf("load %s %s after v%d: %w", aggType, id, e.version, err)
	}
	for _, env := range envs {
		if env.AggregateVersion <= e.version {
			continue
		}
		p, err := c.reg.Decode(env)
		if err != nil {
			return fmt.Errorf("decode %s %s v%d: %w", aggType, id, env.AggregateVersion, err)
		}
		if err := e.state.Apply(p); err != nil {
			// leave a consistent entry behind: rebuild next time
			e.state, e.version = fresh(), 0
			return fmt.Errorf("replay %s %s v%d: %w", aggType, id, env.AggregateVersion, err)
		}
		e.version = env.AggregateVersion
	}
	return nil
}

func entry[S any](c *stateCache, m map[string]*cached[S], id string, fresh func() S) *cached[S] {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := m[id]
	if !ok {
		e = &cached[S]{state: fresh()}
		m[id] = e
	}
	return e
}

// amphorae refreshes and returns the cache entries of ids.
func (c *stateCache) amphorae(ctx context.Context, ids []string) (map[string]*cached[*amphora.State], error) {
	heads, err := c.headVersions(ctx, events.AggregateAmphora, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*cached[*amphora.State], len(ids))
	for _, id := range ids {
		fresh := func() *amphora.State { return amphora.New(id) }
		e := entry(c, c.amps, id, fresh)
		if err := catchUp(ctx, c, events.AggregateAmphora, id, e, heads[id], fresh); err != nil {
			return nil, err
		}
		out[id] = e
	}
	return out, nil
}

// loadBalancers refreshes and returns the cache entries of ids.
func (c *stateCache) loadBalancers(ctx context.Context, ids []string) (map[string]*cached[*lb.State], error) {
	heads, err := c.headVersions(ctx, events.AggregateLoadBalancer, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*cached[*lb.State], len(ids))
	for _, id := range ids {
		fresh := func() *lb.State { return lb.New(id) }
		e := entry(c, c.lbs, id, fresh)
		if err := catchUp(ctx, c, events.AggregateLoadBalancer, id, e, heads[id], fresh); err != nil {
			return nil, err
		}
		out[id] = e
	}
	return out, nil
}

// offer replaces a cached load balancer with a newer state returned by a
// command.
func (c *stateCache) offer(id string, st *lb.State) {
	if st == nil {
		return
	}
	e := entry(c, c.lbs, id, func() *lb.State { return lb.New(id) })
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.Version > e.version {
		e.state, e.version = st, st.Version
	}
}

// entry returns the (possibly empty) cache entry of a load balancer.
func (c *stateCache) entry(id string) *cached[*lb.State] {
	return entry(c, c.lbs, id, func() *lb.State { return lb.New(id) })
}
