# syntax=docker/dockerfile:1
# The Flashpoint cluster worker image: `flashpoint run` (and `produce`, `check-config`, `replay`, `score`).
#
#   docker build -t flashpoint:dev .
#   docker run --rm flashpoint:dev check-config -c /etc/flashpoint/flashpoint.toml
#
# Stage 1 builds the release binary from Cargo.lock (--locked) with the `tls` feature: librdkafka is compiled
# from source by the rdkafka crate and linked statically, with OpenSSL so that TLS and SASL/SCRAM work.
# Stage 2 is debian:bookworm-slim with only the shared libraries the binary needs (`ldd flashpoint`: libc,
# libm, libgcc_s, zlib and, with `tls`, libssl3/libcrypto) plus CA certificates, running as a non-root user.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# librdkafka's build: a C/C++ toolchain and make come with the rust image; it needs pkg-config and the
# OpenSSL and zlib headers (usually already there; listed so the stage does not depend on that).
# DL3008 (pin apt versions) is ignored on purpose: Debian stable only ships security and point-release
# updates, and a pinned version disappears from the archive at the next one, breaking the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir across builds (BuildKit); the binary is copied out of
# the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p flashpoint --features tls \
 && install -D -m 0755 target/release/flashpoint /out/flashpoint \
 && /out/flashpoint --version

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# libssl3: librdkafka's TLS and SCRAM; ca-certificates: the system CA bundle librdkafka uses when
# kafka.security.ssl_ca_location is not set. zlib1g, libgcc-s1 and libc6 are already in the slim image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 flashpoint \
 && useradd --system --uid 10001 --gid flashpoint --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin flashpoint
COPY --from=build /out/flashpoint /usr/local/bin/flashpoint
COPY config/flashpoint.toml /etc/flashpoint/flashpoint.toml
# A container must listen on all interfaces for scrapes and probes from outside it.
ENV FLASHPOINT__METRICS__LISTEN=0.0.0.0:9464
EXPOSE 9464
USER 10001:10001
# Liveness through /healthz without adding an HTTP client to the image: bash (already in the slim image)
# opens the TCP connection itself (/dev/tcp), sends a GET and checks the status line. No curl, no busybox,
# nothing more to patch. The endpoint answers 200 as long as the process serves HTTP; /readyz (broker
# reachable, partitions assigned) is for orchestrators' readiness, not for restarts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && [[ $status == 'HTTP/1.1 200'* ]]"]
ENTRYPOINT ["flashpoint"]
CMD ["run", "--config", "/etc/flashpoint/flashpoint.toml", "--role", "all"]
