-- The gateway's store, PostgreSQL dialect. The tables live in the first
-- schema of the connection's search_path (current_schema()), so one database
-- can hold several gateways, or several test runs, side by side.
-- timestamptz keeps microseconds; the store truncates to microseconds
-- before writing (and before hashing audit entries).

-- +goose Up
CREATE TABLE bundles (
    id              text        NOT NULL PRIMARY KEY,
    case_id         text        NOT NULL,
    purpose         text        NOT NULL,
    sender_org      text        NOT NULL,
    sender_identity text        NOT NULL,
    cpr             text        NOT NULL,
    meeting_date    timestamptz,
    in_reply_to     text        NOT NULL,
    received        timestamptz NOT NULL,
    manifest_sha256 text        NOT NULL,
    manifest        bytea       NOT NULL,
    acceptance      bytea       NOT NULL
);

CREATE TABLE parts (
    bundle_id  text   NOT NULL REFERENCES bundles (id),
    ordinal    int    NOT NULL,
    part_id    text   NOT NULL,
    kind       text   NOT NULL,
    media_type text   NOT NULL,
    size       bigint NOT NULL,
    sha256     text   NOT NULL,
    blob_key   text   NOT NULL UNIQUE,
    PRIMARY KEY (bundle_id, ordinal),
    UNIQUE (bundle_id, part_id)
);

-- seq is assigned by the store as max(seq)+1 while holding the store's
-- advisory transaction lock, never by a sequence, so that commit order is
-- seq order across processes.
CREATE TABLE deliveries (
    seq       bigint      NOT NULL PRIMARY KEY CHECK (seq > 0),
    bundle_id text        NOT NULL REFERENCES bundles (id),
    recipient text        NOT NULL,
    function  text        NOT NULL,
    created   timestamptz NOT NULL,
    acked_at  timestamptz,
    acked_by  text        NOT NULL DEFAULT '',
    UNIQUE (bundle_id, recipient, function)
);

CREATE INDEX deliveries_inbox ON deliveries (recipient, seq);

CREATE TABLE audit (
    seq       bigint      NOT NULL PRIMARY KEY CHECK (seq > 0),
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    actor_org text        NOT NULL,
    action    text        NOT NULL,
    bundle_id text        NOT NULL,
    cpr       text        NOT NULL,
    outcome   text        NOT NULL,
    detail    text        NOT NULL,
    prev_hash text        NOT NULL,
    hash      text        NOT NULL
);

CREATE INDEX audit_cpr ON audit (cpr, seq);

-- The audit log is append-only; the hash chain detects tampering, this
-- trigger prevents the accidental kind.
-- +goose StatementBegin
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- +goose Down
DROP TABLE audit;
DROP FUNCTION audit_append_only();
DROP TABLE deliveries;
DROP TABLE parts;
DROP TABLE bundles;
