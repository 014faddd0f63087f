# Cloud Asset Uploader: a multi-stage build producing a small, non-root runtime image.
# Both base images are build arguments, so a registry mirror (or a local stand-in) can
# replace them: docker build --build-arg RUST_IMAGE=… --build-arg RUNTIME_IMAGE=… .
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /build
ENV CARGO_TERM_COLOR=never
# Dependencies compile in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock
# change, not when src/ does.
COPY Cargo.toml Cargo.lock build.rs ./
# (The manifest names a benchmark target, so a stand-in for it must exist too.)
RUN mkdir -p src migrations benches \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > benches/presign.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/.fingerprint/cloud-asset-uploader-* target/release/deps/cloud_asset_uploader-* target/release/deps/libcloud_asset_uploader-*
COPY migrations migrations
# config/ is built into the binary (its profiles), so the image needs no copy at run time.
COPY config config
# The browser client and the upload page are built into the binary too.
COPY clients/js/src clients/js/src
COPY clients/js/page clients/js/page
COPY src src
RUN cargo build --release --locked \
 && cp target/release/cloud-asset-uploader /usr/local/bin/cloud-asset-uploader

FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin uploader
WORKDIR /app
# Only the CA bundle, not the packages that build it: the roots trusted for TLS to S3, and to
# Postgres when database.url sets no sslrootcert.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/local/bin/cloud-asset-uploader /usr/local/bin/cloud-asset-uploader
ENV UPLOADER_PROFILE=production \
    UPLOADER_SERVER__BIND=0.0.0.0:8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["cloud-asset-uploader", "healthcheck"]
ENTRYPOINT ["cloud-asset-uploader"]
CMD ["serve"]
