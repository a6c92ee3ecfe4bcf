package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/rehabgw/rehabgw/gateway/errs"
	"github.com/rehabgw/rehabgw/gateway/store/migrations"
)

// Postgres is the production Store: a pgx connection pool on one schema of
// a PostgreSQL database (the first schema of the connection's search_path,
// e.g. "...?search_path=rehabgw"). Several processes may share it.
//
// Ordering: every writing transaction begins by taking one transaction-level
// advisory lock, pg_advisory_xact_lock(0x52475720, hash(schema)), so writes
// are serial across all processes on the schema; under the lock delivery
// Seq is max(seq)+1 and the audit entry is chained to the last one, in READ
// COMMITTED, where each statement sees every transaction committed before
// the lock was granted. PostgreSQL releases the lock only after the commit
// is visible, so commit order is Seq order and the chain is one line. The
// key includes the schema so that gateways or test runs in other schemas of
// the same database do not wait for one another.
//
// Availability: the pool reconnects by itself when the server comes back.
// A call that fails because the server is unreachable returns Unavailable;
// a call that fails on a pooled connection the server has dropped (a
// restart) discards the pool's connections and is tried once more, unless
// the failure came during COMMIT. The pool sets
// idle_in_transaction_session_timeout (30 s, unless the DSN sets it) so that
// a client that vanishes mid-transaction cannot hold the write lock for
// long.
type Postgres struct {
	pool    *pgxpool.Pool
	lockObj int32 // second half of the advisory lock keys: hash of the schema
	schema  string
	closed  atomic.Bool
}

var _ Store = (*Postgres)(nil)

// Advisory lock classes (first int4 of the two-key form).
const (
	pgWriteLockClass   int32 = 0x52475720 // "RGW ": every write transaction
	pgMigrateLockClass int32 = 0x5247574d // "RGWM": migrations at open
)

// OpenPostgres connects to the database named by dsn (a URL or key=value
// string as libpq takes; search_path selects the schema, which must exist)
// and migrates it to the current schema. Migrations of processes opening
// the same schema at once are serialised by a session advisory lock.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: keep it out of Msg.
		return nil, errs.Wrap(errs.Invalid, CodeInvalid, err, "store: invalid PostgreSQL connection string")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "30s"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errInternal(err, "open")
	}
	p := &Postgres{pool: pool}
	var schema *string
	if err := p.read(ctx, "open", func(ctx context.Context) error {
		return pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema)
	}); err != nil {
		pool.Close()
		return nil, err
	}
	if schema == nil {
		pool.Close()
		return nil, errInvalid("store: no schema of the search_path exists")
	}
	p.schema = *schema
	h := fnv.New32a()
	h.Write([]byte(p.schema))
	p.lockObj = int32(h.Sum32())

	db := stdlib.OpenDBFromPool(pool)
	err = migrate(ctx, goose.DialectPostgres, db, migrations.Postgres(),
		pgMigrationLock{class: pgMigrateLockClass, obj: p.lockObj})
	_ = db.Close() // does not close the pool
	if err != nil {
		pool.Close()
		return nil, p.fail(ctx, err, "migrate")
	}
	return p, nil
}

// Schema is the schema the store's tables are in.
func (p *Postgres) Schema() string { return p.schema }

// pgConnLost reports whether err means the connection or the server is gone
// (or going), as opposed to an error the server reported about a statement.
func pgConnLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: admin or crash
		// shutdown, cannot connect now; 25P03: idle in transaction timeout.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "25P03"
	}
	var ne net.Error
	var errno syscall.Errno
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) || errors.As(err, &errno)
}

// pgUnavailable reports whether err makes the store unavailable for now.
func pgUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgConnLost(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 53: insufficient resources (too many connections, disk
		// full); 40001, 40P01: serialization failure, deadlock; 55P03: lock
		// not available; 57014: query canceled (statement_timeout).
		return strings.HasPrefix(pe.Code, "53") || pe.Code == "40001" || pe.Code == "40P01" ||
			pe.Code == "55P03" || pe.Code == "57014"
	}
	return false
}

// retryable reports whether a failed call is worth one more try: the
// connection it used was dropped (a server restart), not a failure to
// connect, and the caller is still waiting.
func (p *Postgres) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || p.closed.Load() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ce *pgconn.ConnectError
	return !errors.As(err, &ce) && pgConnLost(err)
}

