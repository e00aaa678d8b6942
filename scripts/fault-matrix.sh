#!/usr/bin/env bash
# The fault matrix of issue 12: runs faults against the real control plane
# (scripts/local-cluster.sh), ecs-sim and the release operator binary, and writes RELIABILITY.md.
# Every number in the table comes from this run:
#   served     sessions whose status.observedRefresh reached the requested refresh value
#              (kubectl get -o json, polled every 0.5 s, bounded)
#   lost       refresh values requested and never served within the bound (must be 0)
#   URLs       DescribeInstanceVncUrl answers counted "Success" by ecs-sim (/_sim/stats deltas)
#   duplicate  URLs issued minus distinct (session, refresh value) requests served (must be 0)
#   CPU        the operator's utime+stime from /proc/<pid>/stat over the fault window
#
#   scripts/fault-matrix.sh                     every row of the matrix (~17 min once built)
#   FM_ROWS="ecs api kill restart skew" (default) choose groups of rows
#   FM_ROWS=failover                            failover at scale (issue 23, not in the default set:
#                                               ~5 min, 3.5 of them creating the sessions): 10,000
#                                               sessions at rest, two replicas, the leader SIGKILLed;
#                                               writes its own table in RELIABILITY.md and the
#                                               "Failover at scale" section of BENCHMARKS.md, and keeps
#                                               the matrix already there when it runs alone
#   FM_FAILOVER_SESSIONS=10000 (default)        sessions of the failover row (fewer: quick runs)
#   FM_SKEW_SECONDS=300 (default)               length of the clock-skew run (shorter: quick runs)
#   FM_RESTART_DELAY_MS=5000 (default)          how long ecs-sim holds each answer in the restart rows
#   FM_BIN=dir                                  use the ecs-sim and ecs-vnc-operator in dir, no build
#   FM_KEEP=1                                   keep the work directory (logs, samples)
#   FM_OUT=RELIABILITY.md                       where the table goes
#   FM_BENCH_OUT=BENCHMARKS.md                  where the failover row's section goes
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROWS=${FM_ROWS:-ecs api kill restart skew}
SKEW_DEFAULT=300 # the issue's 5 minutes
SKEW_SECONDS=${FM_SKEW_SECONDS:-$SKEW_DEFAULT}
RESTART_DELAY_MS=${FM_RESTART_DELAY_MS:-5000}
OUT=${FM_OUT:-$ROOT/RELIABILITY.md}
BENCH_OUT=${FM_BENCH_OUT:-$ROOT/BENCHMARKS.md}
has_rows() { # GROUP…: true when FM_ROWS names any of them
    local g
    for g in "$@"; do [[ " $ROWS " == *" $g "* ]] && return 0; done
    return 1
}
MATRIX_GROUPS=(ecs api kill restart skew)
# Failover at scale: FO_N sessions, 25 per instance as in bench.sh's scale phase, in a namespace
# of their own (and the Lease there), served by replicas with bench.sh's scale flags.
FO_N=${FM_FAILOVER_SESSIONS:-10000}
FO_DEFAULT=10000
FO_INSTANCES=$(((FO_N + 24) / 25))
FO_NS=fault-matrix-scale
FO_ARGS=(--url-validity 2s --session-keepalive 3s --ecs-requests-per-second 0)
FO_STAGE_S=900   # bench_scale's bound for each of its stages (all Ready, all Expired)
FO_BOUND_S=240   # from the SIGKILL: the new leader's takeover, its first list and the refresh
FO_QUIET_S=240   # then: until the new leader's CPU is quiet (its first reconcile of everything)
N=50 # sessions, one instance each
ECS_BOUND=${FM_ECS_BOUND:-120} # seconds an ECS row waits for every refresh to be served
REGION=cn-hangzhou
KEY_ID=sim-access-key-id
KEY_SECRET=sim-access-key-secret
NS=fault-matrix
CLK_TCK=$(getconf CLK_TCK)
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
REPRO="scripts/fault-matrix.sh"
START_S=$(date +%s)

LOG_PREFIX=fault-matrix
# log, die
source scripts/lib/log.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecsvnc-faults.XXXXXX")
CLUSTER_DIR=
PIDS=()
STOPPED=() # PIDs we SIGSTOPped: always SIGCONT them on the way out

# alive, stop_pid, wait_until
source scripts/lib/processes.sh
# start_sim
source scripts/lib/sim.sh

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    finish_run "$rc" "${FM_KEEP:-0}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

for tool in kubectl jq curl awk; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh)"; done

# ---------------------------------------------------------------------------
# Build, ecs-sim, control plane
# ---------------------------------------------------------------------------
scripts/local-cluster.sh build >&2
if [[ -n ${FM_BIN:-} ]]; then
    SRC_BIN=$FM_BIN
else
    log "building release binaries"
    if has_rows failover; then
        cargo build --release --quiet --bins --example bench_scale
    else
        cargo build --release --quiet --bins
    fi
    SRC_BIN=$ROOT/target/release
fi
# A copy: others may rebuild target/ while the matrix runs, and every row must run the same binary.
BIN=$WORK/bin
mkdir -p "$BIN"
cp "$SRC_BIN/ecs-sim" "$SRC_BIN/ecs-vnc-operator" "$BIN/"
if has_rows failover; then
    # The scale driver of bench.sh (examples/bench_scale.rs): FM_BIN/examples/ or FM_BIN itself.
    for f in "$SRC_BIN/examples/bench_scale" "$SRC_BIN/bench_scale" ""; do
        [[ -n $f ]] || die "no bench_scale in $SRC_BIN/examples or $SRC_BIN (cargo build --release --example bench_scale)"
        [[ -x $f ]] && cp "$f" "$BIN/bench_scale" && break
    done
fi
OP_SHA=$(sha256sum "$BIN/ecs-vnc-operator" | cut -c1-12)
log "operator binary $OP_SHA"
# Listeners other than --metrics-addr that newer binaries open by default on fixed ports: two
# replicas on one machine (and other people's runs) would collide on them, so ask for any port.
OP_PORTS=()
OP_HELP=$("$BIN/ecs-vnc-operator" run --help 2>/dev/null || true)
[[ $OP_HELP == *--health-addr* ]] && OP_PORTS+=(--health-addr 127.0.0.1:0)

INSTANCES=()
for ((i = 0; i < N; i++)); do INSTANCES+=("$(printf 'i-fm%03d' "$i")"); done
SIM_INSTANCES=("${INSTANCES[@]}")
if has_rows failover; then
    for ((i = 0; i < FO_INSTANCES; i++)); do SIM_INSTANCES+=("$(printf 'i-fmscale%03d' "$i")"); done
fi
start_sim < <(printf '%s\n' "${SIM_INSTANCES[@]}")
log "ecs-sim at $EP"
stats() { curl -fsS --max-time 5 "$EP/_sim/stats"; }
# Clears leftover faults (a fault not used up would hit the next row) and the counters.
sim_reset() { curl -fsS --max-time 5 -X POST "$EP/_sim/reset" >/dev/null; }
inject() { curl -fsS --max-time 5 -H 'content-type: application/json' -d "$1" "$EP/_sim/faults" >/dev/null; }

CLUSTER_DIR=$(ECSVNC_OWNER_PID=$$ scripts/local-cluster.sh up "$WORK/cluster" 2>"$WORK/cluster-up.log" | tail -n1) ||
    die "control plane did not start (see $WORK/cluster-up.log)"
export KUBECONFIG=$CLUSTER_DIR/kubeconfig
kubectl apply --validate=false -f crds/vncsession.yaml >/dev/null
kubectl wait --for=condition=Established crd/vncsessions.ecsvnc.dev --timeout=60s >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" create secret generic fm-creds \
    --from-literal=accessKeyId="$KEY_ID" --from-literal=accessKeySecret="$KEY_SECRET" >/dev/null

