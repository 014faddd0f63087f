#!/usr/bin/env bash
# The service's benchmark, in one run on one machine (see bench/README.md):
#   Postgres and an S3 endpoint in containers, the release build of the server, then at each
#   connection count: POST /api/upload (fresh key per request) and GET /api/access (complete
#   assets) with wrk, and pgbench running the same SQL statements in prepared mode against the
#   same database. Prints one table. The server listens on 127.0.0.1, the containers publish
#   their ports on 127.0.0.1 only, and everything is removed at exit.
#
# Environment (all optional):
#   UPLOADER_TEST_POSTGRES_IMAGE  Postgres image (default postgres:17-alpine, as the tests)
#   UPLOADER_TEST_MINIO_IMAGE     S3 endpoint image (default the tests' MinIO release)
#   BENCH_DURATION                seconds per measurement (default 10)
#   BENCH_CONNECTIONS             connection counts (default "8 64")
#   BENCH_PORT                    port of the server under test (default 18080)
#   BENCH_SKIP_BUILD=1            use the release binary already built
#   BENCH_RATE_LIMIT              off (default), memory or redis: rate limits on, with buckets
#                                 too large to refuse anything, so their cost is measured; redis
#                                 starts Debian's redis-server on a loopback port
#   BENCH_WEBHOOKS                off (default), recorded or delivered: one webhook endpoint
#                                 subscribed to every event type, so the request path records
#                                 events; with recorded the dispatcher is idle while measured
#                                 (only the writes are measured), with delivered it sends them all
#                                 to bench/receiver.py on a loopback port while measured
#   BENCH_SEED                    assets seeded into the table before measuring (default 0):
#                                 100 owners (the bench owner among them), 1 in 100 pending;
#                                 when set, the run also measures GET /api/assets pages and a
#                                 sweep of BENCH_SWEEP expired pending assets with objects
#   BENCH_SWEEP                   expired pending assets the sweep measurement removes
#                                 (default 100000; only with BENCH_SEED)
#   CARGO_TARGET_DIR              where the release binary is built (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR="$ROOT/bench"
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-postgres:17-alpine}
S3_IMAGE=${UPLOADER_TEST_MINIO_IMAGE:-minio/minio:RELEASE.2025-02-28T09-55-16Z}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-"8 64"}
PORT=${BENCH_PORT:-18080}
THREADS=$(nproc)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BINARY="$TARGET_DIR/release/cloud-asset-uploader"
ASSETS=128 # complete assets GET /api/access picks from (pgbench takes at most 128 scripts)
# The server runs the production profile, so requests authenticate with an API key.
API_KEY="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OWNER=bench
NAME="cau-bench-$$"
WORK=$(mktemp -d)
SERVER_PID=""
RATE_LIMIT=${BENCH_RATE_LIMIT:-off}
REDIS_PID=""
WEBHOOKS=${BENCH_WEBHOOKS:-off}
RECEIVER_PID=""
SEED=${BENCH_SEED:-0}
SWEEP=${BENCH_SWEEP:-100000}

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    local status=$?
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    [[ -n "$RECEIVER_PID" ]] && kill "$RECEIVER_PID" 2>/dev/null && wait "$RECEIVER_PID" 2>/dev/null
    docker rm -f "$NAME-pg" "$NAME-s3" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM

install_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v pgbench >/dev/null || missing+=(postgresql-client)
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    [[ -x /usr/bin/time ]] || missing+=(time)
    [[ $RATE_LIMIT != redis ]] || command -v redis-server >/dev/null || missing+=(redis-server)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

port_of() { docker port "$1" "$2" | head -n1 | sed 's/.*://'; }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1" | head -n1; }
pg_answers() { PGCONNECT_TIMEOUT=2 PGPASSWORD=uploader psql -qtA -h "$1" -p "$2" -U uploader -c 'SELECT 1' uploader >/dev/null 2>&1; }
s3_answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$1:$2/") != 000 ]]; }

