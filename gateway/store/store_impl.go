package store

// Behaviour shared by the SQLite and PostgreSQL implementations, beyond what
// the Store interface spells out:
//
//   - Times. Every time is stored in UTC truncated to the microsecond (the
//     precision of PostgreSQL's timestamptz) and returned in UTC. The store
//     truncates BEFORE it hashes an audit entry, so the stored time formats
//     to the same RFC 3339 text the hash was computed over and VerifyChain
//     holds on what AuditEntries returns. An audit entry with a zero At is
//     stamped with the current time.
//
//   - CommitBundle. The stored bundle returned for a new bundle is a copy of
//     b with normalised times (the caller's value is not modified). The
//     audit entry is appended only when the bundle is created: an identical
//     re-push writes nothing at all (the caller may Audit a
//     "push-duplicate" entry itself), a conflicting one writes nothing and
//     returns Conflict. The audit entry's BundleID and CPR, when empty, are
//     taken from the bundle so AuditByCPR finds it. A delivery's BundleID
//     may be empty (it is b.ID; any other value is Invalid), its Created
//     defaults to b.Received, and Seq, AckedAt, AckedBy and the bundle
//     fields are ignored: the store assigns Seq.
//
//   - Ack. Acknowledges every not yet acknowledged delivery of the bundle to
//     recipient (a region may hold one per function); the audit entry is
//     appended on every successful call, the first time and by is kept. The
//     audit entry's BundleID and CPR, when empty, are taken from the bundle.
//
//   - Text. Every text field is valid UTF-8 without NUL (PostgreSQL's text
//     cannot hold anything else, and both stores behave alike): CommitBundle
//     refuses other bundle, part and delivery text as Invalid; Audit, Ack
//     and CommitBundle replace such bytes in audit entries (and Ack's by)
//     with U+FFFD before hashing, so the chain holds on what is stored; a
//     lookup by such a key finds nothing (NotFound, an empty list, false).
//
//   - Listing limits. Inbox and AuditEntries with limit <= 0 return at most
//     DefaultLimit entries. AuditByCPR("") returns nothing. Deliveries of an
//     unknown bundle is an empty list, not NotFound.
//
//   - Errors. *errs.Error with codes store.not_found (NotFound),
//     store.conflict (Conflict: a different manifest under an existing
//     bundle ID, or a blob key or delivery already taken), store.unavailable
//     (Unavailable: the database could not be reached, the store is closed,
//     the database is busy beyond its timeout, an I/O error, or the context
//     ended; the cause is reachable with errors.Is/As, e.g. context.Canceled),
//     store.invalid (Invalid: a malformed argument) and store.internal
//     (anything else). An Unavailable error from a write means it was not
//     committed, except when the connection failed while the commit itself
//     was in flight: then the outcome is unknown, and retrying CommitBundle
//     is safe because it is idempotent.

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// DefaultLimit is the number of entries Inbox and AuditEntries return at
// most when called with limit <= 0.
const DefaultLimit = 1000

// Error codes of the store.
const (
	CodeNotFound    = "store.not_found"
	CodeConflict    = "store.conflict"
	CodeUnavailable = "store.unavailable"
	CodeInvalid     = "store.invalid"
	CodeInternal    = "store.internal"
)

