-- Deadlines (docs/deadlines.md): the cases the obligation engine plans,
-- their events and obligations, the breaches found, and the outbox of breach
-- notifications. SQLite dialect; times as in 00001 (UTC text, six
-- fractional digits, so text order is time order).
--
-- History is kept: no row of case_events, obligations or breaches is ever
-- deleted. An obligation that is cancelled or re-planned stays, with its
-- final status.

-- +goose Up
-- A case is one municipality's case ID. region and agreement (the agreement
-- version) are fixed when the case's first event is recorded. id is assigned
-- by the store as max(id)+1 inside the write transaction.
CREATE TABLE cases (
    id           INTEGER NOT NULL PRIMARY KEY CHECK (id > 0),
    municipality TEXT    NOT NULL,
    case_id      TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    agreement    TEXT    NOT NULL,
    created      TEXT    NOT NULL,
    UNIQUE (municipality, case_id)
) STRICT;

-- Operators may know a case ID without its municipality.
CREATE INDEX cases_case_id ON cases (case_id);

-- The events the engine was given, in order (seq 1, 2, ... per case); data
-- is the whole deadline.Event as JSON.
CREATE TABLE case_events (
    case_ref  INTEGER NOT NULL REFERENCES cases (id),
    seq       INTEGER NOT NULL CHECK (seq > 0),
    type      TEXT    NOT NULL,
    at        TEXT    NOT NULL,
    bundle_id TEXT    NOT NULL,
    data      TEXT    NOT NULL,
    PRIMARY KEY (case_ref, seq)
) STRICT;

-- One row per obligation (id is deadline.Obligation.ID, unique in its
-- case), upserted on every change; ord keeps the engine's order. data is the
-- whole deadline.Obligation as JSON (what the engine reloads); the other
-- columns repeat what queries need.
CREATE TABLE obligations (
    case_ref           INTEGER NOT NULL REFERENCES cases (id),
    id                 TEXT    NOT NULL,
    ord                INTEGER NOT NULL,
    rule               TEXT    NOT NULL,
    party              TEXT    NOT NULL,
    unit               TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    due                TEXT    NOT NULL,
    created            TEXT    NOT NULL,
    satisfied_at       TEXT,
    breached_at        TEXT,
    missed_by_workdays INTEGER,
    missed_by_hours    REAL,
    cancelled_at       TEXT,
    cancel_reason      TEXT    NOT NULL,
    replanned_from     TEXT,
    replaces           TEXT    NOT NULL,
    data               TEXT    NOT NULL,
    PRIMARY KEY (case_ref, id)
) STRICT;

-- The detector's index: only pending obligations, by due time, so finding
-- the k overdue ones costs O(k + log n) however many are open.
CREATE INDEX obligations_pending_due ON obligations (due, case_ref, id) WHERE status = 'pending';

-- Open obligations by rule (a metric).
CREATE INDEX obligations_open_rule ON obligations (rule) WHERE status IN ('pending', 'breached');

-- One row per breach, and never two for one obligation. status is breached,
-- or met_late once the obligation was satisfied after all.
CREATE TABLE breaches (
    id                 INTEGER NOT NULL PRIMARY KEY CHECK (id > 0),
    case_ref           INTEGER NOT NULL,
    obligation_id      TEXT    NOT NULL,
    municipality       TEXT    NOT NULL,
    case_id            TEXT    NOT NULL,
    region             TEXT    NOT NULL,
    agreement          TEXT    NOT NULL,
    rule               TEXT    NOT NULL,
    party              TEXT    NOT NULL,
    due                TEXT    NOT NULL,
    breached_at        TEXT    NOT NULL,
    missed_by_workdays INTEGER,
    missed_by_hours    REAL,
    status             TEXT    NOT NULL,
    UNIQUE (case_ref, obligation_id),
    FOREIGN KEY (case_ref, obligation_id) REFERENCES obligations (case_ref, id)
) STRICT;

CREATE INDEX breaches_at ON breaches (breached_at, id);
CREATE INDEX breaches_region ON breaches (region, breached_at, id);
CREATE INDEX breaches_municipality ON breaches (municipality, breached_at, id);
CREATE INDEX breaches_party ON breaches (party, breached_at, id);
CREATE INDEX breaches_rule ON breaches (rule, breached_at, id);

-- The notification outbox: one row per breach, written in the breach's
-- transaction. A claim moves next_attempt to the end of its lease; done_at
-- is set once delivered.
CREATE TABLE notifications (
    id           INTEGER NOT NULL PRIMARY KEY CHECK (id > 0),
    breach_id    INTEGER NOT NULL UNIQUE REFERENCES breaches (id),
    payload      BLOB    NOT NULL,
    created      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT    NOT NULL,
    last_attempt TEXT,
    last_error   TEXT    NOT NULL DEFAULT '',
    done_at      TEXT
) STRICT;

CREATE INDEX notifications_due ON notifications (next_attempt, id) WHERE done_at IS NULL;

-- +goose Down
DROP TABLE notifications;
DROP TABLE breaches;
DROP TABLE obligations;
DROP TABLE case_events;
DROP TABLE cases;
