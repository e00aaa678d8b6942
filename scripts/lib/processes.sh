# Process helpers shared by scripts/bench.sh and scripts/fault-matrix.sh (sourced, not run).
# They act only on PIDs the sourcing script started and recorded in its PIDS array.

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
