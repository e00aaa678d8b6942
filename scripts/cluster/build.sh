# shellcheck shell=bash
# `local-cluster.sh build [1.20|1.36]`: builds what is not in the cache yet, one build at a time
# per cache (a lock), each build in a process of its own with its output in a build log.
# Sourced by scripts/local-cluster.sh; the builds themselves are build-1.20.sh and build-1.36.sh.

have_binaries() {
    [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" && -x "$BIN/etcd" ]]
}

have_crd_server() {
    [[ -x "$CRD_BIN/apiextensions-apiserver" ]]
}

# Runs `_build-inner`/`_build-crd-inner` ($1) with its output in log $2 and
# checks the result with $3; $4 names what is built.
run_build() {
    local inner=$1 build_log=$2 check=$3 what=$4
    mkdir -p "$(dirname "$build_log")"
    log "building $what (log: $build_log)"
    local start=$SECONDS rc=0
    # A separate process: `set -e` would be ignored inside an `if`/`||` here.
    bash "$SELF" "$inner" >"$build_log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]] || ! "$check"; then
        log "build of $what FAILED (exit $rc); last lines of $build_log:"
        tail -n 40 "$build_log" >&2
        exit 1
    fi
    grep '^local-cluster: TIMING' "$build_log" | sed 's/^local-cluster: TIMING /  /' >&2 || true
    log "build of $what done in $((SECONDS - start)) s"
}

build_k8s() {
    if have_binaries; then
        log "Kubernetes $K8S_VERSION binaries already built in $BIN (nothing to do)"
        return 0
    fi
    "$SCRIPT_DIR/install-deps.sh" >&2
    run_build _build-inner "$BUILD_LOG" have_binaries "Kubernetes $K8S_VERSION into $BIN (takes ~6 min)"
}

build_crd_server() {
    if have_crd_server; then
        log "Kubernetes $CRD_K8S_MINOR apiextensions-apiserver already built in $CRD_BIN (nothing to do)"
        return 0
    fi
    if ! { command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null; }; then
        die "building the $CRD_K8S_MINOR apiextensions-apiserver needs apt-get and dpkg-deb (Debian)"
    fi
    run_build _build-crd-inner "$CRD_BUILD_LOG" have_crd_server \
        "the Kubernetes $CRD_K8S_MINOR apiextensions-apiserver into $CRD_BIN (takes ~4 min)"
}

# Serialises builds on this cache: a second `build` (another test run's,
# say) waits for the one running and then finds the binaries there, instead
# of deleting its work tree. Held on fd 9 until released or the process ends.
build_lock() {
    mkdir -p "$CACHE_ROOT"
    exec 9>>"$CACHE_ROOT/build.lock"
    if ! flock -n 9; then
        log "another build is running (lock $CACHE_ROOT/build.lock); waiting for it"
        flock 9
    fi
}

build_unlock() {
    exec 9>&-
}

cmd_build() {
    case "${1:-}" in
    "" | 1.20 | "$CRD_K8S_MINOR") ;;
    *) die "usage: $0 build [1.20|$CRD_K8S_MINOR]" ;;
    esac
    build_lock
    case "${1:-}" in
    "") build_k8s && build_crd_server ;;
    1.20) build_k8s ;;
    "$CRD_K8S_MINOR") build_crd_server ;;
    esac
    build_unlock
}

# What `up` needs, built first if missing ($1 non-empty: the hybrid's CRD
# server too). The lock is released before anything is started (the servers
# would inherit it).
ensure_built() {
    local crd_server=$1
    if ! have_binaries || { [[ -n $crd_server ]] && ! have_crd_server; }; then
        log "binaries missing; building first"
        build_lock
        build_k8s
        [[ -z $crd_server ]] || build_crd_server
        build_unlock
    fi
}
