#!/usr/bin/env bash
# The project's test command (the README names it; .ci/run calls it). It installs what it needs,
# builds the local Kubernetes control plane once (cached under ~/.cache/ecs-vnc-operator/), then
# runs formatting and lint checks, every Rust test including the end-to-end ones against a real
# kube-apiserver, and the deploy/ and Helm chart tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/local-cluster.sh build
# The Python tools some Rust tests call (Alibaba's official signer) and the deploy tests use.
scripts/venv.sh >/dev/null

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# --include-ignored: the end-to-end tests are #[ignore]d for plain `cargo test` only.
cargo test --all-targets -- --include-ignored

scripts/test-deploy.sh
