#!/usr/bin/env bash
# The fuzz suite: schemathesis generates requests from the server's own /openapi.json and checks
# every answer against it (no 5xx, only documented statuses, the documented content type and
# body schema), once with `auth.mode = none` and once with a JWT. Postgres and the S3 stand-in
# run in containers on loopback ports, removed at exit. See tests/reliability/README.md.
#
# Needs: Docker, python3 (with venv), curl, and a built server binary (UPLOADER_BIN, default
# ${CARGO_TARGET_DIR:-target}/debug/cloud-asset-uploader; `cargo build --bin cloud-asset-uploader`).
#
# Environment (all optional):
#   FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 100: CI's bounded budget;
#                      e.g. 1000 for a local run)
#   FUZZ_SEED          the seed of both runs (default 20261202)
#   FUZZ_PORT          first of the two ports the servers listen on (default 18380)
#   FUZZ_REPORT_DIR    keep a JUnit report and a HAR of every request there (<dir>/none, <dir>/jwt)
#   TOOLS_DIR          where the schemathesis venv is kept between runs
#                      (default /var/tmp/cloud-asset-uploader-tools)
#   UPLOADER_TEST_POSTGRES_IMAGE / UPLOADER_TEST_MINIO_IMAGE  images, as the Rust suite's
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCHEMATHESIS_VERSION=4.32.5
PYJWT_VERSION=2.10.1
TOOLS_DIR=${TOOLS_DIR:-/var/tmp/cloud-asset-uploader-tools}
VENV="$TOOLS_DIR/schemathesis-$SCHEMATHESIS_VERSION"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
UPLOADER_BIN=${UPLOADER_BIN:-$TARGET/debug/cloud-asset-uploader}
PG_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-${OFFLINE_POSTGRES_IMAGE:-postgres:17-alpine}}
S3_IMAGE=${UPLOADER_TEST_MINIO_IMAGE:-${OFFLINE_MINIO_IMAGE:-minio/minio:RELEASE.2025-02-28T09-55-16Z}}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-100}
SEED=${FUZZ_SEED:-20261202}
PORT=${FUZZ_PORT:-18380}
NAME="cau-fuzz-$$"
WORK=$(mktemp -d)
SERVER_PID=""
# Assets created through the API before each run, whose ids the hooks feed to the fuzzer.
COMPLETE_ASSETS=4
PENDING_ASSETS=4

