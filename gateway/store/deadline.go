package store

// The durable side of the deadlines (docs/deadlines.md, package
// gateway/deadline): cases with their events and obligations, breaches, and
// the notification outbox. The planning itself is the pure engine's
// (deadline.Agreement.Apply); the store loads a case, lets the caller run the
// engine, and writes the outcome, all in one write transaction under the
// store's global write lock (BEGIN IMMEDIATE on SQLite,
// pg_advisory_xact_lock on PostgreSQL).
//
// Exactly once, precisely:
//
//   - Recording. Every breach of an obligation is recorded exactly once: one
//     row in breaches and one in notifications, in the same transaction as
//     the obligation's change to breached (or met_late), whichever process
//     finds it. Detection and case updates take the global write lock and
//     re-read the obligations under it, so two detectors never both see an
//     obligation pending; breaches(case, obligation) and
//     notifications(breach_id) are also UNIQUE, so a second row cannot be
//     written even by a buggy caller.
//   - Delivery. A notification is delivered at least once, not exactly once:
//     ClaimNotifications leases the rows it returns (nobody else gets them
//     until the lease ends), but a sender that crashes, or whose
//     NotificationDone is lost, leaves the row to be claimed again when the
//     lease runs out, and its webhook may have been called already. The
//     receiver must therefore deduplicate by the breach ID: the payload's
//     "id", which is unique and stable for the breach (send it as the
//     idempotency key, e.g. an Idempotency-Key header).
//
// Times are stored in UTC truncated to microseconds (NormTime) in the
// columns; the JSON copies of events and obligations keep the engine's
// values exactly. The detector compares the truncated due time with the
// truncated now, so it may find a breach up to 1 µs later than
// deadline.Agreement.Breaches would, never earlier.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/rehabgw/rehabgw/gateway/deadline"
)

// DeadlineStore is the deadline side of the store, implemented by *SQLite
// and *Postgres. Errors are as for Store (*errs.Error with store.* codes),
// except that the error of a CaseFunc is returned as it is.
type DeadlineStore interface {
	// RecordCase loads the case (municipality, case ID) in one write
	// transaction, calls fn with its key and state, and writes what fn
	// returns: the events are appended in order, the obligations of the
	// changes are upserted by ID in order (never deleted), and each breach
	// change inserts a breach row and a notification row. A case that does
	// not exist yet is created with key.Region and key.Agreement (both
	// required then); an existing case keeps the ones it was created with,
	// and fn gets those. fn returning an error, or returning nothing, writes
	// nothing.
	RecordCase(ctx context.Context, key CaseKey, fn CaseFunc) error

	// CommitBundleWithCase is CommitBundle and RecordCase in one
	// transaction: fn is called only when the bundle is created (not for an
	// identical re-push, which returns created == false and writes nothing,
	// nor for a conflicting one), and its error, or any failure recording
	// the case, stores neither the bundle nor the case.
	CommitBundleWithCase(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry, key CaseKey, fn CaseFunc) (stored *Bundle, created bool, err error)

	// DetectBreaches finds, in one write transaction, at most limit
	// (DefaultLimit when <= 0) pending obligations with due < now, earliest
	// due first, through the partial index on pending obligations' due time
	// (cost O(found + log n), whatever the number of open obligations), and
	// marks them breached: BreachedAt = now, MissedBy = missedBy(...), a
	// breach row and a notification row each. now is truncated to the
	// microsecond. Safe to run in several processes at once: each breach is
	// recorded once. Call it again while it returns limit breaches.
	DetectBreaches(ctx context.Context, now time.Time, limit int, missedBy MissedByFunc) ([]Breach, error)

	// Breaches lists breaches, newest first (by BreachedAt, then ID), at
	// most f.Limit (DefaultLimit when <= 0).
	Breaches(ctx context.Context, f BreachFilter) ([]Breach, error)

	// CaseTrace returns a case's events in order, every obligation it ever
	// had (cancelled and re-planned ones included, in the engine's order)
	// and its breaches, from one snapshot. NotFound when there is no such
	// case.
	CaseTrace(ctx context.Context, municipality, caseID string) (*CaseTrace, error)

	// CasesByID returns the keys of every municipality's case with this case
	// ID, by municipality (empty when none).
	CasesByID(ctx context.Context, caseID string) ([]CaseKey, error)

	// OpenObligationsByRule counts the open (pending or breached)
	// obligations by rule name.
	OpenObligationsByRule(ctx context.Context) (map[string]int, error)

	// ClaimNotifications returns at most limit notifications due for a
	// delivery attempt at now (never delivered, next attempt at or before
	// now), oldest due first, and leases them: their next attempt moves to
	// now+lease (lease > 0) and Attempts counts this one. Report the
	// outcome with NotificationDone or NotificationFailed; a notification
	// whose outcome is never reported is claimed again after the lease.
	ClaimNotifications(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Notification, error)

	// NotificationDone records the delivery (idempotent: the first time is
	// kept). NotFound for an unknown id.
	NotificationDone(ctx context.Context, id int64, at time.Time) error

	// NotificationFailed records a failed attempt at time at and schedules
	// the next one. errText must be safe (a status code or an error class,
	// never personal data or response bodies); it is cut to 200 bytes. No
	// effect on a delivered notification. NotFound for an unknown id.
	NotificationFailed(ctx context.Context, id int64, at, nextAttempt time.Time, errText string) error
}

