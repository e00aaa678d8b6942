# shellcheck shell=bash
# ecs-sim for scripts/bench.sh and scripts/fault-matrix.sh (sourced, not run): one AccessKey, the
# instances it is told, on a free loopback port. Uses the sourcing script's BIN, WORK, REGION,
# KEY_ID, KEY_SECRET, PIDS and die, and wait_until from lib/processes.sh.

# Starts ecs-sim with every instance id read from stdin (one a line) Running, Linux, in $REGION,
# and the one AccessKey $KEY_ID/$KEY_SECRET; records its PID in PIDS and sets EP to its address.
# Its config, first line and log are $WORK/sim.json, sim.out and sim.log. Feed it with a
# redirection (start_sim <FILE or < <(...)), not a pipe: a pipe would run it in a subshell.
start_sim() {
    jq -R --arg region "$REGION" --arg id "$KEY_ID" --arg secret "$KEY_SECRET" -s '{
        accounts: [{accessKeyId: $id, accessKeySecret: $secret}],
        instances: [split("\n")[] | select(length > 0)
                    | {instanceId: ., regionId: $region, status: "Running", osType: "linux"}],
        reconnectLimitPerMinute: 30
    }' >"$WORK/sim.json"
    "$BIN/ecs-sim" --listen 127.0.0.1:0 --config "$WORK/sim.json" >"$WORK/sim.out" 2>"$WORK/sim.log" &
    PIDS+=($!)
    wait_until 100 grep -q 'listening on' "$WORK/sim.out" || die "ecs-sim did not start (see $WORK/sim.log)"
    # shellcheck disable=SC2034 # for the sourcing script
    EP=$(sed -n 's/^ecs-sim listening on //p' "$WORK/sim.out" | head -n1)
}