log() { printf 'tests/reliability: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

cleanup() {
    local status=$?
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    docker rm -f "$NAME-pg" "$NAME-s3" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM

[[ -x "$UPLOADER_BIN" ]] || fail "no server binary at $UPLOADER_BIN: run \`cargo build --bin cloud-asset-uploader\` or set UPLOADER_BIN"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (shared/ci/docker-up.sh starts one)"

install_schemathesis() {
    # A venv cannot be moved (its scripts name their interpreter by path), so it is built
    # under its final name and marked complete last: an interrupted install is redone.
    if [[ ! -f "$VENV/.complete" ]]; then
        log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
        mkdir -p "$TOOLS_DIR"
        rm -rf "$VENV" "$VENV.partial"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "schemathesis==$SCHEMATHESIS_VERSION" "PyJWT==$PYJWT_VERSION"
        touch "$VENV/.complete"
    fi
}

# The field at the JSON path $1 (dot-separated) of the document on stdin.
field() { "$VENV/bin/python" -c 'import functools, json, sys
print(functools.reduce(lambda v, k: v[k], sys.argv[1].split("."), json.load(sys.stdin)))' "$1"; }

# The signed headers of a grant on stdin, one `name: value` a line (content-length aside:
# curl sets it from the body).
signed_headers() { "$VENV/bin/python" -c 'import json, sys
for name, value in json.load(sys.stdin)["signed_info"]["headers"].items():
    if name != "content-length": print(f"{name}: {value}")'; }

port_of() { docker port "$1" "$2" | head -n1 | sed 's/.*://'; }

start_containers() {
    log "starting $PG_IMAGE and $S3_IMAGE"
    docker run -d --name "$NAME-pg" -p 127.0.0.1::5432 -e POSTGRES_PASSWORD=postgres \
        "$PG_IMAGE" -c fsync=off >/dev/null
    docker run -d --name "$NAME-s3" -p 127.0.0.1::9000 "$S3_IMAGE" server /data >/dev/null
    PG_PORT=$(port_of "$NAME-pg" 5432)
    S3_PORT=$(port_of "$NAME-s3" 9000)
    local i
    # Over TCP, so the image's first, socket-only start during initialisation does not count.
    for i in $(seq 1 120); do
        docker exec "$NAME-pg" pg_isready -q -h 127.0.0.1 -U postgres && break
        ((i < 120)) || fail "Postgres did not start"
        sleep 0.5
    done
    for i in $(seq 1 120); do
        curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/minio/health/ready" && break
        ((i < 120)) || fail "S3 did not start"
        sleep 0.5
    done
}

# Starts the server of run $1 (none | jwt) on its own database and bucket.
start_server() {
    local run=$1 port=$2 auth=()
    docker exec -e PGPASSWORD=postgres "$NAME-pg" \
        psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE fuzz_$run" >/dev/null
    [[ $run == jwt ]] && auth=(UPLOADER_AUTH__MODE=jwt UPLOADER_AUTH__JWT__HS256_SECRET="$JWT_SECRET")
    [[ $run == none ]] && auth=(UPLOADER_AUTH__MODE=none)
    # Rate limits off: the fuzzer's burst would otherwise be answered 429 after the first few
    # requests and the routes behind the limiter would go untested.
    env UPLOADER_SERVER__BIND="127.0.0.1:$port" \
        UPLOADER_DATABASE__URL="postgres://postgres:postgres@127.0.0.1:$PG_PORT/fuzz_$run" \
        UPLOADER_STORAGE__BACKEND=s3 \
        UPLOADER_STORAGE__BUCKET="fuzz-$run" \
        UPLOADER_STORAGE__S3__ENDPOINT="http://127.0.0.1:$S3_PORT" \
        UPLOADER_STORAGE__S3__CREATE_BUCKET=true \
        UPLOADER_RATE_LIMIT__ENABLED=false \
        UPLOADER_STORAGE_EVENTS__TOKEN="$STORAGE_EVENTS_TOKEN" \
        "${auth[@]}" \
        AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin AWS_EC2_METADATA_DISABLED=true \
        RUST_LOG=warn \
        "$UPLOADER_BIN" --config-dir "$ROOT/config" >"$WORK/server-$run.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server-$run.log" >&2; fail "the server exited"; }
        sleep 0.1
    done
    fail "the server was not ready after 60 s"
}

stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# POST /api/upload for key $2 with the given auth header args; prints the grant.
issue() {
    local api=$1 key=$2
    shift 2
    curl -sf -X POST "$api/upload" -H 'content-type: application/json' "$@" \
        -d "{\"object_key\":\"$key\",\"content_type\":\"text/plain\",\"content_length\":5}"
}

# Creates complete and pending assets of the run's owner; writes their ids to $WORK/ids-$run.json.
create_assets() {
    local run=$1 port=$2 api="http://127.0.0.1:$2/api" auth=() grant id url i
    [[ $run == jwt ]] && auth=(-H "authorization: Bearer $TOKEN")
    local complete=() pending=()
    for i in $(seq 1 "$COMPLETE_ASSETS"); do
        grant=$(issue "$api" "fixtures/complete-$i.txt" "${auth[@]}")
        id=$(field asset_id <<<"$grant")
        url=$(field signed_info.url <<<"$grant")
        local headers=()
        while IFS= read -r header; do headers+=(-H "$header"); done < <(signed_headers <<<"$grant")
        curl -sf -X PUT "$url" "${headers[@]}" --data-binary hello >/dev/null
        curl -sf -X PUT "$api/status" -H 'content-type: application/json' "${auth[@]}" \
            -d "{\"asset_id\":\"$id\",\"uploaded_status\":\"complete\"}" >/dev/null
        complete+=("\"$id\"")
    done
    for i in $(seq 1 "$PENDING_ASSETS"); do
        grant=$(issue "$api" "fixtures/pending-$i.txt" "${auth[@]}")
        pending+=("\"$(field asset_id <<<"$grant")\"")
    done
    # A multipart upload, so the parts route has an asset it can sign parts for.
    grant=$(curl -sf -X POST "$api/upload" -H 'content-type: application/json' "${auth[@]}" \
        -d '{"object_key":"fixtures/multipart.bin","content_length":209715200}')
    local multipart
    multipart=$(field asset_id <<<"$grant")
    local IFS=,
    printf '{"complete":[%s],"pending":[%s],"multipart":["%s"]}\n' "${complete[*]}" "${pending[*]}" "$multipart" >"$WORK/ids-$run.json"
}

# One schemathesis run against the server of run $1; its exit status is the run's verdict.
fuzz() {
    local run=$1 port=$2 headers=() report=()
    [[ $run == jwt ]] && headers=(-H "Authorization: Bearer $TOKEN")
    # Without authentication the API ignores the header, and POST /api/storage-events gets
    # past its token check; with a JWT it is answered 401.
    [[ $run == none ]] && headers=(-H "Authorization: Bearer $STORAGE_EVENTS_TOKEN")
    [[ -n ${FUZZ_REPORT_DIR:-} ]] && report=(--report junit,har --report-dir "$FUZZ_REPORT_DIR/$run")
    log "fuzzing with auth.mode=$run: $MAX_EXAMPLES examples per operation, seed $SEED"
    # From $WORK: schemathesis keeps a cache of past failures in the working directory.
    (cd "$WORK" && FUZZ_ASSET_IDS="$WORK/ids-$run.json" SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$HERE" \
        "$VENV/bin/st" run "http://127.0.0.1:$port/openapi.json" \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
        --generation-database none --workers 1 --request-timeout 10 --no-color \
        "${report[@]}" "${headers[@]}")
}

main() {
    install_schemathesis
    JWT_SECRET="fuzz-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    STORAGE_EVENTS_TOKEN="storage-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    TOKEN=$("$VENV/bin/python" -c 'import jwt, sys, time
print(jwt.encode({"sub": "fuzzer", "exp": int(time.time()) + 3600}, sys.argv[1], algorithm="HS256"))' "$JWT_SECRET")
    start_containers
    local started=$SECONDS status=0 run port=$PORT
    for run in none jwt; do
        start_server "$run" "$port"
        create_assets "$run" "$port"
        fuzz "$run" "$port" || { status=1; log "auth.mode=$run: violations (server log follows)"; tail -40 "$WORK/server-$run.log" >&2; }
        stop_server
        port=$((port + 1))
    done
    log "both runs done in $((SECONDS - started)) s"
    return "$status"
}

main "$@"
