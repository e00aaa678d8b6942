#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each; exits non-zero if any crashed.
#
#   scripts/fuzz.sh                          every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh durations sim_params
#
# cargo-fuzz is installed once under the cache (ECSVNC_CACHE, default ~/.cache/ecs-vnc-operator),
# then only checked. libFuzzer needs rustc flags that only nightly allows; on a stable toolchain
# RUSTC_BOOTSTRAP=1 allows them. Not part of CI's test command: see fuzz/README.md.
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_SANITIZER (address, none, ...; default
# address), FUZZ_TIMEOUT (seconds one input may take before it counts as a hang, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${ECSVNC_CACHE:-$HOME/.cache/ecs-vnc-operator}
CARGO_FUZZ_VERSION=0.13.2
ROOT="$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
SECONDS_EACH=${FUZZ_SECONDS:-60}
SANITIZER=${FUZZ_SANITIZER:-address}
INPUT_TIMEOUT=${FUZZ_TIMEOUT:-10}

log() { echo "fuzz: $*" >&2; }

if [[ ! "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]]; then
    log "FUZZ_SECONDS must be a positive number of seconds, not '$SECONDS_EACH'"
    exit 2
fi

if ! "$ROOT/bin/cargo-fuzz" --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $ROOT (a few minutes, once)"
    mkdir -p "$ROOT"
    CARGO_INSTALL_ROOT="$ROOT" cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
export PATH="$ROOT/bin:$PATH"
export RUSTC_BOOTSTRAP=1

# The fuzz crate is its own workspace; starting from the operator's lock keeps the versions the
# same (cargo adds libfuzzer-sys and drops what the fuzz crate does not use).
[[ -f fuzz/Cargo.lock ]] || cp Cargo.lock fuzz/Cargo.lock

mapfile -t all < <(cargo fuzz list)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! " ${all[*]} " == *" $t "* ]]; then
        log "no fuzz target '$t'; there are: ${all[*]}"
        exit 2
    fi
done

log "building ${targets[*]} (sanitizer: $SANITIZER)"
for t in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$SANITIZER" "$t"
done

failed=()
summary=()
for t in "${targets[@]}"; do
    # New inputs go to fuzz/corpus/<target> (kept between runs, not committed); fuzz/seeds/<target>
    # holds real ECS answers and requests to start from.
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    args=(-max_total_time="$SECONDS_EACH" -timeout="$INPUT_TIMEOUT" -print_final_stats=1)
    [[ -f "fuzz/dicts/$t.dict" ]] && args+=(-dict="fuzz/dicts/$t.dict")
    dirs=("$corpus")
    [[ -d "fuzz/seeds/$t" ]] && dirs+=("fuzz/seeds/$t")
    out="fuzz/artifacts/$t/last-run.log"
    log "running $t for ${SECONDS_EACH}s"
    status=0
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "${dirs[@]}" -- "${args[@]}" >"$out" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    units=$(find "$corpus" -type f | wc -l)
    if [[ $status -eq 0 ]]; then
        summary+=("$t: ok, ${runs:-?} executions, corpus $units inputs")
    else
        failed+=("$t")
        summary+=("$t: FAILED (exit $status) after ${runs:-?} executions; see $out")
        grep -E "panicked at|^==[0-9]+==|SUMMARY|Test unit written to" "$out" | head -n 20 >&2 || true
    fi
done

printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    log "crashed: ${failed[*]}; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>"
    exit 1
fi