var (
	_ DeadlineStore = (*SQLite)(nil)
	_ DeadlineStore = (*Postgres)(nil)
)

// CaseKey identifies a case: a municipality's case ID. Region and
// Agreement name the agreement the case is planned under, fixed when its
// first event is recorded: Region is the region's registry ID and
// Agreement the agreement's version (deadline.Agreement.Version, not
// "region@version"), so deadline.Set.Version(Region, Agreement) finds it.
type CaseKey struct {
	Municipality string
	CaseID       string
	Region       string
	Agreement    string
}

// AgreementKey is "region@version", as deadline.Agreement.Key.
func (k CaseKey) AgreementKey() string { return k.Region + "@" + k.Agreement }

// CaseFunc runs the engine for RecordCase and CommitBundleWithCase. key is
// the case's key as stored (Region and Agreement are those the case was
// created with; for a new case, the caller's), state its events and
// obligations as stored. It returns the events to append, in order, and the
// changes the engine computed for them, in order (for example the
// concatenated results of deadline.Agreement.Step for each event, which may
// modify state as it goes). It must not have other side effects: on
// PostgreSQL a transaction whose connection was lost before COMMIT is run
// again, with fn.
type CaseFunc func(key CaseKey, state *deadline.CaseState) ([]deadline.Change, []deadline.Event, error)

// MissedByFunc computes by how much o, of the case key, is missed at now:
// typically the agreement's MissedBy (deadline.Set.Version(key.Region,
// key.Agreement)), which needs the agreement's calendar.
type MissedByFunc func(key CaseKey, o deadline.Obligation, now time.Time) deadline.MissedBy

// Breach is one recorded breach: an obligation whose deadline passed
// without its satisfying event. It carries no personal data.
type Breach struct {
	ID           int64 // unique and stable: the notification's idempotency key
	ObligationID string
	Municipality string
	CaseID       string
	Region       string
	Agreement    string // the agreement version (see CaseKey)
	Rule         string
	Party        string // deadline.Party: who the breach is attributed to
	Due          time.Time
	BreachedAt   time.Time
	// MissedBy is as of BreachedAt, or the final figure once met late.
	MissedBy deadline.MissedBy
	// Status is breached, or met_late when the obligation was satisfied
	// (late) after all, at the time of the breach or later.
	Status deadline.Status
}

// breachJSON is the JSON form of a Breach (and the notification payload).
type breachJSON struct {
	ID           int64           `json:"id"`
	ObligationID string          `json:"obligation_id"`
	Municipality string          `json:"municipality"`
	CaseID       string          `json:"case_id"`
	Region       string          `json:"region"`
	Agreement    string          `json:"agreement"`
	Rule         string          `json:"rule"`
	Party        string          `json:"party"`
	Due          time.Time       `json:"due"`
	BreachedAt   time.Time       `json:"breached_at"`
	MissedBy     missedByJSON    `json:"missed_by"`
	Status       deadline.Status `json:"status"`
}

type missedByJSON struct {
	Workdays int     `json:"workdays,omitempty"`
	Hours    float64 `json:"hours,omitempty"`
	Text     string  `json:"text,omitempty"` // "3 working days", "1.5 hours"
}

