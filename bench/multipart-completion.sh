#!/usr/bin/env bash
# Completion of a multipart upload on S3, two ways (see bench/README.md, "Completing a
# multipart upload on S3"):
#   (a) the whole file's `checksum_sha256` declared in POST /api/upload: completion reads
#       the assembled object back from the store to hash it;
#   (b) `part_checksums: true`, each part's SHA-256 declared in POST /api/upload/{id}/parts
#       and sent with its PUT: completion compares ListParts' checksums and reads nothing.
# The release build of the server, Postgres and an S3 store in containers. For one file of
# BENCH_MIB MiB of random bytes, BENCH_ROUNDS uploads per mode, the modes alternated (a b,
# b a, …). Each round: POST /api/upload, sign the parts, PUT them (curl, with the signed
# headers), then PUT /api/status, the only request timed (curl's time_total), then
# DELETE /api/assets/{id}. /metrics is scraped around each completion, so each mode gets the
# store's own CompleteMultipartUpload time and the server's read-backs; the bytes the store
# sends during each completion (its network counter) show whether the object was read back.
# Each (b) asset must report the composite_sha256 of its parts, `-<part count>` included.
# Prints one table. The server listens on 127.0.0.1 only; the containers publish their ports
# on 127.0.0.1 only (and are reached at their bridge addresses where the host routes there);
# the data files live in a fresh directory under /var/tmp and everything is removed at exit.
#
# Environment (all optional):
#   UPLOADER_TEST_POSTGRES_IMAGE     Postgres image (default postgres:17-alpine, as the tests)
#   UPLOADER_TEST_S3_CHECKSUM_IMAGE  S3 store that keeps part checksums (default
#                                    UPLOADER_TEST_MINIO_IMAGE, else the tests' MinIO release);
#                                    run as MinIO is: `server /data`, minioadmin, port 9000
#   BENCH_BINARY                     server binary to measure (default: the release build,
#                                    built with cargo into BENCH_TARGET_DIR)
#   BENCH_TARGET_DIR                 where that build goes (default /var/tmp/bench-release-target)
#   BENCH_MIB                        file size in MiB (default 200)
#   BENCH_PART_MIB                   part size in MiB (default 16, the server's default)
#   BENCH_ROUNDS                     measured uploads per mode (default 10)
#   BENCH_WARMUP                     unmeasured uploads per mode first (default 1)
#   BENCH_DATA_DIR                   parent of the data directory (default /var/tmp)
#   BENCH_PORT                       port of the server under test (default 18094)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-postgres:17-alpine}
S3_IMAGE=${UPLOADER_TEST_S3_CHECKSUM_IMAGE:-${UPLOADER_TEST_MINIO_IMAGE:-minio/minio:RELEASE.2025-02-28T09-55-16Z}}
FILE_MIB=${BENCH_MIB:-200}
PART_MIB=${BENCH_PART_MIB:-16}
ROUNDS=${BENCH_ROUNDS:-10}
WARMUP=${BENCH_WARMUP:-1}
PORT=${BENCH_PORT:-18094}
TARGET_DIR=${BENCH_TARGET_DIR:-/var/tmp/bench-release-target}
BINARY=${BENCH_BINARY:-$TARGET_DIR/release/cloud-asset-uploader}
MAX_PARTS=100 # uploads.max_presigned_parts, set explicitly below
API_KEY="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
NAME="cau-mpc-bench-$$"
DATA=$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/cau-mpc-bench.XXXXXX")
BASE="http://127.0.0.1:$PORT"
API="$BASE/api"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
need curl jq docker openssl split
if [[ $TARGET_DIR == /var/tmp/cloud-asset-uploader-target ]]; then
    log "BENCH_TARGET_DIR must not be the shared development target"; exit 1
fi

if [[ -z "${BENCH_BINARY:-}" ]]; then
    log "building the release binary into $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked --quiet)
fi

port_of() { docker port "$1" "$2" | head -n1 | sed 's/.*://'; }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1" | head -n1; }
answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$1:$2/") != 000 ]]; }

