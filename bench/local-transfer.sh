#!/usr/bin/env bash
# The local backend's data path on one machine (see bench/README.md, "Local backend
# transfers"): the release build of the server with the local backend and Postgres in a
# container, then
#   - `cp` of a 1 GiB file on the same disk (the reference),
#   - PUT of that file through its signed URL (size and SHA-256 declared),
#   - completing that asset (PUT /api/status),
#   - GET of it through its signed download URL,
#   - completion latency over BENCH_COMPLETIONS small and large assets (p50, p99, max).
# Prints one table. The server listens on 127.0.0.1 only; the data files live in a fresh
# directory under /var/tmp (BENCH_DATA_DIR) and everything is removed at exit.
#
# Environment (all optional):
#   UPLOADER_TEST_POSTGRES_IMAGE  Postgres image (default postgres:17-alpine, as the tests)
#   BENCH_BINARY                  server binary to measure (default: the release build,
#                                 built unless BENCH_SKIP_BUILD=1)
#   BENCH_FILE_MIB                size of the big file (default 1024)
#   BENCH_COMPLETIONS             completions measured per size (default 50)
#   BENCH_SMALL_BYTES             small asset size (default 4096)
#   BENCH_LARGE_MIB               large asset size for the completion latency (default 256)
#   BENCH_DATA_DIR                parent of the data directory (default /var/tmp)
#   BENCH_PORT                    port of the server under test (default 18090)
#   CARGO_TARGET_DIR              where the release binary is built (default target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-postgres:17-alpine}
FILE_MIB=${BENCH_FILE_MIB:-1024}
COMPLETIONS=${BENCH_COMPLETIONS:-50}
SMALL_BYTES=${BENCH_SMALL_BYTES:-4096}
LARGE_MIB=${BENCH_LARGE_MIB:-256}
PORT=${BENCH_PORT:-18090}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BINARY=${BENCH_BINARY:-$TARGET_DIR/release/cloud-asset-uploader}
API_KEY="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
NAME="cau-local-bench-$$"
DATA=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/cau-local-bench.XXXXXX")
API="http://127.0.0.1:$PORT/api"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
need curl jq docker openssl

if [[ -z "${BENCH_BINARY:-}" && "${BENCH_SKIP_BUILD:-}" != 1 ]]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --bin cloud-asset-uploader)
fi

start_server() {
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then
        log "port $PORT is taken (set BENCH_PORT)"; return 1
    fi
    env UPLOADER_PROFILE=production \
        UPLOADER_SERVER__BIND="127.0.0.1:$PORT" \
        UPLOADER_SERVER__PUBLIC_URL="http://127.0.0.1:$PORT" \
        UPLOADER_DATABASE__URL="$DATABASE_URL" \
        UPLOADER_STORAGE__BACKEND=local \
        UPLOADER_STORAGE__LOCAL__ROOT="$DATA/objects" \
        UPLOADER_STORAGE__LOCAL__SIGNING_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        UPLOADER_AUTH__MODE=api_key \
        UPLOADER_AUTH__API_KEYS="[{\"owner\":\"bench\",\"sha256\":\"$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)\"}]" \
        UPLOADER_RATE_LIMIT__ENABLED=false \
        "$BINARY" --config-dir "$ROOT/config" >>"$DATA/server.log" 2>&1 &
    SERVER_PID=$!
    wait_until_ready "http://127.0.0.1:$PORT" "$DATA/server.log"
}

