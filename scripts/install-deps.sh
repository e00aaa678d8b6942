#!/usr/bin/env bash
# Installs the host tools needed to build and run the local Kubernetes control
# plane used by the end-to-end tests (see scripts/local-cluster.sh).
#
# Idempotent: it only checks what is present and, if something is missing,
# runs `apt-get update` once followed by a single `apt-get install`.
# Nothing else on the system is changed.
set -euo pipefail

# Use sudo only when we are not root already (CI containers usually are root).
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

missing=()

# Go 1.19 is the newest Go in bookworm that still builds Kubernetes 1.20 with
# its vendored dependencies (see the reflect2 note in scripts/cluster/build-1.20.sh).
[[ -x /usr/lib/go-1.19/bin/go ]] || missing+=(golang-1.19-go)
# The Kubernetes build scripts (hack/lib) call rsync to stage outputs.
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
# `make` drives the Kubernetes build.
command -v make >/dev/null 2>&1 || missing+=(make)
# openssl generates the CA, the serving certificate and the service-account key.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# dpkg-source unpacks the Debian source package.
command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
# curl polls the health endpoints of etcd and the apiserver.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# python3 picks free loopback ports (bind to port 0).
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# The deploy tests and the benchmarks keep their Python tools in a venv; Debian's own python3
# needs python3-venv for that (ensurepip is split out of the interpreter package).
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
# jq reads the JSON the benchmark and demo scripts get from kubectl and ecs-sim.
command -v jq >/dev/null 2>&1 || missing+=(jq)
# lua5.1 runs the Argo CD health script over its testdata (Argo CD runs gopher-lua, Lua 5.1).
command -v lua5.1 >/dev/null 2>&1 || missing+=(lua5.1)
# faketime (libfaketime) runs a standby operator with a skewed wall clock in the leader tests.
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
# prlimit (util-linux) runs the operator under a low file-descriptor limit in the metrics tests.
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
# promtool (Debian's prometheus package) checks and unit-tests the alert rules in the deploy tests.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The tests and the script talk to the apiserver with kubectl.
if [[ ! -x /usr/bin/kubectl ]] && ! command -v kubectl >/dev/null 2>&1; then
    missing+=(kubernetes-client)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all dependencies present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
