#!/usr/bin/env bash
# What the outbox costs Postgres (see bench/README.md, "Events"): pgbench runs the statements
# of POST /api/upload and PUT /api/status (a new pending asset, then its completion), as
# src/db/assets.rs sends them, in three forms:
#   plain       the statements without events: what runs when no endpoint subscribed (and
#               what ran before events existed);
#   two-tables  with one endpoint, the first outbox (migration V6 alone): each transaction
#               writes two events and two deliveries, jsonb bodies, six indexes;
#   intake      with one endpoint, what the server sends now: each transaction writes two
#               rows into `event_intake` (json bodies, one index); the dispatcher's move into
#               `events` and `event_deliveries` is off the request path and not measured here.
# Prepared mode, fsync=off as in run.sh.
#
# Environment (all optional): UPLOADER_TEST_POSTGRES_IMAGE, BENCH_DURATION (default 10),
# BENCH_CONNECTIONS (default "8 64"), BENCH_ROUNDS (default 1: the three forms run one after
# the other this many times, so a machine's changing load spreads over all three).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-postgres:17-alpine}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-"8 64"}
ROUNDS=${BENCH_ROUNDS:-1}
NAME="cau-outbox-$$"
WORK=$(mktemp -d)
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT INT TERM

docker run -d --name "$NAME" -p 127.0.0.1::5432 -e POSTGRES_USER=uploader \
    -e POSTGRES_PASSWORD=uploader -e POSTGRES_DB=uploader "$PG_IMAGE" -c fsync=off >/dev/null
PG_HOST=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NAME")
PG_PORT=5432
export PGPASSWORD=uploader
until psql -qtA -h "$PG_HOST" -p "$PG_PORT" -U uploader -c 'SELECT 1' uploader >/dev/null 2>&1; do sleep 0.5; done
for migration in $(ls "$ROOT"/migrations/V*.sql | sort -V); do
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U uploader -v ON_ERROR_STOP=1 -f "$migration" uploader >/dev/null
done

COLUMNS="id, owner, object_key, storage_key, bucket, status, content_type, content_length, checksum_sha256, stored_size, created_at, upload_expires_at, completed_at, multipart_upload_id, part_size, upload_token_id"
KEY="concat('outbox/', :run::text, '/', :client_id::text, '/', :n::text)"
VALUES="(lpad(to_hex(:idnum::bigint), 32, '0')::uuid, :owner, $KEY, concat('uploads/', $KEY), 'bench-assets', 'pending', 'application/octet-stream', 1024, NULL, '2030-01-01T00:00:00Z', NULL)"
INSERT="INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type, content_length, checksum_sha256, upload_expires_at, upload_token_id) VALUES $VALUES ON CONFLICT (owner, object_key) DO UPDATE SET content_type = EXCLUDED.content_type, content_length = EXCLUDED.content_length, checksum_sha256 = EXCLUDED.checksum_sha256, upload_expires_at = EXCLUDED.upload_expires_at WHERE assets.status = 'pending' RETURNING $COLUMNS, (xmax = 0) AS inserted"
UPDATE="UPDATE assets SET status = 'complete', completed_at = now(), stored_size = 1024, multipart_upload_id = NULL, part_size = NULL WHERE id = lpad(to_hex(:idnum::bigint), 32, '0')::uuid AND owner = :owner AND status = 'pending' RETURNING $COLUMNS"
TAIL="SELECT $COLUMNS FROM assets WHERE id = lpad(to_hex(:idnum::bigint), 32, '0')::uuid AND owner = :owner AND NOT EXISTS (SELECT 1 FROM completed)"
# (pgbench would take the format's ":MI" for a variable: the colons are written \x3a.)
ts() { echo "to_char(($1) AT TIME ZONE 'UTC', E'YYYY-MM-DD\"T\"HH24\\x3aMI\\x3aSS.US\"Z\"')"; }
# The event CTEs, for the CTE `$1`, event type `$2`, rows matching `$3`: the first outbox
# (`two_tables`) and db::events::record_events (`intake`).
body() {
    echo "$1_build_object('type', '$2', 'timestamp', $(ts 'now()'), 'data', $1_build_object('asset_id', s.id, 'owner', s.owner, 'object_key', s.object_key, 'bucket', s.bucket, 'storage_key', s.storage_key, 'size', coalesce(s.stored_size, s.content_length), 'content_type', s.content_type, 'checksum_sha256', s.checksum_sha256, 'created_at', $(ts s.created_at), 'completed_at', $(ts s.completed_at)))"
}
two_tables() {
    echo ", $1_event AS (INSERT INTO events (id, type, asset_id, payload) SELECT gen_random_uuid(), '$2', s.id, $(body jsonb "$2") FROM $1 s WHERE ($3) RETURNING id), $1_deliveries AS (INSERT INTO event_deliveries (event_id, endpoint) SELECT e.id, t.endpoint FROM $1_event e CROSS JOIN unnest(:endpoints::text[]) AS t(endpoint))"
}
intake() {
    echo ", $1_event AS (INSERT INTO event_intake (type, asset_id, endpoints, payload) SELECT '$2', s.id, :endpoints::text[], $(body json "$2") FROM $1 s WHERE $3)"
}
HEADER='\set n :n + 1
\set idnum :run * 1000000000000 + :n * 1000 + :client_id'
cat >"$WORK/plain.sql" <<SQL
$HEADER
$INSERT;
WITH completed AS ($UPDATE) SELECT $COLUMNS FROM completed UNION ALL $TAIL;
SQL
cat >"$WORK/two_tables.sql" <<SQL
$HEADER
WITH issued AS ($INSERT)$(two_tables issued asset.created s.inserted) SELECT * FROM issued;
WITH completed AS ($UPDATE)$(two_tables completed asset.completed true) SELECT $COLUMNS FROM completed UNION ALL $TAIL;
SQL
cat >"$WORK/intake.sql" <<SQL
$HEADER
WITH issued AS ($INSERT)$(intake issued asset.created s.inserted) SELECT * FROM issued;
WITH completed AS ($UPDATE)$(intake completed asset.completed true) SELECT $COLUMNS FROM completed UNION ALL $TAIL;
SQL

run=0
printf '| form | conns | tps | p50 ms | p99 ms | failed |\n|---|---|---|---|---|---|\n'
for c in $CONNECTIONS; do
  for _ in $(seq "$ROUNDS"); do
    for variant in "plain plain {}" "two-tables two_tables {bench}" "intake intake {bench}"; do
        read -r form script endpoints <<<"$variant"
        run=$((run + 1))
        out=$(pgbench -n -M prepared -h "$PG_HOST" -p "$PG_PORT" -U uploader -c "$c" -j "$(nproc)" \
            -T "$DURATION" -l --log-prefix="$WORK/log-$run" -D run="$run" -D n=0 -D owner=bench \
            -D endpoints="$endpoints" -f "$WORK/$script.sql" uploader 2>&1) || { echo "$out" >&2; exit 1; }
        tps=$(awk '/^tps = / { printf "%.0f", $3 }' <<<"$out")
        failed=$(awk '/number of failed transactions/ { print $5 }' <<<"$out")
        cat "$WORK/log-$run".* | awk '{ print $3 }' | sort -n >"$WORK/lat"
        awk -v label="$form" -v c="$c" -v tps="$tps" -v failed="${failed:-0}" \
            '{ v[NR] = $1 } END { printf "| %s | %s | %s | %.2f | %.2f | %s |\n", label, c, tps, v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, failed }' "$WORK/lat"
    done
  done
done
