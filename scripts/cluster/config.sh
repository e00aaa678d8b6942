# shellcheck shell=bash
# The configuration files of a control plane's state directory $DIR: tokens.csv, the
# kubeconfigs, the audit policy and the `env` file (which `local-cluster.sh env` prints).
# Sourced by scripts/local-cluster.sh.

# Writes $DIR/tokens.csv and sets ADMIN_TOKEN, CM_TOKEN and CRD_TOKEN; the CRD
# server's line only if $1 is non-empty (the hybrid). token,user,uid,"groups":
# system:masters bypasses RBAC. The controller manager and the CRD server have
# identities of their own, so the audit policy can tell their requests apart.
write_tokens() {
    local crd_server=$1
    ADMIN_TOKEN=$(openssl rand -hex 32)
    CM_TOKEN=$(openssl rand -hex 32)
    CRD_TOKEN=$(openssl rand -hex 32)
    {
        echo "$ADMIN_TOKEN,ecsvnc-admin,ecsvnc-admin,\"system:masters\""
        echo "$CM_TOKEN,system:kube-controller-manager,system:kube-controller-manager,\"system:masters\""
        [[ -z $crd_server ]] ||
            echo "$CRD_TOKEN,system:ecsvnc-crd-server,system:ecsvnc-crd-server,\"system:masters\""
    } >"$DIR/tokens.csv"
    chmod 600 "$DIR/tokens.csv"
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

# Writes $DIR/env, the shell exports for this control plane (the hybrid's two
# extra ones if $1 is non-empty).
write_env() {
    local crd_server=$1
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
}

# Everything above for a new control plane ($1 non-empty: the hybrid), after
# the certificates. Self-contained kubeconfigs (CA embedded): the admin one for
# kubectl, kube-rs and the tests; one each for the controller manager and the
# CRD server.
write_config() {
    local crd_server=$1
    write_tokens "$crd_server"
    write_kubeconfig "$DIR/kubeconfig" ecsvnc-admin "$ADMIN_TOKEN"
    write_kubeconfig "$DIR/kubeconfig-controller-manager" system:kube-controller-manager "$CM_TOKEN"
    [[ -z $crd_server ]] ||
        write_kubeconfig "$DIR/kubeconfig-crd-server" system:ecsvnc-crd-server "$CRD_TOKEN"
    write_audit_policy "$DIR/audit-policy.yaml"
    write_env "$crd_server"
}

cmd_env() {
    local dir=${1:-}
    [[ -n $dir && -f "$dir/env" ]] || die "usage: $0 env DIR (no $dir/env)"
    cat "$dir/env"
}
