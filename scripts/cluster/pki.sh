# shellcheck shell=bash
# The control plane's certificates and keys (openssl, 30 days, RSA 2048): the cluster CA, the
# apiserver's serving certificate, the service-account key pair, and the hybrid's front-proxy CA,
# aggregator client and CRD-server serving certificates. Sourced by scripts/local-cluster.sh.

# The [req] part of an openssl config whose self-signed CA has CN $1, and that
# CA's extensions (section ca_ext).
cnf_ca() {
    cat <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $1
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
}

# A leaf certificate's extensions: section $1, extended key usage $2 and,
# if given, subjectAltName $3.
cnf_leaf() {
    echo "[$1]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $2"
    [[ -z ${3:-} ]] || echo "subjectAltName = $3"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
}

# A self-signed CA $1/$3.{key,crt} from config $2 (its CN and ca_ext).
new_ca() {
    local pki=$1 cnf=$2 name=$3
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -config "$cnf" -extensions ca_ext \
        -keyout "$pki/$name.key" -out "$pki/$name.crt" 2>/dev/null
}

# A leaf $1/$5.{key,csr,crt} with subject CN $6, signed by CA $1/$4 with the
# extensions of section $3 of config $2.
new_leaf() {
    local pki=$1 cnf=$2 ext=$3 ca=$4 name=$5 cn=$6
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$cn" \
        -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -days 30 \
        -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
        -extfile "$cnf" -extensions "$ext" \
        -out "$pki/$name.crt" 2>/dev/null
}

# Writes the CA, the apiserver serving certificate and the service-account
# key pair into $1. A real CA (CA:TRUE) plus a separate leaf is used because
# rustls (the operator's TLS stack) rejects a self-signed leaf used as a CA.
make_pki() {
    local pki=$1
    mkdir -p "$pki"
    {
        cnf_ca ecsvnc-local-ca
        cnf_leaf serving_ext serverAuth "IP:127.0.0.1, DNS:localhost"
    } >"$pki/openssl.cnf"
    new_ca "$pki" "$pki/openssl.cnf" ca
    new_leaf "$pki" "$pki/openssl.cnf" serving_ext ca serving kube-apiserver
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
    local cnf="$pki/crd-openssl.cnf"
    {
        cnf_ca ecsvnc-front-proxy-ca
        cnf_leaf client_ext clientAuth
        cnf_leaf serving_ext serverAuth "IP:$addr, DNS:$CRD_SERVICE.$CRD_SERVICE_NS.svc"
    } >"$cnf"
    new_ca "$pki" "$cnf" front-proxy-ca
    new_leaf "$pki" "$cnf" client_ext front-proxy-ca front-proxy-client aggregator
    new_leaf "$pki" "$cnf" serving_ext ca crd-serving "$CRD_SERVICE"
    chmod 600 "$pki"/*.key
}

# The request-header authentication that kube-apiserver and the CRD server
# both accept from the aggregator (its client certificate, signed by the
# front-proxy CA), one flag a line, for the state directory $DIR.
requestheader_flags() {
    printf '%s\n' \
        --requestheader-client-ca-file="$DIR/pki/front-proxy-ca.crt" \
        --requestheader-allowed-names=aggregator \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra-
}
