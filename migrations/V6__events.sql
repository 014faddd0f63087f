-- The outbox: one row per change of an asset that a webhook endpoint subscribed to, written by
-- the same statement as the change itself, so an event exists exactly when its change
-- committed. `payload` is the JSON body sent to receivers, built once, so every attempt of a
-- delivery sends the same bytes. No foreign key to assets: deleted and expired assets have
-- events too.
CREATE TABLE events (
    id         uuid        PRIMARY KEY,
    type       text        NOT NULL,
    asset_id   uuid        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per event and subscribed endpoint (by its configured name), inserted with the
-- event. The dispatcher claims due rows (`next_attempt_at <= now()`) and pushes
-- `next_attempt_at` out by a lease while it tries them, so a crashed replica's claims
-- become due again. `started_at` begins the window of `webhooks.max_age` (reset by a manual
-- retry). Delivered and failed rows are kept for `webhooks.retention`, then pruned with their
-- event.
CREATE TABLE event_deliveries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint         text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CONSTRAINT event_deliveries_status_check
                                 CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    finished_at      timestamptz,
    CONSTRAINT event_deliveries_event_endpoint_key UNIQUE (event_id, endpoint),
    CONSTRAINT event_deliveries_finished_check CHECK ((status = 'pending') = (finished_at IS NULL))
);

-- The dispatcher's claim: due pending deliveries, earliest first (also the queue gauges).
CREATE INDEX event_deliveries_due_idx ON event_deliveries (next_attempt_at) WHERE status = 'pending';
-- `events list --failed` and `events retry --all-failed`, latest first.
CREATE INDEX event_deliveries_finished_idx ON event_deliveries (finished_at) WHERE status <> 'pending';
-- Pruning: events older than the retention whose deliveries all finished before it (their
-- deliveries go with them); the NOT EXISTS probe uses the (event_id, endpoint) key.
CREATE INDEX events_created_at_idx ON events (created_at);
