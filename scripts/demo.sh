#!/usr/bin/env bash
# The main job on an embedded default: a local Kubernetes control plane, ecs-sim standing in for
# ECS, the operator, and the example VncSession. It walks the session through
# Pending -> Ready -> UrlExpired -> Expired, refreshes it back to Ready, and ends with
# `kubectl get vncsessions` showing the console URL. Everything it starts, it stops.
#
#   scripts/demo.sh          # the whole walk (about 40 s once built)
#   DEMO_KEEP=1 scripts/demo.sh   # leave it all running; prints how to reach it and how to stop it
set -euo pipefail
cd "$(dirname "$0")/.."

# A short keepalive so the walk ends in Expired within the demo; the real default is 300 s.
KEEPALIVE=${DEMO_SESSION_KEEPALIVE:-10s}

scripts/install-deps.sh >&2
# Only the plain 1.20 control plane (the 1.36 CRD server is for the tests); once, about 7 minutes.
scripts/local-cluster.sh build 1.20 >&2
echo "demo: building ecs-vnc-operator and ecs-sim (the first build takes about 5 minutes)" >&2
cargo build --bin ecs-vnc-operator --bin ecs-sim

work=$(mktemp -d)
pids=()
cluster=""
cleanup() {
    if [[ -n ${DEMO_KEEP:-} ]]; then return; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n $cluster ]]; then scripts/local-cluster.sh down "$cluster" >&2; fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "local control plane"
# The watchdog stops the control plane if this script dies without cleaning up.
owner=$$
[[ -n ${DEMO_KEEP:-} ]] && owner=""
cluster=$(ECSVNC_OWNER_PID=$owner scripts/local-cluster.sh up | tail -n 1)
export KUBECONFIG="$cluster/kubeconfig"
# --validate=false: kubectl checks a CRD against the server's own schema, and 1.20's predates the
# CEL rules (x-kubernetes-validations); the server drops them and the operator checks them itself.
kubectl apply --validate=false -f crds/vncsession.yaml
kubectl wait --for condition=established crd/vncsessions.ecsvnc.dev --timeout=60s

step "ecs-sim (a strict stand-in for the ECS API, demo AccessKey and instances)"
target/debug/ecs-sim --listen 127.0.0.1:0 >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$work/sim.out" && break; sleep 0.1; done
endpoint=$(sed -n 's/^ecs-sim listening on //p' "$work/sim.out")
echo "ECS endpoint: $endpoint"

step "operator"
target/debug/ecs-vnc-operator run --ecs-endpoint "$endpoint" --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 \
    --session-keepalive "$KEEPALIVE" 2>"$work/operator.log" &
pids+=($!)

step "the grant: a Secret with the (simulated) AccessKey and examples/vncsession.yaml"
# ecs-sim answers in about a millisecond; a 3 s delay on the first DescribeInstanceVncUrl (a
# fault injected through its admin API) makes the Pending phase long enough to see.
curl -fsS --max-time 5 -X POST -H 'content-type: application/json' \
    -d '{"action":"DescribeInstanceVncUrl","kind":"delay","ms":3000,"count":1}' \
    "$endpoint/_sim/faults" >/dev/null
kubectl create secret generic ecs-credentials \
    --from-literal=accessKeyId=sim-access-key-id --from-literal=accessKeySecret=sim-access-key-secret
kubectl apply -f examples/vncsession.yaml

phase() { kubectl get vncsession web-1-console -o 'jsonpath={.status.phase}'; }
wait_phase() {
    # Bounded: the keepalive plus a margin.
    for _ in $(seq 4000); do [[ $(phase) == "$1" ]] && return 0; sleep 0.1; done
    echo "timed out waiting for phase $1; operator log:" >&2; tail -n 20 "$work/operator.log" >&2; exit 1
}
show() { kubectl get vncsessions; }

wait_phase Pending;    step "Pending: the first ECS call is running";      show
wait_phase Ready;      step "Ready: the URL opens a connection for 15 s";  show
wait_phase UrlExpired; step "UrlExpired: an open connection may live until sessionExpiresAt"; show
wait_phase Expired;    step "Expired: nothing more happens until someone asks";    show

step "refresh: a new value of the ecsvnc.dev/refresh annotation"
kubectl annotate --overwrite vncsession web-1-console "ecsvnc.dev/refresh=$(date +%s)"
wait_phase Ready
show
echo
echo "console URL: $(kubectl get vncsession web-1-console -o 'jsonpath={.status.consoleUrl}')"

if [[ -n ${DEMO_KEEP:-} ]]; then
    # The operator was started with --metrics-addr 127.0.0.1:0: its start-up log line names the
    # port it got.
    metrics=$(sed -n 's/.*serving \/metrics.* addr=\([0-9.:]*\).*/\1/p' "$work/operator.log" | head -n 1)
    echo
    echo "left running (in another shell: export KUBECONFIG=$cluster/kubeconfig)"
    echo "  ECS (ecs-sim):     $endpoint"
    echo "  operator metrics:  http://${metrics:-?}/metrics   (also /healthz, /readyz)"
    echo "  logs:              $work/operator.log, $work/sim.log;"
    echo "                     control plane: $cluster/{kube-apiserver,etcd,kube-controller-manager,audit}.log"
    echo "stop it all and remove its files:"
    echo "  kill ${pids[*]}; scripts/local-cluster.sh down $cluster; rm -rf $work"
fi
