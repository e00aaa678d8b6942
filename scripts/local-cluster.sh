#!/usr/bin/env bash
# A private, throw-away Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager) on loopback, for the end-to-end tests.
#
#   scripts/local-cluster.sh build [1.20|1.36]  build and cache the binaries
#                                       (both by default; ~6 + ~4 min once)
#   scripts/local-cluster.sh up [DIR]   start a control plane, state in DIR;
#                                       prints DIR as the last line of stdout
#   scripts/local-cluster.sh down DIR   stop it and remove DIR (safe to repeat)
#   scripts/local-cluster.sh env DIR    print the shell exports for it
#
# Why build from source: the machine has no Docker (so no kind) and no
# internet beyond the package clients. Debian ships the complete Kubernetes
# 1.20.2 source, including its vendor/ tree, so it can be built offline with
# Debian's Go 1.19. Debian's etcd-server package provides etcd.
#
# Only kube-apiserver and kube-controller-manager are run: the operator under
# test only needs the API (no kubelet, scheduler or pods). The controller
# manager runs just the controllers the tests rely on: namespace deletion,
# garbage collection (owner references) and service-account tokens.
#
# The hybrid (ECSVNC_CRD_SERVER=1.36): the API group ecsvnc.dev is served by
# the Kubernetes 1.36 apiextensions-apiserver (built from Debian sid's Go
# packages, see build_crd_inner) on its own loopback address, aggregated
# behind the 1.20 kube-apiserver through APIService v1alpha1.ecsvnc.dev and
# an ExternalName Service. `up` installs crds/vncsession.yaml on the 1.36
# server itself (never through the 1.20 one) and returns once the APIService
# is Available; clients keep using the one kubeconfig.
#
# Every `up` writes an audit log of the kube-apiserver (level Metadata; the
# control plane's own reads left out) to DIR/audit.log ($ECSVNC_AUDIT_LOG in
# DIR/env). In the hybrid it also records every ecsvnc.dev request, since
# those pass through the kube-apiserver's aggregator.
#
# Messages go to stderr; stdout of `up` is only the state directory, so
# callers can take its last line.
#
# Environment:
#   ECSVNC_CACHE      cache root (default ~/.cache/ecs-vnc-operator)
#   ECSVNC_OWNER_PID  optional: if set for `up`, a watchdog tears the control
#                     plane down once that process is gone (used by the test
#                     harness so a killed test run leaks nothing).
#   ECSVNC_CRD_SERVER optional, for `up`: 1.36 starts the hybrid described
#                     above; unset (or 1.20) the plain 1.20 control plane.
#   ECSVNC_CRD_FILE   the CRD the hybrid installs (default crds/vncsession.yaml)
#
# The jobs live in scripts/cluster/ (sourced here, never run themselves):
#   lib.sh         versions, cache layout, fixed names, logging, kubectl
#   build.sh       `build`: lock, skip what is cached, run each build as a process
#   build-1.20.sh  `_build-inner`: kube-apiserver/-controller-manager 1.20 + etcd
#   build-1.36.sh  `_build-crd-inner`: the 1.36 apiextensions-apiserver
#   apt.sh         the builds' private apt configuration
#   up.sh          `up`: etcd, kube-apiserver, kube-controller-manager
#   crd-server.sh  `up` in the hybrid: the CRD server, its CRD and routing
#   pki.sh         certificates and keys
#   config.sh      tokens, kubeconfigs, audit policy, `env`
#   api.sh         HTTPS calls to the servers being started
#   processes.sh   starting, waiting for and stopping processes by PID
#   down.sh        `down`
#   watchdog.sh    `_watchdog OWNER DIR` (started by `up`)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# shellcheck source=cluster/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster/lib.sh"
# shellcheck source=cluster/apt.sh
. "$CLUSTER_LIB/apt.sh"
# shellcheck source=cluster/build.sh
. "$CLUSTER_LIB/build.sh"
# shellcheck source=cluster/build-1.20.sh
. "$CLUSTER_LIB/build-1.20.sh"
# shellcheck source=cluster/build-1.36.sh
. "$CLUSTER_LIB/build-1.36.sh"
# shellcheck source=cluster/pki.sh
. "$CLUSTER_LIB/pki.sh"
# shellcheck source=cluster/config.sh
. "$CLUSTER_LIB/config.sh"
# shellcheck source=cluster/api.sh
. "$CLUSTER_LIB/api.sh"
# shellcheck source=cluster/processes.sh
. "$CLUSTER_LIB/processes.sh"
# shellcheck source=cluster/up.sh
. "$CLUSTER_LIB/up.sh"
# shellcheck source=cluster/crd-server.sh
. "$CLUSTER_LIB/crd-server.sh"
# shellcheck source=cluster/down.sh
. "$CLUSTER_LIB/down.sh"
# shellcheck source=cluster/watchdog.sh
. "$CLUSTER_LIB/watchdog.sh"

usage() {
    sed -n '2,10p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
build) cmd_build "${2:-}" ;;
up) cmd_up "${2:-}" ;;
down) cmd_down "${2:-}" ;;
env) cmd_env "${2:-}" ;;
_build-inner) build_inner ;;
_build-crd-inner) build_crd_inner ;;
_watchdog) cmd_watchdog "$2" "$3" ;;
*) usage ;;
esac
