-- The gateway's store, SQLite dialect. Times are TEXT in UTC with exactly
-- six fractional digits ("2006-01-02T15:04:05.000000Z"), so they sort as
-- text and round-trip to the microsecond. Tables are STRICT: a value of the
-- wrong type is an error, not a silent conversion.

-- +goose Up
CREATE TABLE bundles (
    id              TEXT NOT NULL PRIMARY KEY,
    case_id         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    sender_org      TEXT NOT NULL,
    sender_identity TEXT NOT NULL,
    cpr             TEXT NOT NULL,
    meeting_date    TEXT,
    in_reply_to     TEXT NOT NULL,
    received        TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    manifest        BLOB NOT NULL,
    acceptance      BLOB NOT NULL
) STRICT;

CREATE TABLE parts (
    bundle_id  TEXT    NOT NULL REFERENCES bundles (id),
    ordinal    INTEGER NOT NULL,
    part_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    media_type TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    blob_key   TEXT    NOT NULL UNIQUE,
    PRIMARY KEY (bundle_id, ordinal),
    UNIQUE (bundle_id, part_id)
) STRICT;

-- seq is assigned by the store as max(seq)+1 inside the write transaction,
-- never by AUTOINCREMENT, so that commit order is seq order.
CREATE TABLE deliveries (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    bundle_id TEXT    NOT NULL REFERENCES bundles (id),
    recipient TEXT    NOT NULL,
    function  TEXT    NOT NULL,
    created   TEXT    NOT NULL,
    acked_at  TEXT,
    acked_by  TEXT    NOT NULL DEFAULT '',
    UNIQUE (bundle_id, recipient, function)
) STRICT;

CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);

CREATE TABLE audit (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    actor_org TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    bundle_id TEXT    NOT NULL,
    cpr       TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_cpr ON audit (cpr, seq);

-- The audit log is append-only; the hash chain detects tampering, these
-- triggers prevent the accidental kind.
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit;
DROP TABLE deliveries;
DROP TABLE parts;
DROP TABLE bundles;
