// Package handler runs commands against aggregates: load the streams a
// command needs, decide, and append every resulting event in one atomic,
// version-checked write. A version conflict means another command won the
// race; the command is then decided again against the new state, so the
// caller gets the answer the aggregate gives for the state it really ran on
// (typically Octavia's 409 when the load balancer went PENDING_UPDATE).
package handler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Store is the part of the event store the handler needs.
type Store interface {
	Load(ctx context.Context, aggregateType, aggregateID string, afterVersion int64) ([]*eventsv1.Envelope, error)
	Append(ctx context.Context, streams ...eventstore.Stream) error
}

// State is an aggregate's state: it evolves only by applying events.
type State interface {
	Apply(payload proto.Message) error
}

// Config configures a Handler.
type Config struct {
	Store    Store
	Registry *events.Registry
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// NewID returns new UUIDs; defaults to uuid.NewString.
	NewID func() string
	// MaxAttempts bounds how often a command is decided again after a
	// version conflict; defaults to 20.
	MaxAttempts int
	// CacheStreams is how many streams' events are kept in memory so a load
	// reads only newer events from the store; defaults to 10000, negative
	// turns the cache off.
	CacheStreams int
	// Inline, when set, gives the work to do inside the append transaction
	// with the envelopes to be stored (its Run sees their versions and
	// positions), for read models that must show a command's effect as soon
	// as the command returns (projections.Projector.InlineThen). Its error
	// aborts the command (and a serialization failure re-runs the whole
	// transaction), so it should swallow errors that need not. Needs a
	// Store with AppendWith.
	Inline func(envs []*eventsv1.Envelope) eventstore.Then
}