// NormTime is how the store keeps a time: UTC, truncated to microseconds.
func NormTime(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := NormTime(*t)
	return &n
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func limitOf(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return limit
}

// prepareCommit validates the arguments of CommitBundle and returns normalised
// copies of the bundle, the deliveries and the audit entry.
func prepareCommit(b *Bundle, ds []Delivery, audit AuditEntry) (*Bundle, []Delivery, AuditEntry, error) {
	if b == nil || b.ID == "" {
		return nil, nil, audit, errInvalid("store: bundle without ID")
	}
	if err := bundleText(b, ds); err != nil {
		return nil, nil, audit, err
	}
	nb := *b
	nb.MeetingDate = normTimePtr(b.MeetingDate)
	nb.Received = NormTime(b.Received)
	nb.Manifest = nonNil(append([]byte(nil), b.Manifest...))
	nb.Acceptance = nonNil(append([]byte(nil), b.Acceptance...))
	nb.Parts = append([]Part(nil), b.Parts...)
	nds := make([]Delivery, len(ds))
	for i, d := range ds {
		if d.BundleID != "" && d.BundleID != b.ID {
			return nil, nil, audit, errInvalid("store: delivery %d belongs to another bundle", i)
		}
		if d.Recipient == "" {
			return nil, nil, audit, errInvalid("store: delivery %d without recipient", i)
		}
		created := nb.Received
		if !d.Created.IsZero() {
			created = NormTime(d.Created)
		}
		nds[i] = Delivery{
			BundleID: b.ID, Recipient: d.Recipient, Function: d.Function, Created: created,
			CaseID: nb.CaseID, Purpose: nb.Purpose, From: nb.SenderOrg, Received: nb.Received,
		}
	}
	if audit.BundleID == "" {
		audit.BundleID = nb.ID
	}
	if audit.CPR == "" {
		audit.CPR = nb.CPR
	}
	return &nb, nds, prepareAudit(audit), nil
}

// prepareAudit normalises At and the text; Seq, PrevHash and Hash are set
// by chainAudit.
func prepareAudit(e AuditEntry) AuditEntry {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = NormTime(e.At)
	for _, f := range []*string{&e.Actor, &e.ActorOrg, &e.Action, &e.BundleID, &e.CPR, &e.Outcome, &e.Detail} {
		*f = cleanText(*f)
	}
	return e
}

// validText reports whether s can be stored as text: valid UTF-8, no NUL.
func validText(s ...string) bool {
	for _, x := range s {
		if !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
			return false
		}
	}
	return true
}

// cleanText replaces what validText refuses with U+FFFD.
func cleanText(s string) string {
	if validText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func bundleText(b *Bundle, ds []Delivery) error {
	if !validText(b.ID, b.CaseID, b.Purpose, b.SenderOrg, b.SenderIdentity, b.CPR, b.InReplyTo, b.ManifestSHA256) {
		return errInvalid("store: bundle text is not valid UTF-8 or holds NUL")
	}
	for i, p := range b.Parts {
		if !validText(p.ID, p.Kind, p.MediaType, p.SHA256, p.BlobKey) {
			return errInvalid("store: part %d text is not valid UTF-8 or holds NUL", i)
		}
	}
	for i, d := range ds {
		if !validText(d.BundleID, d.Recipient, d.Function) {
			return errInvalid("store: delivery %d text is not valid UTF-8 or holds NUL", i)
		}
	}
	return nil
}

// chainAudit links e after the entry (lastSeq, lastHash) and hashes it. It
// must run under the store's write lock.
func chainAudit(e *AuditEntry, lastSeq int64, lastHash string) {
	e.Seq = lastSeq + 1
	e.PrevHash = lastHash
	e.Hash = HashEntry(*e)
}

func errNotFound(format string, args ...any) error {
	return errs.E(errs.NotFound, CodeNotFound, format, args...)
}

func errConflict(cause error, format string, args ...any) error {
	return errs.Wrap(errs.Conflict, CodeConflict, cause, format, args...)
}

func errInvalid(format string, args ...any) error {
	return errs.E(errs.Invalid, CodeInvalid, format, args...)
}

// errUnavailable builds the Unavailable error. The cause's text is kept out
// of Msg (driver messages can quote data); a context error is named.
func errUnavailable(cause error) error {
	switch {
	case errors.Is(cause, context.Canceled):
		return errs.Wrap(errs.Unavailable, CodeUnavailable, cause, "store: request canceled")
	case errors.Is(cause, context.DeadlineExceeded):
		return errs.Wrap(errs.Unavailable, CodeUnavailable, cause, "store: request timed out")
	}
	return errs.Wrap(errs.Unavailable, CodeUnavailable, cause, "store: database unavailable")
}

func errInternal(cause error, op string) error {
	return errs.Wrap(errs.Other, CodeInternal, cause, "store: %s failed", op)
}

// errClosed is the cause of the Unavailable error of a closed store.
var errClosed = errors.New("store is closed")

// isStoreError reports whether err is already one of ours.
func isStoreError(err error) bool {
	var e *errs.Error
	return errors.As(err, &e)
}

// notStored is the answer to a lookup by a key that cannot have been
// stored (see validText): the context's error when it is done, else
// notFound (nil for "an empty result").
func notStored(ctx context.Context, notFound error) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return notFound
}

// ctxErr returns the context's error as Unavailable, or nil.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return errUnavailable(err)
	}
	return nil
}
