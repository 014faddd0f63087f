#!/usr/bin/env bash
# Builds, once per machine, the Docker image of the tests' S3 stand-in (this crate: s3s-fs 0.17,
# which checks the per-part SHA-256 of multipart uploads) and prints its name as a shell export:
#
#   eval "$(OFFLINE_DEBIAN_IMAGE=local/debian:bookworm bash tests/s3-stand-in/image.sh)"
#   # now: UPLOADER_TEST_S3_CHECKSUM_IMAGE=local/s3-stand-in:s3s-fs-0.17.0-<hash>
#
# The tag carries a hash of the crate's manifest, lock file, sources and this script, so any
# change to them builds a new image; an existing image is reused (then this takes well under 1 s).
# The binary is built on this machine with its Rust toolchain (cached in S3_STAND_IN_TARGET_DIR,
# outside the clone) and copied onto ${OFFLINE_DEBIAN_IMAGE:-debian:bookworm-slim}. The image keeps
# the minio/minio image's interface: `[minio] server DIR`, MINIO_ROOT_USER / MINIO_ROOT_PASSWORD
# (default minioadmin), the S3 API on port 9000, an "API:" line on stderr once it listens.
# Needs a running Docker engine. Progress goes to stderr; only the export line goes to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=${S3_STAND_IN_TARGET_DIR:-/var/tmp/s3-stand-in-target}
base=${OFFLINE_DEBIAN_IMAGE:-debian:bookworm-slim}

log() { echo "s3-stand-in: $*" >&2; }

hash=$(cd "$here" && find Cargo.toml Cargo.lock image.sh src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
image=local/s3-stand-in:s3s-fs-0.17.0-$hash

if ! docker image inspect "$image" >/dev/null 2>&1; then
  log "building $image (binary in $target, base $base)"
  # s3s 0.17.0 declares rust-version 1.96 but builds with this machine's 1.95, hence
  # --ignore-rust-version; --locked keeps the committed Cargo.lock.
  cargo build --release --locked --ignore-rust-version --manifest-path "$here/Cargo.toml" --target-dir "$target" >&2
  ctx="$target/image"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$target/release/s3-stand-in" "$ctx/"
  cat >"$ctx/entrypoint.sh" <<'SH'
#!/bin/bash
# The minio/minio image's interface: `server DIR`, MINIO_ROOT_USER / MINIO_ROOT_PASSWORD
# (default minioadmin), S3 API on port 9000, an "API:" line on stderr once it listens.
set -euo pipefail
[ "${1:-}" = minio ] && shift
[ "${1:-}" = server ] && shift
dir=${1:-/data}
mkdir -p "$dir"
exec /usr/local/bin/s3-stand-in --host 0.0.0.0 --port 9000 \
  --access-key "${MINIO_ROOT_USER:-minioadmin}" --secret-key "${MINIO_ROOT_PASSWORD:-minioadmin}" "$dir"
SH
  chmod +x "$ctx/entrypoint.sh"
  cat >"$ctx/Dockerfile" <<'DOCKER'
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY s3-stand-in entrypoint.sh /usr/local/bin/
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
DOCKER
  docker build -q --build-arg BASE_IMAGE="$base" -t "$image" "$ctx" >/dev/null 2>"$ctx/build.log" \
    || { cat "$ctx/build.log" >&2; exit 1; }
  log "built $image"
fi

echo "export UPLOADER_TEST_S3_CHECKSUM_IMAGE=$image"
