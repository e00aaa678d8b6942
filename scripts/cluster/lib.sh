# shellcheck shell=bash
# What every part of scripts/local-cluster.sh shares: the versions it builds, the cache layout
# under $ECSVNC_CACHE (cached builds depend on these paths: change them and every machine
# rebuilds), the hybrid's fixed names, logging and kubectl. Sourced by the dispatcher, never run.

K8S_VERSION=1.20.2
# scripts/, and the dispatcher itself: builds and the watchdog run it again as processes of
# their own (`_build-inner`, `_build-crd-inner`, `_watchdog`).
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$SCRIPT_DIR/local-cluster.sh"
CLUSTER_LIB="$SCRIPT_DIR/cluster"
CACHE_ROOT=${ECSVNC_CACHE:-$HOME/.cache/ecs-vnc-operator}
CACHE="$CACHE_ROOT/k8s-$K8S_VERSION"
BIN="$CACHE/bin"
BUILD_LOG="$CACHE/build.log"
GO_DIR=/usr/lib/go-1.19/bin
# Marker file: `down` only deletes directories that `up` created state in.
MARKER=.ecsvnc-cluster

# The CRD server of the hybrid: the apiextensions-apiserver of Kubernetes
# $CRD_K8S_MINOR, from Debian suite $CRD_SUITE (golang-k8s-apiextensions-apiserver-dev
# 0.$CRD_MINOR.x), built with Debian's Go $CRD_GO.
CRD_K8S_MINOR=1.36
CRD_MINOR=${CRD_K8S_MINOR#1.}
CRD_SUITE=sid
CRD_GO=1.26
CRD_CACHE="$CACHE_ROOT/k8s-crd-$CRD_K8S_MINOR"
CRD_BIN="$CRD_CACHE/bin"
CRD_BUILD_LOG="$CRD_CACHE/build.log"
# Where the CRD server listens: its own loopback address (the port is picked
# freshly per control plane, so parallel clusters never collide), named by an
# ExternalName Service in kube-system (Endpoints refuse loopback addresses).
CRD_ADDR=127.0.100.36
CRD_SERVICE=ecsvnc-crd-server
CRD_SERVICE_NS=kube-system

log() { echo "local-cluster: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

kubectl_program() {
    if [[ -x /usr/bin/kubectl ]]; then
        echo /usr/bin/kubectl
    else
        command -v kubectl || die "kubectl not found: run scripts/install-deps.sh"
    fi
}
