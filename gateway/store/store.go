// Package store is the gateway's durable state behind one small interface:
// accepted bundles and their parts' blob keys, deliveries (the inboxes), and
// the append-only, hash-chained audit log. Two implementations share one
// conformance suite (storetest): SQLite (the embedded default) and
// PostgreSQL (production; several gatewayd processes may share one).
//
// Ordering guarantee: deliveries are numbered by Seq in commit order, so a
// reader that has seen Seq n never later finds a new delivery with Seq <= n
// (PostgreSQL sequences alone do not give this; every writing transaction
// takes one advisory lock). The audit chain is extended under the same lock,
// so it is one line even with several processes.
package store

import (
	"context"
	"time"
)

// Bundle is an accepted bundle as stored.
type Bundle struct {
	ID             string // bundle UUID
	CaseID         string
	Purpose        string
	SenderOrg      string // registry ID of the sender
	SenderIdentity string // CVR:...-UID:... of the signing certificate
	CPR            string // the citizen: personal data, never logged
	MeetingDate    *time.Time
	InReplyTo      string
	Received       time.Time
	ManifestSHA256 string // SHA-256 of Manifest: "the same bundle" means the same bytes
	Manifest       []byte // the sender's signed manifest, byte for byte
	Acceptance     []byte // the gateway's countersigned acceptance (the receipt)
	Parts          []Part
}

// Part is a stored part: where its bytes are and what they must hash to.
type Part struct {
	ID        string
	Kind      string
	MediaType string
	Size      int64
	SHA256    string
	BlobKey   string
}

// Delivery is a bundle addressed to one organisation (and, for regions, one
// of its functions). Seq is the inbox cursor.
type Delivery struct {
	Seq       int64
	BundleID  string
	Recipient string // registry ID
	Function  string // "sundhedskoordinator", "klinisk-funktion", or "" for a municipality
	Created   time.Time
	AckedAt   *time.Time
	AckedBy   string // certificate identity of the acknowledging client

	// From the bundle, for inbox listings.
	CaseID   string
	Purpose  string
	From     string // sender registry ID
	Received time.Time
}

// AuditEntry is one line of the audit log. The store assigns Seq, PrevHash
// and Hash on append.
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Actor    string // certificate identity, CVR:...-UID:...
	ActorOrg string // registry ID, "" when unknown
	Action   string // push, push-duplicate, push-refused, inbox, read-manifest, read-part, ack, denied
	BundleID string
	CPR      string // the citizen concerned, "" when none
	Outcome  string // ok, or a stable error code
	Detail   string // safe text: never a CPR number or document content
	PrevHash string // hex; "" for the first entry
	Hash     string // hex SHA-256 over PrevHash and the entry's fields (see HashEntry)
}

// Store is the durable state. Every method is safe for concurrent use by
// many goroutines and, for PostgreSQL, many processes. Errors are *errs.Error
// with Kind NotFound, Conflict or Unavailable (the database is unreachable:
// nothing was written, retry later) where those apply.
type Store interface {
	// CommitBundle stores b, its deliveries and the audit entry in one
	// transaction. When a bundle with b.ID exists already it stores nothing
	// new and returns the existing bundle with created == false if its
	// ManifestSHA256 equals b's, or a Conflict error if it differs.
	CommitBundle(ctx context.Context, b *Bundle, deliveries []Delivery, audit AuditEntry) (stored *Bundle, created bool, err error)

	// Bundle returns a stored bundle with its parts, or NotFound.
	Bundle(ctx context.Context, id string) (*Bundle, error)

	// Deliveries lists the deliveries of one bundle.
	Deliveries(ctx context.Context, bundleID string) ([]Delivery, error)

	// Inbox lists the deliveries to recipient with Seq > after, oldest
	// first, at most limit.
	Inbox(ctx context.Context, recipient string, after int64, limit int) ([]Delivery, error)

	// LastSeq is the highest delivery Seq committed (0 when none): a cheap
	// "anything new?" for long polls across processes.
	LastSeq(ctx context.Context) (int64, error)

	// Ack records that recipient has the bundle (idempotent: a second ack
	// keeps the first time) and appends the audit entry, in one transaction.
	// NotFound when no delivery of the bundle is addressed to recipient.
	Ack(ctx context.Context, bundleID, recipient, by string, at time.Time, audit AuditEntry) error

	// Audit appends one entry to the chain.
	Audit(ctx context.Context, e AuditEntry) error

	// AuditEntries returns entries with Seq > after, oldest first, at most limit.
	AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error)

	// AuditByCPR returns every entry concerning one citizen, oldest first.
	AuditByCPR(ctx context.Context, cpr string) ([]AuditEntry, error)

	// BlobReferenced reports whether a blob key belongs to a committed part
	// (the janitor deletes unreferenced objects left by failed pushes).
	BlobReferenced(ctx context.Context, key string) (bool, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error

	Close() error
}