api() { curl -sS --fail-with-body -H 'content-type: application/json' -H "x-api-key: $API_KEY" "$@"; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
now() { date +%s%N; }
# CPU seconds (user + system) the server has used so far.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }

# Requests an upload of file $2 as object $1 (size and SHA-256 declared) in one signed PUT,
# whatever its size (`multipart: false`); sets GRANT.
request_upload() {
    local size checksum
    size=$(stat -c %s "$2")
    checksum=$(openssl dgst -sha256 -binary "$2" | base64)
    GRANT=$(api -X POST "$API/upload" -d "{\"object_key\":\"$1\",\"content_type\":\"application/octet-stream\",\"content_length\":$size,\"checksum_sha256\":\"$checksum\",\"multipart\":false}") ||
        { log "POST /api/upload: $GRANT"; return 1; }
}

# PUTs file $1 to the signed URL of GRANT, streamed from disk (curl -T), with the signed
# headers; prints curl's total time in seconds.
put_file() {
    local url headers=()
    url=$(jq -r .signed_info.url <<<"$GRANT")
    while IFS= read -r header; do headers+=(-H "$header"); done \
        < <(jq -r '.signed_info.headers | to_entries[] | select(.key != "content-length") | "\(.key): \(.value)"' <<<"$GRANT")
    curl -sf -o /dev/null -w '%{time_total}\n' -T "$1" -H 'Expect:' "${headers[@]}" "$url"
}

# Completes GRANT's asset; prints the request's time in seconds.
complete() {
    api -o /dev/null -w '%{time_total}\n' -X PUT "$API/status" \
        -d "{\"asset_id\":\"$(jq -r .asset_id <<<"$GRANT")\",\"uploaded_status\":\"complete\"}"
}

delete_asset() { api -o /dev/null -X DELETE "$API/assets/$(jq -r .asset_id <<<"$GRANT")"; }

# Completion latencies of $COMPLETIONS assets holding file $1 (each deleted after, so the
# disk holds one at a time); prints "p50 p99 max" in milliseconds.
completion_latencies() {
    local i samples=()
    for i in $(seq 1 "$COMPLETIONS"); do
        request_upload "latency/$2/$i" "$1"
        put_file "$1" >/dev/null
        samples+=("$(complete)")
        delete_asset
    done
    printf '%s\n' "${samples[@]}" | sort -g | awk '
        { v[NR] = $1 * 1000 }
        END {
            p50 = v[int((NR + 1) / 2)]
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%.1f %.1f %.1f\n", p50, v[i99], v[NR]
        }'
}

log "data in $DATA; generating the ${FILE_MIB} MiB file"
head -c "$((FILE_MIB * 1024 * 1024))" /dev/urandom >"$DATA/big.bin"
head -c "$SMALL_BYTES" /dev/urandom >"$DATA/small.bin"
start_postgres "$PG_IMAGE"
start_server
log "server $("$BINARY" --version 2>/dev/null || echo "$BINARY") ready"

sync
started=$(now); cp "$DATA/big.bin" "$DATA/copy.bin"; cp_ns=$(($(now) - started))
started=$(now); sync; sync_ns=$(($(now) - started))
rm -f "$DATA/copy.bin"

request_upload "big/file.bin" "$DATA/big.bin"
cpu_before=$(server_cpu)
put_s=$(put_file "$DATA/big.bin")
put_cpu=$(awk -v a="$cpu_before" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
complete_s=$(complete)
url=$(api "$API/access?asset_id=$(jq -r .asset_id <<<"$GRANT")" | jq -r .url)
cpu_before=$(server_cpu)
get_s=$(curl -sf -o /dev/null -w '%{time_total}\n' "$url")
get_cpu=$(awk -v a="$cpu_before" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
delete_asset

log "completion latency: $COMPLETIONS small assets"
read -r small_p50 small_p99 small_max < <(completion_latencies "$DATA/small.bin" small)
head -c "$((LARGE_MIB * 1024 * 1024))" "$DATA/big.bin" >"$DATA/large.bin"
rm -f "$DATA/big.bin"
log "completion latency: $COMPLETIONS assets of $LARGE_MIB MiB"
read -r large_p50 large_p99 large_max < <(completion_latencies "$DATA/large.bin" large)

mib_s() { awk -v mib="$FILE_MIB" -v s="$1" 'BEGIN { printf "%.0f", mib / s }'; }
printf '\n| what | time | MiB/s | server CPU |\n|---|---|---|---|\n'
printf '| `cp` of the %d MiB file (page cache) | %s s | %s | |\n' "$FILE_MIB" "$(seconds "$cp_ns")" "$(mib_s "$(seconds "$cp_ns")")"
printf '| `sync` after it (to disk) | %s s | | |\n' "$(seconds "$sync_ns")"
printf '| PUT through the signed URL (fsynced) | %.3f s | %s | %s s |\n' "$put_s" "$(mib_s "$put_s")" "$put_cpu"
printf '| completion (checksum declared) | %.3f s | | |\n' "$complete_s"
printf '| GET through the signed URL | %.3f s | %s | %s s |\n' "$get_s" "$(mib_s "$get_s")" "$get_cpu"
printf '\n| completion latency, %d assets | p50 ms | p99 ms | max ms |\n|---|---|---|---|\n' "$COMPLETIONS"
printf '| %d bytes | %s | %s | %s |\n' "$SMALL_BYTES" "$small_p50" "$small_p99" "$small_max"
printf '| %d MiB | %s | %s | %s |\n' "$LARGE_MIB" "$large_p50" "$large_p99" "$large_max"