start_containers() {
    log "starting $PG_IMAGE and $S3_IMAGE"
    # fsync=off as in the test containers: the server and pgbench are compared on the work
    # each statement costs, not on this disk's flush latency, which varies run to run.
    docker run -d --name "$NAME-pg" -p 127.0.0.1::5432 \
        -e POSTGRES_USER=uploader -e POSTGRES_PASSWORD=uploader -e POSTGRES_DB=uploader \
        "$PG_IMAGE" -c fsync=off -c max_connections=300 >/dev/null
    docker run -d --name "$NAME-s3" -p 127.0.0.1::9000 \
        -e MINIO_ROOT_USER=minioadmin -e MINIO_ROOT_PASSWORD=minioadmin \
        "$S3_IMAGE" server /data >/dev/null
    # Both are reached at their address on Docker's bridge network when the host can route
    # there (Docker on Linux): a published port goes through docker-proxy, a user-space copy
    # loop that took 40 % of a CPU at 64 connections and stretched every statement's latency,
    # for the server and pgbench alike. Elsewhere (Docker Desktop), the published port.
    local pg_ip s3_ip pg_port s3_port
    pg_ip=$(ip_of "$NAME-pg")
    s3_ip=$(ip_of "$NAME-s3")
    pg_port=$(port_of "$NAME-pg" 5432)
    s3_port=$(port_of "$NAME-s3" 9000)
    PG_HOST=""
    # While initialising, the image's temporary server listens on its Unix socket only.
    for _ in $(seq 1 120); do
        if [[ -n "$pg_ip" ]] && pg_answers "$pg_ip" 5432; then
            PG_HOST=$pg_ip PG_PORT=5432
            break
        elif pg_answers 127.0.0.1 "$pg_port"; then
            # Up on the published port but not on the bridge address: unroutable from here.
            pg_answers "$pg_ip" 5432 || { PG_HOST=127.0.0.1 PG_PORT=$pg_port; break; }
        fi
        sleep 0.5
    done
    if [[ -z "$PG_HOST" ]]; then
        log "Postgres did not start"; docker logs "$NAME-pg" | tail -20; return 1
    fi
    S3_HOST=127.0.0.1 S3_PORT=$s3_port
    for _ in $(seq 1 60); do
        if [[ -n "$s3_ip" ]] && s3_answers "$s3_ip" 9000; then
            S3_HOST=$s3_ip S3_PORT=9000
            break
        fi
        s3_answers 127.0.0.1 "$s3_port" && break
        sleep 0.5
    done
    DATABASE_URL="postgres://uploader:uploader@$PG_HOST:$PG_PORT/uploader"
    log "Postgres at $PG_HOST:$PG_PORT, S3 at $S3_HOST:$S3_PORT"
}

# The rate-limit settings of $RATE_LIMIT, as environment assignments.
rate_limit_env() {
    case $RATE_LIMIT in
    off) echo UPLOADER_RATE_LIMIT__ENABLED=false ;;
    memory | redis)
        echo UPLOADER_RATE_LIMIT__ENABLED=true UPLOADER_RATE_LIMIT__BACKEND="$RATE_LIMIT" \
            UPLOADER_RATE_LIMIT__ISSUE__PER_SECOND=1000000 UPLOADER_RATE_LIMIT__ISSUE__BURST=1000000 \
            UPLOADER_RATE_LIMIT__READ__PER_SECOND=1000000 UPLOADER_RATE_LIMIT__READ__BURST=1000000
        [[ $RATE_LIMIT != redis ]] || echo UPLOADER_RATE_LIMIT__REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
        ;;
    *) log "BENCH_RATE_LIMIT must be off, memory or redis"; return 1 ;;
    esac
}

