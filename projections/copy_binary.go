package projections

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Replays write their bulk rows with COPY FROM STDIN in PostgreSQL's binary
// format, encoded here rather than by pgx's CopyFrom: CopyFrom encodes
// every value through the type map behind an interface (looking up an
// encode plan per value, a fifth of a replay's Go time for the audit trail
// alone) and first prepares a statement to learn the columns' types, which
// the tables' definitions (internal/postgres/migrations) fix anyway. The
// statement is the one pgx sends (COPY t (cols) FROM STDIN BINARY), which
// both PostgreSQL and CockroachDB (since v20.2; in batches of 100 rows,
// each committed, when not inside a transaction) accept. Only the types the
// replay writes are encoded: int8, text, uuid, timestamptz, text[], jsonb
// and NULL; the
// caller writes exactly one value per column, of the column's type, in the
// column's binary form, or the server rejects the COPY. Values are passed
// on exactly as the batched INSERTs pass them (timestamps truncated to
// microseconds like pgx, JSON documents as text for the server to parse),
// so either way of writing stores the same rows.

// pgTextOID is the type OID of text, the element type of text[] arrays.
const pgTextOID = 25

// microsecFromUnixEpochToY2K is PostgreSQL's timestamp epoch (2000-01-01)
// in microseconds since the Unix epoch.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

// copyEncoder appends rows in the binary COPY format.
type copyEncoder struct {
	buf []byte
}

// header appends the format's signature, flags and header extension length.
func (e *copyEncoder) header() {
	e.buf = append(e.buf, "PGCOPY\n\377\r\n\000"...)
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0)
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0)
}

// trailer appends the end-of-data marker.
func (e *copyEncoder) trailer() { e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff) }

// row starts a row of n fields.
func (e *copyEncoder) row(n int) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n)) }

func (e *copyEncoder) int8(v int64) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 8)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v))
}

func (e *copyEncoder) text(s string) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *copyEncoder) uuid(b [16]byte) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 16)
	e.buf = append(e.buf, b[:]...)
}

// null appends a NULL.
func (e *copyEncoder) null() { e.buf = binary.BigEndian.AppendUint32(e.buf, 0xffffffff) }

// jsonb appends a JSON document (its text; the server parses it as it
// parses text cast to jsonb), or NULL for nil.
func (e *copyEncoder) jsonb(doc []byte) {
	if doc == nil {
		e.null()
		return
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(doc)+1))
	e.buf = append(e.buf, 1) // version of jsonb's binary form: the text
	e.buf = append(e.buf, doc...)
}

// timestamptzOrNull appends *t, or NULL for nil.
func (e *copyEncoder) timestamptzOrNull(t *time.Time) {
	if t == nil {
		e.null()
		return
	}
	e.timestamptz(*t)
}

// timestamptz appends t as microseconds since 2000-01-01 UTC, truncated
// like pgx does (so a COPY stores what an INSERT with the same time.Time
// stores).
func (e *copyEncoder) timestamptz(t time.Time) {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000
	e.int8(us - microsecFromUnixEpochToY2K)
}

// textArray appends a one-dimensional text[] of n elements (no NULLs),
// element i being at(i); an empty array has no dimensions, as pgx sends it.
func (e *copyEncoder) textArray(n int, at func(int) string) {
	start := len(e.buf)
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0) // length, set below
	if n == 0 {
		e.buf = binary.BigEndian.AppendUint32(e.buf, 0) // dimensions
	} else {
		e.buf = binary.BigEndian.AppendUint32(e.buf, 1)
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0) // no NULLs
	e.buf = binary.BigEndian.AppendUint32(e.buf, pgTextOID)
	if n > 0 {
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
		e.buf = binary.BigEndian.AppendUint32(e.buf, 1) // lower bound
	}
	for i := range n {
		e.text(at(i))
	}
	binary.BigEndian.PutUint32(e.buf[start:], uint32(len(e.buf)-start-4))
}

// copyReader streams n rows as binary COPY data, encoding them as the
// connection reads (about copyPiece bytes at a time), so that the server
// parses and stores the first rows while the next are encoded.
type copyReader struct {
	enc    copyEncoder
	off    int
	next   int
	n      int
	encode func(e *copyEncoder, i int)
	done   bool
}

const copyPiece = 32 << 10

func newCopyReader(n int, encode func(e *copyEncoder, i int)) *copyReader {
	r := &copyReader{n: n, encode: encode, enc: copyEncoder{buf: make([]byte, 0, 2*copyPiece)}}
	r.enc.header()
	r.fill()
	return r
}

// fill encodes the next rows (and the trailer after the last).
func (r *copyReader) fill() {
	for r.next < r.n && len(r.enc.buf) < copyPiece {
		r.encode(&r.enc, r.next)
		r.next++
	}
	if r.next == r.n && !r.done {
		r.enc.trailer()
		r.done = true
	}
}

func (r *copyReader) Read(p []byte) (int, error) {
	if r.off == len(r.enc.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.enc.buf, r.off = r.enc.buf[:0], 0
		r.fill()
	}
	n := copy(p, r.enc.buf[r.off:])
	r.off += n
	return n, nil
}

// copyStatement is the COPY statement for columns of a table.
func copyStatement(table string, columns []string) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return `COPY ` + pgx.Identifier{table}.Sanitize() + ` (` + strings.Join(quoted, ", ") + `) FROM STDIN BINARY`
}

// copyRows writes n rows into table on conn with COPY; encode appends row
// i (e.row(len(columns)), then one value per column).
func copyRows(ctx context.Context, conn *pgconn.PgConn, table string, columns []string, n int,
	encode func(e *copyEncoder, i int)) error {
	if n == 0 {
		return nil
	}
	tag, err := conn.CopyFrom(ctx, newCopyReader(n, encode), copyStatement(table, columns))
	if err != nil {
		return err
	}
	if got := tag.RowsAffected(); got != int64(n) {
		return fmt.Errorf("copy into %s: %d of %d rows stored", table, got, n)
	}
	return nil
}
