# ferry in a container: a multi-stage build (the Rust toolchain stays in the first stage) and a
# small Debian runtime that runs as a non-root user (uid 10001, as examples/ci/ expects).
#
#   docker build -t ferry .            # or: podman build -t ferry .
#   docker run --rm ferry run /usr/share/ferry/scripts/migrate.rhai --sandbox
#   docker run --rm -v "$PWD:/work" -e PROD_OIC_CLIENT_SECRET ferry run recipes/promote.rhai
#
# The stdlib modules are embedded in the binary; the recipes of scripts/ are shipped in
# /usr/share/ferry/scripts/. Runs, the ledger and the sandbox's vault go to .ferry/ under the
# working directory (/work: mount a volume there to keep them).

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ferry \
    && install -D -m 0755 target/release/ferry /out/ferry

FROM ${RUNTIME_IMAGE}
# libssl and zlib for the SFTP vault (libssh2), CA certificates for HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ferry \
    && useradd --system --uid 10001 --gid 10001 --home-dir /work --shell /usr/sbin/nologin ferry \
    && mkdir -p /work && chown ferry:ferry /work
COPY --from=build /out/ferry /usr/local/bin/ferry
COPY scripts/ /usr/share/ferry/scripts/
USER 10001:10001
WORKDIR /work
ENV HOME=/work
ENTRYPOINT ["ferry"]
CMD ["--help"]
