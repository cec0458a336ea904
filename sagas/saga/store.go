package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	Pool     *pgxpool.Pool
	Registry *events.Registry
	// Now defaults to time.Now; NewID to uuid.NewString.
	Now   func() time.Time
	NewID func() string
}

// Store keeps saga progress as events in the event store (aggregate type
// "saga", stream id = saga id) and maintains sagas_index in the same
// transactions. It is safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	es    *eventstore.Store
	reg   *events.Registry
	now   func() time.Time
	newID func() string
}

// NewStore returns a Store.
func NewStore(cfg StoreConfig) (*Store, error) {
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("saga store: Pool is required"))
	}
	if cfg.Registry == nil {
		errs = append(errs, errors.New("saga store: Registry is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Store{pool: cfg.Pool, es: eventstore.New(cfg.Pool), reg: cfg.Registry, now: cfg.Now, newID: cfg.NewID}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = uuid.NewString
	}
	return s, nil
}

// StartRequest starts one saga.
type StartRequest struct {
	// SagaID must be deterministic for the trigger (so a redelivered
	// trigger does not start a second saga).
	SagaID         string
	Type           string
	SubjectID      string
	Input          any
	TriggerEventID string
	Metadata       events.Metadata
}

// Start records SagaStarted in its own transaction. It reports false when
// the saga already exists.
func (s *Store) Start(ctx context.Context, req StartRequest) (bool, error) {
	var started bool
	err := postgres.RetryTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		started, err = s.StartTx(ctx, tx, req)
		return err
	})
	return started, err
}

// StartTx records SagaStarted and the index row inside the caller's
// transaction (a messaging.Consumer handler). Nothing runs here: a Runner
// picks the saga up after the commit. It reports false when the saga
// already exists.
func (s *Store) StartTx(ctx context.Context, tx pgx.Tx, req StartRequest) (bool, error) {
	if req.SagaID == "" || req.Type == "" {
		return false, errors.New("start saga: id and type are required")
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sagas_index WHERE saga_id = $1)`, req.SagaID).Scan(&exists); err != nil {
		return false, fmt.Errorf("start saga %s: %w", req.SagaID, err)
	}
	if exists {
		return false, nil
	}
	input, err := json.Marshal(req.Input)
	if err != nil {
		return false, fmt.Errorf("start saga %s: encode input: %w", req.SagaID, err)
	}
	md := req.Metadata
	if md.Actor == "" {
		md.Actor = "ostia:saga." + req.Type
	}
	env, err := s.reg.Envelope(s.newID(), req.SagaID, &eventsv1.SagaStarted{SagaType: req.Type, SubjectId: req.SubjectID,
		Input: input, TriggerEventId: req.TriggerEventID}, md, s.now())
	if err != nil {
		return false, err
	}
	if err := s.es.AppendTx(ctx, tx, eventstore.Stream{AggregateType: events.AggregateSaga, AggregateID: req.SagaID,
		ProjectID: md.ProjectID, ExpectedVersion: 0, Events: []*eventsv1.Envelope{env}}); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return false, nil
		}
		return false, fmt.Errorf("start saga %s: %w", req.SagaID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sagas_index (saga_id, saga_type, subject_id, status, version, correlation_id)
		VALUES ($1, $2, $3, $4, 1, $5)`, req.SagaID, req.Type, req.SubjectID, StatusRunning, md.CorrelationID); err != nil {
		return false, fmt.Errorf("start saga %s: index: %w", req.SagaID, err)
	}
	return true, nil
}