// fail turns a driver error into the store's error taxonomy.
func (p *Postgres) fail(ctx context.Context, err error, op string) error {
	switch {
	case err == nil:
		return nil
	case isStoreError(err):
		return err
	case ctx.Err() != nil:
		return errUnavailable(ctx.Err())
	case p.closed.Load():
		return errUnavailable(errors.Join(errClosed, err))
	case pgUnavailable(err):
		return errUnavailable(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return errConflict(err, "store: %s: a key is taken already", op)
	}
	return errInternal(err, op)
}

// read runs fn, which must be safe to repeat, once more when the connection
// it used turns out to have been dropped.
func (p *Postgres) read(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		if p.closed.Load() {
			return errUnavailable(errClosed)
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if attempt == 0 && p.retryable(ctx, err) {
			p.pool.Reset() // drop every pooled connection: they are likely all stale
			continue
		}
		return p.fail(ctx, err, op)
	}
}

// write runs fn in one READ COMMITTED transaction that first takes the
// store's advisory write lock. fn must be safe to repeat: when the
// connection turns out to have been dropped before COMMIT was sent, the
// transaction did not happen and is run once more.
func (p *Postgres) write(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	// BEGIN and the lock in one round trip (simple protocol, constants only).
	begin := fmt.Sprintf("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(%d, %d)",
		pgWriteLockClass, p.lockObj)
	for attempt := 0; ; attempt++ {
		if p.closed.Load() {
			return errUnavailable(errClosed)
		}
		committing := false
		err := func() error {
			tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit
			if err := fn(ctx, tx); err != nil {
				return err
			}
			committing = true
			return tx.Commit(ctx)
		}()
		if err == nil {
			return nil
		}
		if attempt == 0 && !committing && p.retryable(ctx, err) {
			p.pool.Reset()
			continue
		}
		return p.fail(ctx, err, op)
	}
}

type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CommitBundle implements Store.
func (p *Postgres) CommitBundle(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry) (*Bundle, bool, error) {
	return p.commitBundle(ctx, b, deliveries, audit, nil)
}

// commitBundle is CommitBundle; when the bundle is created and then is not
// nil, then runs in the same transaction after the bundle's rows are
// written, and its error undoes them (CommitBundleWithCase).
func (p *Postgres) commitBundle(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry, then func(ctx context.Context, tx pgx.Tx) error) (*Bundle, bool, error) {
	nb, nds, audit, err := prepareCommit(b, deliveries, audit)
	if err != nil {
		return nil, false, err
	}
	var stored *Bundle
	var created bool
	err = p.write(ctx, "commit bundle", func(ctx context.Context, tx pgx.Tx) error {
		stored, created = nil, false
		var (
			sha       *string
			lastSeq   int64
			lastAudit int64
			lastHash  string
		)
		q := &pgx.Batch{}
		q.Queue(`SELECT (SELECT manifest_sha256 FROM bundles WHERE id = $1),
			(SELECT COALESCE(MAX(seq), 0) FROM deliveries)`, nb.ID).QueryRow(func(r pgx.Row) error {
			return r.Scan(&sha, &lastSeq)
		})
		q.Queue(`SELECT COALESCE(MAX(seq), 0), COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '')
			FROM audit`).QueryRow(func(r pgx.Row) error {
			return r.Scan(&lastAudit, &lastHash)
		})
		if err := tx.SendBatch(ctx, q).Close(); err != nil {
			return err
		}
		if sha != nil {
			if *sha != nb.ManifestSHA256 {
				return errConflict(nil, "store: bundle %s exists with a different manifest", nb.ID)
			}
			var err error
			stored, err = pgBundle(ctx, tx, nb.ID)
			return err
		}
		w := &pgx.Batch{}
		w.Queue(`INSERT INTO bundles (id, case_id, purpose, sender_org, sender_identity, cpr,
			meeting_date, in_reply_to, received, manifest_sha256, manifest, acceptance)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			nb.ID, nb.CaseID, nb.Purpose, nb.SenderOrg, nb.SenderIdentity, nb.CPR, nb.MeetingDate,
			nb.InReplyTo, nb.Received, nb.ManifestSHA256, nb.Manifest, nb.Acceptance)
		for i, pt := range nb.Parts {
			w.Queue(`INSERT INTO parts (bundle_id, ordinal, part_id, kind, media_type, size, sha256, blob_key)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				nb.ID, i, pt.ID, pt.Kind, pt.MediaType, pt.Size, pt.SHA256, pt.BlobKey)
		}
		for i := range nds {
			lastSeq++
			nds[i].Seq = lastSeq
			d := nds[i]
			w.Queue(`INSERT INTO deliveries (seq, bundle_id, recipient, function, created)
				VALUES ($1, $2, $3, $4, $5)`, d.Seq, d.BundleID, d.Recipient, d.Function, d.Created)
		}
		e := audit
		chainAudit(&e, lastAudit, lastHash)
		queueAudit(w, &e)
		if err := tx.SendBatch(ctx, w).Close(); err != nil {
			return err
		}
		if then != nil {
			if err := then(ctx, tx); err != nil {
				return err
			}
		}
		stored, created = nb, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

func queueAudit(b *pgx.Batch, e *AuditEntry) {
	b.Queue(`INSERT INTO audit (seq, at, actor, actor_org, action, bundle_id, cpr, outcome, detail,
		prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.Seq, e.At, e.Actor, e.ActorOrg, e.Action, e.BundleID, e.CPR, e.Outcome, e.Detail,
		e.PrevHash, e.Hash)
}

// lastAudit reads the head of the chain; under the write lock only.
func pgLastAudit(ctx context.Context, tx pgx.Tx) (int64, string, error) {
	var seq int64
	var hash string
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	return seq, hash, err
}

// Bundle implements Store.
func (p *Postgres) Bundle(ctx context.Context, id string) (*Bundle, error) {
	if !validText(id) {
		return nil, notStored(ctx, errNotFound("store: no such bundle"))
	}
	var b *Bundle
	err := p.read(ctx, "read bundle", func(ctx context.Context) error {
		var err error
		b, err = pgBundle(ctx, p.pool, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func pgBundle(ctx context.Context, q pgQuerier, id string) (*Bundle, error) {
	var b Bundle
	err := q.QueryRow(ctx, `SELECT id, case_id, purpose, sender_org, sender_identity, cpr,
		meeting_date, in_reply_to, received, manifest_sha256, manifest, acceptance
		FROM bundles WHERE id = $1`, id).Scan(&b.ID, &b.CaseID, &b.Purpose, &b.SenderOrg,
		&b.SenderIdentity, &b.CPR, &b.MeetingDate, &b.InReplyTo, &b.Received, &b.ManifestSHA256,
		&b.Manifest, &b.Acceptance)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("store: no bundle %s", id)
	}
	if err != nil {
		return nil, err
	}
	b.MeetingDate = utcPtr(b.MeetingDate)
	b.Received = b.Received.UTC()
	b.Manifest, b.Acceptance = nonNil(b.Manifest), nonNil(b.Acceptance)
	rows, err := q.Query(ctx, `SELECT part_id, kind, media_type, size, sha256, blob_key
		FROM parts WHERE bundle_id = $1 ORDER BY ordinal`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var pt Part
		if err := rows.Scan(&pt.ID, &pt.Kind, &pt.MediaType, &pt.Size, &pt.SHA256, &pt.BlobKey); err != nil {
			return nil, err
		}
		b.Parts = append(b.Parts, pt)
	}
	return &b, rows.Err()
}

const pgDeliveryCols = `d.seq, d.bundle_id, d.recipient, d.function, d.created, d.acked_at,
	d.acked_by, b.case_id, b.purpose, b.sender_org, b.received
	FROM deliveries d JOIN bundles b ON b.id = d.bundle_id`

func (p *Postgres) deliveries(ctx context.Context, op, query string, args ...any) ([]Delivery, error) {
	var out []Delivery
	err := p.read(ctx, op, func(ctx context.Context) error {
		out = []Delivery{}
		rows, err := p.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d Delivery
			if err := rows.Scan(&d.Seq, &d.BundleID, &d.Recipient, &d.Function, &d.Created, &d.AckedAt,
				&d.AckedBy, &d.CaseID, &d.Purpose, &d.From, &d.Received); err != nil {
				return err
			}
			d.Created, d.AckedAt, d.Received = d.Created.UTC(), utcPtr(d.AckedAt), d.Received.UTC()
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Deliveries implements Store.
func (p *Postgres) Deliveries(ctx context.Context, bundleID string) ([]Delivery, error) {
	if !validText(bundleID) {
		return []Delivery{}, notStored(ctx, nil)
	}
	return p.deliveries(ctx, "list deliveries",
		`SELECT `+pgDeliveryCols+` WHERE d.bundle_id = $1 ORDER BY d.seq`, bundleID)
}

// Inbox implements Store.
func (p *Postgres) Inbox(ctx context.Context, recipient string, after int64, limit int) ([]Delivery, error) {
	if !validText(recipient) {
		return []Delivery{}, notStored(ctx, nil)
	}
	return p.deliveries(ctx, "list inbox",
		`SELECT `+pgDeliveryCols+` WHERE d.recipient = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3`,
		recipient, after, limitOf(limit))
}

// LastSeq implements Store.
func (p *Postgres) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := p.read(ctx, "last seq", func(ctx context.Context) error {
		return p.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM deliveries`).Scan(&seq)
	})
	return seq, err
}

// Ack implements Store.
func (p *Postgres) Ack(ctx context.Context, bundleID, recipient, by string, at time.Time, audit AuditEntry) error {
	if !validText(bundleID, recipient) {
		return notStored(ctx, errNotFound("store: no such delivery"))
	}
	by = cleanText(by)
	audit = prepareAudit(audit)
	at = NormTime(at)
	return p.write(ctx, "ack", func(ctx context.Context, tx pgx.Tx) error {
		var (
			found    bool
			cpr      string
			lastSeq  int64
			lastHash string
		)
		q := &pgx.Batch{}
		q.Queue(`UPDATE deliveries SET acked_at = $3, acked_by = $4
			WHERE bundle_id = $1 AND recipient = $2 AND acked_at IS NULL`, bundleID, recipient, at, by)
		q.Queue(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE bundle_id = $1 AND recipient = $2),
			COALESCE((SELECT cpr FROM bundles WHERE id = $1), '')`, bundleID, recipient).
			QueryRow(func(r pgx.Row) error { return r.Scan(&found, &cpr) })
		q.Queue(`SELECT COALESCE(MAX(seq), 0), COALESCE((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '')
			FROM audit`).QueryRow(func(r pgx.Row) error { return r.Scan(&lastSeq, &lastHash) })
		if err := tx.SendBatch(ctx, q).Close(); err != nil {
			return err
		}
		if !found {
			return errNotFound("store: no delivery of bundle %s to %s", bundleID, recipient)
		}
		e := audit
		if e.BundleID == "" {
			e.BundleID = bundleID
		}
		if e.CPR == "" {
			e.CPR = cpr
		}
		chainAudit(&e, lastSeq, lastHash)
		w := &pgx.Batch{}
		queueAudit(w, &e)
		return tx.SendBatch(ctx, w).Close()
	})
}

// Audit implements Store.
func (p *Postgres) Audit(ctx context.Context, e AuditEntry) error {
	e = prepareAudit(e)
	return p.write(ctx, "audit", func(ctx context.Context, tx pgx.Tx) error {
		seq, hash, err := pgLastAudit(ctx, tx)
		if err != nil {
			return err
		}
		ce := e
		chainAudit(&ce, seq, hash)
		w := &pgx.Batch{}
		queueAudit(w, &ce)
		return tx.SendBatch(ctx, w).Close()
	})
}

const pgAuditCols = `seq, at, actor, actor_org, action, bundle_id, cpr, outcome, detail, prev_hash, hash FROM audit`

func (p *Postgres) audit(ctx context.Context, op, query string, args ...any) ([]AuditEntry, error) {
	var out []AuditEntry
	err := p.read(ctx, op, func(ctx context.Context) error {
		out = []AuditEntry{}
		rows, err := p.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e AuditEntry
			if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.ActorOrg, &e.Action, &e.BundleID, &e.CPR,
				&e.Outcome, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
				return err
			}
			e.At = e.At.UTC()
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditEntries implements Store.
func (p *Postgres) AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error) {
	return p.audit(ctx, "list audit",
		`SELECT `+pgAuditCols+` WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limitOf(limit))
}

// AuditByCPR implements Store.
func (p *Postgres) AuditByCPR(ctx context.Context, cpr string) ([]AuditEntry, error) {
	if cpr == "" || !validText(cpr) {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		return []AuditEntry{}, nil
	}
	return p.audit(ctx, "list audit by CPR", `SELECT `+pgAuditCols+` WHERE cpr = $1 ORDER BY seq`, cpr)
}

// BlobReferenced implements Store.
func (p *Postgres) BlobReferenced(ctx context.Context, key string) (bool, error) {
	if !validText(key) {
		return false, notStored(ctx, nil)
	}
	var ok bool
	err := p.read(ctx, "blob referenced", func(ctx context.Context) error {
		return p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM parts WHERE blob_key = $1)`, key).Scan(&ok)
	})
	return ok, err
}

// Ping implements Store.
func (p *Postgres) Ping(ctx context.Context) error {
	return p.read(ctx, "ping", func(ctx context.Context) error { return p.pool.Ping(ctx) })
}

// Close implements Store: it waits for calls in flight, closes the pool,
// and later calls fail with Unavailable.
func (p *Postgres) Close() error {
	if !p.closed.Swap(true) {
		p.pool.Close()
	}
	return nil
}
