#!/usr/bin/env bash
# A private, throw-away Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager) on loopback, for the end-to-end tests.
#
#   scripts/local-cluster.sh build      build and cache the binaries (~6 min once)
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
# Messages go to stderr; stdout of `up` is only the state directory, so
# callers can take its last line.
#
# Environment:
#   ECSVNC_CACHE      cache root (default ~/.cache/ecs-vnc-operator)
#   ECSVNC_OWNER_PID  optional: if set for `up`, a watchdog tears the control
#                     plane down once that process is gone (used by the test
#                     harness so a killed test run leaks nothing).
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

log() { echo "local-cluster: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

have_binaries() {
    [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" && -x "$BIN/etcd" ]]
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

cmd_build() {
    if have_binaries; then
        log "binaries already built in $BIN (nothing to do)"
        return 0
    fi
    "$SCRIPT_DIR/install-deps.sh" >&2
    mkdir -p "$CACHE"
    log "building Kubernetes $K8S_VERSION into $BIN (takes ~6 min; log: $BUILD_LOG)"
    local start=$SECONDS rc=0
    # A separate process: `set -e` would be ignored inside an `if`/`||` here.
    bash "$SELF" _build-inner >"$BUILD_LOG" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]] || ! have_binaries; then
        log "build FAILED (exit $rc); last lines of $BUILD_LOG:"
        tail -n 40 "$BUILD_LOG" >&2
        exit 1
    fi
    log "build done in $((SECONDS - start)) s"
}

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------

# Prints N free TCP ports on 127.0.0.1. All sockets stay bound until every
# port is picked, so the N ports are distinct. (Another process could still
# grab one before our servers bind it; the window is milliseconds.)
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
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

CURL_AUTH=()
api_get() { curl -fsS --max-time 5 --cacert "$DIR/pki/ca.crt" "${CURL_AUTH[@]}" "$APISERVER$1"; }

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

cmd_up() {
    DIR=${1:-}
    if ! have_binaries; then
        log "binaries missing; building first"
        cmd_build
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

    local started=$SECONDS
    local etcd_port etcd_peer_port api_port
    read -r etcd_port etcd_peer_port api_port < <(free_ports 3)
    APISERVER="https://127.0.0.1:$api_port"

    make_pki "$DIR/pki"
    local token
    token=$(openssl rand -hex 32)
    # token,user,uid,"group1,group2": system:masters bypasses RBAC.
    echo "$token,ecsvnc-admin,ecsvnc-admin,\"system:masters\"" >"$DIR/tokens.csv"
    chmod 600 "$DIR/tokens.csv"
    CURL_AUTH=(-H "Authorization: Bearer $token")

    # Self-contained kubeconfig (CA embedded) for kubectl, kube-rs and the
    # controller manager.
    cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ecsvnc-local
  cluster:
    server: $APISERVER
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: ecsvnc-admin
  user:
    token: $token
contexts:
- name: ecsvnc-local
  context:
    cluster: ecsvnc-local
    user: ecsvnc-admin
current-context: ecsvnc-local
EOF
    chmod 600 "$DIR/kubeconfig"
    cat >"$DIR/env" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export ECSVNC_CLUSTER_DIR=$DIR
export ECSVNC_APISERVER=$APISERVER
EOF

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
    local rc=0
    wait_for 30 curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health" || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "etcd did not become healthy; last lines of $DIR/etcd.log:"
        tail -n 30 "$DIR/etcd.log" >&2
        exit 1
    fi

    # --- kube-apiserver -----------------------------------------------
    # Loopback only. The service CIDR is required config but never used
    # (no kube-proxy); the endpoint reconciler is off because there is no
    # real "kubernetes" Service to maintain. --insecure-port=0: 1.20 would
    # otherwise also serve plain HTTP on 8080, colliding between clusters.
    start_bg kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --secure-port="$api_port" \
        --insecure-port=0 \
        --cert-dir="$DIR/apiserver-certs" \
        --tls-cert-file="$DIR/pki/serving.crt" \
        --tls-private-key-file="$DIR/pki/serving.key" \
        --client-ca-file="$DIR/pki/ca.crt" \
        --token-auth-file="$DIR/tokens.csv" \
        --authorization-mode=RBAC \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$DIR/pki/sa.pub" \
        --service-account-signing-key-file="$DIR/pki/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --endpoint-reconciler-type=none \
        --profiling=false
    PROC_PID=$LAST_PID
    rc=0
    wait_for 60 api_get /readyz || rc=$?
    if [[ $rc -ne 0 ]]; then
        if [[ $rc -eq 2 ]]; then
            log "kube-apiserver exited"
        else
            log "kube-apiserver not ready after 60 s"
        fi
        log "last lines of $DIR/kube-apiserver.log:"
        tail -n 40 "$DIR/kube-apiserver.log" >&2
        exit 1
    fi
    log "apiserver ready at $APISERVER after $((SECONDS - started)) s"

    # --- kube-controller-manager --------------------------------------
    # Controllers: namespace (namespace deletion), garbagecollector (owner
    # references), serviceaccount (the `default` SA per namespace) and
    # serviceaccount-token (1.20 auto-creates token Secrets for SAs). No
    # leader election (single instance); no HTTP(S) serving (ports 0), so
    # several clusters can run side by side.
    start_bg kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$DIR/kubeconfig" \
        --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token \
        --service-account-private-key-file="$DIR/pki/sa.key" \
        --root-ca-file="$DIR/pki/ca.crt" \
        --use-service-account-credentials=false \
        --leader-elect=false \
        --port=0 \
        --secure-port=0
    PROC_PID=$LAST_PID
    rc=0
    wait_for 60 api_get /api/v1/namespaces/default/serviceaccounts/default || rc=$?
    if [[ $rc -ne 0 ]]; then
        if [[ $rc -eq 2 ]]; then
            log "kube-controller-manager exited"
        else
            log "default ServiceAccount not created after 60 s"
        fi
        log "last lines of $DIR/kube-controller-manager.log:"
        tail -n 40 "$DIR/kube-controller-manager.log" >&2
        exit 1
    fi
    PROC_PID=

    # Optional watchdog: tear down when the owning process disappears.
    if [[ -n ${ECSVNC_OWNER_PID:-} ]]; then
        start_bg watchdog bash "$SELF" _watchdog "$ECSVNC_OWNER_PID" "$DIR"
    fi

    trap - EXIT INT TERM
    log "control plane up in $((SECONDS - started)) s; state in $DIR"
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
    sed -n '2,9p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
build) cmd_build ;;
up) cmd_up "${2:-}" ;;
down) cmd_down "${2:-}" ;;
env) cmd_env "${2:-}" ;;
_build-inner) build_inner ;;
_watchdog) cmd_watchdog "$2" "$3" ;;
*) usage ;;
esac