start_containers() {
    log "starting $PG_IMAGE and $S3_IMAGE"
    docker run -d --name "$NAME-s3" -p 127.0.0.1::9000 \
        -e MINIO_ROOT_USER=minioadmin -e MINIO_ROOT_PASSWORD=minioadmin \
        "$S3_IMAGE" server /data >/dev/null
    CONTAINERS+=("$NAME-s3")
    start_postgres "$PG_IMAGE"
    # The bridge address where the host routes there (Docker on Linux): no docker-proxy
    # copying every byte of every part; else the published port (Docker Desktop).
    local pg_ip s3_ip
    pg_ip=$(ip_of "$NAME-pg")
    s3_ip=$(ip_of "$NAME-s3")
    if [[ -n $pg_ip ]] && timeout 2 bash -c "exec 3<>/dev/tcp/$pg_ip/5432" 2>/dev/null; then
        DATABASE_URL="postgres://uploader:uploader@$pg_ip:5432/uploader"
    fi
    S3_ENDPOINT=""
    for _ in $(seq 1 60); do
        if [[ -n $s3_ip ]] && answers "$s3_ip" 9000; then S3_ENDPOINT="http://$s3_ip:9000"; break; fi
        if answers 127.0.0.1 "$(port_of "$NAME-s3" 9000)"; then
            S3_ENDPOINT="http://127.0.0.1:$(port_of "$NAME-s3" 9000)"; break
        fi
        sleep 0.5
    done
    [[ -n $S3_ENDPOINT ]] || { log "the S3 store did not start"; docker logs "$NAME-s3" 2>&1 | tail -20; return 1; }
    S3_PID=$(docker inspect -f '{{.State.Pid}}' "$NAME-s3")
    log "Postgres at ${DATABASE_URL##*@}, S3 at $S3_ENDPOINT"
}

start_server() {
    if curl -s -o /dev/null --max-time 1 "$BASE/"; then
        log "port $PORT is taken (set BENCH_PORT)"; return 1
    fi
    env UPLOADER_PROFILE=production \
        UPLOADER_SERVER__BIND="127.0.0.1:$PORT" \
        UPLOADER_SERVER__PUBLIC_URL="$BASE" \
        UPLOADER_DATABASE__URL="$DATABASE_URL" \
        UPLOADER_STORAGE__BACKEND=s3 \
        UPLOADER_STORAGE__BUCKET=bench-assets \
        UPLOADER_STORAGE__S3__ENDPOINT="$S3_ENDPOINT" \
        UPLOADER_STORAGE__S3__FORCE_PATH_STYLE=true \
        UPLOADER_STORAGE__S3__CREATE_BUCKET=true \
        UPLOADER_UPLOADS__MULTIPART_PART_SIZE=$((PART_MIB * 1048576)) \
        UPLOADER_UPLOADS__MAX_PRESIGNED_PARTS=$MAX_PARTS \
        UPLOADER_AUTH__MODE=api_key \
        UPLOADER_AUTH__API_KEYS="[{\"owner\":\"bench\",\"sha256\":\"$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)\"}]" \
        UPLOADER_RATE_LIMIT__ENABLED=false \
        AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
        AWS_EC2_METADATA_DISABLED=true \
        "$BINARY" --config-dir "$ROOT/config" >>"$DATA/server.log" 2>&1 &
    SERVER_PID=$!
    wait_until_ready "$BASE" "$DATA/server.log"
}

api() { curl -sS --fail-with-body -H 'content-type: application/json' -H "x-api-key: $API_KEY" "$@"; }
b64sha() { openssl dgst -sha256 -binary "$@" | base64; }

