package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rehabgw/rehabgw/gateway/store/migrations"
)

// SQLite is the embedded Store: one database file (plus its -wal and -shm
// files) opened with modernc.org/sqlite, a pure-Go SQLite.
//
// Durability: WAL journal with synchronous=FULL, so a commit is fsynced to
// the WAL before CommitBundle, Ack or Audit returns; an acknowledged push
// survives SIGKILL and power loss.
//
// Ordering: every write runs in a BEGIN IMMEDIATE transaction on the one
// writer connection, so writes are serial, also between processes sharing
// the file (they wait up to busy_timeout, 10 s, for one another), and Seq
// and the audit chain are assigned as max+1 inside that transaction. Reads
// use a separate pool of read-only connections that WAL lets run beside the
// writer; a reader sees whole transactions only, in commit order.
type SQLite struct {
	w      *sql.DB // exactly one connection: all write transactions
	r      *sql.DB // read-only connections
	closed atomic.Bool
}

var _ Store = (*SQLite)(nil)

// sqliteTime is the stored form of a time: UTC, microseconds, fixed width
// (so text order is time order).
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// sqliteBusyTimeout is how long a connection waits for another writer
// (another process on the same file) before SQLITE_BUSY (a variable for
// tests).
var sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens (creating when missing) the database file at path and
// migrates it to the current schema.
func OpenSQLite(path string) (*SQLite, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, errInvalid("store: SQLite path must be a plain file name")
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)",
		sqliteBusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, errInternal(err, "open")
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{w: w}
	ctx := context.Background()
	// Two processes migrating a new file at once can collide (goose has no
	// SQLite lock): the loser fails and, on the retry, finds it done.
	for attempt := 0; ; attempt++ {
		err = migrate(ctx, goose.DialectSQLite3, w, migrations.SQLite(), nil)
		if err == nil || attempt == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		_ = w.Close()
		return nil, s.fail(ctx, err, "migrate")
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, errInternal(err, "open")
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	r.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	s.r = r
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// fail turns a driver error into the store's error taxonomy.
func (s *SQLite) fail(ctx context.Context, err error, op string) error {
	switch {
	case err == nil:
		return nil
	case isStoreError(err):
		return err
	case ctx.Err() != nil:
		return errUnavailable(ctx.Err())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable(err)
	case s.closed.Load(), errors.Is(err, sql.ErrConnDone):
		return errUnavailable(errors.Join(errClosed, err))
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_PROTOCOL:
			return errUnavailable(err)
		case sqlite3.SQLITE_CONSTRAINT:
			switch se.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return errConflict(err, "store: %s: a key is taken already", op)
			}
		}
	}
	return errInternal(err, op)
}

// write runs fn in one BEGIN IMMEDIATE transaction on the writer connection.
func (s *SQLite) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if s.closed.Load() {
		return errUnavailable(errClosed)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, err, op)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.fail(ctx, err, op)
	}
	return s.fail(ctx, tx.Commit(), op)
}

// reader returns the read pool, or an error when the store is closed.
func (s *SQLite) reader() (*sql.DB, error) {
	if s.closed.Load() {
		return nil, errUnavailable(errClosed)
	}
	return s.r, nil
}

type sqlQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func fmtSQLiteTime(t time.Time) string { return NormTime(t).Format(sqliteTime) }

func fmtSQLiteTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtSQLiteTime(*t)
}