# The webhook settings of $WEBHOOKS, as environment assignments.
webhook_env() {
    local endpoints="[{\"name\":\"bench\",\"url\":\"http://127.0.0.1:$RECEIVER_PORT/hook\",\"secret\":\"whsec_$(printf 'bench-webhook-secret-0123456789' | base64)\"}]"
    case $WEBHOOKS in
    off) ;;
    recorded) echo UPLOADER_WEBHOOKS__ENDPOINTS="$endpoints" UPLOADER_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true UPLOADER_WEBHOOKS__POLL_INTERVAL=1h ;;
    delivered) echo UPLOADER_WEBHOOKS__ENDPOINTS="$endpoints" UPLOADER_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true UPLOADER_WEBHOOKS__BATCH_SIZE=256 ;;
    *) log "BENCH_WEBHOOKS must be off, recorded or delivered"; return 1 ;;
    esac
}

start_receiver() {
    RECEIVER_PORT=$((PORT + 2))
    python3 "$BENCH_DIR/receiver.py" "$RECEIVER_PORT" >"$WORK/receiver.log" 2>&1 &
    RECEIVER_PID=$!
    until curl -s -o /dev/null -X POST "http://127.0.0.1:$RECEIVER_PORT/hook"; do sleep 0.1; done
    log "webhook receiver at 127.0.0.1:$RECEIVER_PORT"
}

# With BENCH_WEBHOOKS=recorded: waits until the restarted server's dispatcher has moved and
# attempted the set-up's events once (the receiver's port is closed, so each is due again
# only after its backoff) and gone to sleep for its hour-long poll interval, so the
# measurements see the writes of the request path and no delivery work.
wait_for_idle_dispatcher() {
    local busy
    for _ in $(seq 1 100); do
        busy=$(PGPASSWORD=uploader psql -qtA -h "$PG_HOST" -p "$PG_PORT" -U uploader -c \
            "SELECT (SELECT count(*) FROM event_intake) + (SELECT count(*) FROM event_deliveries WHERE status = 'pending' AND attempts = 0)" uploader)
        [[ $busy != 0 ]] || { sleep 1; return 0; }
        sleep 0.2
    done
    log "the dispatcher did not go idle"; return 1
}

start_redis() {
    REDIS_PORT=$((PORT + 1))
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
    log "Redis at 127.0.0.1:$REDIS_PORT ($(redis-server --version | cut -d' ' -f3))"
}

# Becomes "$@" (extra assignments first) with the settings the server under test runs with:
# run it in the background or in a subshell, so that its PID is the program's.
with_server_env() {
    exec env UPLOADER_PROFILE=production \
        UPLOADER_SERVER__BIND="127.0.0.1:$PORT" \
        UPLOADER_DATABASE__URL="$DATABASE_URL" \
        UPLOADER_STORAGE__BACKEND=s3 \
        UPLOADER_STORAGE__BUCKET=bench-assets \
        UPLOADER_STORAGE__S3__ENDPOINT="http://$S3_HOST:$S3_PORT" \
        UPLOADER_STORAGE__S3__CREATE_BUCKET=true \
        UPLOADER_AUTH__MODE=api_key \
        UPLOADER_AUTH__API_KEYS="[{\"owner\":\"$OWNER\",\"sha256\":\"$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)\"}]" \
        AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
        AWS_EC2_METADATA_DISABLED=true \
        "$@"
}

# Starts the server; READY_MS is the time from process start to /readyz answering 200.
start_server() {
    local started now limits webhooks
    limits=$(rate_limit_env)
    webhooks=$(webhook_env)
    started=$(date +%s%N)
    # shellcheck disable=SC2086 # the assignments are words on purpose
    with_server_env $limits $webhooks \
        "$BINARY" --config-dir "$ROOT/config" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the server exited:"; tail -20 "$WORK/server.log" >&2; return 1
        fi
        now=$(date +%s%N)
        if ((now - started > 60000000000)); then log "not ready after 60 s"; return 1; fi
    done
    now=$(date +%s%N)
    READY_MS=$(((now - started) / 1000000))
}

stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# Creates $ASSETS complete assets through the API (request, upload to S3, complete).
create_complete_assets() {
    log "creating $ASSETS complete assets"
    local api="http://127.0.0.1:$PORT/api" grant id url i
    : >"$WORK/ids"
    printf 'hello' >"$WORK/file"
    for i in $(seq 1 "$ASSETS"); do
        grant=$(curl -sf -X POST "$api/upload" -H 'content-type: application/json' -H "x-api-key: $API_KEY" \
            -d "{\"object_key\":\"complete/$i\",\"content_type\":\"text/plain\",\"content_length\":5}")
        id=$(jq -r .asset_id <<<"$grant")
        url=$(jq -r .signed_info.url <<<"$grant")
        local headers=()
        # Exactly the signed headers (content-length aside: curl sends it).
        while IFS= read -r header; do headers+=(-H "$header"); done \
            < <(jq -r '.signed_info.headers | to_entries[] | select(.key != "content-length") | "\(.key): \(.value)"' <<<"$grant")
        curl -sf -X PUT "$url" "${headers[@]}" --data-binary @"$WORK/file" >/dev/null
        curl -sf -X PUT "$api/status" -H 'content-type: application/json' -H "x-api-key: $API_KEY" \
            -d "{\"asset_id\":\"$id\",\"uploaded_status\":\"complete\"}" >/dev/null
        echo "$id" >>"$WORK/ids"
    done
}

# The SQL of each endpoint, exactly as src/db/assets.rs sends it, with pgbench variables for
# its parameters (pgbench -M prepared makes them bind parameters of a prepared statement).
COLUMNS="id, owner, object_key, storage_key, bucket, status, content_type, content_length, checksum_sha256, stored_size, created_at, upload_expires_at, completed_at"

write_pgbench_scripts() {
    # POST /api/upload: one INSERT … ON CONFLICT … RETURNING. Ids ascend like UUIDv7s, keys
    # are fresh per transaction (`n` counts each client's transactions, `run` each run).
    cat >"$WORK/upload.sql" <<SQL
\set n :n + 1
\set idnum :run * 1000000000000 + :n * 1000 + :client_id
INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type, content_length, checksum_sha256, upload_expires_at) VALUES (lpad(to_hex(:idnum::bigint), 32, '0')::uuid, :owner, concat('pgbench/', :run::text, '/', :client_id::text, '/', :n::text), concat('uploads/$OWNER/pgbench/', :run::text, '/', :client_id::text, '/', :n::text), :bucket, 'pending', :content_type, :content_length, NULL, :expires) ON CONFLICT (owner, object_key) DO UPDATE SET content_type = EXCLUDED.content_type, content_length = EXCLUDED.content_length, checksum_sha256 = EXCLUDED.checksum_sha256, upload_expires_at = EXCLUDED.upload_expires_at WHERE assets.status = 'pending' RETURNING $COLUMNS, (xmax = 0) AS inserted;
SQL
    # GET /api/access: one SELECT by id and owner; one script per complete asset, picked at
    # random per transaction, as wrk picks ids at random.
    ACCESS_ARGS=()
    local k=0 id
    while read -r id; do
        k=$((k + 1))
        printf 'SELECT %s FROM assets WHERE id = :id_%d AND owner = :owner;\n' "$COLUMNS" "$k" \
            >"$WORK/access-$k.sql"
        ACCESS_ARGS+=(-f "$WORK/access-$k.sql" -D "id_$k=$id")
    done <"$WORK/ids"
}

reset_peak_rss() { echo 5 >"/proc/$SERVER_PID/clear_refs"; }
# User plus system CPU time of the server so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# wrk against the server; prints "rps p50 p99 errors peak_rss cpu_us_per_request".
run_wrk() {
    local script=$1 path=$2 connections=$3 tag=$4 out ticks
    reset_peak_rss
    ticks=$(cpu_ticks)
    out=$(BENCH_DIR="$BENCH_DIR" BENCH_IDS="$WORK/ids" BENCH_API_KEY="$API_KEY" wrk -t"$THREADS" -c"$connections" \
        -d"${DURATION}s" --timeout 5s -s "$BENCH_DIR/$script" \
        "http://127.0.0.1:$PORT$path" -- "$tag")
    awk -v rss="$(peak_rss_mib)" -v ticks=$(($(cpu_ticks) - ticks)) -v hz="$(getconf CLK_TCK)" \
        '/^RESULT/ { printf "%.0f %.2f %.2f %d %s %.0f\n", $2 / $3, $4, $5, $6, rss, ticks / hz * 1e6 / $2 }' <<<"$out"
}

