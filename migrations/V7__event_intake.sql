-- The outbox's intake: what the statement of a change writes when an endpoint subscribed to
-- its type. One row per event, with the names of the endpoints subscribed at that moment and
-- the JSON body, and only the primary key to maintain, so the request path pays for one small
-- insert (measured in bench/README.md, "Events"). The dispatcher of any replica moves intake
-- rows into `events` and `event_deliveries` (one statement: deleted here, inserted there), so
-- an event is never lost between the two, and never moved twice (`FOR UPDATE SKIP LOCKED`).
CREATE TABLE event_intake (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type       text        NOT NULL,
    asset_id   uuid        NOT NULL,
    endpoints  text[]      NOT NULL,
    payload    json        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Events written before this migration keep their deliveries; from now on `event_deliveries`
-- rows are inserted only by the dispatcher.
