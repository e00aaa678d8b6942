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
set -euo pipefail

K8S_VERSION=1.20.2
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
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

have_binaries() {
    [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" && -x "$BIN/etcd" ]]
}

have_crd_server() {
    [[ -x "$CRD_BIN/apiextensions-apiserver" ]]
}

kubectl_program() {
    if [[ -x /usr/bin/kubectl ]]; then
        echo /usr/bin/kubectl
    else
        command -v kubectl || die "kubectl not found: run scripts/install-deps.sh"
    fi
}

# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

# Prints one-line `deb` and `deb-src` entries for the Debian archive suites
# "$1" and "$1-security" as configured in the system's own apt sources, so
# the private apt configuration below uses the same mirror as the machine
# (nothing about the mirror is hard-coded here). Understands both the
# one-line (*.list) and the deb822 (*.sources) formats.
debian_sources_for() {
    local codename=$1 f
    local files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    [[ ${#files[@]} -gt 0 ]] || return 0
    awk -v want="$codename" '
        function emit(opts, uri, suite,   o) {
            if (suite != want && suite != want "-security") return
            o = (opts == "") ? "" : "[" opts "] "
            print "deb " o uri " " suite " main"
            print "deb-src " o uri " " suite " main"
        }
        # deb822: one stanza = fields up to a blank line.
        function flush(   n, m, i, j, u, s, opts) {
            if (uris != "" && suites != "" && tolower(enabled) != "no") {
                opts = (signedby ~ /^\//) ? "signed-by=" signedby : ""
                n = split(uris, u, /[ \t]+/)
                m = split(suites, s, /[ \t]+/)
                for (i = 1; i <= n; i++)
                    for (j = 1; j <= m; j++)
                        if (u[i] != "" && s[j] != "") emit(opts, u[i], s[j])
            }
            uris = suites = signedby = enabled = ""
        }
        FNR == 1 { flush() }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            if ($0 ~ /^#/ || $0 ~ /^[ \t]/) next
            key = tolower($0); sub(/:.*/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
            if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "signed-by") signedby = val
            else if (key == "enabled") enabled = val
            next
        }
        # one-line format: deb [options] uri suite component...
        $1 == "deb" || $1 == "deb-src" {
            i = 2; opts = ""
            if ($2 ~ /^\[/) {
                while (i <= NF) {
                    opts = opts (opts == "" ? "" : " ") $i
                    if ($i ~ /\]$/) { i++; break }
                    i++
                }
                gsub(/^\[|\]$/, "", opts)
            }
            emit(opts, $i, $(i + 1))
        }
        END { flush() }
    ' "${files[@]}" | sort -u
}

# The actual build. Runs as its own process (see cmd_build) with all output
# going to the build log, so `set -e` is fully in force here.
build_inner() {
    local work="$CACHE/work"
    log "build started $(date -Is)"
    rm -rf "$work"
    mkdir -p "$work"

    # --- Private apt configuration -------------------------------------
    # Own sources list, lists, and caches so the system's apt state (and its
    # sources) are untouched. apt.conf.d snippets still apply (e.g. proxies).
    local apt="$work/apt" codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "cannot determine the Debian codename from /etc/os-release"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
    debian_sources_for "$codename" >"$apt/sources.list"
    [[ -s "$apt/sources.list" ]] ||
        die "no apt source for suite $codename found in /etc/apt/sources.list*"
    log "private apt sources:"
    cat "$apt/sources.list"
    local apt_opts=(
        -o "Dir::Etc::sourcelist=$apt/sources.list"
        -o "Dir::Etc::sourceparts=$apt/sources.list.d"
        -o "Dir::State::Lists=$apt/lists"
        -o "Dir::Cache=$apt/cache"
        -o "Dir::Cache::archives=$apt/cache/archives"
        # The private dirs belong to the invoking user; do not drop to _apt.
        -o "APT::Sandbox::User=$(id -un)"
        -q
    )
    apt-get "${apt_opts[@]}" update

    # --- Sources and helper packages ----------------------------------
    local dl="$work/dl"
    mkdir -p "$dl"
    (cd "$dl" && apt-get "${apt_opts[@]}" source --download-only kubernetes)
    # etcd-server: only its binary is needed, so unpack instead of install.
    # golang-github-modern-go-reflect2-dev: see the reflect2 note below.
    (cd "$dl" && apt-get "${apt_opts[@]}" download etcd-server golang-github-modern-go-reflect2-dev)

    local dsc
    dsc=$(ls "$dl"/kubernetes_*.dsc)
    dpkg-source -x "$dsc" "$work/kubernetes"
    local tree="$work/kubernetes"
    # Debian's upstream version is like 1.20.5+really1.20.2; check the tree.
    grep -q "^kubernetes ($K8S_VERSION\|^kubernetes (.*really$K8S_VERSION" "$tree/debian/changelog" ||
        log "warning: Debian source is not Kubernetes $K8S_VERSION: $(head -n1 "$tree/debian/changelog")"

    mkdir -p "$work/debs"
    dpkg-deb -x "$dl"/etcd-server_*.deb "$work/debs"
    dpkg-deb -x "$dl"/golang-github-modern-go-reflect2-dev_*.deb "$work/debs"

    # --- reflect2 fix -------------------------------------------------
    # Kubernetes 1.20 vendors github.com/modern-go/reflect2 1.0.1, whose
    # UnsafeMapType.UnsafeIterate relies on Go runtime map internals that
    # changed in Go 1.18: the apiserver segfaults on the first watch of a
    # custom resource. reflect2 1.0.2 (packaged by Debian) fixes it and is
    # API compatible, so swap the vendored sources (tests excluded).
    local vendored="$tree/vendor/github.com/modern-go/reflect2"
    local fixed="$work/debs/usr/share/gocode/src/github.com/modern-go/reflect2"
    [[ -d $vendored && -d $fixed ]] || die "reflect2 sources not found ($vendored, $fixed)"
    find "$vendored" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    find "$fixed" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$vendored/" \;

    # --- Build --------------------------------------------------------
    # No .git in the tree: give the build the version explicitly, otherwise
    # the binaries report v0.0.0-master.
    cat >"$work/version.env" <<EOF
KUBE_GIT_COMMIT='0000000000000000000000000000000000000000'
KUBE_GIT_TREE_STATE='archive'
KUBE_GIT_VERSION='v$K8S_VERSION'
KUBE_GIT_MAJOR='${K8S_VERSION%%.*}'
KUBE_GIT_MINOR='$(echo "$K8S_VERSION" | cut -d. -f2)'
EOF
    # Kubernetes 1.20's build expects to live at $GOPATH/src/k8s.io/kubernetes.
    mkdir -p "$work/gopath/src/k8s.io"
    ln -s "$tree" "$work/gopath/src/k8s.io/kubernetes"
    (
        cd "$work/gopath/src/k8s.io/kubernetes"
        export GOPATH="$work/gopath"
        export GOCACHE="$work/gocache" # deleted with the work tree
        export PATH="$GO_DIR:$PATH"
        export CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor
        export KUBE_GIT_VERSION_FILE="$work/version.env"
        go version
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
    )

    # --- Install into the cache ---------------------------------------
    # Stage, then rename, so a half-copied bin/ never looks complete.
    local out
    out=$(find "$tree/_output" -type f -name kube-apiserver -path '*/bin/*' | head -n1)
    [[ -n $out ]] || die "kube-apiserver not found under $tree/_output"
    out=$(dirname "$out")
    rm -rf "$BIN.tmp" "$BIN"
    mkdir -p "$BIN.tmp"
    cp "$out/kube-apiserver" "$out/kube-controller-manager" "$work/debs/usr/bin/etcd" "$BIN.tmp/"
    chmod 755 "$BIN.tmp"/*
    mv "$BIN.tmp" "$BIN"
    "$BIN/kube-apiserver" --version
    "$BIN/etcd" --version

    # Only the binaries are kept; the tree and Go cache are ~2.3 GB.
    rm -rf "$work"
    log "build finished $(date -Is)"
}

# The apt source lines for suite $CRD_SUITE: the system's own Debian archive
# mirror (the one serving suite "$1", the installed release), so nothing about
# the mirror is hard-coded here either. Binary packages only.
debian_crd_sources_for() {
    local codename=$1
    debian_sources_for "$codename" |
        awk -v have="$codename" -v want="$CRD_SUITE" \
            '$1 == "deb" && $(NF - 1) == have { $(NF - 1) = want; print }' |
        sort -u
}

# The work tree of that build: on tmpfs (/dev/shm) when it and the memory
# have room, since unpacking, building and above all deleting ~100k files is
# much faster there than on a disk (with ext4 `discard`, removing the tree
# took 5.5 min); else under the cache. ECSVNC_BUILD_ON_DISK=1 forces the
# latter. One fixed path per user and cache (builds on one cache are
# serialised by build_lock): a build removes any leftover first.
crd_work_dir() {
    local shm=/dev/shm free_kb mem_kb
    if [[ -z ${ECSVNC_BUILD_ON_DISK:-} && -d $shm && -w $shm ]]; then
        free_kb=$(df -Pk "$shm" | awk 'NR == 2 { print $4 }')
        mem_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
        if ((${free_kb:-0} > 6 * 1024 * 1024 && ${mem_kb:-0} > 10 * 1024 * 1024)); then
            echo "$shm/ecsvnc-crd-build-$(id -u)-$(printf %s "$CRD_CACHE" | cksum | cut -d' ' -f1)"
            return
        fi
    fi
    echo "$CRD_CACHE/work"
}

# Builds the Kubernetes $CRD_K8S_MINOR apiextensions-apiserver from Debian
# $CRD_SUITE: golang-$CRD_GO-go, golang-$CRD_GO-src and the golang-*-dev closure of
# golang-k8s-apiextensions-apiserver-dev (~320 packages, ~260 MB), downloaded
# with a private apt configuration, unpacked with dpkg-deb -x into one root
# (nothing is installed into the system) and built in GOPATH mode. Only the
# binary is kept: the root (~2.2 GB) and the Go build cache (~1.4 GB) go (see
# crd_work_dir for where they live meanwhile).
# Runs as its own process with all output in $CRD_BUILD_LOG.
build_crd_inner() {
    local t0
    log "build started $(date -Is)"
    CRD_WORK=$(crd_work_dir)
    local work=$CRD_WORK
    rm -rf "$CRD_CACHE/work" "$work"
    mkdir -p "$work"
    # Removed whatever happens (on tmpfs a leftover would hold memory).
    trap 'rm -rf "$CRD_WORK"' EXIT
    log "work tree: $work"

    # --- Private apt configuration (suite $CRD_SUITE) --------------------
    # An empty dpkg status: what the system has installed plays no part in
    # what is downloaded.
    local apt="$work/apt" codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "cannot determine the Debian codename from /etc/os-release"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
    : >"$apt/status"
    debian_crd_sources_for "$codename" >"$apt/sources.list"
    [[ -s "$apt/sources.list" ]] ||
        die "no apt source for suite $codename found in /etc/apt/sources.list* (its mirror is used for $CRD_SUITE)"
    log "private apt sources:"
    cat "$apt/sources.list"
    local apt_opts=(
        -o "Dir::Etc::sourcelist=$apt/sources.list"
        -o "Dir::Etc::sourceparts=$apt/sources.list.d"
        -o "Dir::State::Lists=$apt/lists"
        -o "Dir::State::status=$apt/status"
        -o "Dir::Cache=$apt/cache"
        -o "Dir::Cache::archives=$apt/cache/archives"
        -o "APT::Sandbox::User=$(id -un)"
        -q
    )
    t0=$SECONDS
    apt-get "${apt_opts[@]}" update

    # Kubernetes version from the Debian version, e.g. 0.36.4-1 -> v1.36.4.
    local debver upstream kver
    debver=$(apt-cache "${apt_opts[@]}" show --no-all-versions golang-k8s-apiextensions-apiserver-dev |
        awk '/^Version:/ { print $2; exit }')
    upstream=${debver#*:}
    upstream=${upstream%-*}
    upstream=${upstream%%[+~]*}
    [[ $upstream =~ ^0\.$CRD_MINOR\.[0-9]+$ ]] ||
        die "Debian $CRD_SUITE has golang-k8s-apiextensions-apiserver-dev ${debver:-(none)}, not 0.$CRD_MINOR.x: update CRD_K8S_MINOR/CRD_GO in $SELF"
    kver="1.${upstream#0.}"

    local pkgs deps
    pkgs=("golang-$CRD_GO-go" "golang-$CRD_GO-src")
    mapfile -t deps < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev |
        grep -E '^golang-[^ <>]+-dev$' | sort -u)
    [[ ${#deps[@]} -gt 50 ]] || die "the golang-*-dev closure of golang-k8s-apiextensions-apiserver-dev has only ${#deps[@]} packages"
    pkgs+=("${deps[@]}")
    log "downloading ${#pkgs[@]} packages from $CRD_SUITE"
    mkdir -p "$work/debs"
    (cd "$work/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}")
    log "TIMING download: $((SECONDS - t0)) s ($(du -sh "$work/debs" | cut -f1), ${#pkgs[@]} packages)"

    # --- Unpack -------------------------------------------------------
    t0=$SECONDS
    local root="$work/root" deb
    mkdir -p "$root"
    for deb in "$work/debs"/*.deb; do
        dpkg-deb -x "$deb" "$root"
    done
    rm -rf "$work/debs"
    log "TIMING unpack: $((SECONDS - t0)) s"

    # --- Build (GOPATH mode) -------------------------------------------
    local goroot="$root/usr/lib/go-$CRD_GO" gopath="$root/usr/share/gocode"
    [[ -x $goroot/bin/go ]] || die "no Go in $goroot"
    [[ -d $gopath/src/k8s.io/apiextensions-apiserver ]] || die "no apiextensions-apiserver sources in $gopath"
    t0=$SECONDS
    rm -rf "$CRD_BIN.tmp" "$CRD_BIN"
    mkdir -p "$CRD_BIN.tmp"
    local vpkg=k8s.io/component-base/version
    (
        export GOROOT="$goroot" GOPATH="$gopath" GO111MODULE=off GOTOOLCHAIN=local
        export GOCACHE="$work/gocache" GOENV=off GOFLAGS= GOPROXY=off CGO_ENABLED=0
        export PATH="$goroot/bin:$PATH"
        go version
        go build -buildvcs=false -trimpath -o "$CRD_BIN.tmp/apiextensions-apiserver" -ldflags "-s -w \
            -X $vpkg.gitVersion=v$kver -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$CRD_MINOR \
            -X $vpkg.gitCommit=0000000000000000000000000000000000000000 -X $vpkg.gitTreeState=archive \
            -X $vpkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
            k8s.io/apiextensions-apiserver
        echo "apiextensions-apiserver v$kver: Debian $CRD_SUITE golang-k8s-apiextensions-apiserver-dev $debver, $(go version)" \
            >"$CRD_BIN.tmp/VERSION"
    )
    log "TIMING build: $((SECONDS - t0)) s"
    chmod 755 "$CRD_BIN.tmp/apiextensions-apiserver"
    mv "$CRD_BIN.tmp" "$CRD_BIN"
    cat "$CRD_BIN/VERSION"

    t0=$SECONDS
    rm -rf "$work"
    log "TIMING clean-up: $((SECONDS - t0)) s"
    log "build finished $(date -Is)"
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
    command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null ||
        die "building the $CRD_K8S_MINOR apiextensions-apiserver needs apt-get and dpkg-deb (Debian)"
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

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------

# Prints N free TCP ports on address $2 (default 127.0.0.1). All sockets stay
# bound until every port is picked, so the N ports are distinct. (Another
# process could still grab one before our servers bind it; the window is the
# few seconds until the servers start.)
free_ports() {
    python3 - "$1" "${2:-127.0.0.1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind((sys.argv[2], 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Writes the CA, the apiserver serving certificate and the service-account
# key pair into $1. A real CA (CA:TRUE) plus a separate leaf is used because
# rustls (the operator's TLS stack) rejects a self-signed leaf used as a CA.
make_pki() {
    local pki=$1
    mkdir -p "$pki"
    cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ecsvnc-local-ca
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -config "$pki/openssl.cnf" -extensions ca_ext \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
        -keyout "$pki/serving.key" -out "$pki/serving.csr" 2>/dev/null
    openssl x509 -req -in "$pki/serving.csr" -days 30 \
        -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -extfile "$pki/openssl.cnf" -extensions serving_ext \
        -out "$pki/serving.crt" 2>/dev/null
    # Service-account token signing key (RSA, as the 1.20 flags expect).
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    chmod 600 "$pki"/*.key
}

# The hybrid's extra certificates, into $1 (after make_pki):
# - a front-proxy CA of its own (not the cluster CA, which kube-apiserver
#   trusts for client certificates) and the aggregator's proxy client
#   certificate (CN=aggregator) signed by it;
# - the CRD server's serving certificate, signed by the cluster CA, for its
#   loopback address $2 and for <service>.<namespace>.svc, the name the
#   aggregator verifies (with the APIService's caBundle).
make_crd_pki() {
    local pki=$1 addr=$2
    cat >"$pki/crd-openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ecsvnc-front-proxy-ca
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[serving_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:$addr, DNS:$CRD_SERVICE.$CRD_SERVICE_NS.svc
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -config "$pki/crd-openssl.cnf" -extensions ca_ext \
        -keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj /CN=aggregator \
        -keyout "$pki/front-proxy-client.key" -out "$pki/front-proxy-client.csr" 2>/dev/null
    openssl x509 -req -in "$pki/front-proxy-client.csr" -days 30 \
        -CA "$pki/front-proxy-ca.crt" -CAkey "$pki/front-proxy-ca.key" -CAcreateserial \
        -extfile "$pki/crd-openssl.cnf" -extensions client_ext \
        -out "$pki/front-proxy-client.crt" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$CRD_SERVICE" \
        -keyout "$pki/crd-serving.key" -out "$pki/crd-serving.csr" 2>/dev/null
    openssl x509 -req -in "$pki/crd-serving.csr" -days 30 \
        -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -extfile "$pki/crd-openssl.cnf" -extensions serving_ext \
        -out "$pki/crd-serving.crt" 2>/dev/null
    chmod 600 "$pki"/*.key
}

# Writes a kubeconfig for the apiserver with bearer token $3 as user $2 to $1.
write_kubeconfig() {
    local path=$1 user=$2 token=$3
    cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ecsvnc-local
  cluster:
    server: $APISERVER
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: ecsvnc-local
  context:
    cluster: ecsvnc-local
    user: $user
current-context: ecsvnc-local
EOF
    chmod 600 "$path"
}

# The audit policy: everything at level Metadata (who, what, which object,
# response code; no bodies), except the control plane's own reads and the
# CRD server's delegated authentication/authorization reviews, which would
# drown the rest. Requests of people and ServiceAccounts (the operator, the
# tests, kubectl) are always kept, whatever they are.
write_audit_policy() {
    cat >"$1" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:apiserver", "system:kube-controller-manager", "system:ecsvnc-crd-server"]
  verbs: ["get", "list", "watch"]
- level: None
  users: ["system:ecsvnc-crd-server"]
  resources:
  - group: authentication.k8s.io
    resources: ["tokenreviews"]
  - group: authorization.k8s.io
    resources: ["subjectaccessreviews"]
- level: Metadata
EOF
}

# Starts "$@" in the background with its output in $DIR/$name.log and
# records the PID (also in LAST_PID). stdin/stdout/stderr are all redirected so callers that
# capture the output of `up` (e.g. the Rust harness) are not kept waiting.
start_bg() {
    local name=$1
    shift
    "$@" </dev/null >"$DIR/$name.log" 2>&1 &
    LAST_PID=$!
    echo "$LAST_PID" >>"$DIR/pids"
}

# Polls until `$2...` succeeds, at most $1 seconds; fails early if the
# process with PID $PROC_PID died (its log is then the interesting part).
wait_for() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [[ -n ${PROC_PID:-} ]] && ! kill -0 "$PROC_PID" 2>/dev/null; then
            return 2
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# wait_for with a diagnosis: on failure logs what $2 (a name) did and the end
# of its log $DIR/$3.log, then exits.
wait_or_die() {
    local timeout=$1 what=$2 logname=$3
    shift 3
    local rc=0
    wait_for "$timeout" "$@" || rc=$?
    [[ $rc -ne 0 ]] || return 0
    if [[ $rc -eq 2 ]]; then
        log "$what: process exited"
    else
        log "$what: not done after $timeout s"
    fi
    log "last lines of $DIR/$logname.log:"
    tail -n 40 "$DIR/$logname.log" >&2
    exit 1
}

CURL_AUTH=()
api_get() { curl -fsS --max-time 5 --cacert "$DIR/pki/ca.crt" "${CURL_AUTH[@]}" "$APISERVER$1"; }
crd_get() { curl -fsS --max-time 5 --cacert "$DIR/pki/ca.crt" "${CURL_AUTH[@]}" "$CRD_URL$1"; }

# POSTs the JSON file $3 to path $2 of server $1; on an error status prints the
# response and fails.
post_json() {
    local base=$1 path=$2 file=$3 code
    code=$(curl -sS --max-time 30 --cacert "$DIR/pki/ca.crt" "${CURL_AUTH[@]}" \
        -X POST -H 'Content-Type: application/json' --data-binary "@$file" \
        -o "$DIR/post-response.json" -w '%{http_code}' "$base$path") || code=000
    if [[ $code != 2* ]]; then
        log "POST $base$path failed (HTTP $code):"
        cat "$DIR/post-response.json" >&2 2>/dev/null || true
        echo >&2
        return 1
    fi
}

# True if the object JSON on stdin has condition type $1 with status True.
has_condition() {
    python3 -c '
import json, sys
obj = json.load(sys.stdin)
conds = (obj.get("status") or {}).get("conditions") or []
sys.exit(0 if any(c.get("type") == sys.argv[1] and c.get("status") == "True" for c in conds) else 1)
' "$1"
}
crd_established() { crd_get "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$1" | has_condition Established; }
apiservice_available() { api_get "/apis/apiregistration.k8s.io/v1/apiservices/$1" | has_condition Available; }

on_up_exit() {
    local rc=$?
    [[ $rc -ne 0 ]] || return 0
    log "up failed; stopping what was started"
    stop_pids "$DIR" || true
    if [[ $DIR_CREATED == 1 ]]; then
        rm -rf "$DIR"
    else
        log "logs left in $DIR (remove with: $0 down $DIR)"
    fi
    exit "$rc"
}

# The hybrid's second half, once kube-apiserver is ready: the 1.36
# apiextensions-apiserver on $CRD_ADDR (same etcd, own prefix; authentication
# and authorization delegated to kube-apiserver), the CRD created on it
# directly, then the ExternalName Service and the APIServices that route the
# CRD's group to it.
start_crd_server() {
    local etcd_port=$1 crd_file=$2
    # Delegated authn/authz (TokenReview, SubjectAccessReview) and the core
    # client (namespaces for NamespaceLifecycle) as an admin of its own.
    # Without priority-and-fairness and the admission-policy plugins it needs
    # no API that 1.20 lacks (else readiness never passes: informer-sync).
    start_bg apiextensions-apiserver "$CRD_BIN/apiextensions-apiserver" \
        --etcd-servers="http://127.0.0.1:$etcd_port" \
        --etcd-prefix=/ecsvnc-crd-server \
        --bind-address="$CRD_ADDR" \
        --secure-port="$CRD_PORT" \
        --cert-dir="$DIR/crd-server-certs" \
        --tls-cert-file="$DIR/pki/crd-serving.crt" \
        --tls-private-key-file="$DIR/pki/crd-serving.key" \
        --kubeconfig="$DIR/kubeconfig-crd-server" \
        --authentication-kubeconfig="$DIR/kubeconfig-crd-server" \
        --authorization-kubeconfig="$DIR/kubeconfig-crd-server" \
        --requestheader-client-ca-file="$DIR/pki/front-proxy-ca.crt" \
        --requestheader-allowed-names=aggregator \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --enable-priority-and-fairness=false \
        --disable-admission-plugins=MutatingAdmissionPolicy,ValidatingAdmissionPolicy \
        --profiling=false
    PROC_PID=$LAST_PID
    wait_or_die 90 "apiextensions-apiserver $CRD_K8S_MINOR ($CRD_URL)" apiextensions-apiserver crd_get /readyz
    log "apiextensions-apiserver $(crd_get /version | python3 -c 'import json, sys; print(json.load(sys.stdin)["gitVersion"])') ready at $CRD_URL after $((SECONDS - UP_STARTED)) s"

    # The CRD, as JSON (kubectl converts offline), created on the 1.36 server
    # itself: its discovery has no /api, so kubectl cannot apply it there.
    [[ -f $crd_file ]] || die "CRD file $crd_file not found"
    KUBECONFIG=/dev/null "$(kubectl_program)" patch --local -f "$crd_file" --type merge -p '{}' -o json \
        >"$DIR/crd.json" || die "cannot convert $crd_file to JSON"
    local crd_name group versions
    read -r crd_name group versions < <(python3 -c '
import json, sys
crd = json.load(open(sys.argv[1]))
assert crd["kind"] == "CustomResourceDefinition", crd["kind"]
print(crd["metadata"]["name"], crd["spec"]["group"],
      " ".join(v["name"] for v in crd["spec"]["versions"] if v.get("served")))
' "$DIR/crd.json") || true
    [[ -n ${versions:-} ]] || die "$crd_file is not a CustomResourceDefinition serving some version"
    post_json "$CRD_URL" /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$DIR/crd.json" ||
        die "the $CRD_K8S_MINOR server refused $crd_file"
    wait_or_die 60 "CRD $crd_name Established on the $CRD_K8S_MINOR server" apiextensions-apiserver \
        crd_established "$crd_name"
    local v
    for v in $versions; do
        wait_or_die 30 "/apis/$group/$v on the $CRD_K8S_MINOR server" apiextensions-apiserver crd_get "/apis/$group/$v"
    done

    # Routing: an ExternalName Service naming the loopback address (Endpoints
    # refuse loopback addresses; for ExternalName the aggregator dials
    # https://<externalName>:<port> and verifies <service>.<namespace>.svc).
    cat >"$DIR/crd-service.json" <<EOF
{"apiVersion": "v1", "kind": "Service",
 "metadata": {"name": "$CRD_SERVICE", "namespace": "$CRD_SERVICE_NS"},
 "spec": {"type": "ExternalName", "externalName": "$CRD_ADDR"}}
EOF
    post_json "$APISERVER" "/api/v1/namespaces/$CRD_SERVICE_NS/services" "$DIR/crd-service.json" ||
        die "cannot create Service $CRD_SERVICE_NS/$CRD_SERVICE"
    local ca_bundle
    ca_bundle=$(base64 -w0 <"$DIR/pki/ca.crt")
    for v in $versions; do
        cat >"$DIR/apiservice-$v.json" <<EOF
{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
 "metadata": {"name": "$v.$group"},
 "spec": {"group": "$group", "version": "$v", "groupPriorityMinimum": 1000, "versionPriority": 15,
          "service": {"namespace": "$CRD_SERVICE_NS", "name": "$CRD_SERVICE", "port": $CRD_PORT},
          "caBundle": "$ca_bundle"}}
EOF
        post_json "$APISERVER" /apis/apiregistration.k8s.io/v1/apiservices "$DIR/apiservice-$v.json" ||
            die "cannot create APIService $v.$group"
    done
    # PROC_PID is still the CRD server's: fail early if it dies.
    local rc
    for v in $versions; do
        rc=0
        wait_for 60 apiservice_available "$v.$group" || rc=$?
        [[ $rc -ne 0 ]] || continue
        log "APIService $v.$group not Available (wait status $rc):"
        api_get "/apis/apiregistration.k8s.io/v1/apiservices/$v.$group" >&2 || true
        log "last lines of $DIR/apiextensions-apiserver.log:"
        tail -n 20 "$DIR/apiextensions-apiserver.log" >&2
        log "last lines of $DIR/kube-apiserver.log:"
        tail -n 20 "$DIR/kube-apiserver.log" >&2
        exit 1
    done
    # Available can be reported a moment before the aggregator routes the
    # group (kubectl would get a 404 for its discovery): wait for the route.
    for v in $versions; do
        wait_or_die 30 "/apis/$group/$v through kube-apiserver" kube-apiserver api_get "/apis/$group/$v"
    done
    log "$group ($versions) served by the $CRD_K8S_MINOR server through the aggregator after $((SECONDS - UP_STARTED)) s"
}

cmd_up() {
    DIR=${1:-}
    local crd_server=${ECSVNC_CRD_SERVER:-}
    case $crd_server in
    "" | 1.20) crd_server= ;;
    "$CRD_K8S_MINOR") ;;
    *) die "ECSVNC_CRD_SERVER=$crd_server: use $CRD_K8S_MINOR (the hybrid) or leave it unset (plain $K8S_VERSION)" ;;
    esac
    local crd_file=${ECSVNC_CRD_FILE:-$SCRIPT_DIR/../crds/vncsession.yaml}
    # Built here if missing; the lock is released before anything is started
    # (the servers would inherit it).
    if ! have_binaries || { [[ -n $crd_server ]] && ! have_crd_server; }; then
        log "binaries missing; building first"
        build_lock
        build_k8s
        [[ -z $crd_server ]] || build_crd_server
        build_unlock
    fi
    DIR_CREATED=0
    if [[ -z $DIR ]]; then
        DIR=$(mktemp -d "${TMPDIR:-/tmp}/ecsvnc-cluster.XXXXXX")
        DIR_CREATED=1
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd) # absolute: written into kubeconfig/env
    [[ ! -e "$DIR/pids" ]] || die "$DIR already has a control plane (run: $0 down $DIR)"
    touch "$DIR/$MARKER" "$DIR/pids"
    # Stop whatever was started if anything below fails or we are interrupted.
    trap on_up_exit EXIT
    trap 'exit 130' INT TERM

    UP_STARTED=$SECONDS
    local etcd_port etcd_peer_port api_port
    read -r etcd_port etcd_peer_port api_port < <(free_ports 3)
    APISERVER="https://127.0.0.1:$api_port"
    if [[ -n $crd_server ]]; then
        CRD_PORT=$(free_ports 1 "$CRD_ADDR")
        CRD_URL="https://$CRD_ADDR:$CRD_PORT"
    fi

    make_pki "$DIR/pki"
    [[ -z $crd_server ]] || make_crd_pki "$DIR/pki" "$CRD_ADDR"
    # token,user,uid,"group1,group2": system:masters bypasses RBAC. The
    # controller manager and the CRD server have identities of their own,
    # so the audit policy can tell their requests apart.
    local token cm_token crd_token
    token=$(openssl rand -hex 32)
    cm_token=$(openssl rand -hex 32)
    crd_token=$(openssl rand -hex 32)
    {
        echo "$token,ecsvnc-admin,ecsvnc-admin,\"system:masters\""
        echo "$cm_token,system:kube-controller-manager,system:kube-controller-manager,\"system:masters\""
        [[ -z $crd_server ]] ||
            echo "$crd_token,system:ecsvnc-crd-server,system:ecsvnc-crd-server,\"system:masters\""
    } >"$DIR/tokens.csv"
    chmod 600 "$DIR/tokens.csv"
    CURL_AUTH=(-H "Authorization: Bearer $token")

    # Self-contained kubeconfigs (CA embedded): the admin one for kubectl,
    # kube-rs and the tests; one each for the controller manager and the CRD
    # server.
    write_kubeconfig "$DIR/kubeconfig" ecsvnc-admin "$token"
    write_kubeconfig "$DIR/kubeconfig-controller-manager" system:kube-controller-manager "$cm_token"
    [[ -z $crd_server ]] ||
        write_kubeconfig "$DIR/kubeconfig-crd-server" system:ecsvnc-crd-server "$crd_token"
    write_audit_policy "$DIR/audit-policy.yaml"
    cat >"$DIR/env" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export ECSVNC_CLUSTER_DIR=$DIR
export ECSVNC_APISERVER=$APISERVER
export ECSVNC_AUDIT_LOG=$DIR/audit.log
EOF
    if [[ -n $crd_server ]]; then
        cat >>"$DIR/env" <<EOF
export ECSVNC_CRD_SERVER_VERSION=$CRD_K8S_MINOR
export ECSVNC_CRD_SERVER_URL=$CRD_URL
EOF
    fi

    # --- etcd ---------------------------------------------------------
    # fsync off: the data is throw-away and fsync dominates latency.
    start_bg etcd "$BIN/etcd" \
        --name=ecsvnc \
        --data-dir="$DIR/etcd" \
        --listen-client-urls="http://127.0.0.1:$etcd_port" \
        --advertise-client-urls="http://127.0.0.1:$etcd_port" \
        --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster="ecsvnc=http://127.0.0.1:$etcd_peer_port" \
        --unsafe-no-fsync \
        --logger=zap
    PROC_PID=$LAST_PID
    wait_or_die 30 "etcd health" etcd curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"

    # --- kube-apiserver -----------------------------------------------
    # Loopback only. The service CIDR is required config but never used
    # (no kube-proxy); the endpoint reconciler is off because there is no
    # real "kubernetes" Service to maintain. --insecure-port=0: 1.20 would
    # otherwise also serve plain HTTP on 8080, colliding between clusters.
    # Audit: blocking writes (the default), no rotation within a test run.
    local apiserver_args=(
        --etcd-servers="http://127.0.0.1:$etcd_port"
        --bind-address=127.0.0.1
        --advertise-address=127.0.0.1
        --secure-port="$api_port"
        --insecure-port=0
        --cert-dir="$DIR/apiserver-certs"
        --tls-cert-file="$DIR/pki/serving.crt"
        --tls-private-key-file="$DIR/pki/serving.key"
        --client-ca-file="$DIR/pki/ca.crt"
        --token-auth-file="$DIR/tokens.csv"
        --authorization-mode=RBAC
        --service-account-issuer=https://kubernetes.default.svc
        --service-account-key-file="$DIR/pki/sa.pub"
        --service-account-signing-key-file="$DIR/pki/sa.key"
        --service-cluster-ip-range=10.0.0.0/24
        --endpoint-reconciler-type=none
        --profiling=false
        --audit-policy-file="$DIR/audit-policy.yaml"
        --audit-log-path="$DIR/audit.log"
        --audit-log-maxsize=4096
    )
    if [[ -n $crd_server ]]; then
        # Aggregation: the proxy client certificate the aggregator presents
        # to the CRD server, and the request-header authentication both
        # servers accept from it.
        apiserver_args+=(
            --proxy-client-cert-file="$DIR/pki/front-proxy-client.crt"
            --proxy-client-key-file="$DIR/pki/front-proxy-client.key"
            --requestheader-client-ca-file="$DIR/pki/front-proxy-ca.crt"
            --requestheader-allowed-names=aggregator
            --requestheader-username-headers=X-Remote-User
            --requestheader-group-headers=X-Remote-Group
            --requestheader-extra-headers-prefix=X-Remote-Extra-
        )
    fi
    start_bg kube-apiserver "$BIN/kube-apiserver" "${apiserver_args[@]}"
    PROC_PID=$LAST_PID
    wait_or_die 60 "kube-apiserver /readyz" kube-apiserver api_get /readyz
    log "apiserver ready at $APISERVER after $((SECONDS - UP_STARTED)) s"

    # --- kube-controller-manager --------------------------------------
    # Controllers: namespace (namespace deletion), garbagecollector (owner
    # references), serviceaccount (the `default` SA per namespace) and
    # serviceaccount-token (1.20 auto-creates token Secrets for SAs). No
    # leader election (single instance); no HTTP(S) serving (ports 0), so
    # several clusters can run side by side.
    start_bg kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$DIR/kubeconfig-controller-manager" \
        --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token \
        --service-account-private-key-file="$DIR/pki/sa.key" \
        --root-ca-file="$DIR/pki/ca.crt" \
        --use-service-account-credentials=false \
        --leader-elect=false \
        --port=0 \
        --secure-port=0
    local cm_pid=$LAST_PID

    # --- the hybrid's CRD server (starts while the controller manager does)
    [[ -z $crd_server ]] || start_crd_server "$etcd_port" "$crd_file"

    PROC_PID=$cm_pid
    wait_or_die 60 "default ServiceAccount" kube-controller-manager \
        api_get /api/v1/namespaces/default/serviceaccounts/default
    PROC_PID=

    # Optional watchdog: tear down when the owning process disappears.
    if [[ -n ${ECSVNC_OWNER_PID:-} ]]; then
        start_bg watchdog bash "$SELF" _watchdog "$ECSVNC_OWNER_PID" "$DIR"
    fi

    trap - EXIT INT TERM
    log "control plane up in $((SECONDS - UP_STARTED)) s; state in $DIR"
    log "use: source $DIR/env   (or kubectl --kubeconfig $DIR/kubeconfig ...)"
    echo "$DIR"
}

cmd_watchdog() {
    local owner=$1 dir=$2
    while kill -0 "$owner" 2>/dev/null && [[ -d $dir ]]; do
        sleep 1
    done
    [[ -d $dir ]] && cmd_down "$dir"
}

# ---------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------

# True while PID $1 exists and is not a zombie (an exited child that its
# parent, possibly a non-reaping PID 1 in containers, has not collected yet).
is_running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# TERM every PID in $1/pids that is still one of ours, wait up to 10 s, then
# KILL the rest. A PID counts as ours only while its command line mentions
# the state directory, so a recycled PID is never signalled.
stop_pids() {
    local dir=$1 pid
    [[ -f "$dir/pids" ]] || return 0
    local ours=()
    while read -r pid; do
        [[ $pid =~ ^[0-9]+$ && $pid != "$$" ]] || continue
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"; then
            ours+=("$pid")
        fi
    done <"$dir/pids"
    [[ ${#ours[@]} -gt 0 ]] || return 0
    kill -TERM "${ours[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + 10)) alive
    while :; do
        alive=()
        for pid in "${ours[@]}"; do
            is_running "$pid" && alive+=("$pid")
        done
        [[ ${#alive[@]} -gt 0 ]] || break
        if ((SECONDS >= deadline)); then
            log "killing ${alive[*]} (did not stop on TERM)"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

cmd_down() {
    local dir=${1:-}
    [[ -n $dir ]] || die "usage: $0 down DIR"
    if [[ ! -d $dir ]]; then
        log "$dir does not exist (already down)"
        return 0
    fi
    dir=$(cd "$dir" && pwd)
    [[ -e "$dir/$MARKER" ]] || die "$dir is not a local-cluster state directory; refusing to touch it"
    stop_pids "$dir"
    rm -rf "$dir"
    log "stopped and removed $dir"
}

cmd_env() {
    local dir=${1:-}
    [[ -n $dir && -f "$dir/env" ]] || die "usage: $0 env DIR (no $dir/env)"
    cat "$dir/env"
}

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