# pgbench with the given scripts; prints "tps p50 p99 errors".
run_pgbench() {
    local connections=$1 run=$2 prefix out
    shift 2
    prefix="$WORK/pgbench-$run"
    out=$(PGPASSWORD=uploader pgbench -n -M prepared -h "$PG_HOST" -p "$PG_PORT" -U uploader \
        -c "$connections" -j "$THREADS" -T "$DURATION" -l --log-prefix="$prefix" \
        -D run="$run" -D n=0 -D owner="$OWNER" -D bucket=bench-assets \
        -D content_type=application/octet-stream -D content_length=1024 \
        -D expires=2030-01-01T00:00:00Z "$@" uploader 2>&1) || { log "$out"; return 1; }
    local tps failed
    tps=$(awk '/^tps = / { printf "%.0f", $3 }' <<<"$out")
    failed=$(awk '/number of failed transactions/ { print $5 }' <<<"$out")
    cat "$prefix".* | awk '{ print $3 }' | sort -n >"$prefix.latencies"
    awk -v tps="$tps" -v failed="${failed:-0}" '
        { v[NR] = $1 }
        END { printf "%s %.2f %.2f %d\n", tps, v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, failed }
    ' "$prefix.latencies"
    rm -f "$prefix".*
}

describe_machine() {
    echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
    echo "postgres: $PG_IMAGE (server $(PGPASSWORD=uploader psql -qtA -h "$PG_HOST" -p "$PG_PORT" -U uploader -c "SHOW server_version" uploader)), s3: $S3_IMAGE"
    echo "load average (1/5/15 min) before the run: $LOAD_AT_START; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rate limits: $RATE_LIMIT (BENCH_RATE_LIMIT); assets seeded before measuring: $SEED (BENCH_SEED)"
    local events=""
    case $WEBHOOKS in
    recorded) events=", $(PGPASSWORD=uploader psql -qtA -h "$PG_HOST" -p "$PG_PORT" -U uploader -c "SELECT count(*) FROM event_intake" uploader) events recorded and left in the intake" ;;
    delivered) events=", $(wc -l <"$WORK/receiver.log") events received" ;;
    esac
    echo "webhooks: $WEBHOOKS (BENCH_WEBHOOKS)$events"
    echo "tools: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $(pgbench --version); ${DURATION} s per measurement, wrk/pgbench threads: $THREADS"
}

sql() { PGPASSWORD=uploader psql -qtA -h "$PG_HOST" -p "$PG_PORT" -U uploader -c "$1" uploader; }

# BENCH_SEED: $SEED assets of 100 owners (the bench owner's are every hundredth), one in a
# hundred of each owner's pending (upload URL still valid), created over the past, then
# ANALYZE as autovacuum would.
seed_assets() {
    log "seeding $SEED assets"
    sql "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type,
                             content_length, stored_size, created_at, upload_expires_at, completed_at)
         SELECT gen_random_uuid(),
                CASE WHEN i % 100 = 0 THEN '$OWNER' ELSE 'seed-owner-' || (i % 100) END,
                'seed/' || i, 'uploads/seed/' || i, 'bench-assets',
                CASE WHEN i / 100 % 100 = 0 THEN 'pending' ELSE 'complete' END,
                'application/octet-stream', 1024,
                CASE WHEN i / 100 % 100 = 0 THEN NULL ELSE 1024 END,
                now() - make_interval(secs => i),
                now() + interval '1 day',
                CASE WHEN i / 100 % 100 = 0 THEN NULL ELSE now() END
         FROM generate_series(1, $SEED) AS i" >/dev/null
    sql "ANALYZE assets" >/dev/null
}

