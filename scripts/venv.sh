#!/usr/bin/env bash
# The Python tools of the tests in one venv under the cache (ECSVNC_CACHE, default
# ~/.cache/ecs-vnc-operator/venv): real Helm 4 (helm-python-sdk), pytest, checkov, and Alibaba's
# official signer (aliyun-python-sdk-core). Installed once from tests/requirements.txt, then
# only checked; prints the venv's python as the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${ECSVNC_CACHE:-$HOME/.cache/ecs-vnc-operator}
VENV="$CACHE/venv"
REQUIREMENTS=tests/requirements.txt

log() { echo "venv: $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV" || {
        log "cannot create a venv; run scripts/install-deps.sh (Debian: python3-venv)"
        exit 1
    }
fi
# A stamp of the requirements file: reinstall only when it changes.
stamp="$VENV/.ecsvnc-requirements"
if ! cmp -s "$REQUIREMENTS" "$stamp" 2>/dev/null; then
    log "installing $REQUIREMENTS into $VENV (a minute or two, once)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$stamp"
fi
echo "$VENV/bin/python"
