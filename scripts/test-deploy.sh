#!/usr/bin/env bash
# Tests of deploy/ and charts/ecs-vnc-operator/ (tests/deploy, pytest): the CRD copies match
# crds/vncsession.yaml byte for byte; the chart is linted and rendered by real Helm
# (helm-python-sdk, the Helm v4 SDK in-process, no helm binary); the values schema rejects bad
# values; the RBAC is exactly the operator's calls; deploy/ and the chart are accepted by a real
# kube-apiserver (scripts/local-cluster.sh) with server-side dry-run; the alert rules
# (charts/ecs-vnc-operator/files/prometheus-rules.yaml) pass `promtool check rules` and
# `promtool test rules` (tests/deploy/test_prometheus_rules.py; promtool from install-deps.sh).
#
#   scripts/test-deploy.sh [PYTEST ARGS...]
#
# Python dependencies go into a venv under the cache (scripts/venv.sh); installed once, then
# only checked.
set -euo pipefail
cd "$(dirname "$0")/.."


log() { echo "test-deploy: $*" >&2; }

# --- The CRD is generated once and copied twice (kustomize and Helm read only their own tree).
crd_drift=0
for copy in deploy/base/crds/vncsession.yaml charts/ecs-vnc-operator/crds/vncsession.yaml; do
    if ! cmp -s crds/vncsession.yaml "$copy"; then
        log "FAIL: $copy differs from crds/vncsession.yaml; fix: cp crds/vncsession.yaml $copy"
        crd_drift=1
    fi
done

# --- Python venv with tests/requirements.txt (scripts/venv.sh).
PYTHON=$(scripts/venv.sh | tail -n 1)

# --- The operator and ecs-sim for the Helm wait test (a no-op when up to date).
cargo build --quiet --bins

# --- kubectl and the control-plane binaries (both no-ops when present).
scripts/install-deps.sh >&2
scripts/local-cluster.sh build

# --- pytest. No cache directory or bytecode in the tree.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -m pytest tests/deploy \
    -p no:cacheprovider -q -rfE --color=no "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error)|^=* ?(no tests ran|[0-9]+ (skipped|deselected))' "$out" | tail -n 1 || true)
log "pytest: ${summary:-no summary line (exit $rc)}"
if [[ $crd_drift -ne 0 ]]; then
    log "FAIL: CRD copies drifted (see above)"
    exit 1
fi
exit "$rc"