# The path of the page of the bench owner's listing that starts after its first $1 assets.
later_page() {
    local cursor="" i path
    for i in $(seq 1 "$(($1 / 1000))"); do
        path="/api/assets?limit=1000${cursor:+&cursor=$cursor}"
        cursor=$(curl -sf "http://127.0.0.1:$PORT$path" -H "x-api-key: $API_KEY" | jq -r .next_cursor)
    done
    echo "/api/assets?limit=100&cursor=$cursor"
}

# wrk on one page path at $2 connections; prints "rps p50 p99 errors".
run_list() {
    local out
    out=$(BENCH_DIR="$BENCH_DIR" BENCH_API_KEY="$API_KEY" BENCH_LIST_PATH="$1" \
        wrk -t"$((THREADS < $2 ? THREADS : $2))" -c"$2" -d"${DURATION}s" -s "$BENCH_DIR/list.lua" \
        "http://127.0.0.1:$PORT" | awk '/^RESULT/ { printf "%.0f %s %s %s", $2 / $3, $4, $5, $6 }')
    echo "$out"
}

# Pages of the bench owner's listing (it holds SEED / 100 assets), at 1 and 8 connections.
measure_listing() {
    local later rows=() path name c
    later=$(later_page 5000)
    for name in first later pending; do
        case $name in
            first) path="/api/assets?limit=100" ;;
            later) path=$later ;;
            pending) path="/api/assets?limit=100&status=pending&prefix=seed/" ;;
        esac
        for c in 1 8; do
            log "measuring the $name page at $c connections"
            rows+=("$name|$c|$(run_list "$path" "$c")")
        done
    done
    echo
    echo "GET /api/assets, the bench owner's $((SEED / 100)) of $SEED assets, 100 a page:"
    printf '| %-34s | %5s | %6s | %6s | %6s | %6s |\n' page conns rps "p50 ms" "p99 ms" errors
    printf '|%s|\n' "------------------------------------|-------|--------|--------|--------|--------"
    local row r p50 p99 err
    for row in "${rows[@]}"; do
        IFS='|' read -r name c r <<<"$row"
        read -r rps p50 p99 err <<<"$r"
        case $name in
            first) name="first page" ;;
            later) name="after 5000 (cursor)" ;;
            pending) name="first, status=pending&prefix=seed/" ;;
        esac
        printf '| %-34s | %5s | %6s | %6s | %6s | %6s |\n' "$name" "$c" "$rps" "$p50" "$p99" "$err"
    done
}

# $SWEEP pending assets whose upload URL expired a day ago (past lifecycle.pending_grace),
# each with a 5-byte object in the bucket, removed by one `sweep` run with the server stopped.
measure_sweep() {
    log "seeding $SWEEP expired pending assets with their objects"
    sql "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type,
                             content_length, created_at, upload_expires_at)
         SELECT gen_random_uuid(), 'sweep-owner', 'sweep/' || i,
                'uploads/sweep/' || (i % 100) || '/' || i, 'bench-assets', 'pending',
                'application/octet-stream', 5, now() - interval '2 days', now() - interval '1 day'
         FROM generate_series(1, $SWEEP) AS i" >/dev/null
    sql "ANALYZE assets" >/dev/null
    python3 - "$WORK/objects/bench-assets/uploads/sweep" "$SWEEP" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.makedirs(f"{root}/{d}", exist_ok=True)
for i in range(1, count + 1):
    with open(f"{root}/{i % 100}/{i}", "wb") as f:
        f.write(b"hello")