// MarshalJSON renders the breach as
//
//	{"id":17,"obligation_id":"materiale-foer-moedet/1","municipality":"kommune-0101",
//	 "case_id":"...","region":"region-1084","agreement":"2026-1",
//	 "rule":"materiale-foer-moedet","party":"municipality",
//	 "due":"2026-03-03T11:00:00Z","breached_at":"2026-03-06T08:00:00Z",
//	 "missed_by":{"workdays":3,"text":"3 working days"},"status":"met_late"}
//
// (missed_by has "hours" instead of "workdays" for hour rules). This is
// the notification payload.
func (b Breach) MarshalJSON() ([]byte, error) {
	return json.Marshal(breachJSON{
		ID: b.ID, ObligationID: b.ObligationID, Municipality: b.Municipality, CaseID: b.CaseID,
		Region: b.Region, Agreement: b.Agreement, Rule: b.Rule, Party: b.Party,
		Due: b.Due, BreachedAt: b.BreachedAt,
		MissedBy: missedByJSON{Workdays: b.MissedBy.Workdays, Hours: b.MissedBy.Hours, Text: b.MissedBy.String()},
		Status:   b.Status,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Breach) UnmarshalJSON(data []byte) error {
	var j breachJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*b = Breach{
		ID: j.ID, ObligationID: j.ObligationID, Municipality: j.Municipality, CaseID: j.CaseID,
		Region: j.Region, Agreement: j.Agreement, Rule: j.Rule, Party: j.Party,
		Due: j.Due, BreachedAt: j.BreachedAt,
		MissedBy: deadline.MissedBy{Workdays: j.MissedBy.Workdays, Hours: j.MissedBy.Hours},
		Status:   j.Status,
	}
	return nil
}

// BreachFilter selects breaches; zero fields select all.
type BreachFilter struct {
	Since        time.Time // BreachedAt at or after
	Region       string
	Municipality string
	Party        string
	Rule         string
	Limit        int
}

// CaseTrace is a case's whole history.
type CaseTrace struct {
	Key         CaseKey
	Created     time.Time // when its first event was recorded (the event's time)
	Events      []deadline.Event
	Obligations []deadline.Obligation
	Breaches    []Breach // oldest first
}

// Notification is one breach notification in the outbox.
type Notification struct {
	ID       int64
	BreachID int64
	// Attempts counts the delivery attempts started, this claim's included.
	Attempts   int
	Payload    []byte    // the breach as JSON (Breach.MarshalJSON); no personal data
	Created    time.Time // when the breach was recorded
	LeaseUntil time.Time // when another claim may take it again
	LastError  string    // of the previous attempt, "" if none failed
}

// Status texts used in SQL.
const (
	sqlPending  = string(deadline.StatusPending)
	sqlBreached = string(deadline.StatusBreached)
	sqlMetLate  = string(deadline.StatusMetLate)
)

// maxErrText bounds NotificationFailed's errText.
const maxErrText = 200

// callerError carries a CaseFunc's error through the store's error
// handling, which would otherwise wrap it.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }
func (e *callerError) Unwrap() error { return e.err }

// unwrapCaller returns the caller's own error when err carries one.
func unwrapCaller(err error) error {
	var ce *callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	return err
}

// ---- the methods, shared by both stores ----

func (s *SQLite) RecordCase(ctx context.Context, key CaseKey, fn CaseFunc) error {
	return recordCase(ctx, s, key, fn)
}

func (p *Postgres) RecordCase(ctx context.Context, key CaseKey, fn CaseFunc) error {
	return recordCase(ctx, p, key, fn)
}

func recordCase(ctx context.Context, db dwriter, key CaseKey, fn CaseFunc) error {
	if err := checkCaseKey(key, fn); err != nil {
		return err
	}
	return unwrapCaller(db.dwrite(ctx, "record case", func(ctx context.Context, q dtx) error {
		return recordCaseTx(ctx, q, key, fn)
	}))
}

// CommitBundleWithCase implements DeadlineStore.
func (s *SQLite) CommitBundleWithCase(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry, key CaseKey, fn CaseFunc) (*Bundle, bool, error) {
	if err := checkCaseKey(key, fn); err != nil {
		return nil, false, err
	}
	stored, created, err := s.commitBundle(ctx, b, deliveries, audit, func(tx *sql.Tx) error {
		return recordCaseTx(ctx, sqliteDTx{tx}, key, fn)
	})
	return stored, created, unwrapCaller(err)
}

// CommitBundleWithCase implements DeadlineStore.
func (p *Postgres) CommitBundleWithCase(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry, key CaseKey, fn CaseFunc) (*Bundle, bool, error) {
	if err := checkCaseKey(key, fn); err != nil {
		return nil, false, err
	}
	stored, created, err := p.commitBundle(ctx, b, deliveries, audit, func(ctx context.Context, tx pgx.Tx) error {
		q := &pgDTx{c: tx}
		if err := recordCaseTx(ctx, q, key, fn); err != nil {
			return err
		}
		return q.flush(ctx)
	})
	return stored, created, unwrapCaller(err)
}

func checkCaseKey(key CaseKey, fn CaseFunc) error {
	switch {
	case fn == nil:
		return errInvalid("store: no case function")
	case key.Municipality == "" || key.CaseID == "":
		return errInvalid("store: case key without municipality or case ID")
	case !validText(key.Municipality, key.CaseID, key.Region, key.Agreement):
		return errInvalid("store: case key text is not valid UTF-8 or holds NUL")
	case strings.Contains(key.Agreement, "@"):
		return errInvalid("store: CaseKey.Agreement is the agreement's version, not region@version")
	}
	return nil
}

// obState is what recordCaseTx remembers of an obligation as loaded.
type obState struct {
	ord      int
	breached bool // a breach was recorded already
	status   deadline.Status
}

// recordCaseTx is RecordCase inside a write transaction.
func recordCaseTx(ctx context.Context, q dtx, key CaseKey, fn CaseFunc) error {
	ref, stored, found, err := loadCaseKey(ctx, q, key.Municipality, key.CaseID)
	if err != nil {
		return err
	}
	state := &deadline.CaseState{}
	if found {
		key = stored
		if state.Events, err = loadEvents(ctx, q, ref); err != nil {
			return err
		}
		if state.Obligations, err = loadObligations(ctx, q, ref); err != nil {
			return err
		}
	} else if key.Region == "" || key.Agreement == "" {
		return errInvalid("store: a new case needs its region and agreement")
	}
	nEvents := len(state.Events)
	pre := make(map[string]obState, len(state.Obligations))
	for i, o := range state.Obligations {
		pre[o.ID] = obState{ord: i, breached: o.BreachedAt != nil, status: o.Status}
	}

	changes, events, err := fn(key, state)
	if err != nil {
		return &callerError{err}
	}
	if len(changes) == 0 && len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return errInvalid("store: %v", err)
		}
	}

	if !found {
		created := time.Now()
		if len(events) > 0 {
			created = events[0].At
		}
		if ref, err = nextID(ctx, q, "cases"); err != nil {
			return err
		}
		if err := q.exec(ctx, `INSERT INTO cases (id, municipality, case_id, region, agreement, created)
			VALUES (?, ?, ?, ?, ?, ?)`, ref, key.Municipality, key.CaseID, key.Region, key.Agreement, q.t(created)); err != nil {
			return err
		}
	}
	for i, e := range events {
		data, err := storedJSON(e)
		if err != nil {
			return err
		}
		if !validText(e.BundleID) {
			return errInvalid("store: event text is not valid UTF-8 or holds NUL")
		}
		if err := q.exec(ctx, `INSERT INTO case_events (case_ref, seq, type, at, bundle_id, data)
			VALUES (?, ?, ?, ?, ?, ?)`, ref, nEvents+i+1, string(e.Type), q.t(e.At), e.BundleID, data); err != nil {
			return err
		}
	}

	// The final state of each obligation the changes touch, in order of
	// first appearance, and which of them breach now.
	type touched struct {
		o      deadline.Obligation
		ord    int
		breach bool
	}
	var order []*touched
	byID := map[string]*touched{}
	for _, ch := range changes {
		o := ch.Obligation
		if o.ID == "" {
			return errInvalid("store: a change without an obligation ID")
		}
		t := byID[o.ID]
		if t == nil {
			ord := len(pre) + len(order)
			if p, ok := pre[o.ID]; ok {
				ord = p.ord
			}
			t = &touched{ord: ord}
			byID[o.ID] = t
			order = append(order, t)
		}
		t.o = o
		if ch.Kind == deadline.ChangeBreach && !pre[o.ID].breached {
			t.breach = true
		}
	}
	for _, t := range order {
		if err := upsertObligation(ctx, q, ref, t.ord, t.o); err != nil {
			return err
		}
	}
	var breaches []Breach
	for _, t := range order {
		o := t.o
		switch {
		case t.breach:
			at := o.BreachedAt
			if at == nil { // the engine always sets it; be safe
				last := time.Now()
				if len(events) > 0 {
					last = events[len(events)-1].At
				}
				at = &last
			}
			b := breachOf(key, o, *at)
			if o.Status == deadline.StatusMetLate {
				b.Status = deadline.StatusMetLate
			}
			breaches = append(breaches, b)
		case pre[o.ID].breached && o.Status == deadline.StatusMetLate && pre[o.ID].status != deadline.StatusMetLate:
			// Detected as breached earlier, met late now: the final figure.
			w, h := missedByCols(o.MissedBy)
			if err := q.exec(ctx, `UPDATE breaches SET status = ?, missed_by_workdays = ?, missed_by_hours = ?
				WHERE case_ref = ? AND obligation_id = ?`, sqlMetLate, w, h, ref, o.ID); err != nil {
				return err
			}
		}
	}
	if len(breaches) > 0 {
		refs := make([]int64, len(breaches))
		for i := range refs {
			refs[i] = ref
		}
		return insertBreaches(ctx, q, refs, breaches)
	}
	return nil
}