// load rebuilds a saga's history from its stream.
func (s *Store) load(ctx context.Context, id string) (*history, error) {
	envs, err := s.es.Load(ctx, events.AggregateSaga, id, 0)
	if err != nil {
		return nil, fmt.Errorf("load saga %s: %w", id, err)
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("load saga %s: no such saga", id)
	}
	h := newHistory(id)
	for _, env := range envs {
		p, err := s.reg.Decode(env)
		if err != nil {
			return nil, err
		}
		if err := h.apply(env, p); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// append appends payloads at the history's version, fenced by the lease:
// the index row is updated only while owner still holds it, in the same
// transaction. On success the events are applied to h.
func (s *Store) append(ctx context.Context, h *history, owner string, payloads ...proto.Message) error {
	md := events.Metadata{ProjectID: h.projectID, CausationID: h.id, CorrelationID: h.correlationID,
		Actor: "ostia:saga." + h.sagaType}
	now := s.now()
	envs := make([]*eventsv1.Envelope, 0, len(payloads))
	for _, p := range payloads {
		env, err := s.reg.Envelope(s.newID(), h.id, p, md, now)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	// Work out the index row after the events without touching h yet.
	after := *h
	after.steps = make(map[string]*stepRecord, len(h.steps))
	for k, v := range h.steps {
		c := *v
		after.steps[k] = &c
	}
	after.order = append([]string(nil), h.order...)
	after.completedOrder = append([]string(nil), h.completedOrder...)
	for i, p := range payloads {
		envs[i].AggregateVersion = h.version + int64(i) + 1
		if err := after.apply(envs[i], p); err != nil {
			return err
		}
	}
	err := postgres.RetryTx(ctx, s.pool, func(tx pgx.Tx) error {
		// Fresh copies per attempt: AppendTx fills in versions.
		batch := make([]*eventsv1.Envelope, len(envs))
		for i, e := range envs {
			batch[i] = proto.CloneOf(e)
		}
		tag, err := tx.Exec(ctx, `UPDATE sagas_index SET version = $3, status = $4, needs_cleanup = $5,
			updated_at = now() WHERE saga_id = $1 AND lease_owner = $2`,
			h.id, owner, after.version, after.status(), len(after.orphans()) > 0)
		if err != nil {
			return fmt.Errorf("update sagas_index: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return ErrLeaseLost
		}
		return s.es.AppendTx(ctx, tx, eventstore.Stream{AggregateType: events.AggregateSaga, AggregateID: h.id,
			ProjectID: h.projectID, ExpectedVersion: h.version, Events: batch})
	})
	if err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return fmt.Errorf("append to saga %s: %w (%w)", h.id, ErrLeaseLost, err)
		}
		return fmt.Errorf("append to saga %s: %w", h.id, err)
	}
	*h = after
	return nil
}

type claimed struct {
	id           string
	sagaType     string
	compAttempts int
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// claim leases up to limit due sagas to owner. cleanup selects failed
// sagas with orphaned resources instead of unfinished ones.
func (s *Store) claim(ctx context.Context, owner string, ttl time.Duration, limit int, cleanup bool) ([]claimed, error) {
	if limit <= 0 {
		return nil, nil
	}
	where := `status IN ('running', 'compensating')`
	if cleanup {
		where = `status = 'failed' AND needs_cleanup`
	}
	rows, err := s.pool.Query(ctx, `UPDATE sagas_index SET lease_owner = $1,
			lease_until = now() + ($2::float8 * interval '1 millisecond')
		WHERE saga_id IN (SELECT saga_id FROM sagas_index WHERE `+where+`
			AND next_run_at <= now() AND lease_until < now()
			ORDER BY next_run_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING saga_id, saga_type, comp_attempts`, owner, ms(ttl), limit)
	if err != nil {
		return nil, fmt.Errorf("claim sagas: %w", err)
	}
	defer rows.Close()
	var out []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.id, &c.sagaType, &c.compAttempts); err != nil {
			return nil, fmt.Errorf("claim sagas: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim sagas: %w", err)
	}
	return out, nil
}

// renew extends owner's leases on ids.
func (s *Store) renew(ctx context.Context, owner string, ids []string, ttl time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE sagas_index SET lease_until = now() + ($3::float8 * interval '1 millisecond')
		WHERE lease_owner = $1 AND saga_id = ANY($2::text[])`, owner, ids, ms(ttl))
	if err != nil {
		return fmt.Errorf("renew saga leases: %w", err)
	}
	return nil
}

// release gives a saga's lease up and makes it due again after delay.
func (s *Store) release(ctx context.Context, owner, id string, delay time.Duration, compAttempts int) error {
	_, err := s.pool.Exec(ctx, `UPDATE sagas_index SET lease_owner = '', lease_until = '1970-01-01T00:00:00Z',
		next_run_at = now() + ($3::float8 * interval '1 millisecond'), comp_attempts = $4
		WHERE saga_id = $1 AND lease_owner = $2`, id, owner, ms(delay), compAttempts)
	if err != nil {
		return fmt.Errorf("release saga %s: %w", id, err)
	}
	return nil
}

// SagaStatus is a saga's row in sagas_index.
type SagaStatus struct {
	ID           string
	Type         string
	SubjectID    string
	Status       string
	Version      int64
	NeedsCleanup bool
}

// Status returns the index row of one saga.
func (s *Store) Status(ctx context.Context, id string) (SagaStatus, error) {
	st := SagaStatus{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT saga_type, subject_id, status, version, needs_cleanup FROM sagas_index
		WHERE saga_id = $1`, id).Scan(&st.Type, &st.SubjectID, &st.Status, &st.Version, &st.NeedsCleanup)
	if err != nil {
		return st, fmt.Errorf("saga %s status: %w", id, err)
	}
	return st, nil
}

// List returns the index rows of the sagas of a subject, oldest first.
func (s *Store) List(ctx context.Context, subjectID string) ([]SagaStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT saga_id, saga_type, subject_id, status, version, needs_cleanup FROM sagas_index
		WHERE subject_id = $1 ORDER BY created_at, saga_id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("list sagas of %s: %w", subjectID, err)
	}
	defer rows.Close()
	var out []SagaStatus
	for rows.Next() {
		var st SagaStatus
		if err := rows.Scan(&st.ID, &st.Type, &st.SubjectID, &st.Status, &st.Version, &st.NeedsCleanup); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Counts returns how many sagas are in each status.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM sagas_index GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count sagas: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