PY
    docker cp -q "$WORK/objects/." "$NAME-s3:/data/"
    local before after rows seconds rss
    before=$(docker exec "$NAME-s3" find /data/bench-assets/uploads/sweep -type f | wc -l)
    log "sweeping $before objects"
    (with_server_env /usr/bin/time -f "%e %M" -o "$WORK/sweep.time" \
        "$BINARY" --config-dir "$ROOT/config" sweep >"$WORK/sweep.out" 2>&1)
    read -r seconds rss <"$WORK/sweep.time"
    after=$(docker exec "$NAME-s3" find /data/bench-assets/uploads/sweep -type f | wc -l)
    rows=$(sql "SELECT count(*) FROM assets WHERE owner = 'sweep-owner'")
    echo
    echo "sweep of $SWEEP expired pending assets with objects (lifecycle.sweep_batch_size default):"
    echo "  ${seconds} s, $(awk -v n="$SWEEP" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }') assets/s, peak RSS $((rss / 1024)) MiB; objects before $before, after $after; records left $rows"
}

main() {
    LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
    install_tools
    if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
        log "building the release binary"
        (cd "$ROOT" && cargo build --release --quiet)
    fi
    start_containers
    [[ $RATE_LIMIT != redis ]] || start_redis
    RECEIVER_PORT=$((PORT + 2))
    [[ $WEBHOOKS != delivered ]] || start_receiver
    local first restart
    start_server
    first=$READY_MS
    create_complete_assets
    stop_server
    ((SEED == 0)) || seed_assets
    start_server
    restart=$READY_MS
    [[ $WEBHOOKS != recorded ]] || wait_for_idle_dispatcher
    write_pgbench_scripts

    # Pages first: the upload measurements below add some 200 000 assets to the bench owner.
    ((SEED == 0)) || measure_listing >"$WORK/listing.txt"

    # Warm-up: the pool opens its connections, caches fill; not measured.
    run_wrk upload.lua /api/upload 64 warmup >/dev/null
    run_wrk access.lua /api/access 64 warmup >/dev/null

    local results=() run=0 c server pg
    for c in $CONNECTIONS; do
        run=$((run + 1))
        log "measuring at $c connections"
        server=$(run_wrk upload.lua /api/upload "$c" "c$c")
        pg=$(run_pgbench "$c" "$run" -f "$WORK/upload.sql")
        results+=("POST /api/upload|$c|$server|$pg")
        server=$(run_wrk access.lua /api/access "$c" "c$c")
        pg=$(run_pgbench "$c" "$run" "${ACCESS_ARGS[@]}")
        results+=("GET /api/access|$c|$server|$pg")
    done

    echo
    describe_machine
    echo "process start to /readyz 200: ${first} ms (first start: migrations, bucket), ${restart} ms (restart)"
    echo
    printf '| %-16s | %5s | %-7s | %6s | %6s | %6s | %6s | %9s | %6s | %5s |\n' \
        workload conns side rps "p50 ms" "p99 ms" errors "peak RSS" "CPU/rq" ratio
    printf '|%s|\n' "------------------|-------|---------|--------|--------|--------|--------|-----------|--------|-------"
    local row workload conns s p
    for row in "${results[@]}"; do
        IFS='|' read -r workload conns s p <<<"$row"
        read -r s_rps s_p50 s_p99 s_err s_rss s_cpu <<<"$s"
        read -r p_rps p_p50 p_p99 p_err <<<"$p"
        printf '| %-16s | %5s | %-7s | %6s | %6s | %6s | %6s | %5s MiB | %3s µs | %5s |\n' \
            "$workload" "$conns" server "$s_rps" "$s_p50" "$s_p99" "$s_err" "$s_rss" "$s_cpu" \
            "$(awk -v a="$s_rps" -v b="$p_rps" 'BEGIN { printf "%.2f", a / b }')"
        printf '| %-16s | %5s | %-7s | %6s | %6s | %6s | %6s | %9s | %6s | %5s |\n' \
            "" "$conns" pgbench "$p_rps" "$p_p50" "$p_p99" "$p_err" "" "" ""
    done
    if ((SEED > 0)); then
        cat "$WORK/listing.txt"
        stop_server
        measure_sweep
    fi
}

main "$@"
