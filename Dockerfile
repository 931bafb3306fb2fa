# syntax=docker/dockerfile:1
#
# atcr-indexer: a release build with the lock file, run from a slim Debian as a non-root user.
#
#   docker build --build-arg ATCR_INDEXER_GIT_SHA="$(git rev-parse --short=12 HEAD)" \
#     -t atcr-indexer .
#   docker run --rm -e ATCR_INDEXER_VALKEY_URL=redis://valkey:6379 -p 9464:9464 atcr-indexer

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The commit reported by atcr_indexer_build_info: build.rs reads this variable, since .git is
# not in the build context.
ARG ATCR_INDEXER_GIT_SHA=unknown
# benches/ is copied only because Cargo.toml declares the bench target; it is not built.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY config ./config
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin atcr-indexer

FROM debian:bookworm-slim
# ca-certificates is the only package: wss:// Jetstream, rediss:// Valkey and HTTPS identity
# lookups need the roots. It is not pinned, so that a rebuild picks up Debian's security
# updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 atcr \
    && useradd --system --uid 10001 --gid atcr --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin atcr
COPY --from=builder /src/target/release/atcr-indexer /usr/local/bin/atcr-indexer
COPY config/indexer.toml /etc/atcr-indexer/indexer.toml
# Inside a container the metrics listener must be reachable from outside the container's own
# loopback; publish the port only to a private network.
ENV ATCR_INDEXER_METRICS_LISTEN=0.0.0.0:9464
USER atcr:atcr
EXPOSE 9464
# SIGTERM drains the queue and saves the cursor within shutdown.grace_secs (10 s by default);
# keep the stop timeout above it (`docker stop -t 15`, compose `stop_grace_period`).
STOPSIGNAL SIGTERM
# `health` asks /readyz over plain HTTP: 0 when ready, 1 otherwise; no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["atcr-indexer", "health", "--config", "/etc/atcr-indexer/indexer.toml"]
ENTRYPOINT ["atcr-indexer"]
CMD ["run", "--config", "/etc/atcr-indexer/indexer.toml"]