# The control plane's PID for a binary name, from the state dir's pids file and /proc/<pid>/cmdline.
cp_pid() {
    local pid
    while read -r pid; do
        [[ -r /proc/$pid/cmdline ]] || continue
        if tr '\0' ' ' <"/proc/$pid/cmdline" | awk -v n="$1" '{ split($1, p, "/"); exit !(p[length(p)] == n) }'; then
            echo "$pid"
            return 0
        fi
    done <"$CLUSTER_DIR/pids"
    return 1
}
APISERVER_PID=$(cp_pid kube-apiserver) || die "no kube-apiserver in $CLUSTER_DIR/pids"
ETCD_PID=$(cp_pid etcd) || die "no etcd in $CLUSTER_DIR/pids"
log "kube-apiserver pid $APISERVER_PID, etcd pid $ETCD_PID"

# start_operator NAME [env assignments…] : starts a --leader-elect replica (with the flags in
# OP_EXTRA, if any) watching OP_NS (default NS, the Lease there too); sets OP_PID.
declare -A OP_LOG OP_IDENT
OP_EXTRA=()
OP_NS=$NS
OP_A=
start_operator() {
    local name=$1
    shift
    local logf="$WORK/operator-$name.log"
    env -u ALIBABA_CLOUD_ACCESS_KEY_ID -u ALIBABA_CLOUD_ACCESS_KEY_SECRET "$@" \
        "$BIN/ecs-vnc-operator" run --ecs-endpoint "$EP" --metrics-addr 127.0.0.1:0 \
        ${OP_PORTS[@]+"${OP_PORTS[@]}"} \
        --watch-namespace "$OP_NS" --log-format json --leader-elect --lease-duration 15s \
        --lease-namespace "$OP_NS" ${OP_EXTRA[@]+"${OP_EXTRA[@]}"} 2>"$logf" >/dev/null &
    OP_PID=$!
    PIDS+=("$OP_PID")
    OP_LOG[$OP_PID]=$logf
    wait_until 150 grep -q 'serving /metrics' "$logf" || die "operator $name did not start (see $logf)"
}
oplines() { grep -c "$2" "${OP_LOG[$1]}" || true; }
became() { grep -c 'became the leader' "${OP_LOG[$1]}" || true; }
lostlease() { grep -c 'lost the leader Lease' "${OP_LOG[$1]}" || true; }
holder() { kubectl -n "$OP_NS" get lease ecs-vnc-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true; }
# The identity a replica logged when it became the leader (empty before).
identity_of() { grep 'became the leader' "${OP_LOG[$1]}" | head -n1 | jq -r '.fields.identity // .identity // empty' 2>/dev/null || true; }
op_metrics() { # PID: its /metrics text
    local addr
    addr=$(grep -m1 'serving /metrics' "${OP_LOG[$1]}" | jq -r '.fields.addr // .addr // empty' 2>/dev/null) || return 1
    [[ -n $addr ]] && curl -fsS --max-time 5 "http://$addr/metrics"
}
proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# fresh_leader NAME: starts an operator (OP_PID), waits until it leads, then zeroes ecs-sim and
# records its stats in $WORK/s0.json: what follows is the row's alone.
fresh_leader() {
    start_operator "$1"
    wait_leader "$OP_PID" || log "operator $1 did not become the leader"
    sleep 1
    sim_reset
    stats >"$WORK/s0.json"
}

wait_leader() { # PID: waits (bounded, 40 s) until it logged "became the leader"
    local pid=$1 before=${2:-0}
    for _ in $(seq 400); do
        [[ $(became "$pid") -gt $before ]] && return 0
        sleep 0.1
    done
    return 1
}

session_yaml() {
    printf -- '---\napiVersion: ecsvnc.dev/v1alpha1\nkind: VncSession\nmetadata:\n  name: %s\nspec:\n  regionId: %s\n  instanceId: %s\n  credentialsRef:\n    name: fm-creds\n  reason: fault matrix\n' \
        "$1" "$REGION" "$2"
}

# sessions.json snapshot
snapshot() { kubectl -n "$NS" get vnc -o json --request-timeout=5s 2>/dev/null >"$WORK/snap.json"; }
# Served: the value was acted on (observedRefresh) AND a URL came with it: no lastError, and
# issuedAt (whole seconds, the operator's wall clock) not before the request (less SLACK seconds,
# for the skewed-clock row). observedRefresh alone is also set when an attempt failed.
SLACK=0
served_count() { # VALUE REQUEST_EPOCH_SECONDS
    jq --arg v "$1" --argjson t "$(($2 - SLACK))" '[.items[] | .status
        | select(.observedRefresh == $v and .lastError == null and .issuedAt != null
                 and (.issuedAt | fromdateiso8601) >= $t)] | length' "$WORK/snap.json"
}

# request VALUE: sets the refresh annotation on every session (bounded retries: the API server
# may just have come back).
request() {
    local v=$1
    T_REQ=$(date +%s)
    for _ in $(seq 30); do
        kubectl -n "$NS" annotate vnc --all --overwrite --request-timeout=10s "ecsvnc.dev/refresh=$v" >/dev/null 2>>"$WORK/kubectl.err" && return 0
        sleep 1
    done
    return 1
}

# wait_served VALUE BOUND_S: polls until all N sessions have observedRefresh == VALUE; sets
# SERVED, T_FIRST (first served, epoch), T_ALL (all served, epoch or empty), PHASES (seen).
wait_served() {
    local v=$1 bound=$2 deadline c treq=${3:-$T_REQ}
    deadline=$(awk -v n="$(now)" -v b="$bound" 'BEGIN { printf "%.0f", n + b }')
    SERVED=0 T_FIRST= T_ALL=
    : >"$WORK/phases.txt"
    while [[ $(date +%s) -lt $deadline ]]; do
        if snapshot; then
            c=$(served_count "$v" "$treq")
            jq -r '.items[] | "\(.status.phase // "none")/\(.status.lastError.code // "-")"' "$WORK/snap.json" >>"$WORK/phases.txt"
            if [[ -z $T_FIRST && $c -gt 0 ]]; then T_FIRST=$(now); fi
            SERVED=$c
            if [[ $c -ge $N ]]; then
                T_ALL=$(now)
                return 0
            fi
        fi
        sleep 0.5
    done
    return 1
}
# After the row settled: served counted again on a fresh snapshot (a refresh served after the
# bound still counts as served; its URL is in the same stats).
final_served() { # VALUE
    local c=$SERVED
    if snapshot; then c=$(served_count "$1" "$T_REQ"); fi
    [[ $c -gt $SERVED ]] && SERVED=$c
    return 0
}
phases_seen() { sort -u "$WORK/phases.txt" | grep -v '/-$' | awk -F/ '{ print $2 }' | sort -u | paste -sd, - || true; }

# settle: waits until ecs-sim's counters stop moving for 3 s (bounded 30 s): a delayed answer
# still issues its URL after the client gave up.
settle() {
    local prev cur same=0
    prev=$(stats | jq -c .calls)
    for _ in $(seq 30); do
        sleep 1
        cur=$(stats | jq -c .calls)
        if [[ $cur == "$prev" ]]; then
            same=$((same + 1))
            [[ $same -ge 3 ]] && return 0
        else
            same=0
        fi
        prev=$cur
    done
}