func parseSQLiteTime(s string) (time.Time, error) {
	t, err := time.Parse(sqliteTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseSQLiteTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseSQLiteTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CommitBundle implements Store.
func (s *SQLite) CommitBundle(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry) (*Bundle, bool, error) {
	return s.commitBundle(ctx, b, deliveries, audit, nil)
}

// commitBundle is CommitBundle; when the bundle is created and then is not
// nil, then runs in the same transaction after the bundle's rows are
// written, and its error undoes them (CommitBundleWithCase).
func (s *SQLite) commitBundle(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry, then func(tx *sql.Tx) error) (*Bundle, bool, error) {
	nb, nds, audit, err := prepareCommit(b, deliveries, audit)
	if err != nil {
		return nil, false, err
	}
	var stored *Bundle
	var created bool
	err = s.write(ctx, "commit bundle", func(tx *sql.Tx) error {
		var sha string
		err := tx.QueryRowContext(ctx, `SELECT manifest_sha256 FROM bundles WHERE id = ?`, nb.ID).Scan(&sha)
		switch {
		case err == nil:
			if sha != nb.ManifestSHA256 {
				return errConflict(nil, "store: bundle %s exists with a different manifest", nb.ID)
			}
			stored, err = sqliteBundle(ctx, tx, nb.ID)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO bundles (id, case_id, purpose, sender_org,
			sender_identity, cpr, meeting_date, in_reply_to, received, manifest_sha256, manifest, acceptance)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nb.ID, nb.CaseID, nb.Purpose, nb.SenderOrg, nb.SenderIdentity, nb.CPR,
			fmtSQLiteTimePtr(nb.MeetingDate), nb.InReplyTo, fmtSQLiteTime(nb.Received),
			nb.ManifestSHA256, nb.Manifest, nb.Acceptance); err != nil {
			return err
		}
		for i, p := range nb.Parts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO parts (bundle_id, ordinal, part_id, kind,
				media_type, size, sha256, blob_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				nb.ID, i, p.ID, p.Kind, p.MediaType, p.Size, p.SHA256, p.BlobKey); err != nil {
				return err
			}
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM deliveries`).Scan(&last); err != nil {
			return err
		}
		for i := range nds {
			last++
			nds[i].Seq = last
			d := nds[i]
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (seq, bundle_id, recipient, function, created)
				VALUES (?, ?, ?, ?, ?)`, d.Seq, d.BundleID, d.Recipient, d.Function, fmtSQLiteTime(d.Created)); err != nil {
				return err
			}
		}
		if err := sqliteAppendAudit(ctx, tx, &audit); err != nil {
			return err
		}
		if then != nil {
			if err := then(tx); err != nil {
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

func sqliteAppendAudit(ctx context.Context, tx *sql.Tx, e *AuditEntry) error {
	var seq int64
	var hash string
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	chainAudit(e, seq, hash)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (seq, at, actor, actor_org, action, bundle_id, cpr,
		outcome, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, fmtSQLiteTime(e.At), e.Actor, e.ActorOrg, e.Action, e.BundleID, e.CPR,
		e.Outcome, e.Detail, e.PrevHash, e.Hash)
	return err
}

// Bundle implements Store.
func (s *SQLite) Bundle(ctx context.Context, id string) (*Bundle, error) {
	if !validText(id) {
		return nil, notStored(ctx, errNotFound("store: no such bundle"))
	}
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	b, err := sqliteBundle(ctx, r, id)
	return b, s.fail(ctx, err, "read bundle")
}

func sqliteBundle(ctx context.Context, q sqlQuerier, id string) (*Bundle, error) {
	var b Bundle
	var meeting sql.NullString
	var received string
	err := q.QueryRowContext(ctx, `SELECT id, case_id, purpose, sender_org, sender_identity, cpr,
		meeting_date, in_reply_to, received, manifest_sha256, manifest, acceptance
		FROM bundles WHERE id = ?`, id).Scan(&b.ID, &b.CaseID, &b.Purpose, &b.SenderOrg,
		&b.SenderIdentity, &b.CPR, &meeting, &b.InReplyTo, &received, &b.ManifestSHA256,
		&b.Manifest, &b.Acceptance)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("store: no bundle %s", id)
	}
	if err != nil {
		return nil, err
	}
	if b.MeetingDate, err = parseSQLiteTimePtr(meeting); err != nil {
		return nil, err
	}
	if b.Received, err = parseSQLiteTime(received); err != nil {
		return nil, err
	}
	b.Manifest, b.Acceptance = nonNil(b.Manifest), nonNil(b.Acceptance)
	rows, err := q.QueryContext(ctx, `SELECT part_id, kind, media_type, size, sha256, blob_key
		FROM parts WHERE bundle_id = ? ORDER BY ordinal`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p Part
		if err := rows.Scan(&p.ID, &p.Kind, &p.MediaType, &p.Size, &p.SHA256, &p.BlobKey); err != nil {
			return nil, err
		}
		b.Parts = append(b.Parts, p)
	}
	return &b, rows.Err()
}

const sqliteDeliveryCols = `d.seq, d.bundle_id, d.recipient, d.function, d.created, d.acked_at,
	d.acked_by, b.case_id, b.purpose, b.sender_org, b.received
	FROM deliveries d JOIN bundles b ON b.id = d.bundle_id`

func (s *SQLite) deliveries(ctx context.Context, op, query string, args ...any) ([]Delivery, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	out, err := sqliteDeliveries(ctx, r, query, args...)
	if err != nil {
		return nil, s.fail(ctx, err, op)
	}
	return out, nil
}

func sqliteDeliveries(ctx context.Context, q sqlQuerier, query string, args ...any) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var created, received string
		var acked sql.NullString
		if err := rows.Scan(&d.Seq, &d.BundleID, &d.Recipient, &d.Function, &created, &acked,
			&d.AckedBy, &d.CaseID, &d.Purpose, &d.From, &received); err != nil {
			return nil, err
		}
		if d.Created, err = parseSQLiteTime(created); err != nil {
			return nil, err
		}
		if d.AckedAt, err = parseSQLiteTimePtr(acked); err != nil {
			return nil, err
		}
		if d.Received, err = parseSQLiteTime(received); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Deliveries implements Store.
func (s *SQLite) Deliveries(ctx context.Context, bundleID string) ([]Delivery, error) {
	if !validText(bundleID) {
		return []Delivery{}, notStored(ctx, nil)
	}
	return s.deliveries(ctx, "list deliveries",
		`SELECT `+sqliteDeliveryCols+` WHERE d.bundle_id = ? ORDER BY d.seq`, bundleID)
}

// Inbox implements Store.
func (s *SQLite) Inbox(ctx context.Context, recipient string, after int64, limit int) ([]Delivery, error) {
	if !validText(recipient) {
		return []Delivery{}, notStored(ctx, nil)
	}
	return s.deliveries(ctx, "list inbox",
		`SELECT `+sqliteDeliveryCols+` WHERE d.recipient = ? AND d.seq > ? ORDER BY d.seq LIMIT ?`,
		recipient, after, limitOf(limit))
}

// LastSeq implements Store.
func (s *SQLite) LastSeq(ctx context.Context) (int64, error) {
	r, err := s.reader()
	if err != nil {
		return 0, err
	}
	var seq int64
	err = r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM deliveries`).Scan(&seq)
	return seq, s.fail(ctx, err, "last seq")
}

// Ack implements Store.
func (s *SQLite) Ack(ctx context.Context, bundleID, recipient, by string, at time.Time, audit AuditEntry) error {
	if !validText(bundleID, recipient) {
		return notStored(ctx, errNotFound("store: no such delivery"))
	}
	by = cleanText(by)
	audit = prepareAudit(audit)
	return s.write(ctx, "ack", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET acked_at = ?, acked_by = ?
			WHERE bundle_id = ? AND recipient = ? AND acked_at IS NULL`,
			fmtSQLiteTime(at), by, bundleID, recipient); err != nil {
			return err
		}
		var found bool
		var cpr string
		if err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM deliveries WHERE bundle_id = ? AND recipient = ?),
			COALESCE((SELECT cpr FROM bundles WHERE id = ?), '')`,
			bundleID, recipient, bundleID).Scan(&found, &cpr); err != nil {
			return err
		}
		if !found {
			return errNotFound("store: no delivery of bundle %s to %s", bundleID, recipient)
		}
		if audit.BundleID == "" {
			audit.BundleID = bundleID
		}
		if audit.CPR == "" {
			audit.CPR = cpr
		}
		return sqliteAppendAudit(ctx, tx, &audit)
	})
}

// Audit implements Store.
func (s *SQLite) Audit(ctx context.Context, e AuditEntry) error {
	e = prepareAudit(e)
	return s.write(ctx, "audit", func(tx *sql.Tx) error {
		return sqliteAppendAudit(ctx, tx, &e)
	})
}

const sqliteAuditCols = `seq, at, actor, actor_org, action, bundle_id, cpr, outcome, detail, prev_hash, hash FROM audit`

func (s *SQLite) audit(ctx context.Context, op, query string, args ...any) ([]AuditEntry, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	out, err := sqliteAudit(ctx, r, query, args...)
	if err != nil {
		return nil, s.fail(ctx, err, op)
	}
	return out, nil
}

func sqliteAudit(ctx context.Context, q sqlQuerier, query string, args ...any) ([]AuditEntry, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.ActorOrg, &e.Action, &e.BundleID, &e.CPR,
			&e.Outcome, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		if e.At, err = parseSQLiteTime(at); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditEntries implements Store.
func (s *SQLite) AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error) {
	return s.audit(ctx, "list audit",
		`SELECT `+sqliteAuditCols+` WHERE seq > ? ORDER BY seq LIMIT ?`, after, limitOf(limit))
}

// AuditByCPR implements Store.
func (s *SQLite) AuditByCPR(ctx context.Context, cpr string) ([]AuditEntry, error) {
	if cpr == "" || !validText(cpr) {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		return []AuditEntry{}, nil
	}
	return s.audit(ctx, "list audit by CPR",
		`SELECT `+sqliteAuditCols+` WHERE cpr = ? ORDER BY seq`, cpr)
}

// BlobReferenced implements Store.
func (s *SQLite) BlobReferenced(ctx context.Context, key string) (bool, error) {
	if !validText(key) {
		return false, notStored(ctx, nil)
	}
	r, err := s.reader()
	if err != nil {
		return false, err
	}
	var ok bool
	err = r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM parts WHERE blob_key = ?)`, key).Scan(&ok)
	return ok, s.fail(ctx, err, "blob referenced")
}

// Ping implements Store: a read of the database file, not only of the
// connection.
func (s *SQLite) Ping(ctx context.Context) error {
	_, err := s.LastSeq(ctx)
	return err
}

// Close implements Store. Later calls fail with Unavailable.
func (s *SQLite) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.r != nil {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
}
