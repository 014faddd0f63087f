#!/usr/bin/env bash
# The browser suite: the JavaScript client and the upload page in Chromium against the real
# server (S3 and local backends), Postgres and an S3 stand-in in Docker.
#
# Needs: node >= 20 and npm, Docker, Chromium (/usr/bin/chromium or CHROMIUM_PATH), and a built
# server binary (UPLOADER_BIN, default ${CARGO_TARGET_DIR:-target}/debug/cloud-asset-uploader).
# Images: UPLOADER_TEST_POSTGRES_IMAGE / UPLOADER_TEST_MINIO_IMAGE, else the OFFLINE_* ones
# shared/ci/offline-images.sh exports, else the public postgres and minio images.
# Arguments go to `node --test`, e.g. ./run.sh --test-name-pattern=resume
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)

target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$repo/$target ;; esac
export UPLOADER_BIN=${UPLOADER_BIN:-$target/debug/cloud-asset-uploader}
export UPLOADER_TEST_POSTGRES_IMAGE=${UPLOADER_TEST_POSTGRES_IMAGE:-${OFFLINE_POSTGRES_IMAGE:-}}
export UPLOADER_TEST_MINIO_IMAGE=${UPLOADER_TEST_MINIO_IMAGE:-${OFFLINE_MINIO_IMAGE:-}}
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}

fail() { echo "tests/browser: $*" >&2; exit 1; }
[ -x "$UPLOADER_BIN" ] || fail "no server binary at $UPLOADER_BIN: run \`cargo build --bin cloud-asset-uploader\` or set UPLOADER_BIN"
[ -x "$chromium" ] || fail "no Chromium at $chromium: \`apt-get install -y chromium\` (Debian) or set CHROMIUM_PATH"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (shared/ci/docker-up.sh starts one)"
command -v node >/dev/null || fail "node (>= 20) is required"

# playwright-core only: its browsers are never downloaded, Debian's Chromium is used.
[ -d node_modules/playwright-core ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

exec node --test --test-concurrency=1 "$@" ./*.test.mjs
