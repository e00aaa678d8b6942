# shellcheck shell=bash
# `local-cluster.sh up [DIR]`: starts a control plane (etcd, kube-apiserver,
# kube-controller-manager; with ECSVNC_CRD_SERVER=1.36 also the hybrid's CRD server, see
# crd-server.sh) on free loopback ports, state in DIR, and prints DIR as the last line of stdout;
# everything started is stopped again if any step fails. Sourced by scripts/local-cluster.sh.

cmd_up() {
    DIR=${1:-}
    select_crd_server
    local crd_file=${ECSVNC_CRD_FILE:-$SCRIPT_DIR/../crds/vncsession.yaml}
    ensure_built "$CRD_SERVER"
    open_state_dir
    UP_STARTED=$SECONDS
    pick_ports
    make_pki "$DIR/pki"
    [[ -z $CRD_SERVER ]] || make_crd_pki "$DIR/pki" "$CRD_ADDR"
    write_config "$CRD_SERVER"
    CURL_AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")
    start_etcd
    start_apiserver
    start_controller_manager
    # The hybrid's CRD server starts while the controller manager does.
    [[ -z $CRD_SERVER ]] || start_crd_server "$ETCD_PORT" "$crd_file"
    PROC_PID=$CM_PID
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

# Sets CRD_SERVER from ECSVNC_CRD_SERVER: $CRD_K8S_MINOR for the hybrid,
# empty for plain $K8S_VERSION.
select_crd_server() {
    CRD_SERVER=${ECSVNC_CRD_SERVER:-}
    case $CRD_SERVER in
    "" | 1.20) CRD_SERVER= ;;
    "$CRD_K8S_MINOR") ;;
    *) die "ECSVNC_CRD_SERVER=$CRD_SERVER: use $CRD_K8S_MINOR (the hybrid) or leave it unset (plain $K8S_VERSION)" ;;
    esac
}

# Creates the state directory $DIR (a fresh temporary one if empty), marks it
# as ours, and arms the clean-up: from here on, a failure or an interrupt
# stops whatever was started.
open_state_dir() {
    DIR_CREATED=0
    if [[ -z $DIR ]]; then
        DIR=$(mktemp -d "${TMPDIR:-/tmp}/ecsvnc-cluster.XXXXXX")
        DIR_CREATED=1
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd) # absolute: written into kubeconfig/env
    [[ ! -e "$DIR/pids" ]] || die "$DIR already has a control plane (run: $0 down $DIR)"
    touch "$DIR/$MARKER" "$DIR/pids"
    trap on_up_exit EXIT
    trap 'exit 130' INT TERM
}

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

# Sets ETCD_PORT, ETCD_PEER_PORT, API_PORT, APISERVER and, in the hybrid,
# CRD_PORT and CRD_URL.
pick_ports() {
    read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(free_ports 3)
    APISERVER="https://127.0.0.1:$API_PORT"
    if [[ -n $CRD_SERVER ]]; then
        CRD_PORT=$(free_ports 1 "$CRD_ADDR")
        CRD_URL="https://$CRD_ADDR:$CRD_PORT"
    fi
}

# fsync off: the data is throw-away and fsync dominates latency.
start_etcd() {
    start_bg etcd "$BIN/etcd" \
        --name=ecsvnc \
        --data-dir="$DIR/etcd" \
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster="ecsvnc=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync \
        --logger=zap
    PROC_PID=$LAST_PID
    wait_or_die 30 "etcd health" etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
}

# Loopback only. The service CIDR is required config but never used
# (no kube-proxy); the endpoint reconciler is off because there is no
# real "kubernetes" Service to maintain. --insecure-port=0: 1.20 would
# otherwise also serve plain HTTP on 8080, colliding between clusters.
# Audit: blocking writes (the default), no rotation within a test run.
start_apiserver() {
    local args=(
        --etcd-servers="http://127.0.0.1:$ETCD_PORT"
        --bind-address=127.0.0.1
        --advertise-address=127.0.0.1
        --secure-port="$API_PORT"
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
    if [[ -n $CRD_SERVER ]]; then
        # Aggregation: the proxy client certificate the aggregator presents
        # to the CRD server, and the request-header authentication both
        # servers accept from it.
        local requestheader
        mapfile -t requestheader < <(requestheader_flags)
        args+=(
            --proxy-client-cert-file="$DIR/pki/front-proxy-client.crt"
            --proxy-client-key-file="$DIR/pki/front-proxy-client.key"
            "${requestheader[@]}"
        )
    fi
    start_bg kube-apiserver "$BIN/kube-apiserver" "${args[@]}"
    PROC_PID=$LAST_PID
    wait_or_die 60 "kube-apiserver /readyz" kube-apiserver api_get /readyz
    log "apiserver ready at $APISERVER after $((SECONDS - UP_STARTED)) s"
}

# Controllers: namespace (namespace deletion), garbagecollector (owner
# references), serviceaccount (the `default` SA per namespace) and
# serviceaccount-token (1.20 auto-creates token Secrets for SAs). No
# leader election (single instance); no HTTP(S) serving (ports 0), so
# several clusters can run side by side. Sets CM_PID; not waited for here.
start_controller_manager() {
    start_bg kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$DIR/kubeconfig-controller-manager" \
        --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token \
        --service-account-private-key-file="$DIR/pki/sa.key" \
        --root-ca-file="$DIR/pki/ca.crt" \
        --use-service-account-credentials=false \
        --leader-elect=false \
        --port=0 \
        --secure-port=0
    CM_PID=$LAST_PID
}
