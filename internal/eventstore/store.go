// Package eventstore is the append-only event log in PostgreSQL or
// CockroachDB, with optimistic concurrency per aggregate and a transactional
// outbox that the relay publishes to Kafka.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ErrConcurrency is returned (wrapped in a *ConflictError) when a stream does
// not have the version the caller expected.
var ErrConcurrency = errors.New("event stream version conflict")

// ConflictError tells which stream was not at the expected version.
type ConflictError struct {
	AggregateType string
	AggregateID   string
	Expected      int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s: expected version %d: %v", e.AggregateType, e.AggregateID, e.Expected, ErrConcurrency)
}

func (e *ConflictError) Unwrap() error { return ErrConcurrency }

// AnyVersion as ExpectedVersion skips the concurrency check (the stream may
// or may not exist). Use it only for streams with a single writer.
const AnyVersion int64 = -1

// Stream is a batch of new events for one aggregate.
type Stream struct {
	AggregateType string
	AggregateID   string
	// ProjectID is recorded on the stream (and defaults the events' project).
	ProjectID string
	// ExpectedVersion is the version the stream must have now: 0 for a new
	// stream, AnyVersion to skip the check.
	ExpectedVersion int64
	// Events are envelopes built with events.Registry.Envelope. Append fills
	// in AggregateVersion and GlobalPosition.
	Events []*eventsv1.Envelope
}

// Store is the PostgreSQL/CockroachDB event store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// beforeCommit, when set (tests only), runs inside the append transaction
	// after the writes; an error aborts the transaction.
	beforeCommit func(ctx context.Context, tx pgx.Tx) error
	// appended runs after every committed Append.
	appended func()
}

// Option configures a Store.
type Option func(*Store)

// WithAppendHook runs fn after every committed Append, for example a
// relay's Notify in the same process so new events leave at once instead
// of at the relay's next poll.
func WithAppendHook(fn func()) Option { return func(s *Store) { s.appended = fn } }

// New returns a store on a migrated database.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Pool returns the database pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Append atomically appends the events of every stream, checking each
// stream's expected version, and writes one outbox row per event, in one
// SERIALIZABLE transaction that is re-run as a whole on serialization
// failures. On success the envelopes carry their versions and positions.
func (s *Store) Append(ctx context.Context, streams ...Stream) error {
	return s.AppendThen(ctx, nil, streams...)
}

// AppendThen is Append that also runs then inside the same transaction,
// after the events are written (versions and positions filled in), for
// writes that must commit together with the events, such as an inline
// projection (nil: nothing more). The whole transaction, then included, is
// re-run on serialization failures.
func (s *Store) AppendThen(ctx context.Context, then func(ctx context.Context, tx pgx.Tx) error, streams ...Stream) error {
	return s.AppendWith(ctx, Then{Run: then}, streams...)
}

// Then is work an append does in its own transaction after the events
// (AppendWith). Queue, when set, adds statements to the batch that carries
// the last stream's events, so they cost no round trip of their own; Read
// then gets their results, in order, and Run continues in the transaction.
// Statements queued there run after the events are written but before
// their positions are known; Run sees the envelopes complete.
type Then struct {
	Queue func(b *pgx.Batch)
	Read  func(br pgx.BatchResults) error
	Run   func(ctx context.Context, tx pgx.Tx) error
}

// Send sends what Queue queues as a batch of its own and gives Read the
// results: for a Then run without an append to carry its statements.
func (t Then) Send(ctx context.Context, tx pgx.Tx) error {
	if t.Queue == nil {
		return nil
	}
	b := &pgx.Batch{}
	t.Queue(b)
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	var err error
	if t.Read != nil {
		err = t.Read(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// AppendWith is AppendThen with work whose first statements travel with the
// events (Then.Queue).
func (s *Store) AppendWith(ctx context.Context, then Then, streams ...Stream) error {
	err := postgres.RetryTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.appendTx(ctx, tx, &then, streams); err != nil {
			return err
		}
		if then.Run == nil {
			return nil
		}
		return then.Run(ctx, tx)
	})
	if err == nil && s.appended != nil {
		s.appended()
	}
	return err
}

// AppendTx is Append inside the caller's transaction, for callers that
// change other tables atomically with the events. The caller must run the
// transaction with postgres.RetryTx.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, streams ...Stream) error {
	return s.appendTx(ctx, tx, nil, streams)
}

func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, then *Then, streams []Stream) error {
	last := -1
	for i := range streams {
		if len(streams[i].Events) > 0 {
			last = i
		}
	}
	for i := range streams {
		var extra *Then
		if i == last {
			extra = then
		}
		if err := appendStream(ctx, tx, &streams[i], extra); err != nil {
			return err
		}
	}
	if last < 0 && then != nil {
		// No events to carry the statements: they go on their own.
		if err := then.Send(ctx, tx); err != nil {
			return err
		}
	}
	if s.beforeCommit != nil {
		return s.beforeCommit(ctx, tx)
	}
	return nil
}

