#!/usr/bin/env bash
# End-to-end check of the docker compose stack, from the host, as a user would run it:
#   1. `docker compose up -d --build` (images replaceable through POSTGRES_IMAGE, MINIO_IMAGE,
#      RUST_IMAGE, RUNTIME_IMAGE);
#   2. wait (bounded) for /readyz;
#   3. run the README's curl session and its multipart example exactly as written;
#   4. upload a random binary file through the signed URL, complete it, get the access URL,
#      download it and compare bytes;
#   5. restart the app container and check the asset is still there and downloadable;
#   6. `docker compose down -v`, always. On failure, print the compose logs and exit non-zero.
#
# Needs docker with compose (v2 plugin or docker-compose v1), curl, jq, openssl and the ports
# 8080 and 9000 free (the README's session uses them).
set -euo pipefail
cd "$(dirname "$0")/../.."

project=cau-e2e
api=http://127.0.0.1:8080
work=$(mktemp -d)

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" "$@"
  else
    docker-compose -p "$project" "$@"
  fi
}

finish() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "compose-e2e: FAILED (exit $rc); compose logs follow" >&2
    compose logs --no-color --tail 200 >&2 || true
  fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT

step() { echo "compose-e2e: $*"; }
fail() { echo "compose-e2e: $*" >&2; exit 1; }

wait_ready() {
  for _ in $(seq 120); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$api/readyz")" = 200 ]; then
      return 0
    fi
    sleep 1
  done
  fail "the app was not ready within 120 s"
}

for port in 8080 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is already in use; stop whatever listens there first"
  fi
done

step "building and starting the stack"
compose up -d --build
wait_ready

step "running the README's curl session"
sed -n '/^## A curl session/,/^### Form uploads/p' README.md \
  | awk '/^```bash/ { inside = 1; next } /^```/ { inside = 0 } inside' >"$work/session.sh"
[ -s "$work/session.sh" ] || fail "found no curl session in README.md"
(cd "$work" && bash -euo pipefail session.sh >session.out)
grep -q 'hello, world$' "$work/session.out" || fail "the README session did not download its file"

step "running the README's multipart example"
sed -n '/^A worked example against the quickstart stack/,/^The part size grows/p' README.md \
  | awk '/^```bash/ { inside = 1; next } /^```/ { inside = 0 } inside' >"$work/multipart.sh"
[ -s "$work/multipart.sh" ] || fail "found no multipart example in README.md"
(cd "$work" && bash -euo pipefail multipart.sh >multipart.out && rm -f big.bin)
grep -q 'identical$' "$work/multipart.out" || fail "the README multipart example did not round-trip its file"

step "uploading, completing and downloading a random binary file"
head -c 300000 /dev/urandom >"$work/payload.bin"
size=$(wc -c <"$work/payload.bin")
sha=$(openssl dgst -sha256 -binary "$work/payload.bin" | base64)
curl -sf -X POST "$api/api/upload" -H 'content-type: application/json' \
  -d "{\"object_key\":\"e2e/payload.bin\",\"content_type\":\"application/octet-stream\",\"content_length\":$size,\"checksum_sha256\":\"$sha\"}" \
  >"$work/upload.json"
id=$(jq -r .asset_id "$work/upload.json")
[ "$(jq -r .signed_info.method "$work/upload.json")" = PUT ] || fail "expected a PUT upload"
headers=()
while IFS= read -r header; do headers+=(-H "$header"); done \
  < <(jq -r '.signed_info.headers | to_entries[] | "\(.key): \(.value)"' "$work/upload.json")
curl -sf -X PUT "$(jq -r .signed_info.url "$work/upload.json")" "${headers[@]}" --data-binary @"$work/payload.bin" >/dev/null
curl -sf -X PUT "$api/api/status" -H 'content-type: application/json' \
  -d "{\"asset_id\":\"$id\",\"uploaded_status\":\"complete\"}" >/dev/null

download_and_compare() {
  curl -sf "$api/api/access?asset_id=$id&expires_in=120" >"$work/access.json"
  curl -sf "$(jq -r .url "$work/access.json")" -o "$work/downloaded.bin"
  cmp -s "$work/payload.bin" "$work/downloaded.bin" || fail "downloaded bytes differ from the upload ($1)"
}
download_and_compare "before the restart"

step "restarting the app container"
compose restart app
wait_ready
download_and_compare "after the restart"

step "passed"
