# shellcheck shell=bash
# The control plane's processes, by PID only: started in the background with their PIDs
# recorded in $DIR/pids and their output in $DIR/NAME.log, waited for, and stopped (only while a
# PID's command line still names the state directory). Sourced by scripts/local-cluster.sh.

# Starts "$@" in the background with its output in $DIR/$name.log and
# records the PID (also in LAST_PID). stdin/stdout/stderr are all redirected so callers that
# capture the output of `up` (e.g. the Rust harness) are not kept waiting.
start_bg() {
    local name=$1
    shift
    "$@" </dev/null >"$DIR/$name.log" 2>&1 &
    LAST_PID=$!
    echo "$LAST_PID" >>"$DIR/pids"
}

# Polls until `$2...` succeeds, at most $1 seconds; fails early if the
# process with PID $PROC_PID died (its log is then the interesting part).
wait_for() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [[ -n ${PROC_PID:-} ]] && ! kill -0 "$PROC_PID" 2>/dev/null; then
            return 2
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# Logs the last $2 lines of $DIR/$1.log.
show_log() {
    log "last lines of $DIR/$1.log:"
    tail -n "$2" "$DIR/$1.log" >&2
}

# wait_for with a diagnosis: on failure logs what $2 (a name) did and the end
# of its log $DIR/$3.log, then exits.
wait_or_die() {
    local timeout=$1 what=$2 logname=$3
    shift 3
    local rc=0
    wait_for "$timeout" "$@" || rc=$?
    [[ $rc -ne 0 ]] || return 0
    if [[ $rc -eq 2 ]]; then
        log "$what: process exited"
    else
        log "$what: not done after $timeout s"
    fi
    show_log "$logname" 40
    exit 1
}

# True while PID $1 exists and is not a zombie (an exited child that its
# parent, possibly a non-reaping PID 1 in containers, has not collected yet).
is_running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# TERM every PID in $1/pids that is still one of ours, wait up to 10 s, then
# KILL the rest. A PID counts as ours only while its command line mentions
# the state directory, so a recycled PID is never signalled; this process
# itself is left out (the watchdog runs `down`).
stop_pids() {
    local dir=$1 pid
    [[ -f "$dir/pids" ]] || return 0
    local ours=()
    while read -r pid; do
        [[ $pid =~ ^[0-9]+$ && $pid != "$$" ]] || continue
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"; then
            ours+=("$pid")
        fi
    done <"$dir/pids"
    [[ ${#ours[@]} -gt 0 ]] || return 0
    kill -TERM "${ours[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + 10)) alive
    while :; do
        alive=()
        for pid in "${ours[@]}"; do
            is_running "$pid" && alive+=("$pid")
        done
        [[ ${#alive[@]} -gt 0 ]] || break
        if ((SECONDS >= deadline)); then
            log "killing ${alive[*]} (did not stop on TERM)"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}
