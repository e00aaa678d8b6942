# shellcheck shell=bash
# The hybrid's second half, once kube-apiserver is ready: the $CRD_K8S_MINOR
# apiextensions-apiserver on $CRD_ADDR (same etcd, own prefix; authentication and authorization
# delegated to kube-apiserver), the CRD created on it directly, then the ExternalName Service and
# the APIServices that route the CRD's group to it. Sourced by scripts/local-cluster.sh.

# All of it: $1 is etcd's client port, $2 the CRD file.
start_crd_server() {
    local etcd_port=$1 crd_file=$2
    run_crd_server "$etcd_port"
    install_crd "$crd_file"
    route_crd_group
    wait_crd_group_routed
    log "$CRD_GROUP ($CRD_VERSIONS) served by the $CRD_K8S_MINOR server through the aggregator after $((SECONDS - UP_STARTED)) s"
}

# Starts the CRD server on etcd port $1 and waits until it is ready; leaves
# PROC_PID at its PID.
run_crd_server() {
    local etcd_port=$1 requestheader
    mapfile -t requestheader < <(requestheader_flags)
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
        "${requestheader[@]}" \
        --enable-priority-and-fairness=false \
        --disable-admission-plugins=MutatingAdmissionPolicy,ValidatingAdmissionPolicy \
        --profiling=false
    PROC_PID=$LAST_PID
    wait_or_die 90 "apiextensions-apiserver $CRD_K8S_MINOR ($CRD_URL)" apiextensions-apiserver crd_get /readyz
    log "apiextensions-apiserver $(crd_get /version | python3 -c 'import json, sys; print(json.load(sys.stdin)["gitVersion"])') ready at $CRD_URL after $((SECONDS - UP_STARTED)) s"
}

# Creates the CRD in file $1 on the CRD server itself and waits until its
# group serves every version; sets CRD_GROUP and CRD_VERSIONS (served ones).
install_crd() {
    local crd_file=$1
    # The CRD, as JSON (kubectl converts offline), created on the 1.36 server
    # itself: its discovery has no /api, so kubectl cannot apply it there.
    [[ -f $crd_file ]] || die "CRD file $crd_file not found"
    KUBECONFIG=/dev/null "$(kubectl_program)" patch --local -f "$crd_file" --type merge -p '{}' -o json \
        >"$DIR/crd.json" || die "cannot convert $crd_file to JSON"
    local crd_name
    read -r crd_name CRD_GROUP CRD_VERSIONS < <(python3 -c '
import json, sys
crd = json.load(open(sys.argv[1]))
assert crd["kind"] == "CustomResourceDefinition", crd["kind"]
print(crd["metadata"]["name"], crd["spec"]["group"],
      " ".join(v["name"] for v in crd["spec"]["versions"] if v.get("served")))
' "$DIR/crd.json") || true
    [[ -n ${CRD_VERSIONS:-} ]] || die "$crd_file is not a CustomResourceDefinition serving some version"
    post_json "$CRD_URL" /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$DIR/crd.json" ||
        die "the $CRD_K8S_MINOR server refused $crd_file"
    wait_or_die 60 "CRD $crd_name Established on the $CRD_K8S_MINOR server" apiextensions-apiserver \
        crd_established "$crd_name"
    local v
    for v in $CRD_VERSIONS; do
        wait_or_die 30 "/apis/$CRD_GROUP/$v on the $CRD_K8S_MINOR server" apiextensions-apiserver crd_get "/apis/$CRD_GROUP/$v"
    done
}

# Routing: an ExternalName Service naming the loopback address (Endpoints
# refuse loopback addresses; for ExternalName the aggregator dials
# https://<externalName>:<port> and verifies <service>.<namespace>.svc), and
# one APIService per served version.
route_crd_group() {
    cat >"$DIR/crd-service.json" <<EOF
{"apiVersion": "v1", "kind": "Service",
 "metadata": {"name": "$CRD_SERVICE", "namespace": "$CRD_SERVICE_NS"},
 "spec": {"type": "ExternalName", "externalName": "$CRD_ADDR"}}
EOF
    post_json "$APISERVER" "/api/v1/namespaces/$CRD_SERVICE_NS/services" "$DIR/crd-service.json" ||
        die "cannot create Service $CRD_SERVICE_NS/$CRD_SERVICE"
    local ca_bundle v group=$CRD_GROUP
    ca_bundle=$(base64 -w0 <"$DIR/pki/ca.crt")
    for v in $CRD_VERSIONS; do
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
}

# Waits until every APIService is Available and kube-apiserver routes its
# group; on failure logs the APIService and both servers' logs and exits.
wait_crd_group_routed() {
    # PROC_PID is still the CRD server's: fail early if it dies.
    local rc v group=$CRD_GROUP
    for v in $CRD_VERSIONS; do
        rc=0
        wait_for 60 apiservice_available "$v.$group" || rc=$?
        [[ $rc -ne 0 ]] || continue
        log "APIService $v.$group not Available (wait status $rc):"
        api_get "/apis/apiregistration.k8s.io/v1/apiservices/$v.$group" >&2 || true
        show_log apiextensions-apiserver 20
        show_log kube-apiserver 20
        exit 1
    done
    # Available can be reported a moment before the aggregator routes the
    # group (kubectl would get a 404 for its discovery): wait for the route.
    for v in $CRD_VERSIONS; do
        wait_or_die 30 "/apis/$group/$v through kube-apiserver" kube-apiserver api_get "/apis/$group/$v"
    done
}
