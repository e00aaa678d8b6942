# shellcheck shell=bash
# `local-cluster.sh down DIR`: stops the control plane whose state is in DIR (by the PIDs `up`
# recorded there) and removes DIR; refuses a directory `up` did not create, and is safe to repeat.
# Sourced by scripts/local-cluster.sh.

cmd_down() {
    local dir=${1:-}
    [[ -n $dir ]] || die "usage: $0 down DIR"
    if [[ ! -d $dir ]]; then
        log "$dir does not exist (already down)"
        return 0
    fi
    dir=$(cd "$dir" && pwd)
    [[ -e "$dir/$MARKER" ]] || die "$dir is not a local-cluster state directory; refusing to touch it"
    stop_pids "$dir"
    rm -rf "$dir"
    log "stopped and removed $dir"
}