// appendStream writes one stream's events in two round trips at most: the
// stream's version check and the events with their outbox rows are sent
// together as one pipelined batch (a new stream, or an expected version);
// only AnyVersion needs the bumped version back before the events.
func appendStream(ctx context.Context, tx pgx.Tx, st *Stream, then *Then) error {
	if len(st.Events) == 0 {
		return nil
	}
	if st.AggregateType == "" || st.AggregateID == "" {
		return fmt.Errorf("append: stream needs an aggregate type and id")
	}
	n := int64(len(st.Events))
	var base int64
	var streamSQL string
	var streamArgs []any
	switch {
	case st.ExpectedVersion == AnyVersion:
		err := tx.QueryRow(ctx, `INSERT INTO streams (aggregate_type, aggregate_id, version, project_id)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = streams.version + excluded.version
			RETURNING version`, st.AggregateType, st.AggregateID, n, st.ProjectID).Scan(&base)
		if err != nil {
			return fmt.Errorf("append %s %s: bump stream: %w", st.AggregateType, st.AggregateID, err)
		}
		base -= n
	case st.ExpectedVersion == 0:
		streamSQL = `INSERT INTO streams (aggregate_type, aggregate_id, version, project_id)
			VALUES ($1, $2, $3, $4) ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING`
		streamArgs = []any{st.AggregateType, st.AggregateID, n, st.ProjectID}
	case st.ExpectedVersion > 0:
		streamSQL = `UPDATE streams SET version = $3
			WHERE aggregate_type = $1 AND aggregate_id = $2 AND version = $4`
		streamArgs = []any{st.AggregateType, st.AggregateID, st.ExpectedVersion + n, st.ExpectedVersion}
		base = st.ExpectedVersion
	default:
		return fmt.Errorf("append %s %s: invalid expected version %d", st.AggregateType, st.AggregateID, st.ExpectedVersion)
	}

	// The events and their outbox rows in one statement. The outbox rows
	// come from the positions the insert returns, not from a read of
	// events: under PostgreSQL's SERIALIZABLE such a read locks index pages
	// every concurrent append writes to, and two appends at once would then
	// abort each other.
	const cols = 11
	var q strings.Builder
	q.WriteString(`WITH e AS (INSERT INTO events (event_id, aggregate_type, aggregate_id, aggregate_version, event_type,
		project_id, causation_id, correlation_id, actor, occurred_at, payload) VALUES `)
	args := make([]any, 0, cols*len(st.Events)+2)
	for i, e := range st.Events {
		if e.GetType() == "" || e.GetEventId() == "" {
			return fmt.Errorf("append %s %s: event %d has no type or id", st.AggregateType, st.AggregateID, i)
		}
		e.AggregateType = st.AggregateType
		e.AggregateId = st.AggregateID
		e.AggregateVersion = base + int64(i) + 1
		if e.ProjectId == "" {
			e.ProjectId = st.ProjectID
		}
		if e.OccurredAt == nil {
			e.OccurredAt = timestamppb.Now()
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for c := 1; c <= cols; c++ {
			if c > 1 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", i*cols+c)
		}
		q.WriteString(")")
		payload := e.Payload
		if payload == nil {
			payload = []byte{} // an event with every field at its default encodes to nothing, not NULL
		}
		args = append(args, e.EventId, e.AggregateType, e.AggregateId, e.AggregateVersion, e.Type,
			e.ProjectId, e.CausationId, e.CorrelationId, e.Actor, e.OccurredAt.AsTime(), payload)
	}
	k := len(args)
	fmt.Fprintf(&q, ` RETURNING aggregate_version, global_position),
		o AS (INSERT INTO outbox (global_position, topic, message_key) SELECT global_position, $%d::text, $%d::text FROM e)
		SELECT aggregate_version, global_position FROM e`, k+1, k+2)
	args = append(args, events.Topic(st.AggregateType), st.AggregateID)

	b := &pgx.Batch{}
	if streamSQL != "" {
		b.Queue(streamSQL, streamArgs...)
	}
	b.Queue(q.String(), args...)
	if then != nil && then.Queue != nil {
		then.Queue(b)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if streamSQL != "" {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("append %s %s: check stream version: %w", st.AggregateType, st.AggregateID, err)
		}
		if tag.RowsAffected() != 1 {
			return &ConflictError{AggregateType: st.AggregateType, AggregateID: st.AggregateID, Expected: st.ExpectedVersion}
		}
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("append %s %s: insert events: %w", st.AggregateType, st.AggregateID, mapUnique(err, st))
	}
	got := 0
	for rows.Next() {
		var version, pos int64
		if err := rows.Scan(&version, &pos); err != nil {
			rows.Close()
			return fmt.Errorf("append %s %s: read positions: %w", st.AggregateType, st.AggregateID, err)
		}
		st.Events[version-base-1].GlobalPosition = pos
		got++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("append %s %s: insert events: %w", st.AggregateType, st.AggregateID, mapUnique(err, st))
	}
	if got != len(st.Events) {
		return fmt.Errorf("append %s %s: %d of %d events stored", st.AggregateType, st.AggregateID, got, len(st.Events))
	}
	if then != nil && then.Queue != nil && then.Read != nil {
		if err := then.Read(br); err != nil {
			return err
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("append %s %s: %w", st.AggregateType, st.AggregateID, mapUnique(err, st))
	}
	return nil
}

// mapUnique turns a unique violation on the stream version into a conflict
// (a concurrent writer got there first); other errors pass through.
func mapUnique(err error, st *Stream) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "events_stream_version" {
		return &ConflictError{AggregateType: st.AggregateType, AggregateID: st.AggregateID, Expected: st.ExpectedVersion}
	}
	return err
}

// envelopeColumns are the events columns scanEnvelope reads, in order.
const envelopeColumns = `e.global_position, e.event_id::text, e.aggregate_type, e.aggregate_id, e.aggregate_version,
	e.event_type, e.project_id, e.causation_id, e.correlation_id, e.actor, e.occurred_at, e.payload`

const selectEnvelope = `SELECT ` + envelopeColumns + ` FROM events e `

// scanEnvelope reads one row whose first columns are prefix (scanned into
// the given destinations) followed by envelopeColumns.
func scanEnvelope(row pgx.Row, prefix ...any) (*eventsv1.Envelope, error) {
	e := &eventsv1.Envelope{}
	var at time.Time
	dest := append(prefix, &e.GlobalPosition, &e.EventId, &e.AggregateType, &e.AggregateId, &e.AggregateVersion, &e.Type,
		&e.ProjectId, &e.CausationId, &e.CorrelationId, &e.Actor, &at, &e.Payload)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	e.OccurredAt = timestamppb.New(at)
	return e, nil
}

func (s *Store) query(ctx context.Context, what, sql string, args ...any) ([]*eventsv1.Envelope, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []*eventsv1.Envelope
	for rows.Next() {
		e, err := scanEnvelope(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// Load returns the events of one stream with a version above afterVersion,
// in version order.
func (s *Store) Load(ctx context.Context, aggregateType, aggregateID string, afterVersion int64) ([]*eventsv1.Envelope, error) {
	return s.query(ctx, "load "+aggregateType+" "+aggregateID,
		selectEnvelope+`WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.aggregate_version > $3 ORDER BY e.aggregate_version`,
		aggregateType, aggregateID, afterVersion)
}

// Version returns the current version of a stream (0 when it does not exist).
func (s *Store) Version(ctx context.Context, aggregateType, aggregateID string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM streams WHERE aggregate_type = $1 AND aggregate_id = $2`,
		aggregateType, aggregateID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream version %s %s: %w", aggregateType, aggregateID, err)
	}
	return v, nil
}

// ReadAll returns up to limit events of the whole log after a global
// position, in position order. until, when not zero, stops at events that
// occurred after it (for replay up to a point in time).
func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int, until time.Time) ([]*eventsv1.Envelope, error) {
	if until.IsZero() {
		return s.query(ctx, "read log", selectEnvelope+`WHERE e.global_position > $1 ORDER BY e.global_position LIMIT $2`,
			afterPosition, limit)
	}
	return s.query(ctx, "read log", selectEnvelope+`WHERE e.global_position > $1 AND e.occurred_at <= $3 ORDER BY e.global_position LIMIT $2`,
		afterPosition, limit, until)
}

// Outboxed is an event waiting in the outbox.
type Outboxed struct {
	Topic    string
	Key      string
	Envelope *eventsv1.Envelope
}

// PendingOutbox returns up to limit outbox entries in position order.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]Outboxed, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.topic, o.message_key, `+envelopeColumns+`
		FROM outbox o JOIN events e ON e.global_position = o.global_position
		ORDER BY o.global_position LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []Outboxed
	for rows.Next() {
		var o Outboxed
		if o.Envelope, err = scanEnvelope(rows, &o.Topic, &o.Key); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// AckOutbox deletes published outbox entries by global position.
func (s *Store) AckOutbox(ctx context.Context, positions []int64) error {
	if len(positions) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE global_position = ANY($1::bigint[])`, positions); err != nil {
		return fmt.Errorf("delete %d published outbox entries: %w", len(positions), err)
	}
	return nil
}

// OutboxLen returns how many events wait to be published.
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}
