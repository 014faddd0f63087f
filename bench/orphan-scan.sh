#!/usr/bin/env bash
# The orphan scan (`sweep --orphans`) over a large store (see bench/README.md, "Orphan scan"):
# the release build with the local backend and Postgres in a container; BENCH_OBJECTS objects
# under storage.key_prefix, two hours old, of which 9 in 10 are referenced by a complete asset
# and 1 in 10 by none. One `sweep --orphans` run with the server stopped, timed with
# /usr/bin/time (seconds, peak RSS); then the objects and records left are counted. The data
# files live in a fresh directory under /var/tmp (BENCH_DATA_DIR), removed at exit.
#
# Environment (all optional):
#   UPLOADER_TEST_POSTGRES_IMAGE  Postgres image (default postgres:17-alpine, as the tests)
#   BENCH_BINARY                  server binary to measure (default: the release build,
#                                 built unless BENCH_SKIP_BUILD=1)
#   BENCH_OBJECTS                 objects in the store (default 300000)
#   BENCH_DATA_DIR                parent of the data directory (default /var/tmp)
#   BENCH_PORT                    port of the server's one start (default 18091)
#   CARGO_TARGET_DIR              where the release binary is built (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-postgres:17-alpine}
OBJECTS=${BENCH_OBJECTS:-300000}
PORT=${BENCH_PORT:-18091}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BINARY=${BENCH_BINARY:-$TARGET_DIR/release/cloud-asset-uploader}
NAME="cau-orphan-bench-$$"
DATA=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/cau-orphan-bench.XXXXXX")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
need curl docker python3 /usr/bin/time

if [[ -z "${BENCH_BINARY:-}" && "${BENCH_SKIP_BUILD:-}" != 1 ]]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --bin cloud-asset-uploader)
fi

start_postgres "$PG_IMAGE"
sql() { docker exec -i -e PGPASSWORD=uploader "$NAME-pg" psql -qtA -v ON_ERROR_STOP=1 -h 127.0.0.1 -U uploader -d uploader -c "$1"; }

export UPLOADER_PROFILE=production \
    UPLOADER_SERVER__BIND="127.0.0.1:$PORT" \
    UPLOADER_SERVER__PUBLIC_URL="http://127.0.0.1:$PORT" \
    UPLOADER_DATABASE__URL="$DATABASE_URL" \
    UPLOADER_STORAGE__BACKEND=local \
    UPLOADER_STORAGE__LOCAL__ROOT="$DATA/objects" \
    UPLOADER_STORAGE__LOCAL__SIGNING_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    UPLOADER_AUTH__MODE=api_key \
    UPLOADER_AUTH__API_KEYS='[{"owner":"bench","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]'

# One start migrates the database and records the store; the scan refuses a store the
# database does not record.
"$BINARY" --config-dir "$ROOT/config" >>"$DATA/server.log" 2>&1 &
SERVER_PID=$!
wait_until_ready "http://127.0.0.1:$PORT" "$DATA/server.log"
kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

log "seeding $OBJECTS objects (9 in 10 referenced)"
python3 - "$DATA/objects/assets/uploads/scan" "$OBJECTS" <<'PY'
import os, sys, time
root, count = sys.argv[1], int(sys.argv[2])
old = time.time() - 7200
for d in range(100):
    os.makedirs(f"{root}/{d}", exist_ok=True)
for i in range(1, count + 1):
    path = f"{root}/{i % 100}/{i}"
    with open(path, "wb") as f:
        f.write(b"hello")
    os.utime(path, (old, old))
PY
sql "INSERT INTO assets (id, owner, object_key, storage_key, bucket, status, content_type,
                         content_length, stored_size, created_at, upload_expires_at, completed_at)
     SELECT gen_random_uuid(), 'scan-owner', 'scan/' || i,
            'uploads/scan/' || (i % 100) || '/' || i, 'assets', 'complete',
            'application/octet-stream', 5, 5, now() - interval '2 hours',
            now() - interval '1 hour', now() - interval '2 hours'
     FROM generate_series(1, $OBJECTS) AS i WHERE i % 10 <> 0" >/dev/null
sql "ANALYZE assets" >/dev/null
orphans=$((OBJECTS / 10))

sync
log "scanning"
/usr/bin/time -f "%e %M" -o "$DATA/scan.time" \
    "$BINARY" --config-dir "$ROOT/config" sweep --orphans >"$DATA/scan.out" 2>"$DATA/scan.err" ||
    { tail -20 "$DATA/scan.err" >&2; exit 1; }
read -r seconds rss <"$DATA/scan.time"
removed=$(grep -c '^removed orphaned object ' "$DATA/scan.out" || true)
left=$(find "$DATA/objects/assets/uploads/scan" -type f | wc -l)
rows=$(sql "SELECT count(*) FROM assets WHERE owner = 'scan-owner'")

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); binary: $BINARY"
echo "orphan scan of $OBJECTS objects ($orphans orphans), local backend:"
echo "  ${seconds} s, $(awk -v n="$OBJECTS" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }') objects/s, peak RSS $((rss / 1024)) MiB; removed $removed (expected $orphans), objects left $left (expected $((OBJECTS - orphans))), records $rows"
