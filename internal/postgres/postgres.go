// Package postgres holds the SQL platform code shared by the event store,
// the projections and the sagas: connecting, schema migrations and the
// whole-transaction retry that is correct on both PostgreSQL and CockroachDB.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Connect opens a pool and checks that the server answers.
func Connect(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// Migrate applies every embedded migration that is not yet recorded in
// schema_migrations, each in its own transaction. Migrations are written to
// be idempotent (IF NOT EXISTS), so replicas migrating at once do no harm.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		short := strings.TrimPrefix(name, "migrations/")
		err = RetryTx(ctx, pool, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, short).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, short)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", short, err)
		}
	}
	return nil
}

// MaxTxAttempts bounds RetryTx.
const MaxTxAttempts = 30

// maxTxBackoff caps the pause between two attempts.
const maxTxBackoff = 200 * time.Millisecond

// ErrTooManyConflicts is wrapped by RetryTx's error when the transaction
// still conflicted after MaxTxAttempts attempts.
var ErrTooManyConflicts = errors.New("transaction still conflicting")

// IsRetryable reports whether err is a serialization failure (40001) or a
// deadlock (40P01): the whole transaction may be run again.
func IsRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// RetryTx runs fn in a SERIALIZABLE transaction and commits it. When the
// transaction fails with a serialization failure or a deadlock, at any
// statement or at COMMIT, the whole transaction is run again with a new
// snapshot, after a short jittered backoff, at most MaxTxAttempts times.
//
// This is deliberately not cockroach-go's crdb.ExecuteTx: on PostgreSQL that
// retries inside a savepoint (which keeps the old snapshot, so it can never
// succeed) and ignores the error of the final COMMIT (so a write lost to a
// serialization failure at COMMIT is reported as success). fn must have no
// side effects outside the transaction, since it may run more than once.
func RetryTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	_, err := RetryTxCount(ctx, pool, fn)
	return err
}

// RetryTxCount is RetryTx that also reports how many attempts were made.
func RetryTxCount(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if err == nil {
			return attempt, nil
		}
		if !IsRetryable(err) || attempt >= MaxTxAttempts {
			if IsRetryable(err) {
				return attempt, fmt.Errorf("%w after %d attempts: %w", ErrTooManyConflicts, attempt, err)
			}
			return attempt, err
		}
		// Exponential with full jitter, capped: under a conflict storm the
		// competing transactions spread out instead of colliding again.
		ceiling := min(time.Millisecond<<min(attempt, 8), maxTxBackoff)
		backoff := time.Millisecond + time.Duration(rand.Int64N(int64(ceiling)))
		select {
		case <-ctx.Done():
			return attempt, fmt.Errorf("retry transaction: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}
