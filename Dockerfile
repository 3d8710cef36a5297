# One image with all four service binaries; docker-compose.yml picks one per container.
#
# Build stage: the Rust toolchain; caches the registry and target directory between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p order-service -p inventory-service -p payment-service -p notification-service \
    && mkdir -p /out \
    && cp target/release/order-service target/release/inventory-service \
          target/release/payment-service target/release/notification-service /out/

# Runtime stage: Debian slim with curl for the healthchecks, running as an unprivileged user.
# Expected size about 110 MB: ~75 MB of debian:bookworm-slim, ~10 MB of curl and CA
# certificates, and four stripped, statically linked-against-Rust binaries of ~10 MB each.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home saga
COPY --from=build /out/ /usr/local/bin/
USER saga
# Listen on every interface inside the container; each service sets its own port.
ENV RUST_LOG=info
CMD ["order-service"]
