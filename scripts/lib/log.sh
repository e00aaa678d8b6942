# shellcheck shell=bash
# Messages of scripts/bench.sh and scripts/fault-matrix.sh (sourced, not run): each on stderr,
# prefixed with the sourcing script's LOG_PREFIX.

log() { echo "$LOG_PREFIX: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}
