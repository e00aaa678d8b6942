#!/usr/bin/env bash
# The project's test command (the README names it; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
