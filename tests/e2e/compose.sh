#!/usr/bin/env bash
# End-to-end check of the docker compose stack, from the host, as a user would run it:
#   1. `docker compose up -d --build` (images replaceable through POSTGRES_IMAGE, MINIO_IMAGE,
#      RUST_IMAGE, RUNTIME_IMAGE);
#   2. wait (bounded) for /readyz;
#   3. run the README's readiness wait, curl session, form upload, multipart examples and
#      authentication examples exactly as written, each twice in a row (a pasted example
#      must work again when pasted again);
#   4. upload a random binary file through the signed URL, complete it, get the access URL,
#      download it and compare bytes;
#   5. restart the app container and check the asset is still there and downloadable;
#   6. run the README's Redis example (the `redis` profile; REDIS_BASE_IMAGE builds a local
#      stand-in for the public Redis image on a Debian base when no registry is reachable);
#   7. `docker compose down -v`, always. On failure, print the compose logs and exit non-zero.
#
# Needs docker with compose (v2 plugin or docker-compose v1), curl, jq, openssl and the ports
# 8080 and 9000 free (the README's session uses them).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The README's own `docker compose` commands must reach this stack: name it through the
# environment rather than with -p.
export COMPOSE_PROJECT_NAME=cau-e2e
# The examples run in a scratch directory, as a user's shell would be anywhere; their
# `docker compose` commands find this checkout's stack through COMPOSE_FILE.
export COMPOSE_FILE="$PWD/docker-compose.yml"
api=http://127.0.0.1:8080
work=$(mktemp -d)

# The README says `docker compose` (v2). Where only docker-compose v1 exists (Debian 12), a
# shim on PATH gives the examples that spelling, so they still run verbatim.
if ! docker compose version >/dev/null 2>&1; then
  real_docker=$(command -v docker)
  mkdir -p "$work/bin"
  cat >"$work/bin/docker" <<SHIM
#!/usr/bin/env bash
if [ "\${1:-}" = compose ]; then shift; exec docker-compose "\$@"; fi
exec "$real_docker" "\$@"
SHIM
  chmod +x "$work/bin/docker"
  export PATH="$work/bin:$PATH"
fi

compose() { docker compose "$@"; }

finish() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "compose-e2e: FAILED (exit $rc); compose logs follow" >&2
    compose logs --no-color --tail 200 >&2 || true
  fi
  COMPOSE_PROFILES=redis compose down -v --remove-orphans >/dev/null 2>&1 || true
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

# The bash block(s) of README.md between two lines matching the given patterns.
readme_example() {
  sed -n "/$1/,/$2/p" README.md \
    | awk '/^```bash/ { inside = 1; next } /^```/ { inside = 0 } inside'
}

# Runs README example $1 (a file in $work) twice, each run's output checked by grep -q for
# every further argument.
run_twice() {
  local name=$1 expect
  shift
  [ -s "$work/$name.sh" ] || fail "found no $name example in README.md"
  for run in 1 2; do
    (cd "$work" && bash -euo pipefail "$name.sh" >"$name.$run.out" 2>&1) \
      || { cat "$work/$name.$run.out" >&2; fail "the README's $name example failed (run $run)"; }
    for expect in "$@"; do
      grep -q "$expect" "$work/$name.$run.out" \
        || { cat "$work/$name.$run.out" >&2; fail "the README's $name example did not print $expect (run $run)"; }
    done
  done
}

step "running the README's readiness wait"
readme_example 'Wait until it is$' '^Then \[the curl session' >"$work/ready.sh"
echo 'echo ready' >>"$work/ready.sh"
run_twice ready 'ready$'

step "running the README's curl session, twice"
readme_example '^## A curl session' '^### Form uploads' >"$work/session.sh"
run_twice session 'hello, world$'
grep -q '^204$' "$work/session.2.out" || fail "the README session did not delete its asset"

step "running the README's form upload, twice"
{ echo "printf 'hello, world\n' > hello.txt"; readme_example '^### Form uploads' '^then complete and access it'; } >"$work/form.sh"
echo 'echo "status $(curl -s -o /dev/null -w "%{http_code}" -X PUT http://127.0.0.1:8080/api/status -H "content-type: application/json" -d "{\"asset_id\":\"$(jq -r .asset_id upload.json)\",\"uploaded_status\":\"complete\"}")"' >>"$work/form.sh"
run_twice form 'status 200$'

step "running the README's multipart example, twice"
readme_example '^A worked example against the quickstart stack' '^#### Parts signed with their SHA-256' >"$work/multipart.sh"
echo 'rm -f big.bin' >>"$work/multipart.sh"
run_twice multipart 'identical$'

step "running the README's multipart example with part checksums, twice"
readme_example '^The same upload as above, with part checksums' '^The part size grows' >"$work/part_checksums.sh"
echo 'rm -f big.bin' >>"$work/part_checksums.sh"
run_twice part_checksums '"uploaded_status":"complete"' '"composite_sha256": ".*-3"'

step "running the README's delegated upload token example, twice"
readme_example '^### Delegated upload tokens' '^## Lifecycle of an asset' >"$work/upload_token.sh"
run_twice upload_token '"uploaded_status":"complete"' '"code":"token_scope"'

step "running the README's authentication examples, twice"
readme_example '^Worked examples against the quickstart stack' '^And with an API key' >"$work/jwt.sh"
run_twice jwt '"status":"pending"'
readme_example '^And with an API key' '^A refused credential' >"$work/api_key.sh"
run_twice api_key '"status":"pending"'
curl -sf -X POST "$api/api/upload" -H 'content-type: application/json' -d '{"object_key":"e2e/anonymous.txt"}' >/dev/null \
  || fail "the API key example did not put the stack back to auth.mode none"

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

step "running the README's Redis example (rate limits in the stack's Redis), twice"
if [ -n "${REDIS_BASE_IMAGE:-}" ] && [ -z "${REDIS_IMAGE:-}" ]; then
  # No registry: Debian's redis-server on the given base stands in for the public image.
  docker build -q -t cau-e2e-redis:local --build-arg BASE="$REDIS_BASE_IMAGE" - >/dev/null <<'DOCKERFILE'
ARG BASE
FROM $BASE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  export REDIS_IMAGE=cau-e2e-redis:local
fi
readme_example '^The compose stack has an optional Redis' '^`docker compose up -d` (without' >"$work/redis.sh"
run_twice redis 'ratelimit-remaining' '^cmdstat_eval'
compose up -d
wait_ready

step "passed"