# The file, its SHA-256, its parts as files and each part's SHA-256, once, before the rounds.
prepare_file() {
    log "data in $DATA; generating the $FILE_MIB MiB file and its parts"
    SIZE=$((FILE_MIB * 1048576))
    PART_BYTES=$((PART_MIB * 1048576))
    head -c "$SIZE" /dev/urandom >"$DATA/file.bin"
    WHOLE_SHA=$(b64sha "$DATA/file.bin")
    split -b "$PART_BYTES" -d -a 5 "$DATA/file.bin" "$DATA/part."
    rm -f "$DATA/file.bin"
    PART_FILES=("$DATA"/part.*)
    PART_COUNT=${#PART_FILES[@]}
    PART_SHAS=()
    local f
    : >"$DATA/digests"
    for f in "${PART_FILES[@]}"; do
        PART_SHAS+=("$(b64sha "$f")")
        openssl dgst -sha256 -binary "$f" >>"$DATA/digests"
    done
    # What S3 reports for a COMPOSITE SHA-256: the SHA-256 of the parts' digests, `-<count>`.
    EXPECTED_COMPOSITE="$(b64sha "$DATA/digests")-$PART_COUNT"
}

# Sum of `uploader_storage_operation_duration_seconds_<sum|count>` of operation $2 (all
# outcomes) in the metrics text $1.
metric() {
    awk -v op="operation=\"$2\"" -v name="uploader_storage_operation_duration_seconds_$3{" '
        index($1, name) == 1 && index($1, op) { s += $2 }
        END { printf "%.6f\n", s + 0 }' <<<"$1"
}

# Bytes the store's container has sent on its network interface so far.
store_tx_bytes() { awk '/eth0:/ { sub(/.*eth0:/, ""); split($0, f, " "); print f[9] }' "/proc/$S3_PID/net/dev"; }

# Signs the parts of the upload GRANT (mode $1) and writes one line per part to $DATA/urls:
# {part_number, url, headers}.
sign_parts() {
    local mode=$1 id from to body
    id=$(jq -r .asset_id <<<"$GRANT")
    : >"$DATA/urls"
    if [[ $mode == a ]]; then
        jq -c '.signed_info.parts[] | {part_number, url, headers: (.headers // {})}' <<<"$GRANT" >>"$DATA/urls"
    elif [[ $(jq '.signed_info.parts | length' <<<"$GRANT") != 0 ]]; then
        log "mode b: signed_info.parts is not empty"; return 1
    fi
    from=$(($(wc -l <"$DATA/urls") + 1))
    while ((from <= PART_COUNT)); do
        to=$((from + MAX_PARTS - 1 < PART_COUNT ? from + MAX_PARTS - 1 : PART_COUNT))
        if [[ $mode == a ]]; then
            body=$(jq -cn --argjson from "$from" --argjson to "$to" '{part_numbers: [range($from; $to + 1)]}')
        else
            body=$(printf '%s\n' "${PART_SHAS[@]:from-1:to-from+1}" |
                jq -Rcn --argjson from "$from" '{parts: [inputs] | to_entries | map({part_number: (.key + $from), checksum_sha256: .value})}')
        fi
        api -X POST "$API/upload/$id/parts" -d "$body" |
            jq -c '.parts[] | {part_number, url, headers: (.headers // {})}' >>"$DATA/urls"
        from=$((to + 1))
    done
}

# PUTs every part of $DATA/urls with its headers; writes the completion body to
# $DATA/complete.json; prints the seconds the PUTs took together.
put_parts() {
    local id=$1 line n url etag started headers
    started=$(date +%s%N)
    : >"$DATA/etags"
    while IFS= read -r line; do
        n=$(jq -r .part_number <<<"$line")
        url=$(jq -r .url <<<"$line")
        headers=()
        while IFS= read -r header; do headers+=(-H "$header"); done \
            < <(jq -r '.headers | to_entries[] | select(.key != "content-length") | "\(.key): \(.value)"' <<<"$line")
        etag=$(curl -sS --fail-with-body -o /dev/null -w '%header{etag}' -T "${PART_FILES[n - 1]}" \
            -H 'Expect:' "${headers[@]}" "$url")
        [[ -n $etag ]] || { log "part $n: no ETag"; return 1; }
        jq -cn --argjson n "$n" --arg etag "$etag" '{part_number: $n, etag: $etag}' >>"$DATA/etags"
    done <"$DATA/urls"
    jq -s --arg id "$id" '{asset_id: $id, uploaded_status: "complete", parts: .}' "$DATA/etags" >"$DATA/complete.json"
    awk -v ns=$(($(date +%s%N) - started)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

# One upload in mode $1 (a: whole-file checksum, b: part checksums) of key $2; with $3 =
# measured, appends to $DATA/results one line: mode, completion s, CompleteMultipartUpload
# s and calls, hash_parts calls and s, stat s and calls, bytes the store sent, PUT s, load.
round() {
    local mode=$1 key=$2 measured=${3:-} body id put_s before after tx0 tx1 took
    if [[ $mode == a ]]; then
        body="{\"object_key\":\"$key\",\"content_type\":\"application/octet-stream\",\"content_length\":$SIZE,\"multipart\":true,\"checksum_sha256\":\"$WHOLE_SHA\",\"expires_in\":600}"
    else
        body="{\"object_key\":\"$key\",\"content_type\":\"application/octet-stream\",\"content_length\":$SIZE,\"multipart\":true,\"part_checksums\":true,\"expires_in\":600}"
    fi
    GRANT=$(api -X POST "$API/upload" -d "$body") || { log "POST /api/upload: $GRANT"; return 1; }
    id=$(jq -r .asset_id <<<"$GRANT")
    if [[ $(jq -r '"\(.signed_info.part_size) \(.signed_info.part_count)"' <<<"$GRANT") != "$PART_BYTES $PART_COUNT" ]]; then
        log "the server cut the upload differently: $(jq -c '.signed_info | {part_size, part_count}' <<<"$GRANT")"
        return 1
    fi
    sign_parts "$mode"
    put_s=$(put_parts "$id")
    before=$(curl -sf "$BASE/metrics")
    tx0=$(store_tx_bytes)
    took=$(api -o "$DATA/status.out" -w '%{time_total}' -X PUT "$API/status" -d @"$DATA/complete.json") ||
        { log "PUT /api/status: $(cat "$DATA/status.out")"; return 1; }
    tx1=$(store_tx_bytes)
    after=$(curl -sf "$BASE/metrics")
    if [[ $mode == b ]]; then
        local composite
        composite=$(api "$API/assets/$id" | jq -r '.composite_sha256 // empty')
        if [[ $composite != *"-$PART_COUNT" || $composite != "$EXPECTED_COMPOSITE" ]]; then
            log "asset $id: composite_sha256 '$composite', expected '$EXPECTED_COMPOSITE'"; return 1
        fi
    fi
    [[ $(api -o /dev/null -w '%{http_code}' -X DELETE "$API/assets/$id") == 204 ]] ||
        { log "DELETE /api/assets/$id did not answer 204"; return 1; }
    [[ -n $measured ]] || return 0
    local delta=()
    local op kind
    for op in multipart_complete:sum multipart_complete:count hash_parts:count hash_parts:sum stat:sum stat:count; do
        kind=${op#*:} op=${op%:*}
        delta+=("$(awk -v a="$(metric "$before" "$op" "$kind")" -v b="$(metric "$after" "$op" "$kind")" 'BEGIN { printf "%.6f", b - a }')")
    done
    echo "$mode $took ${delta[*]} $((tx1 - tx0)) $put_s $(cut -d' ' -f1 /proc/loadavg)" >>"$DATA/results"
}

# "p50 max" in milliseconds of the values on stdin (seconds).
p50_max() {
    sort -g | awk '{ v[NR] = $1 * 1000 } END { printf "%.0f %.0f\n", v[int((NR + 1) / 2)], v[NR] }'
}

summary() {
    local mode=$1 label=$2 p50 max rest
    read -r p50 max < <(awk -v m="$mode" '$1 == m { print $2 }' "$DATA/results" | p50_max)
    # The server's part: each completion less its store's CompleteMultipartUpload.
    rest=$(awk -v m="$mode" '$1 == m { print $2 - $3 }' "$DATA/results" | p50_max | cut -d' ' -f1)
    awk -v m="$mode" -v label="$label" -v p50="$p50" -v max="$max" -v rest="$rest" -v size="$SIZE" '
        $1 == m {
            n++; cs += $3; cn += $4; hn += $5; ss += $7; sn += $8; tx += $9; put += $10
            if ($9 >= 0.9 * size) reads++
        }
        END {
            printf "| %s | %s / %s | %.0f | %s | %d hash_parts; %d of %d completions read the object | %.0f | %.1f | %.2f |\n",
                label, p50, max, cn ? cs / cn * 1000 : 0, rest, hn, reads, n, sn ? ss / sn * 1000 : 0,
                tx / n / 1048576, put / n
        }' "$DATA/results"
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
prepare_file
start_containers
start_server
log "server $("$BINARY" --version 2>/dev/null || echo "$BINARY") ready; $PART_COUNT parts of $PART_MIB MiB"
: >"$DATA/results"
for i in $(seq 1 "$WARMUP"); do
    log "warm-up $i"
    round a "warmup/a/$i"
    round b "warmup/b/$i"
done
for i in $(seq 1 "$ROUNDS"); do
    log "round $i of $ROUNDS"
    # a b, b a, a b, …: neither mode always runs right after the other.
    if ((i % 2)); then order="a b"; else order="b a"; fi
    for mode in $order; do round "$mode" "bench/$mode/$i" measured; done
done
LOADS=$(awk '{ print $11 }' "$DATA/results" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo " to " hi }')

echo
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
echo "postgres: $PG_IMAGE, s3: $S3_IMAGE; binary: $BINARY"
echo "load average (1/5/15 min) before the run: $LOAD_AT_START; after: $(cut -d' ' -f1-3 /proc/loadavg); 1-minute load after each completion: $LOADS"
echo "file: $FILE_MIB MiB in $PART_COUNT parts of $PART_MIB MiB; $ROUNDS uploads per mode (after $WARMUP unmeasured), alternated"
echo
echo "| mode | completion p50 / max ms | of which the store's CompleteMultipartUpload, mean ms | completion less CompleteMultipartUpload, p50 ms | read-backs | stat (HEAD; in (a) also the read-back) mean ms | MiB the store sent during completion, mean | PUT of the parts, mean s |"
echo "|---|---|---|---|---|---|---|---|"
summary a "(a) whole-file checksum_sha256"
summary b "(b) part_checksums"
