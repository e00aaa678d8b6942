# Process helpers shared by scripts/bench.sh and scripts/fault-matrix.sh (sourced, not run).
# They act only on PIDs the sourcing script started and recorded in its PIDS array; finish_run
# also uses its CLUSTER_DIR, WORK and log.

# True while PID $1 runs (a zombie, exited but not yet reaped, does not count).
alive() {
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# Stops one process this script started: TERM, up to 10 s, then KILL; reaps it and forgets it.
stop_pid() {
    local pid=$1 keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Waits (bounded: $1 tries 0.1 s apart) until "${@:2}" succeeds.
wait_until() {
    local tries=$1
    shift
    for _ in $(seq "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# The end of a run: stops what the script started (PIDS, newest first), then the control plane in
# $CLUSTER_DIR; keeps $WORK when the run failed ($1, its exit code) or $2 is 1, else removes it.
# $3 says what $WORK holds.
finish_run() {
    local rc=$1 keep=$2 what=${3:-logs} i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    if [[ -n $CLUSTER_DIR ]]; then
        scripts/local-cluster.sh down "$CLUSTER_DIR" >/dev/null 2>&1 || true
    fi
    if [[ $rc -ne 0 || $keep == 1 ]]; then
        log "$what kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
