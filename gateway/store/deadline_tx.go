package store

// The dialect side of the deadline store (deadline.go): one small
// transaction interface, dtx, implemented over database/sql for SQLite and
// over pgx for PostgreSQL, so that the deadline logic and its SQL are written
// once. The SQL uses ? placeholders (rewritten to $n for PostgreSQL) and
// passes times through dtx.t, which gives each dialect its stored form
// (SQLite: fixed-width UTC text; PostgreSQL: timestamptz). Times are scanned
// with scanTime, which accepts both.

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// dtx is one transaction (or, for single-statement reads, a connection
// pool) as the deadline code uses it.
type dtx interface {
	// exec runs a statement. PostgreSQL queues it and sends the queue in one
	// round trip before the next query or at the end of the transaction, so
	// its error may surface from a later call: any error aborts the
	// transaction anyway.
	exec(ctx context.Context, q string, args ...any) error
	query(ctx context.Context, q string, args ...any) (drows, error)
	// t and tp give a time in the dialect's stored form (normalised with
	// NormTime); tp maps nil to NULL.
	t(time.Time) any
	tp(*time.Time) any
}

type drows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// dwriter is implemented by both stores: fn runs in one write transaction
// holding the store's global write lock; dread runs fn on the read side,
// in one read-only snapshot when snapshot is set.
type dwriter interface {
	dwrite(ctx context.Context, op string, fn func(ctx context.Context, q dtx) error) error
	dread(ctx context.Context, op string, snapshot bool, fn func(ctx context.Context, q dtx) error) error
}

// ---- SQLite ----

type sqliteExecQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type sqliteDTx struct{ c sqliteExecQuerier }

func (q sqliteDTx) exec(ctx context.Context, s string, args ...any) error {
	_, err := q.c.ExecContext(ctx, s, args...)
	return err
}

func (q sqliteDTx) query(ctx context.Context, s string, args ...any) (drows, error) {
	rows, err := q.c.QueryContext(ctx, s, args...)
	if err != nil {
		return nil, err
	}
	return sqliteRows{rows}, nil
}

func (sqliteDTx) t(t time.Time) any   { return fmtSQLiteTime(t) }
func (sqliteDTx) tp(t *time.Time) any { return fmtSQLiteTimePtr(t) }

type sqliteRows struct{ *sql.Rows }

func (r sqliteRows) Close() { _ = r.Rows.Close() }

func (s *SQLite) dwrite(ctx context.Context, op string, fn func(ctx context.Context, q dtx) error) error {
	return s.write(ctx, op, func(tx *sql.Tx) error { return fn(ctx, sqliteDTx{tx}) })
}

func (s *SQLite) dread(ctx context.Context, op string, snapshot bool, fn func(ctx context.Context, q dtx) error) error {
	r, err := s.reader()
	if err != nil {
		return err
	}
	if !snapshot {
		return s.fail(ctx, fn(ctx, sqliteDTx{r}), op)
	}
	// A deferred transaction on a read connection: WAL gives its
	// statements one snapshot, taken at the first read.
	tx, err := r.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, err, op)
	}
	defer func() { _ = tx.Rollback() }()
	return s.fail(ctx, fn(ctx, sqliteDTx{tx}), op)
}

// ---- PostgreSQL ----

type pgExecQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// pgDTx queues execs in a batch, sent before the next query and by flush.
type pgDTx struct {
	c       pgExecQuerier
	pending *pgx.Batch
}

func (q *pgDTx) exec(_ context.Context, s string, args ...any) error {
	if q.pending == nil {
		q.pending = &pgx.Batch{}
	}
	q.pending.Queue(pgPlaceholders(s), args...)
	return nil
}

func (q *pgDTx) flush(ctx context.Context) error {
	if q.pending == nil || q.pending.Len() == 0 {
		return nil
	}
	b := q.pending
	q.pending = nil
	return q.c.SendBatch(ctx, b).Close()
}

func (q *pgDTx) query(ctx context.Context, s string, args ...any) (drows, error) {
	if err := q.flush(ctx); err != nil {
		return nil, err
	}
	rows, err := q.c.Query(ctx, pgPlaceholders(s), args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (*pgDTx) t(t time.Time) any   { return NormTime(t) }
func (*pgDTx) tp(t *time.Time) any { return normTimePtr(t) }

// pgPlaceholders rewrites the ? placeholders of the shared SQL (which holds
// no ? in literals) to $1, $2, ...
func pgPlaceholders(s string) string {
	if !strings.Contains(s, "?") {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (p *Postgres) dwrite(ctx context.Context, op string, fn func(ctx context.Context, q dtx) error) error {
	return p.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		q := &pgDTx{c: tx}
		if err := fn(ctx, q); err != nil {
			return err
		}
		return q.flush(ctx)
	})
}

func (p *Postgres) dread(ctx context.Context, op string, snapshot bool, fn func(ctx context.Context, q dtx) error) error {
	return p.read(ctx, op, func(ctx context.Context) error {
		if !snapshot {
			return fn(ctx, &pgDTx{c: p.pool})
		}
		tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		return fn(ctx, &pgDTx{c: tx})
	})
}

// ---- scanning ----

// scanTime scans a stored time of either dialect into *T (UTC).
type scanTime struct{ T *time.Time }

func (s scanTime) Scan(src any) error {
	t, err := parseStoredTime(src)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("stored time is NULL")
	}
	*s.T = *t
	return nil
}

func parseStoredTime(src any) (*time.Time, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case time.Time:
		u := v.UTC()
		return &u, nil
	case string:
		t, err := parseSQLiteTime(v)
		return &t, err
	case []byte:
		t, err := parseSQLiteTime(string(v))
		return &t, err
	}
	return nil, fmt.Errorf("stored time of type %T", src)
}