// breachOf builds the breach of o (Status breached) at time at.
func breachOf(key CaseKey, o deadline.Obligation, at time.Time) Breach {
	b := Breach{
		ObligationID: o.ID, Municipality: key.Municipality, CaseID: key.CaseID,
		Region: key.Region, Agreement: key.Agreement, Rule: o.Rule, Party: string(o.Party),
		Due: NormTime(o.Due), BreachedAt: NormTime(at), Status: deadline.StatusBreached,
	}
	if o.MissedBy != nil {
		b.MissedBy = *o.MissedBy
	}
	return b
}

// insertBreaches assigns the breaches their IDs and writes them with their
// notifications (due at once: next attempt = BreachedAt).
func insertBreaches(ctx context.Context, q dtx, refs []int64, bs []Breach) error {
	rows, err := q.query(ctx, `SELECT (SELECT COALESCE(MAX(id), 0) FROM breaches),
		(SELECT COALESCE(MAX(id), 0) FROM notifications)`)
	if err != nil {
		return err
	}
	var lastBreach, lastNote int64
	if err := scanOne(rows, &lastBreach, &lastNote); err != nil {
		return err
	}
	for i := range bs {
		b := &bs[i]
		lastBreach++
		lastNote++
		b.ID = lastBreach
		w, h := missedByCols(&b.MissedBy)
		if err := q.exec(ctx, `INSERT INTO breaches (id, case_ref, obligation_id, municipality, case_id,
			region, agreement, rule, party, due, breached_at, missed_by_workdays, missed_by_hours, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, refs[i], b.ObligationID, b.Municipality, b.CaseID, b.Region, b.Agreement, b.Rule, b.Party,
			q.t(b.Due), q.t(b.BreachedAt), w, h, string(b.Status)); err != nil {
			return err
		}
		payload, err := json.Marshal(*b)
		if err != nil {
			return err
		}
		if err := q.exec(ctx, `INSERT INTO notifications (id, breach_id, payload, created, next_attempt)
			VALUES (?, ?, ?, ?, ?)`, lastNote, b.ID, payload, q.t(b.BreachedAt), q.t(b.BreachedAt)); err != nil {
			return err
		}
	}
	return nil
}

func upsertObligation(ctx context.Context, q dtx, ref int64, ord int, o deadline.Obligation) error {
	if !validText(o.ID, o.Rule, string(o.Party), string(o.Unit), string(o.Status), o.CancelReason, o.Replaces) {
		return errInvalid("store: obligation text is not valid UTF-8 or holds NUL")
	}
	data, err := storedJSON(o)
	if err != nil {
		return err
	}
	w, h := missedByCols(o.MissedBy)
	return q.exec(ctx, `INSERT INTO obligations (case_ref, id, ord, rule, party, unit, status, due, created,
		satisfied_at, breached_at, missed_by_workdays, missed_by_hours, cancelled_at, cancel_reason,
		replanned_from, replaces, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (case_ref, id) DO UPDATE SET rule = excluded.rule, party = excluded.party,
		unit = excluded.unit, status = excluded.status, due = excluded.due, created = excluded.created,
		satisfied_at = excluded.satisfied_at, breached_at = excluded.breached_at,
		missed_by_workdays = excluded.missed_by_workdays, missed_by_hours = excluded.missed_by_hours,
		cancelled_at = excluded.cancelled_at, cancel_reason = excluded.cancel_reason,
		replanned_from = excluded.replanned_from, replaces = excluded.replaces, data = excluded.data`,
		ref, o.ID, ord, o.Rule, string(o.Party), string(o.Unit), string(o.Status), q.t(o.Due), q.t(o.CreatedAt),
		q.tp(o.SatisfiedAt), q.tp(o.BreachedAt), w, h, q.tp(o.CancelledAt), o.CancelReason,
		q.tp(o.ReplannedFrom), o.Replaces, data)
}

// missedByCols gives the missed_by_workdays and missed_by_hours columns
// (NULL when not set).
func missedByCols(m *deadline.MissedBy) (w, h any) {
	if m == nil {
		return nil, nil
	}
	if m.Workdays != 0 {
		w = int64(m.Workdays)
	}
	if m.Hours != 0 {
		h = m.Hours
	}
	return w, h
}

// storedJSON marshals v for a JSON column: text (SQLite's STRICT TEXT and
// PostgreSQL's jsonb both take a string), refusing what PostgreSQL's jsonb
// cannot hold (NUL, \u0000), so that both stores behave alike.
func storedJSON(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", errInvalid("store: cannot encode %T: %v", v, err)
	}
	if bytes.Contains(data, []byte(`\u0000`)) {
		return "", errInvalid("store: %T text holds NUL", v)
	}
	return string(data), nil
}

// nextID is max(id)+1 of a table; under the write lock only.
func nextID(ctx context.Context, q dtx, table string) (int64, error) {
	rows, err := q.query(ctx, `SELECT COALESCE(MAX(id), 0) FROM `+table)
	if err != nil {
		return 0, err
	}
	var id int64
	err = scanOne(rows, &id)
	return id + 1, err
}

// scanOne scans the first row of rows and closes them; no row is an
// error.
func scanOne(rows drows, dest ...any) error {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errNoRow
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

var errNoRow = errors.New("no row")

func loadCaseKey(ctx context.Context, q dtx, municipality, caseID string) (ref int64, key CaseKey, found bool, err error) {
	rows, err := q.query(ctx, `SELECT id, municipality, case_id, region, agreement FROM cases
		WHERE municipality = ? AND case_id = ?`, municipality, caseID)
	if err != nil {
		return 0, key, false, err
	}
	err = scanOne(rows, &ref, &key.Municipality, &key.CaseID, &key.Region, &key.Agreement)
	if errors.Is(err, errNoRow) {
		return 0, CaseKey{}, false, nil
	}
	return ref, key, err == nil, err
}

func loadEvents(ctx context.Context, q dtx, ref int64) ([]deadline.Event, error) {
	rows, err := q.query(ctx, `SELECT data FROM case_events WHERE case_ref = ? ORDER BY seq`, ref)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []deadline.Event
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var e deadline.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("stored event: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func loadObligations(ctx context.Context, q dtx, ref int64) ([]deadline.Obligation, error) {
	rows, err := q.query(ctx, `SELECT data FROM obligations WHERE case_ref = ? ORDER BY ord`, ref)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []deadline.Obligation
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var o deadline.Obligation
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, fmt.Errorf("stored obligation: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// ---- detection ----

func (s *SQLite) DetectBreaches(ctx context.Context, now time.Time, limit int, missedBy MissedByFunc) ([]Breach, error) {
	return detectBreaches(ctx, s, now, limit, missedBy)
}

func (p *Postgres) DetectBreaches(ctx context.Context, now time.Time, limit int, missedBy MissedByFunc) ([]Breach, error) {
	return detectBreaches(ctx, p, now, limit, missedBy)
}

// detectSQL reads the overdue pending obligations through the partial
// index obligations_pending_due (due, case_ref, id) WHERE status =
// 'pending': the constant is spelt out so that the planner may use the
// partial index with any plan, and the order is the index's, so no sort is
// needed and the LIMIT stops the scan. Their cases are read afterwards by
// primary key (caseKeysSQL), not joined: a join may be planned as a hash
// join over every case, which grows with the data.
const detectSQL = `SELECT case_ref, data FROM obligations
	WHERE status = '` + sqlPending + `' AND due < ?
	ORDER BY due, case_ref, id LIMIT ?`

const caseKeysSQL = `SELECT id, municipality, case_id, region, agreement FROM cases WHERE id IN `

func detectBreaches(ctx context.Context, db dwriter, now time.Time, limit int, missedBy MissedByFunc) ([]Breach, error) {
	if missedBy == nil {
		return nil, errInvalid("store: DetectBreaches without a MissedBy function")
	}
	now = NormTime(now)
	var out []Breach
	err := db.dwrite(ctx, "detect breaches", func(ctx context.Context, q dtx) error {
		out = nil
		rows, err := q.query(ctx, detectSQL, q.t(now), limitOf(limit))
		if err != nil {
			return err
		}
		type found struct {
			ref int64
			o   deadline.Obligation
		}
		var fs []found
		for rows.Next() {
			var f found
			var data []byte
			if err := rows.Scan(&f.ref, &data); err != nil {
				rows.Close()
				return err
			}
			if err := json.Unmarshal(data, &f.o); err != nil {
				rows.Close()
				return fmt.Errorf("stored obligation: %w", err)
			}
			fs = append(fs, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(fs) == 0 {
			return nil
		}
		keys := map[int64]CaseKey{}
		var refs []any
		for _, f := range fs {
			if _, ok := keys[f.ref]; !ok {
				keys[f.ref] = CaseKey{}
				refs = append(refs, f.ref)
			}
		}
		rows, err = q.query(ctx, caseKeysSQL+"("+strings.TrimSuffix(strings.Repeat("?, ", len(refs)), ", ")+")", refs...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var ref int64
			var k CaseKey
			if err := rows.Scan(&ref, &k.Municipality, &k.CaseID, &k.Region, &k.Agreement); err != nil {
				rows.Close()
				return err
			}
			keys[ref] = k
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		brefs := make([]int64, len(fs))
		bs := make([]Breach, len(fs))
		for i, f := range fs {
			o, key := f.o, keys[f.ref]
			mb := missedBy(key, o, now)
			at := now
			o.Status, o.BreachedAt, o.MissedBy = deadline.StatusBreached, &at, &mb
			data, err := storedJSON(o)
			if err != nil {
				return err
			}
			w, h := missedByCols(&mb)
			if err := q.exec(ctx, `UPDATE obligations SET status = ?, breached_at = ?, missed_by_workdays = ?,
				missed_by_hours = ?, data = ? WHERE case_ref = ? AND id = ?`,
				sqlBreached, q.t(now), w, h, data, f.ref, o.ID); err != nil {
				return err
			}
			brefs[i], bs[i] = f.ref, breachOf(key, o, now)
		}
		if err := insertBreaches(ctx, q, brefs, bs); err != nil {
			return err
		}
		out = bs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- queries ----

const breachCols = `id, obligation_id, municipality, case_id, region, agreement, rule, party, due,
	breached_at, missed_by_workdays, missed_by_hours, status FROM breaches`

func scanBreaches(rows drows) ([]Breach, error) {
	defer rows.Close()
	out := []Breach{}
	for rows.Next() {
		var b Breach
		var w sql.NullInt64
		var h sql.NullFloat64
		var status string
		if err := rows.Scan(&b.ID, &b.ObligationID, &b.Municipality, &b.CaseID, &b.Region, &b.Agreement,
			&b.Rule, &b.Party, scanTime{&b.Due}, scanTime{&b.BreachedAt}, &w, &h, &status); err != nil {
			return nil, err
		}
		b.MissedBy = deadline.MissedBy{Workdays: int(w.Int64), Hours: h.Float64}
		b.Status = deadline.Status(status)
		out = append(out, b)
	}
	return out, rows.Err()
}

func (s *SQLite) Breaches(ctx context.Context, f BreachFilter) ([]Breach, error) {
	return listBreaches(ctx, s, f)
}

func (p *Postgres) Breaches(ctx context.Context, f BreachFilter) ([]Breach, error) {
	return listBreaches(ctx, p, f)
}

func listBreaches(ctx context.Context, db dwriter, f BreachFilter) ([]Breach, error) {
	if !validText(f.Region, f.Municipality, f.Party, f.Rule) {
		return []Breach{}, notStored(ctx, nil)
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	var out []Breach
	err := db.dread(ctx, "list breaches", false, func(ctx context.Context, q dtx) error {
		where, args = nil, nil
		if !f.Since.IsZero() {
			add("breached_at >= ?", q.t(f.Since))
		}
		for _, c := range []struct{ col, v string }{
			{"region", f.Region}, {"municipality", f.Municipality}, {"party", f.Party}, {"rule", f.Rule},
		} {
			if c.v != "" {
				add(c.col+" = ?", c.v)
			}
		}
		query := `SELECT ` + breachCols
		if len(where) > 0 {
			query += ` WHERE ` + strings.Join(where, " AND ")
		}
		query += ` ORDER BY breached_at DESC, id DESC LIMIT ?`
		rows, err := q.query(ctx, query, append(args, limitOf(f.Limit))...)
		if err != nil {
			return err
		}
		out, err = scanBreaches(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *SQLite) CaseTrace(ctx context.Context, municipality, caseID string) (*CaseTrace, error) {
	return caseTrace(ctx, s, municipality, caseID)
}

func (p *Postgres) CaseTrace(ctx context.Context, municipality, caseID string) (*CaseTrace, error) {
	return caseTrace(ctx, p, municipality, caseID)
}

func caseTrace(ctx context.Context, db dwriter, municipality, caseID string) (*CaseTrace, error) {
	if !validText(municipality, caseID) {
		return nil, notStored(ctx, errNotFound("store: no such case"))
	}
	var tr *CaseTrace
	err := db.dread(ctx, "case trace", true, func(ctx context.Context, q dtx) error {
		tr = nil
		rows, err := q.query(ctx, `SELECT id, municipality, case_id, region, agreement, created FROM cases
			WHERE municipality = ? AND case_id = ?`, municipality, caseID)
		if err != nil {
			return err
		}
		var ref int64
		t := &CaseTrace{}
		err = scanOne(rows, &ref, &t.Key.Municipality, &t.Key.CaseID, &t.Key.Region, &t.Key.Agreement, scanTime{&t.Created})
		if errors.Is(err, errNoRow) {
			return errNotFound("store: no such case")
		}
		if err != nil {
			return err
		}
		if t.Events, err = loadEvents(ctx, q, ref); err != nil {
			return err
		}
		if t.Obligations, err = loadObligations(ctx, q, ref); err != nil {
			return err
		}
		if rows, err = q.query(ctx, `SELECT `+breachCols+` WHERE case_ref = ? ORDER BY id`, ref); err != nil {
			return err
		}
		if t.Breaches, err = scanBreaches(rows); err != nil {
			return err
		}
		tr = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tr, nil
}

func (s *SQLite) CasesByID(ctx context.Context, caseID string) ([]CaseKey, error) {
	return casesByID(ctx, s, caseID)
}

func (p *Postgres) CasesByID(ctx context.Context, caseID string) ([]CaseKey, error) {
	return casesByID(ctx, p, caseID)
}

func casesByID(ctx context.Context, db dwriter, caseID string) ([]CaseKey, error) {
	if !validText(caseID) {
		return []CaseKey{}, notStored(ctx, nil)
	}
	var out []CaseKey
	err := db.dread(ctx, "cases by ID", false, func(ctx context.Context, q dtx) error {
		out = []CaseKey{}
		rows, err := q.query(ctx, `SELECT municipality, case_id, region, agreement FROM cases
			WHERE case_id = ? ORDER BY municipality`, caseID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k CaseKey
			if err := rows.Scan(&k.Municipality, &k.CaseID, &k.Region, &k.Agreement); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *SQLite) OpenObligationsByRule(ctx context.Context) (map[string]int, error) {
	return openByRule(ctx, s)
}

func (p *Postgres) OpenObligationsByRule(ctx context.Context) (map[string]int, error) {
	return openByRule(ctx, p)
}

func openByRule(ctx context.Context, db dwriter) (map[string]int, error) {
	var out map[string]int
	err := db.dread(ctx, "open obligations", false, func(ctx context.Context, q dtx) error {
		out = map[string]int{}
		rows, err := q.query(ctx, `SELECT rule, COUNT(*) FROM obligations
			WHERE status IN ('`+sqlPending+`', '`+sqlBreached+`') GROUP BY rule`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var rule string
			var n int64
			if err := rows.Scan(&rule, &n); err != nil {
				return err
			}
			out[rule] = int(n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- the outbox ----

func (s *SQLite) ClaimNotifications(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Notification, error) {
	return claimNotifications(ctx, s, now, limit, lease)
}

func (p *Postgres) ClaimNotifications(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Notification, error) {
	return claimNotifications(ctx, p, now, limit, lease)
}

func claimNotifications(ctx context.Context, db dwriter, now time.Time, limit int, lease time.Duration) ([]Notification, error) {
	if lease <= 0 {
		return nil, errInvalid("store: a notification lease must be positive")
	}
	now = NormTime(now)
	until := NormTime(now.Add(lease))
	var out []Notification
	err := db.dwrite(ctx, "claim notifications", func(ctx context.Context, q dtx) error {
		out = []Notification{}
		rows, err := q.query(ctx, `SELECT id, breach_id, attempts, payload, created, last_error FROM notifications
			WHERE done_at IS NULL AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?`,
			q.t(now), limitOf(limit))
		if err != nil {
			return err
		}
		for rows.Next() {
			var n Notification
			var attempts int64
			if err := rows.Scan(&n.ID, &n.BreachID, &attempts, &n.Payload, scanTime{&n.Created}, &n.LastError); err != nil {
				rows.Close()
				return err
			}
			n.Attempts = int(attempts) + 1
			n.LeaseUntil = until
			out = append(out, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, n := range out {
			if err := q.exec(ctx, `UPDATE notifications SET attempts = ?, next_attempt = ?, last_attempt = ?
				WHERE id = ?`, n.Attempts, q.t(until), q.t(now), n.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *SQLite) NotificationDone(ctx context.Context, id int64, at time.Time) error {
	return notificationDone(ctx, s, id, at)
}

func (p *Postgres) NotificationDone(ctx context.Context, id int64, at time.Time) error {
	return notificationDone(ctx, p, id, at)
}

func notificationDone(ctx context.Context, db dwriter, id int64, at time.Time) error {
	return db.dwrite(ctx, "notification done", func(ctx context.Context, q dtx) error {
		if err := notificationExists(ctx, q, id); err != nil {
			return err
		}
		return q.exec(ctx, `UPDATE notifications SET done_at = ? WHERE id = ? AND done_at IS NULL`, q.t(at), id)
	})
}

func (s *SQLite) NotificationFailed(ctx context.Context, id int64, at, nextAttempt time.Time, errText string) error {
	return notificationFailed(ctx, s, id, at, nextAttempt, errText)
}

func (p *Postgres) NotificationFailed(ctx context.Context, id int64, at, nextAttempt time.Time, errText string) error {
	return notificationFailed(ctx, p, id, at, nextAttempt, errText)
}

func notificationFailed(ctx context.Context, db dwriter, id int64, at, nextAttempt time.Time, errText string) error {
	errText = cutText(cleanText(errText), maxErrText)
	return db.dwrite(ctx, "notification failed", func(ctx context.Context, q dtx) error {
		if err := notificationExists(ctx, q, id); err != nil {
			return err
		}
		return q.exec(ctx, `UPDATE notifications SET next_attempt = ?, last_attempt = ?, last_error = ?
			WHERE id = ? AND done_at IS NULL`, q.t(nextAttempt), q.t(at), errText, id)
	})
}

func notificationExists(ctx context.Context, q dtx, id int64) error {
	rows, err := q.query(ctx, `SELECT id FROM notifications WHERE id = ?`, id)
	if err != nil {
		return err
	}
	var got int64
	if err := scanOne(rows, &got); errors.Is(err, errNoRow) {
		return errNotFound("store: no notification %d", id)
	} else if err != nil {
		return err
	}
	return nil
}

// cutText cuts s to at most n bytes on a rune boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
