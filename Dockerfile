# syntax=docker/dockerfile:1
#
# account-streams container image.
#
# Two stages. The builder compiles the release binary: RocksDB's C++ and the
# bundled librdkafka are built from source, so it needs clang/libclang (for
# bindgen) and make (present); cmake only matters if rdkafka's cmake-build
# feature is ever enabled. The runtime stage is debian:bookworm-slim with only
# the shared libraries the binary links, run as an unprivileged user.
#
# Build:  docker build -t account-streams .
# A cold build takes tens of minutes (RocksDB dominates); the cache mounts
# below keep the cargo registry and target/ between builds.

FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang libclang-dev cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY . .
# target/ lives in a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked --bin account-streams \
    && install -D -m 0755 target/release/account-streams /out/account-streams

FROM debian:bookworm-slim AS runtime
# The binary links dynamically only libc, libstdc++ (RocksDB is C++),
# libgcc_s and libz (librdkafka's gzip); RocksDB and librdkafka themselves
# are static. ca-certificates is for a future TLS-enabled HTTP client (the
# current build speaks plain http to the ban service).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 zlib1g \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 account-streams \
    && useradd --system --uid 10001 --gid account-streams \
        --home-dir /var/lib/account-streams --no-create-home --shell /usr/sbin/nologin account-streams \
    && install -d -o account-streams -g account-streams -m 0750 \
        /var/lib/account-streams /var/lib/account-streams/state
COPY --from=builder /out/account-streams /usr/local/bin/account-streams
ENV STATE_DIR=/var/lib/account-streams/state \
    REST_PORT=8080
WORKDIR /var/lib/account-streams
# A named volume mounted here starts with the ownership above, so the
# unprivileged user can write its RocksDB stores.
VOLUME ["/var/lib/account-streams"]
USER account-streams:account-streams
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/account-streams"]
CMD ["run"]
