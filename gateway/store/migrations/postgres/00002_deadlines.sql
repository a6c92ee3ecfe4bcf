-- Deadlines (docs/deadlines.md): the cases the obligation engine plans,
-- their events and obligations, the breaches found, and the outbox of breach
-- notifications. PostgreSQL dialect, equivalent to sqlite/00002.
--
-- History is kept: no row of case_events, obligations or breaches is ever
-- deleted. An obligation that is cancelled or re-planned stays, with its
-- final status. Ids are assigned by the store as max(id)+1 under the store's
-- advisory write lock, like delivery seq.

-- +goose Up
-- A case is one municipality's case ID. region and agreement (the agreement
-- version) are fixed when the case's first event is recorded.
CREATE TABLE cases (
    id           bigint      NOT NULL PRIMARY KEY CHECK (id > 0),
    municipality text        NOT NULL,
    case_id      text        NOT NULL,
    region       text        NOT NULL,
    agreement    text        NOT NULL,
    created      timestamptz NOT NULL,
    UNIQUE (municipality, case_id)
);

-- Operators may know a case ID without its municipality.
CREATE INDEX cases_case_id ON cases (case_id);

-- The events the engine was given, in order (seq 1, 2, ... per case); data
-- is the whole deadline.Event as JSON.
CREATE TABLE case_events (
    case_ref  bigint      NOT NULL REFERENCES cases (id),
    seq       int         NOT NULL CHECK (seq > 0),
    type      text        NOT NULL,
    at        timestamptz NOT NULL,
    bundle_id text        NOT NULL,
    data      jsonb       NOT NULL,
    PRIMARY KEY (case_ref, seq)
);

-- One row per obligation (id is deadline.Obligation.ID, unique in its
-- case), upserted on every change; ord keeps the engine's order. data is the
-- whole deadline.Obligation as JSON (what the engine reloads); the other
-- columns repeat what queries need.
CREATE TABLE obligations (
    case_ref           bigint           NOT NULL REFERENCES cases (id),
    id                 text             NOT NULL,
    ord                int              NOT NULL,
    rule               text             NOT NULL,
    party              text             NOT NULL,
    unit               text             NOT NULL,
    status             text             NOT NULL,
    due                timestamptz      NOT NULL,
    created            timestamptz      NOT NULL,
    satisfied_at       timestamptz,
    breached_at        timestamptz,
    missed_by_workdays int,
    missed_by_hours    double precision,
    cancelled_at       timestamptz,
    cancel_reason      text             NOT NULL,
    replanned_from     timestamptz,
    replaces           text             NOT NULL,
    data               jsonb            NOT NULL,
    PRIMARY KEY (case_ref, id)
);

-- The detector's index: only pending obligations, by due time, so finding
-- the k overdue ones costs O(k + log n) however many are open. (The
-- detector's query spells status = 'pending' as a constant so that the
-- planner can use this partial index with any plan.)
CREATE INDEX obligations_pending_due ON obligations (due, case_ref, id) WHERE status = 'pending';

-- Open obligations by rule (a metric).
CREATE INDEX obligations_open_rule ON obligations (rule) WHERE status IN ('pending', 'breached');

-- One row per breach, and never two for one obligation. status is breached,
-- or met_late once the obligation was satisfied after all.
CREATE TABLE breaches (
    id                 bigint           NOT NULL PRIMARY KEY CHECK (id > 0),
    case_ref           bigint           NOT NULL,
    obligation_id      text             NOT NULL,
    municipality       text             NOT NULL,
    case_id            text             NOT NULL,
    region             text             NOT NULL,
    agreement          text             NOT NULL,
    rule               text             NOT NULL,
    party              text             NOT NULL,
    due                timestamptz      NOT NULL,
    breached_at        timestamptz      NOT NULL,
    missed_by_workdays int,
    missed_by_hours    double precision,
    status             text             NOT NULL,
    UNIQUE (case_ref, obligation_id),
    FOREIGN KEY (case_ref, obligation_id) REFERENCES obligations (case_ref, id)
);

CREATE INDEX breaches_at ON breaches (breached_at, id);
CREATE INDEX breaches_region ON breaches (region, breached_at, id);
CREATE INDEX breaches_municipality ON breaches (municipality, breached_at, id);
CREATE INDEX breaches_party ON breaches (party, breached_at, id);
CREATE INDEX breaches_rule ON breaches (rule, breached_at, id);

-- The notification outbox: one row per breach, written in the breach's
-- transaction. A claim moves next_attempt to the end of its lease; done_at
-- is set once delivered.
CREATE TABLE notifications (
    id           bigint      NOT NULL PRIMARY KEY CHECK (id > 0),
    breach_id    bigint      NOT NULL UNIQUE REFERENCES breaches (id),
    payload      bytea       NOT NULL,
    created      timestamptz NOT NULL,
    attempts     int         NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    last_attempt timestamptz,
    last_error   text        NOT NULL DEFAULT '',
    done_at      timestamptz
);

CREATE INDEX notifications_due ON notifications (next_attempt, id) WHERE done_at IS NULL;

-- +goose Down
DROP TABLE notifications;
DROP TABLE breaches;
DROP TABLE obligations;
DROP TABLE case_events;
DROP TABLE cases;