// ThenAppender is a Store that can run more work in the append transaction.
type ThenAppender interface {
	AppendWith(ctx context.Context, then eventstore.Then, streams ...eventstore.Stream) error
}

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	store       Store
	reg         *events.Registry
	now         func() time.Time
	newID       func() string
	maxAttempts int
	cache       *streamCache
	inline      func(envs []*eventsv1.Envelope) eventstore.Then
	then        ThenAppender
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("handler: Store is required"))
	}
	if cfg.Registry == nil {
		errs = append(errs, errors.New("handler: Registry is required"))
	}
	var then ThenAppender
	if cfg.Inline != nil {
		var ok bool
		if then, ok = cfg.Store.(ThenAppender); !ok {
			errs = append(errs, errors.New("handler: Inline needs a Store with AppendWith"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &Handler{store: cfg.Store, reg: cfg.Registry, now: cfg.Now, newID: cfg.NewID, maxAttempts: cfg.MaxAttempts,
		inline: cfg.Inline, then: then}
	if h.now == nil {
		h.now = time.Now
	}
	if h.newID == nil {
		h.newID = uuid.NewString
	}
	if h.maxAttempts <= 0 {
		h.maxAttempts = 20
	}
	switch {
	case cfg.CacheStreams == 0:
		h.cache = newStreamCache(10000)
	case cfg.CacheStreams > 0:
		h.cache = newStreamCache(cfg.CacheStreams)
	}
	return h, nil
}

// Env returns the decision environment for one attempt.
func (h *Handler) Env() aggregates.Env { return aggregates.Env{Now: h.now().UTC(), NewID: h.newID} }

// Change is the outcome of a decision on one aggregate.
type Change struct {
	AggregateType string
	AggregateID   string
	ProjectID     string
	// Version is the version the decision was made on (the loaded version).
	Version int64
	Events  []proto.Message
}

// Tx gives a decision access to aggregate state within one attempt.
type Tx struct {
	ctx    context.Context
	h      *Handler
	Env    aggregates.Env
	loaded map[string]int64
	// retry is set on the attempts after a version conflict.
	retry bool
}

// LoadNew is Load for an aggregate whose id the caller has just generated
// (a load balancer's create): on the first attempt it reads nothing, since
// such an aggregate has no events; should the id exist after all, the
// append's expected version 0 fails as a conflict and the next attempt
// loads the stream like Load.
func (tx *Tx) LoadNew(aggregateType, aggregateID string, st State) (int64, error) {
	if tx.retry {
		return tx.Load(aggregateType, aggregateID, st)
	}
	tx.loaded[aggregateType+"/"+aggregateID] = 0
	return 0, nil
}

// Load replays the stream of one aggregate into st and returns its version.
func (tx *Tx) Load(aggregateType, aggregateID string, st State) (int64, error) {
	key := aggregateType + "/" + aggregateID
	cached := tx.h.cache.get(key)
	var after int64
	if n := len(cached); n > 0 {
		after = cached[n-1].AggregateVersion
	}
	newer, err := tx.h.store.Load(tx.ctx, aggregateType, aggregateID, after)
	if err != nil {
		return 0, err
	}
	envs := cached
	if len(newer) > 0 {
		// Copy on write: cached slices are shared and never appended to.
		envs = make([]*eventsv1.Envelope, 0, len(cached)+len(newer))
		envs = append(append(envs, cached...), newer...)
		tx.h.cache.put(key, envs)
	}
	for _, env := range envs {
		p, err := tx.h.reg.Decode(env)
		if err != nil {
			return 0, err
		}
		if err := st.Apply(p); err != nil {
			return 0, fmt.Errorf("replay %s %s v%d (%s): %w", aggregateType, aggregateID, env.AggregateVersion, env.Type, err)
		}
	}
	var v int64
	if n := len(envs); n > 0 {
		v = envs[n-1].AggregateVersion
	}
	tx.loaded[key] = v
	return v, nil
}

// Decide is the body of a command: load what it needs through tx and return
// the changes to append. It may run several times and must have no side
// effects besides loading.
type Decide func(tx *Tx) ([]Change, error)

// Do runs decide and appends its changes atomically with their expected
// versions, deciding again on a version conflict. It returns the stored
// envelopes (with versions and positions).
func (h *Handler) Do(ctx context.Context, md events.Metadata, decide Decide) ([]*eventsv1.Envelope, error) {
	var lastConflict error
	for attempt := 1; attempt <= h.maxAttempts; attempt++ {
		tx := &Tx{ctx: ctx, h: h, Env: h.Env(), loaded: map[string]int64{}, retry: attempt > 1}
		changes, err := decide(tx)
		if err != nil {
			return nil, err
		}
		streams := make([]eventstore.Stream, 0, len(changes))
		var out []*eventsv1.Envelope
		for _, c := range changes {
			if len(c.Events) == 0 {
				continue
			}
			if v, ok := tx.loaded[c.AggregateType+"/"+c.AggregateID]; ok && v != c.Version {
				return nil, fmt.Errorf("change of %s %s made on version %d but version %d was loaded",
					c.AggregateType, c.AggregateID, c.Version, v)
			}
			st := eventstore.Stream{AggregateType: c.AggregateType, AggregateID: c.AggregateID, ProjectID: c.ProjectID,
				ExpectedVersion: c.Version}
			emd := md
			if emd.ProjectID == "" {
				emd.ProjectID = c.ProjectID
			}
			for _, p := range c.Events {
				env, err := h.reg.Envelope(h.newID(), c.AggregateID, p, emd, tx.Env.Now)
				if err != nil {
					return nil, err
				}
				if env.AggregateType != c.AggregateType {
					return nil, fmt.Errorf("event %s belongs to %s, not to %s", env.Type, env.AggregateType, c.AggregateType)
				}
				st.Events = append(st.Events, env)
				out = append(out, env)
			}
			streams = append(streams, st)
		}
		if len(streams) == 0 {
			return nil, nil
		}
		if h.inline != nil {
			err = h.then.AppendWith(ctx, h.inline(out), streams...)
		} else {
			err = h.store.Append(ctx, streams...)
		}
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return nil, err
		}
		lastConflict = err
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, &aggregates.Error{Kind: aggregates.KindConflict,
		Message: fmt.Sprintf("The object is being changed by another request; try again. (%v)", lastConflict)}
}

// Load replays one aggregate into st outside of any command (for reads that
// need the decided state, such as a project's quota usage).
func (h *Handler) Load(ctx context.Context, aggregateType, aggregateID string, st State) (int64, error) {
	tx := &Tx{ctx: ctx, h: h, Env: h.Env(), loaded: map[string]int64{}}
	return tx.Load(aggregateType, aggregateID, st)
}
