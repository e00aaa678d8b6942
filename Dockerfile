# syntax=docker/dockerfile:1
# The operator image: a static (musl) build of `ecs-vnc-operator` on an empty base, run as a
# non-root user. Build it where a container engine is available (not on the development machine):
#
#   docker build -t REGISTRY/ecs-vnc-operator:0.1.0 .
#
# The Deployment (deploy/, the Helm chart) passes its own arguments (`run --leader-elect ...`),
# which replace CMD; ENTRYPOINT stays the binary.

FROM rust:1-bookworm AS build
# ring (rustls) compiles C: musl-gcc links it statically.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked --target "$target" --bin ecs-vnc-operator \
 && install -D -s -m 0755 "target/$target/release/ecs-vnc-operator" /out/ecs-vnc-operator

FROM scratch
# CA roots for the ECS API (HTTPS) and any API server not using the in-cluster CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ecs-vnc-operator /ecs-vnc-operator
# 65532: the conventional "nonroot" uid (as in distroless); a numeric user needs no /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ecs-vnc-operator"]
CMD ["run"]
