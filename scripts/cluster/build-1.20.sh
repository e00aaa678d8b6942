# shellcheck shell=bash
# Builds Kubernetes $K8S_VERSION's kube-apiserver and kube-controller-manager from Debian's
# source package (with its vendor/ tree, offline, with Debian's Go 1.19) and takes etcd from
# Debian's etcd-server package, into $BIN. Runs as `local-cluster.sh _build-inner`, a process of
# its own with all output in $BUILD_LOG (see run_build), so `set -e` is fully in force.

build_inner() {
    local work="$CACHE/work"
    log "build started $(date -Is)"
    rm -rf "$work"
    mkdir -p "$work"
    private_apt "$work/apt" debian_sources_for system
    apt-get "${APT_OPTS[@]}" update
    fetch_k8s_sources "$work"
    swap_reflect2 "$work"
    make_k8s "$work"
    install_k8s "$work"
    # Only the binaries are kept; the tree and Go cache are ~2.3 GB.
    rm -rf "$work"
    log "build finished $(date -Is)"
}

# Downloads the kubernetes source package and unpacks it to $1/kubernetes; the
# etcd-server and reflect2 packages are unpacked (not installed) to $1/debs.
fetch_k8s_sources() {
    local work=$1
    local dl="$work/dl"
    mkdir -p "$dl"
    (cd "$dl" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes)
    # etcd-server: only its binary is needed, so unpack instead of install.
    # golang-github-modern-go-reflect2-dev: see swap_reflect2.
    (cd "$dl" && apt-get "${APT_OPTS[@]}" download etcd-server golang-github-modern-go-reflect2-dev)

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
}

# The reflect2 fix: Kubernetes 1.20 vendors github.com/modern-go/reflect2
# 1.0.1, whose UnsafeMapType.UnsafeIterate relies on Go runtime map internals
# that changed in Go 1.18: the apiserver segfaults on the first watch of a
# custom resource. reflect2 1.0.2 (packaged by Debian) fixes it and is API
# compatible, so swap the vendored sources (tests excluded).
swap_reflect2() {
    local work=$1
    local vendored="$work/kubernetes/vendor/github.com/modern-go/reflect2"
    local fixed="$work/debs/usr/share/gocode/src/github.com/modern-go/reflect2"
    [[ -d $vendored && -d $fixed ]] || die "reflect2 sources not found ($vendored, $fixed)"
    find "$vendored" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    find "$fixed" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$vendored/" \;
}

# Runs the tree's own `make` for the two binaries, in GOPATH mode with vendored
# dependencies only.
make_k8s() {
    local work=$1
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
    ln -s "$work/kubernetes" "$work/gopath/src/k8s.io/kubernetes"
    (
        cd "$work/gopath/src/k8s.io/kubernetes" || exit
        export GOPATH="$work/gopath"
        export GOCACHE="$work/gocache" # deleted with the work tree
        export PATH="$GO_DIR:$PATH"
        export CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor
        export KUBE_GIT_VERSION_FILE="$work/version.env"
        go version
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
    )
}

# Copies the built binaries and etcd into $BIN. Stage, then rename, so a
# half-copied bin/ never looks complete.
install_k8s() {
    local work=$1 out
    local tree="$work/kubernetes"
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
}