vnc_total() { jq '[.calls.DescribeInstanceVncUrl // {} | to_entries[].value] | add // 0' "$1"; }
vnc_success() { jq '.calls.DescribeInstanceVncUrl.Success // 0' "$1"; }
vnc_codes() { # BEFORE AFTER: "Success 50, InternalError 50"
    jq -rn --slurpfile a "$1" --slurpfile b "$2" '
        ($a[0].calls.DescribeInstanceVncUrl // {}) as $x | ($b[0].calls.DescribeInstanceVncUrl // {}) as $y
        | [$y | to_entries[] | {k: .key, d: (.value - ($x[.key] // 0))} | select(.d > 0) | "\(.k) \(.d)"]
        | join(", ")'
}

# row JSON fields -> rows.jsonl
row() { jq -cn "$@" >>"$WORK/rows.jsonl"; }
: >"$WORK/rows.jsonl"

# measure_row NAME FAULT-DESC WHAT REQUESTED SERVED URLS CALLS RECOVER CPU_TICKS CPU_SECONDS ALIVE REPRO
emit() {
    local name=$1 did=$2 requested=$3 served=$4 before=$5 after=$6 recover=$7 ticks=$8 window=$9 repro=${10}
    local success total codes
    success=$(($(vnc_success "$after") - $(vnc_success "$before")))
    total=$(($(vnc_total "$after") - $(vnc_total "$before")))
    codes=$(vnc_codes "$before" "$after")
    row --arg fault "$name" --arg did "$did" --argjson req "$requested" --argjson served "$served" \
        --argjson urls "$success" --argjson calls "$total" --arg codes "$codes" --arg recover "$recover" \
        --arg cpu "$(awk -v t="$ticks" -v k="$CLK_TCK" -v w="$window" 'BEGIN { printf "%.2f s over %.0f s (%.1f%% of a core)", t / k, w, (w > 0 ? 100 * t / k / w : 0) }')" \
        --arg repro "$repro" \
        '{fault: $fault, did: $did, requested: $req, served: $served, lost: ($req - $served),
          urls: $urls, duplicates: ($urls - $served), calls: $calls, codes: $codes,
          recover: $recover, cpu: $cpu, repro: $repro}'
    log "row: $(tail -n1 "$WORK/rows.jsonl")"
}

# ---------------------------------------------------------------------------
# Sessions and the first leader
# ---------------------------------------------------------------------------
SEQ=0
if has_rows "${MATRIX_GROUPS[@]}"; then
    start_operator a
    OP_A=$OP_PID
    wait_leader "$OP_A" || die "operator a did not become the leader"
    for ((i = 0; i < N; i++)); do session_yaml "$(printf 'fm-%03d' "$i")" "${INSTANCES[i]}"; done >"$WORK/sessions.yaml"
    kubectl -n "$NS" apply -f "$WORK/sessions.yaml" >/dev/null
    all_issued() { snapshot && jq -e --argjson n "$N" '[.items[] | select(.status.issuedAt != null)] | length == $n' "$WORK/snap.json"; }
    for _ in $(seq 120); do all_issued >/dev/null && break; sleep 0.5; done
    all_issued >/dev/null || die "sessions were not served within 60 s"
    log "$N sessions served once; starting the matrix"
fi

# ---------------------------------------------------------------------------
# 1. ECS faults, each for the first 50 DescribeInstanceVncUrl answers of a 50-session refresh
# ---------------------------------------------------------------------------
ecs_row() { # LABEL FAULT-JSON-EXTRA
    local label=$1 extra=$2 v t0 t1 c0 c1 did alive_s w0 i0 w1 i1
    SEQ=$((SEQ + 1))
    v="fm-$SEQ-$(date +%s)"
    # A fresh operator process per row: one row's aftermath must not be the next row's numbers.
    stop_pid "$OP_A"
    fresh_leader "a$SEQ"
    OP_A=$OP_PID
    w0=$(oplines "$OP_A" 'status written') i0=$(oplines "$OP_A" 'issuing a console URL')
    c0=$(cpu_ticks "$OP_A")
    t0=$(now)
    inject "{\"action\":\"DescribeInstanceVncUrl\",\"count\":$N,$extra}"
    request "$v" || die "could not set refresh $v"
    wait_served "$v" "$ECS_BOUND" || true
    t1=$(now)
    c1=$(cpu_ticks "$OP_A")
    w1=$(oplines "$OP_A" 'status written') i1=$(oplines "$OP_A" 'issuing a console URL')
    settle
    stats >"$WORK/s1.json"
    final_served "$v"
    alive "$OP_A" && alive_s="kept running" || alive_s="EXITED"
    did="$alive_s; first served after $([[ -n $T_FIRST ]] && elapsed "$t0" "$T_FIRST" || echo never) s; $((i1 - i0)) issue attempts and $((w1 - w0)) status writes logged; lastError codes seen: $(phases_seen)"
    if [[ -z $T_ALL ]]; then
        did="$did; at the bound: $(jq -r '[.items[].status | "\(.phase)/\(.lastError.code // "-")/retryAt \(.retryAt // "-")"] | group_by(split("/")[0:2]) | map("\(length)x \(.[0])") | join("; ")' "$WORK/snap.json") (now $(date -u +%H:%M:%SZ))"
    fi
    emit "ECS $label ($N answers)" "$did" "$N" "$SERVED" "$WORK/s0.json" "$WORK/s1.json" \
        "$([[ -n $T_ALL ]] && echo "$(elapsed "$t0" "$T_ALL") s to all $N served" || echo "not all served in $ECS_BOUND s ($SERVED once settled)")" \
        "$((c1 - c0))" "$(elapsed "$t0" "$t1")" "FM_ROWS=ecs $REPRO"
    cp "$WORK/s1.json" "$WORK/stats-ecs-$SEQ.json"
}

if [[ " $ROWS " == *" ecs "* ]]; then
    ecs_row "500 InternalError" '"kind":"internalError"'
    ecs_row "503 ServiceUnavailable" '"kind":"serviceUnavailable"'
    ecs_row "400 Throttling" '"kind":"throttling"'
    ecs_row "delay 11 s (> 10 s client deadline)" '"kind":"delay","ms":11000'
    ecs_row "malformed 200 body" '"kind":"malformed"'
    ecs_row "dropped connection" '"kind":"drop"'
fi

# ---------------------------------------------------------------------------
# 2. API server / etcd paused
# ---------------------------------------------------------------------------
pause_row() { # LABEL PID SECONDS
    local label=$1 pid=$2 secs=$3 v t0 tc c0 c1 b0 l0 did w0 w1
    SEQ=$((SEQ + 1))
    v="fm-$SEQ-$(date +%s)"
    sim_reset
    stats >"$WORK/s0.json"
    w0=$(oplines "$OP_A" 'status written')
    b0=$(became "$OP_A")
    l0=$(lostlease "$OP_A")
    c0=$(cpu_ticks "$OP_A")
    t0=$(now)
    kill -STOP "$pid"
    STOPPED+=("$pid")
    sleep "$secs"
    kill -CONT "$pid"
    STOPPED=()
    tc=$(now)
    c1=$(cpu_ticks "$OP_A")
    request "$v" || log "could not set refresh $v"
    wait_served "$v" 120 || true
    settle
    stats >"$WORK/s1.json"
    final_served "$v"
    w1=$(oplines "$OP_A" 'status written')
    if alive "$OP_A"; then
        did="kept running; $((w1 - w0)) status writes logged; lost the Lease $(($(lostlease "$OP_A") - l0))x, became leader again $(($(became "$OP_A") - b0))x; first refresh served $([[ -n $T_FIRST ]] && elapsed "$tc" "$T_FIRST" || echo never) s after SIGCONT"
    else
        did="EXITED during the pause (see operator log)"
    fi
    emit "$label stopped (SIGSTOP) ${secs} s" "$did" "$N" "$SERVED" "$WORK/s0.json" "$WORK/s1.json" \
        "$([[ -n $T_ALL ]] && echo "$(elapsed "$tc" "$T_ALL") s after SIGCONT to all $N served" || echo "not all served in 120 s")" \
        "$((c1 - c0))" "$(elapsed "$t0" "$tc")" "FM_ROWS=api $REPRO"
}

if [[ " $ROWS " == *" api "* ]]; then
    stop_pid "$OP_A"
    start_operator api
    OP_A=$OP_PID
    wait_leader "$OP_A" || log "operator api did not become the leader"
    pause_row kube-apiserver "$APISERVER_PID" 15
    alive "$OP_A" && pause_row kube-apiserver "$APISERVER_PID" 60
    alive "$OP_A" && pause_row etcd "$ETCD_PID" 10
fi

# ---------------------------------------------------------------------------
# 3. Leader SIGKILLed during a burst of 200 refreshes (4 rounds of 50), a standby takes over
# ---------------------------------------------------------------------------
if [[ " $ROWS " == *" kill "* ]] && alive "$OP_A"; then
    start_operator b
    OP_B=$OP_PID
    sleep 2
    sim_reset
    stats >"$WORK/s0.json"
    SERVED_TOTAL=0
    T_KILL= RECOVER="not all served"
    b0=$(became "$OP_B")
    c0=$(cpu_ticks "$OP_B")
    t0=$(now)
    for round in 1 2 3 4; do
        SEQ=$((SEQ + 1))
        v="fm-$SEQ-$(date +%s)"
        request "$v" || log "could not set refresh $v"
        if [[ $round == 2 ]]; then
            sleep 0.3 # reconciles (and ECS calls) in flight
            kill -KILL "$OP_A"
            T_KILL=$(now)
            wait "$OP_A" 2>/dev/null || true
            keep=()
            for p in "${PIDS[@]}"; do [[ $p == "$OP_A" ]] || keep+=("$p"); done
            PIDS=("${keep[@]}")
        fi
        wait_served "$v" 90 || true
        SERVED_TOTAL=$((SERVED_TOTAL + SERVED))
        if [[ $round == 2 && -n $T_ALL ]]; then RECOVER="$(elapsed "$T_KILL" "$T_ALL") s from SIGKILL to all $N of the round served"; fi
    done
    t1=$(now)
    c1=$(cpu_ticks "$OP_B")
    settle
    stats >"$WORK/s1.json"
    alive "$OP_B" && bs="standby kept running" || bs="standby EXITED"
    did="leader SIGKILLed 0.3 s into round 2 of 4; $bs, became leader $(($(became "$OP_B") - b0))x"
    emit "leader SIGKILL during 200 refreshes on $N sessions" "$did" 200 "$SERVED_TOTAL" "$WORK/s0.json" "$WORK/s1.json" \
        "$RECOVER" "$((c1 - c0))" "$(elapsed "$t0" "$t1")" "FM_ROWS=kill $REPRO"
    OP_A=$OP_B
fi

# ---------------------------------------------------------------------------
# 4. The operator restarted while its ECS calls are in flight (one replica): ecs-sim holds every
#    DescribeInstanceVncUrl answer for RESTART_DELAY_MS, all 50 sessions get a new refresh value,
#    and 2 s later (every reconcile slot has sent its call) the operator gets SIGTERM or SIGKILL;
#    once it is gone, a new process is started.
# ---------------------------------------------------------------------------
# restart_row SIGNAL LABEL [extra operator flags…]
restart_row() {
    local sig=$1 label=$2 v old t_sig t_exit t_up i0 w0 ik wk ie we tk ticks_old t cn0 cn1 did
    local sent abandoned after_sig exit_s up_s rc
    shift 2
    SEQ=$((SEQ + 1))
    v="fm-$SEQ-$(date +%s)"
    alive "$OP_A" && stop_pid "$OP_A"
    OP_EXTRA=("$@")
    fresh_leader "r$SEQ"
    old=$OP_PID
    i0=$(oplines "$old" 'issuing a console URL') w0=$(oplines "$old" 'status written')
    inject "{\"action\":\"DescribeInstanceVncUrl\",\"count\":$N,\"kind\":\"delay\",\"ms\":$RESTART_DELAY_MS}"
    request "$v" || die "could not set refresh $v"
    sleep 2
    ik=$(oplines "$old" 'issuing a console URL') wk=$(oplines "$old" 'status written')
    tk=$(cpu_ticks "$old")
    ticks_old=$tk
    kill "-$sig" "$old"
    t_sig=$(now)
    # Bounded: the grace (20 s by default) and a margin. CPU read while it still runs.
    for _ in $(seq 400); do
        alive "$old" || break
        t=$(cpu_ticks "$old")
        [[ $t -gt 0 ]] && ticks_old=$t
        sleep 0.1
    done
    t_exit=$(now)
    wait "$old" 2>/dev/null && rc=0 || rc=$?
    stop_pid "$old" # reaps and forgets it (already gone: nothing is sent)
    ie=$(oplines "$old" 'issuing a console URL') we=$(oplines "$old" 'status written')
    OP_EXTRA=()
    start_operator "r$SEQ-next"
    OP_A=$OP_PID
    cn0=$(cpu_ticks "$OP_A")
    wait_leader "$OP_A" || log "the new process did not become the leader within 40 s"
    t_up=$(now)
    wait_served "$v" 120 || true
    cn1=$(cpu_ticks "$OP_A")
    settle
    stats >"$WORK/s1.json"
    final_served "$v"
    # Calls the old process had under way at the signal: attempts logged without an outcome
    # written (an attempt is logged just before its pacer turn; 32 reconcile slots at 20 calls/s
    # have all sent theirs within 2 s).
    sent=$(((ik - i0) - (wk - w0)))
    after_sig=$((we - wk))
    abandoned=$(((ie - i0) - (we - w0)))
    exit_s=$(elapsed "$t_sig" "$t_exit")
    up_s=$(elapsed "$t_sig" "$t_up")
    did="SIG$sig 2 s after the refresh, $sent calls under way (each held ${RESTART_DELAY_MS} ms); old process exited after $exit_s s (exit code $rc), writing $after_sig outcomes after the signal; $abandoned calls left without an outcome (\"in-flight work abandoned\" logged $(oplines "$old" 'in-flight work abandoned')x); new process leader $up_s s after the signal, $(($(oplines "$OP_A" 'issuing a console URL'))) issue attempts"
    emit "operator restarted during ECS calls: $label" "$did" "$N" "$SERVED" "$WORK/s0.json" "$WORK/s1.json" \
        "$([[ -n $T_ALL ]] && echo "$(elapsed "$t_sig" "$T_ALL") s from the signal to all $N served" || echo "not all served in 120 s ($SERVED once settled)")" \
        "$(((ticks_old - tk) + (cn1 - cn0)))" "$(elapsed "$t_sig" "${T_ALL:-$(now)}")" "FM_ROWS=restart $REPRO"
    # Calls that never got an outcome: ecs-sim drops a held answer whose connection closed (no URL,
    # not counted); real ECS may have issued a URL for each, which no status shows.
    jq -c --argjson a "$abandoned" '. + {abandoned: $a}' <<<"$(tail -n1 "$WORK/rows.jsonl")" >"$WORK/row.tmp"
    sed -i '$d' "$WORK/rows.jsonl"
    cat "$WORK/row.tmp" >>"$WORK/rows.jsonl"
}

if [[ " $ROWS " == *" restart "* ]]; then
    restart_row TERM "SIGTERM (--shutdown-grace 20s, the default)"
    restart_row TERM "SIGTERM with --shutdown-grace 2s (shorter than the held answers)" --shutdown-grace 2s
    restart_row KILL "SIGKILL"
fi

# ---------------------------------------------------------------------------
# 5. Two replicas with wall clocks 12 s ahead and 12 s behind
# ---------------------------------------------------------------------------
if [[ " $ROWS " == *" skew "* ]]; then
    [[ -r $FAKETIME_LIB ]] || die "libfaketime missing ($FAKETIME_LIB; Debian package faketime)"
    alive "$OP_A" && stop_pid "$OP_A"
    # Wait for the released Lease (or its lapse) so the +12 s replica starts first and leads.
    start_operator plus LD_PRELOAD="$FAKETIME_LIB" FAKETIME=+12s FAKETIME_DONT_FAKE_MONOTONIC=1
    OP_P=$OP_PID
    wait_leader "$OP_P" || log "the +12 s replica did not become the leader within 40 s"
    start_operator minus LD_PRELOAD="$FAKETIME_LIB" FAKETIME=-12s FAKETIME_DONT_FAKE_MONOTONIC=1
    OP_M=$OP_PID
    sleep 2
    sim_reset
    stats >"$WORK/s0.json"
    SLACK=13
    bp=$(became "$OP_P") bm=$(became "$OP_M") lp=$(lostlease "$OP_P") lm=$(lostlease "$OP_M")
    cp0=$(cpu_ticks "$OP_P") cm0=$(cpu_ticks "$OP_M")
    t0=$(now)
    end=$(($(date +%s) + SKEW_SECONDS))
    REQ=0 SERVED_TOTAL=0 HOLDERS=()
    while [[ $(date +%s) -lt $end ]]; do
        SEQ=$((SEQ + 1))
        v="fm-$SEQ-$(date +%s)"
        rs=$(date +%s)
        request "$v" || break
        REQ=$((REQ + N))
        wait_served "$v" 60 || true
        SERVED_TOTAL=$((SERVED_TOTAL + SERVED))
        HOLDERS+=("$(holder)")
        # one round every 6 s at most: 10 URLs a minute per instance, under ECS's 30
        while [[ $(date +%s) -lt $((rs + 6)) ]]; do sleep 0.5; done
    done
    t1=$(now)
    cp1=$(cpu_ticks "$OP_P") cm1=$(cpu_ticks "$OP_M")
    settle
    stats >"$WORK/s1.json"
    distinct=$(printf '%s\n' "${HOLDERS[@]}" | sort -u | grep -c . || true)
    did="Lease holder before the run: $(holder) (the +12 s replica started first); during the run: +12 s replica: became leader $(($(became "$OP_P") - bp))x, lost $(($(lostlease "$OP_P") - lp))x, $(alive "$OP_P" && echo running || echo EXITED); -12 s replica: became leader $(($(became "$OP_M") - bm))x, lost $(($(lostlease "$OP_M") - lm))x, $(alive "$OP_M" && echo running || echo EXITED); $distinct distinct Lease holder(s) over ${#HOLDERS[@]} rounds"
    emit "clocks skewed +12 s / -12 s, two replicas, ${SKEW_SECONDS} s of refreshes" "$did" "$REQ" "$SERVED_TOTAL" \
        "$WORK/s0.json" "$WORK/s1.json" "no fault to recover from" "$(((cp1 - cp0) + (cm1 - cm0)))" "$(elapsed "$t0" "$t1")" \
        "FM_ROWS=skew $([[ $SKEW_SECONDS != "$SKEW_DEFAULT" ]] && echo "FM_SKEW_SECONDS=$SKEW_SECONDS ")$REPRO"
fi

# ---------------------------------------------------------------------------
# 6. Failover at scale (issue 23): FO_N sessions at rest (all Expired: nothing due), two replicas,
#    the leader SIGKILLed. For the new leader: its peak RSS once its first list is done (a
#    standby holds no watch cache: its controller, and the first list, start when it holds the
#    Lease), the time from the kill until it serves one refresh set right after the kill, and the
#    ECS calls it makes for the sessions at rest (must be 0).
# ---------------------------------------------------------------------------
# cpu_quiet PID BOUND_S: waits until PID used at most 2 clock ticks in each of 3 seconds in a row
# (bounded); sets QUIET (true/false).
cpu_quiet() {
    local pid=$1 bound=$2 prev cur calm=0
    QUIET=false
    prev=$(cpu_ticks "$pid")
    for _ in $(seq "$bound"); do
        sleep 1
        alive "$pid" || return 1
        cur=$(cpu_ticks "$pid")
        if [[ $((cur - prev)) -le 2 ]]; then calm=$((calm + 1)); else calm=0; fi
        prev=$cur
        if [[ $calm -ge 3 ]]; then
            QUIET=true
            return 0
        fi
    done
    return 1
}
calls_total() { jq --arg a "$2" '[.calls[$a] // {} | to_entries[].value] | add // 0' "$1"; }
calls_all() { jq '[.calls // {} | to_entries[] | select(.key | startswith("Metadata.") | not) | .value | to_entries[].value] | add // 0' "$1"; }
# KiB from /proc/PID/status, or null once the process is gone.
kib_or_null() {
    local v
    v=$(proc_kib "$1" "$2")
    echo "${v:-null}"
}
reconciles_of() { { op_metrics "$1" || true; } | awk '/^ecsvnc_reconciles_total/ { s += $NF } END { print s + 0 }'; }
# log_epoch PID MESSAGE: the epoch seconds (with fraction) of the first log line of PID with that
# message (the operator's clock is this machine's), or empty.
log_epoch() {
    local ts
    ts=$(grep -m1 "\"message\":\"$2" "${OP_LOG[$1]}" | jq -r '.timestamp // empty' 2>/dev/null) || true
    [[ -n $ts ]] && date -d "$ts" +%s.%N || true
}

failover_group() {
    local t0 fa fb id_b target v t_req t_kill t_lead= t_sync= t_served= t_quiet t_end deadline t_rest=
    local hwm_sync= hwm_served= sb_rss sb_hwm old_hwm old_rss w0 i0 c0 r0 r1 e0 e1 phases
    t0=$(now)
    log "failover: $FO_N sessions over $FO_INSTANCES instances in namespace $FO_NS"
    alive "$OP_A" && stop_pid "$OP_A" # the matrix's replica: nothing else runs during this row
    kubectl create namespace "$FO_NS" >/dev/null
    kubectl -n "$FO_NS" create secret generic fm-creds \
        --from-literal=accessKeyId="$KEY_ID" --from-literal=accessKeySecret="$KEY_SECRET" >/dev/null
    OP_NS=$FO_NS
    OP_EXTRA=("${FO_ARGS[@]}")
    start_operator fo-a
    fa=$OP_PID
    wait_leader "$fa" || die "failover: replica fo-a did not become the leader within 40 s"
    start_operator fo-b
    fb=$OP_PID
    sleep 2
    [[ $(became "$fb") -eq 0 ]] || die "failover: replica fo-b leads although fo-a holds the Lease"
    OP_EXTRA=()

    # The sessions, created and followed to Expired by bench.sh's driver (bounded per stage, and
    # as a whole by timeout).
    local t_c0 t_c1
    t_c0=$(now)
    timeout $((2 * FO_STAGE_S + 120)) "$BIN/bench_scale" --namespace "$FO_NS" --count "$FO_N" \
        --instance-prefix i-fmscale --instances "$FO_INSTANCES" --region-id "$REGION" \
        --credentials fm-creds --concurrency 32 --until-expired --timeout-secs "$FO_STAGE_S" \
        --out "$WORK/failover-scale.json" 2>"$WORK/bench_scale.log" ||
        die "failover: bench_scale failed or timed out (see $WORK/bench_scale.log)"
    t_c1=$(now)
    jq -e --argjson n "$FO_N" '.created == $n and .expired == $n' "$WORK/failover-scale.json" >/dev/null ||
        die "failover: not all $FO_N sessions created and Expired ($(jq -c '{created, ready, failed, expired}' "$WORK/failover-scale.json"))"
    log "failover: $FO_N sessions Expired after $(elapsed "$t_c0" "$t_c1") s; waiting for rest"
    # At rest: ecs-sim's counters still, the leader's CPU quiet; then every session is checked.
    settle
    cpu_quiet "$fa" 120 || log "failover: the leader's CPU did not go quiet within 120 s"
    kubectl -n "$FO_NS" get vnc -o json --request-timeout=120s >"$WORK/fo-snap.json" ||
        die "failover: could not list the sessions"
    phases=$(jq -c 'reduce .items[] as $s ({}; .[$s.status.phase // "none"] += 1)' "$WORK/fo-snap.json")
    # The refresh goes to the last session in list order: it waits behind the whole first list.
    target=$(jq -r '[.items[].metadata.name] | sort | last' "$WORK/fo-snap.json")
    rm -f "$WORK/fo-snap.json"
    [[ $(jq -r --argjson n "$FO_N" '.Expired == $n' <<<"$phases") == true ]] ||
        die "failover: not every session is Expired: $phases"
    settle

    # Before the kill: the standby's memory (reference), the counters.
    sb_rss=$(kib_or_null "$fb" VmRSS) sb_hwm=$(kib_or_null "$fb" VmHWM)
    old_rss=$(kib_or_null "$fa" VmRSS) old_hwm=$(kib_or_null "$fa" VmHWM)
    stats >"$WORK/fo-s0.json"
    w0=$(oplines "$fb" 'status written') i0=$(oplines "$fb" 'issuing a console URL')
    e0=$(oplines "$fb" '"level":"ERROR"')
    c0=$(cpu_ticks "$fb")
    r0=$(reconciles_of "$fb")
    v="fo-$(date +%s)"
    log "failover: SIGKILL to the leader (pid $fa); refresh $v on $target"
    kill -KILL "$fa"
    t_kill=$(now)
    stop_pid "$fa" # reaps and forgets it
    t_req=$(date +%s)
    for _ in $(seq 30); do
        kubectl -n "$FO_NS" annotate vnc "$target" --overwrite --request-timeout=10s \
            "ecsvnc.dev/refresh=$v" >/dev/null 2>>"$WORK/kubectl.err" && break
        sleep 1
    done
    deadline=$(awk -v n="$t_kill" -v b="$FO_BOUND_S" 'BEGIN { printf "%.0f", n + b }')
    # Takeover and first list: from the new leader's log (its timestamps, this machine's clock).
    # Served: polled every 0.2 s once the list is done (0.5 s before), as a client sees it.
    while [[ $(date +%s) -lt $deadline ]]; do
        if [[ -z $t_sync && $(oplines "$fb" 'watch caches synced') -gt 0 ]]; then
            t_sync=$(log_epoch "$fb" 'watch caches synced')
            hwm_sync=$(kib_or_null "$fb" VmHWM)
        fi
        if [[ -z $t_served ]] && kubectl -n "$FO_NS" get vnc "$target" -o json --request-timeout=5s 2>/dev/null |
            jq -e --arg v "$v" --argjson t "$t_req" '.status | .observedRefresh == $v and .lastError == null
                and .issuedAt != null and (.issuedAt | fromdateiso8601) >= $t' >/dev/null; then
            t_served=$(now)
            hwm_served=$(kib_or_null "$fb" VmHWM)
        fi
        [[ -n $t_sync && -n $t_served ]] && break
        if [[ -n $t_sync ]]; then sleep 0.2; else sleep 0.5; fi
    done
    t_lead=$(log_epoch "$fb" 'became the leader')
    # The refreshed session back at rest (Ready → UrlExpired → Expired: 5 s), then the new
    # leader's first pass over every session done: its CPU quiet (both bounded).
    if [[ -n $t_served ]]; then
        for _ in $(seq 60); do
            if [[ $(kubectl -n "$FO_NS" get vnc "$target" -o jsonpath='{.status.phase}' --request-timeout=5s 2>/dev/null) == Expired ]]; then
                t_rest=$(now)
                break
            fi
            sleep 0.5
        done
    fi
    cpu_quiet "$fb" "$FO_QUIET_S" || true
    t_quiet=$(now)
    settle
    stats >"$WORK/fo-s1.json"
    t_end=$(now)
    r1=$(reconciles_of "$fb")
    e1=$(oplines "$fb" '"level":"ERROR"')
    id_b=$(identity_of "$fb")
    local served=0 vnc di all alive_b=false holds=false
    [[ -n $t_served ]] && served=1
    alive "$fb" && alive_b=true
    [[ -n $id_b && $(holder) == "$id_b" ]] && holds=true
    vnc=$(($(calls_total "$WORK/fo-s1.json" DescribeInstanceVncUrl) - $(calls_total "$WORK/fo-s0.json" DescribeInstanceVncUrl)))
    di=$(($(calls_total "$WORK/fo-s1.json" DescribeInstances) - $(calls_total "$WORK/fo-s0.json" DescribeInstances)))
    all=$(($(calls_all "$WORK/fo-s1.json") - $(calls_all "$WORK/fo-s0.json")))
    since() { [[ -n $1 ]] && elapsed "$t_kill" "$1" || echo null; }
    jq -n --argjson n "$FO_N" --argjson instances "$FO_INSTANCES" --argjson phases "$phases" \
        --arg target "$target" --arg value "$v" \
        --argjson sbRss "$sb_rss" --argjson sbHwm "$sb_hwm" \
        --argjson oldRss "$old_rss" --argjson oldHwm "$old_hwm" \
        --argjson hwmSync "${hwm_sync:-null}" --argjson hwmServed "${hwm_served:-null}" \
        --argjson hwmEnd "$(kib_or_null "$fb" VmHWM)" --argjson rssEnd "$(kib_or_null "$fb" VmRSS)" \
        --argjson threads "$(kib_or_null "$fb" Threads)" \
        --argjson lead "$(since "$t_lead")" --argjson sync "$(since "$t_sync")" --argjson served "$(since "$t_served")" \
        --argjson quiet "$(elapsed "$t_kill" "$t_quiet")" --argjson isQuiet "$QUIET" \
        --argjson rest "$(since "$t_rest")" \
        --argjson vnc "$vnc" --argjson di "$di" --argjson all "$all" --argjson servedCount "$served" \
        --argjson writes "$(($(oplines "$fb" 'status written') - w0))" \
        --argjson issues "$(($(oplines "$fb" 'issuing a console URL') - i0))" \
        --argjson errors "$((e1 - e0))" --argjson reconciles "$((r1 - r0))" \
        --argjson cpu "$(awk -v t="$(($(cpu_ticks "$fb") - c0))" -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')" \
        --argjson alive "$alive_b" --argjson holds "$holds" \
        --argjson create "$(jq '.createSeconds * 10 | round / 10' "$WORK/failover-scale.json")" \
        --argjson ready "$(jq 'if .allReadySeconds == null then null else .allReadySeconds * 10 | round / 10 end' "$WORK/failover-scale.json")" \
        --argjson expired "$(jq 'if .allExpiredSeconds == null then null else .allExpiredSeconds * 10 | round / 10 end' "$WORK/failover-scale.json")" \
        --argjson rowSeconds "$(elapsed "$t0" "$t_end")" --argjson sessionsSeconds "$(elapsed "$t_c0" "$t_c1")" \
        --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{sessions: $n, instances: $instances, phases: $phases, target: $target, value: $value,
          standbyRssKiB: $sbRss, standbyHwmKiB: $sbHwm, oldLeaderRssKiB: $oldRss, oldLeaderHwmKiB: $oldHwm,
          hwmAtSyncKiB: $hwmSync, hwmAtServedKiB: $hwmServed, hwmEndKiB: $hwmEnd, rssEndKiB: $rssEnd,
          hwmPeakKiB: ([$hwmSync, $hwmServed, $hwmEnd] | map(select(. != null)) | max),
          threads: $threads, leaderAfterS: $lead, listedAfterS: $sync, servedAfterS: $served,
          quietAfterS: $quiet, quiet: $isQuiet, targetAtRestAfterS: $rest, vncUrlCalls: $vnc, describeInstancesCalls: $di,
          ecsCalls: $all, served: $servedCount, atRestEcsCalls: ($all - $servedCount),
          atRestVncUrlCalls: ($vnc - $servedCount), statusWrites: $writes, issueAttempts: $issues,
          errorLines: $errors, reconciles: $reconciles, cpuSeconds: $cpu, newLeaderAlive: $alive,
          newLeaderHoldsLease: $holds, createSeconds: $create, allReadySeconds: $ready,
          allExpiredSeconds: $expired, sessionsSeconds: $sessionsSeconds, rowSeconds: $rowSeconds,
          at: $at}' >"$WORK/failover.json"
    log "failover: $(jq -c . "$WORK/failover.json")"
    stop_pid "$fb"
    OP_NS=$NS
}

if has_rows failover; then
    failover_group
fi

# ---------------------------------------------------------------------------
# RELIABILITY.md
# ---------------------------------------------------------------------------
TOTAL_S=$(($(date +%s) - START_S))
MARKER='<!-- fault-matrix: everything below this line is kept when the table is written again -->'
# The failover row's table sits between these markers, under the matrix. A run without the
# matrix's rows (FM_ROWS=failover) keeps the matrix already in the file; a run without the
# failover row keeps its table.
FO_BEGIN_PREFIX='<!-- fault-matrix failover: BEGIN'
FO_BEGIN="$FO_BEGIN_PREFIX (written by FM_ROWS=failover scripts/fault-matrix.sh; runs without that row keep it) -->"
FO_END='<!-- fault-matrix failover: END -->'
KEPT= OLD_TOP= OLD_FO=
if [[ -r $OUT ]]; then
    KEPT=$(awk -v m="$MARKER" 'index($0, m) == 1 { on = 1 } on' "$OUT")
    OLD_TOP=$(awk -v b="$FO_BEGIN_PREFIX" -v m="$MARKER" 'index($0, b) == 1 || index($0, m) == 1 { exit } { print }' "$OUT")
    OLD_FO=$(awk -v b="$FO_BEGIN_PREFIX" -v e="$FO_END" 'index($0, b) == 1 { on = 1 } on { print } on && index($0, e) == 1 { exit }' "$OUT")
fi
K8S=$(kubectl version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion' || echo unknown)
RUN_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

matrix_md() {
    cat <<EOF
# Reliability: the fault matrix

Written by \`scripts/fault-matrix.sh\` (issue 12, "A fault matrix, run and published") on
$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, Kubernetes $K8S (scripts/local-cluster.sh), \`ecs-sim\`
and the release \`ecs-vnc-operator\` (\`--leader-elect --lease-duration 15s\`). Whole run: ${TOTAL_S} s.
Every figure below was measured in that run; none is typed in.

- **served**: sessions whose \`status.observedRefresh\` reached the requested \`ecsvnc.dev/refresh\`
  value with a URL (no \`lastError\`, \`issuedAt\` not before the request: \`observedRefresh\` alone is also
  set by a failed attempt), from \`kubectl get -o json\` polled every 0.5 s (ECS rows: up to ${ECS_BOUND} s) and
  counted once more after \`ecs-sim\`'s counters stopped moving; **lost** = requested − served (must be 0).
- **URLs**: \`DescribeInstanceVncUrl\` answers \`ecs-sim\` counted as \`Success\` (\`/_sim/stats\` before and
  after the row, after the counters stopped moving); **duplicates** = URLs − served (must be 0).
- **ECS calls**: every \`DescribeInstanceVncUrl\` answer in the row, by code.
- **CPU**: the operator's utime + stime (\`/proc/<pid>/stat\`) over the fault window (ECS rows: from the
  injection to the last session served; pause rows: SIGSTOP to SIGCONT; kill row: the standby over the
  burst; restart rows: the old process from the signal to its exit plus the new one until the last
  session was served; skew row: both replicas together).
- ECS faults are injected for the next $N \`DescribeInstanceVncUrl\` answers, then all $N sessions get a new
  refresh value; pause rows SIGSTOP the process found through the state dir's \`pids\` and
  \`/proc/<pid>/cmdline\`, SIGCONT it, then request a refresh on all $N sessions.
- The Throttling row's 50 answers are \`Throttling\` whatever the pace (the account's quota used up
  elsewhere): the operator probes once per one-second pause, so using them up takes about 50 s by
  construction; its time to recover is mostly that.
- Restart rows: \`ecs-sim\` holds every \`DescribeInstanceVncUrl\` answer ${RESTART_DELAY_MS} ms; all $N sessions get a new
  refresh value; 2 s after the last one was set (the 32 reconcile slots have sent their calls) the single replica gets the
  signal; once it is gone a new process is started (it waits out the Lease the old one did not
  release). A call left without an outcome (SIGKILL, or the grace ran out) is a URL real ECS may have
  issued that no status shows; \`ecs-sim\` drops a held answer whose connection closed, so it counts
  none of them: they are listed below the table, not in the duplicate column.
- The clock-skew row runs ${SKEW_SECONDS} s$([[ $SKEW_SECONDS == "$SKEW_DEFAULT" ]] && echo " (the issue's 5 minutes)" || echo ", shortened with FM_SKEW_SECONDS (the issue asks for $SKEW_DEFAULT s)").

| fault | what the operator did | ECS calls made | time to recover | refreshes lost | duplicate URLs | operator CPU during the fault | reproduce |
|---|---|---|---|---|---|---|---|
EOF
    jq -r '"| \(.fault) | \(.did) | \(.calls) (\(.codes)) | \(.recover) | \(.lost) of \(.requested) | \(.duplicates) (\(.urls) URLs for \(.served) served) | \(.cpu) | `\(.repro)` |"' "$WORK/rows.jsonl"
    echo
    echo "Rows that break a rule (computed from the rows above: lost > 0, duplicates ≠ 0, an exit, or"
    echo "more than 10 status writes per requested refresh):"
    echo
    jq -rs '
        [.[] | (.lost != 0) as $l | (.duplicates != 0) as $d | (.did | test("EXITED")) as $x
         | ((.did | capture("(?<w>[0-9]+) status writes") | .w | tonumber) // 0) as $w
         | select($l or $d or $x or $w > 10 * .requested)
         | "- **\(.fault)**: " + ([if $l then "\(.lost) refreshes lost" else empty end,
              if $d then "\(.duplicates) duplicate URLs" else empty end,
              if $x then "a process exited" else empty end,
              if $w > 10 * .requested then "\($w) status writes for \(.requested) refreshes" else empty end] | join(", "))]
        | if length == 0 then "- none" else .[] end' "$WORK/rows.jsonl"
    echo
    echo "Calls left without an outcome in the restart rows (URLs real ECS may have issued that no status"
    echo "shows; the refresh was served again by the new process):"
    echo
    jq -rs '[.[] | select(.abandoned != null) | "- **\(.fault)**: \(.abandoned)"] | if length == 0 then "- no restart rows in this run" else .[] end' "$WORK/rows.jsonl"
    echo
    echo "A note on the delay row: when the client gives up on a delayed answer and closes the connection,"
    echo "\`ecs-sim\` drops the pending answer without counting it or issuing its URL; real ECS may have issued"
    echo "one, so that row's duplicate count is a lower bound for real ECS."
    echo
    echo "Reproduce the whole matrix: \`scripts/fault-matrix.sh\` (\`FM_KEEP=1\` keeps the logs and raw stats)."
}

# The failover row's figures (from $WORK/failover.json), as text.
fo() { jq -r "$1" "$WORK/failover.json"; }
fo_mib() { jq -r --arg k "$1" 'if .[$k] == null then "n/a" else (.[$k] / 102.4 | round) as $t | "\($t / 10 | floor).\($t % 10) MiB" end' "$WORK/failover.json"; }
fo_s() { jq -r --arg k "$1" --arg b "$FO_BOUND_S" 'if .[$k] == null then "never (bound \($b) s)" else (.[$k] * 10 | round) as $t | "\($t / 10 | floor).\($t % 10) s" end' "$WORK/failover.json"; }
fo_rule() {
    jq -r '[if .atRestEcsCalls != 0 then "\(.atRestEcsCalls) ECS calls for sessions at rest" else empty end,
            if .served != 1 then "the refresh was not served" else empty end,
            if .vncUrlCalls != .served then "\(.vncUrlCalls) DescribeInstanceVncUrl calls for \(.served) refresh served" else empty end,
            if .newLeaderAlive | not then "the new leader EXITED" else empty end,
            if .newLeaderHoldsLease | not then "the new leader does not hold the Lease" else empty end,
            if .quiet | not then "the new leader was still busy at the bound" else empty end]
           | if length == 0 then "met" else "BROKEN: " + join("; ") end' "$WORK/failover.json"
}
FO_REPRO="FM_ROWS=failover $([[ $FO_N == "$FO_DEFAULT" ]] || echo "FM_FAILOVER_SESSIONS=$FO_N ")$REPRO"

failover_md() {
    cat <<EOF
$FO_BEGIN
## Failover at scale (issue 23)

Written by \`$FO_REPRO\` on $RUN_AT, $(nproc) cores, Kubernetes $K8S, \`ecs-sim\`
and the release \`ecs-vnc-operator\` (binary $OP_SHA). The row took $(fo .rowSeconds) s, $(fo .sessionsSeconds) s of it creating the
sessions and waiting until all were \`Expired\`; the whole run took ${TOTAL_S} s. For its length the row
is not in the default set (\`FM_ROWS="ecs api kill restart skew"\`): run it with \`$FO_REPRO\`.

| sessions at rest | new leader before takeover (standby) | new leader peak RSS (VmHWM) | SIGKILL → new leader holds the Lease | SIGKILL → its first list done | SIGKILL → refresh served | ECS calls by the new leader for the sessions at rest | what else the new leader did | reproduce |
|---|---|---|---|---|---|---|---|---|
| $(fo .sessions) on $(fo .instances) instances, all \`Expired\` | VmRSS $(fo_mib standbyRssKiB) (VmHWM $(fo_mib standbyHwmKiB)) | $(fo_mib hwmPeakKiB) ($(fo_mib hwmAtSyncKiB) when its first list was done, $(fo_mib hwmEndKiB) once quiet; VmRSS $(fo_mib rssEndKiB) then) | $(fo_s leaderAfterS) | $(fo_s listedAfterS) | $(fo_s servedAfterS) ($(fo .target), the last in list order) | $(fo .atRestEcsCalls) (DescribeInstanceVncUrl $(fo .atRestVncUrlCalls), DescribeInstances $(fo .describeInstancesCalls)), besides the refresh's $(fo .vncUrlCalls) DescribeInstanceVncUrl | reconciles: $(fo .reconciles); status writes: $(fo .statusWrites) (3 expected: the refreshed session's Ready, UrlExpired, Expired); issue attempts: $(fo .issueAttempts); error log lines: $(fo .errorLines); CPU $(fo .cpuSeconds) s from the kill until quiet, $(fo .quietAfterS) s after it; $(fo 'if .newLeaderAlive then "kept running" else "EXITED" end') and $(fo 'if .newLeaderHoldsLease then "holds the Lease" else "does NOT hold the Lease" end') | \`$FO_REPRO\` |

Rule (0 ECS calls for the sessions at rest, the refresh served with exactly one URL, the new leader
running, holding the Lease and quiet within ${FO_QUIET_S} s): **$(fo_rule)**.

Two replicas (\`--leader-elect --lease-duration 15s\` and bench.sh's scale flags \`${FO_ARGS[*]}\`)
watch a namespace of their own. \`examples/bench_scale.rs\` creates the $(fo .sessions) sessions (32 creates in flight,
25 per instance, no \`isWindows\`; created in $(fo .createSeconds) s, all \`Ready\` after $(fo .allReadySeconds) s, all \`Expired\` after
$(fo .allExpiredSeconds) s), and the row waits until \`ecs-sim\`'s counters and the leader's CPU are still, so nothing is due. The
leader (peak RSS $(fo_mib oldLeaderHwmKiB) over the creation) gets SIGKILL; right after, the last session in list order
gets a new \`ecsvnc.dev/refresh\` value. A standby holds no watch cache: its controller, and with it
its first list (10 objects a page, `LIST_PAGE_SIZE`), starts only once it holds the Lease, which the killed leader
could not release, so the first ~15 s are the Lease running out. Takeover and end of the first
list are the new leader's own log lines ("became the leader", "watch caches synced"); served is
\`status.observedRefresh\` equal to the value with a URL (no \`lastError\`, \`issuedAt\` not before
the request), polled every 0.2 s once the list was done. Peak RSS is the highest \`VmHWM\` (\`/proc/<pid>/status\`) of the
new leader read when its first list was done, when the refresh was served, and once the refreshed
session was back at \`Expired\` and the process was quiet (at most 2 clock ticks a second for 3 s in a
row: its first pass over every session done); its \`VmRSS\` as a standby just before the kill is the
reference. ECS calls are \`ecs-sim\`'s \`/_sim/stats\` from
just before the kill until then, less the refresh's one \`DescribeInstanceVncUrl\`.
$FO_END
EOF
}

# BENCHMARKS.md's "Failover at scale" section: the same figures, between markers of its own.
BENCH_BEGIN_PREFIX='<!-- BEGIN failover at scale'
BENCH_BEGIN="$BENCH_BEGIN_PREFIX: written by FM_ROWS=failover scripts/fault-matrix.sh, do not edit by hand -->"
BENCH_END='<!-- END failover at scale -->'
failover_bench_md() {
    cat <<EOF
$BENCH_BEGIN
## Failover at scale

From \`$FO_REPRO\` ($RUN_AT, $(nproc) cores; the method and the whole row are in
RELIABILITY.md, "Failover at scale"): $(fo .sessions) sessions at rest (all \`Expired\`, nothing due), two
replicas with \`--leader-elect --lease-duration 15s\` and \`${FO_ARGS[*]}\`, the leader SIGKILLed, and one
session's \`ecsvnc.dev/refresh\` set right after the kill. A standby starts its controller, and its
first list (10 objects a page, `LIST_PAGE_SIZE`), only once it holds the Lease.

| Measure | Result |
|---|---|
| New leader's peak RSS (VmHWM) after its first list of $(fo .sessions) sessions and its first pass over them | $(fo_mib hwmPeakKiB) ($(fo_mib hwmAtSyncKiB) when the list was done, $(fo_mib hwmEndKiB) once quiet; the killed leader peaked at $(fo_mib oldLeaderHwmKiB) over the creation) |
| … the same process as a standby, just before the kill (VmRSS) | $(fo_mib standbyRssKiB) |
| SIGKILL → new leader serves a refresh (\`status.observedRefresh\`) | $(fo_s servedAfterS) (Lease held after $(fo_s leaderAfterS), first list done after $(fo_s listedAfterS)) |
| ECS calls by the new leader for the $(fo .sessions) sessions at rest (\`ecs-sim\`, less the refresh) | $(fo .atRestEcsCalls) (DescribeInstanceVncUrl $(fo .atRestVncUrlCalls), DescribeInstances $(fo .describeInstancesCalls)) |
| New leader's work until quiet | reconciles: $(fo .reconciles); status writes: $(fo .statusWrites); CPU $(fo .cpuSeconds) s; quiet $(fo .quietAfterS) s after the kill |
| Row duration | $(fo .rowSeconds) s ($(fo .sessionsSeconds) s of it creating the sessions until all were \`Expired\`) |
$BENCH_END
EOF
}

{
    if has_rows "${MATRIX_GROUPS[@]}"; then
        matrix_md
    elif [[ -n $OLD_TOP ]]; then
        printf '%s\n' "$OLD_TOP"
    else
        printf '# Reliability: the fault matrix\n\nNo row of the matrix has been run yet: `%s`.\n' "$REPRO"
    fi
    if [[ -s $WORK/failover.json ]]; then
        echo
        failover_md
    elif [[ -n $OLD_FO ]]; then
        echo
        printf '%s\n' "$OLD_FO"
    fi
    # Prose below the marker (history, findings) is kept from the previous file.
    if [[ -n $KEPT ]]; then
        echo
        printf '%s\n' "$KEPT"
    fi
} >"$WORK/reliability.md"
mv "$WORK/reliability.md" "$OUT"
if [[ -s $WORK/failover.json ]]; then
    failover_bench_md >"$WORK/bench-section.md"
    if [[ -r $BENCH_OUT ]] && grep -qF "$BENCH_BEGIN_PREFIX" "$BENCH_OUT"; then
        before=
    else
        before='^## Results' # a new section goes right before the generated results, else at the end
    fi
    [[ -r $BENCH_OUT ]] || printf '# Benchmarks\n' >"$BENCH_OUT"
    awk -v b="$BENCH_BEGIN_PREFIX" -v e="$BENCH_END" -v nf="$WORK/bench-section.md" -v before="$before" '
        function emit(  l) { while ((getline l < nf) > 0) print l; close(nf); done = 1 }
        index($0, b) == 1 { emit(); skip = 1; next }
        skip { if (index($0, e) == 1) skip = 0; next }
        !done && before != "" && $0 ~ before { emit(); print "" }
        { print }
        END { if (!done) { print ""; emit() } }' "$BENCH_OUT" >"$WORK/benchmarks.md"
    mv "$WORK/benchmarks.md" "$BENCH_OUT"
    log "wrote the failover section of $BENCH_OUT"
fi
cp "$WORK/rows.jsonl" "$WORK/rows-final.jsonl"
log "wrote $OUT in ${TOTAL_S} s"
cat "$OUT"
