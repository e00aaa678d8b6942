# shellcheck shell=bash
# HTTPS calls to the control plane being started: kube-apiserver ($APISERVER) and the hybrid's
# CRD server ($CRD_URL), trusting the cluster CA and sending the admin token (CURL_AUTH).
# Sourced by scripts/local-cluster.sh.

CURL_AUTH=()

# curl with the cluster CA and the admin token; "$@" says the rest.
cluster_curl() { curl --cacert "$DIR/pki/ca.crt" "${CURL_AUTH[@]}" "$@"; }
api_get() { cluster_curl -fsS --max-time 5 "$APISERVER$1"; }
crd_get() { cluster_curl -fsS --max-time 5 "$CRD_URL$1"; }

# POSTs the JSON file $3 to path $2 of server $1; on an error status prints the
# response and fails.
post_json() {
    local base=$1 path=$2 file=$3 code
    code=$(cluster_curl -sS --max-time 30 \
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
