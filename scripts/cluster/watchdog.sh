# shellcheck shell=bash
# `local-cluster.sh _watchdog OWNER DIR`, which `up` starts when ECSVNC_OWNER_PID is set: once
# process OWNER is gone, the control plane in DIR goes down too (so a killed test run leaks
# nothing). Sourced by scripts/local-cluster.sh; runs as a process recorded in DIR/pids, which
# `down` leaves alone while it is the one running it.

cmd_watchdog() {
    local owner=$1 dir=$2
    while kill -0 "$owner" 2>/dev/null && [[ -d $dir ]]; do
        sleep 1
    done
    [[ -d $dir ]] && cmd_down "$dir"
}
