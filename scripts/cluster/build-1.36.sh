# shellcheck shell=bash
# Builds the Kubernetes $CRD_K8S_MINOR apiextensions-apiserver (the hybrid's CRD server) from
# Debian $CRD_SUITE's Go packages into $CRD_BIN. Runs as `local-cluster.sh _build-crd-inner`, a
# process of its own with all output in $CRD_BUILD_LOG (see run_build).

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

# golang-$CRD_GO-go, golang-$CRD_GO-src and the golang-*-dev closure of
# golang-k8s-apiextensions-apiserver-dev (~320 packages, ~260 MB), downloaded
# with a private apt configuration, unpacked with dpkg-deb -x into one root
# (nothing is installed into the system) and built in GOPATH mode. Only the
# binary is kept: the root (~2.2 GB) and the Go build cache (~1.4 GB) go (see
# crd_work_dir for where they live meanwhile).
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

    private_apt "$work/apt" debian_crd_sources_for empty " (its mirror is used for $CRD_SUITE)"
    t0=$SECONDS
    apt-get "${APT_OPTS[@]}" update
    crd_upstream_version
    download_crd_packages "$work" "$t0"
    unpack_crd_packages "$work"
    go_build_crd_server "$work"

    t0=$SECONDS
    rm -rf "$work"
    log "TIMING clean-up: $((SECONDS - t0)) s"
    log "build finished $(date -Is)"
}

# Sets CRD_DEBVER to suite $CRD_SUITE's version of
# golang-k8s-apiextensions-apiserver-dev and CRD_KVER to the Kubernetes version
# it is (e.g. 0.36.4-1 -> 1.36.4); fails unless that is $CRD_K8S_MINOR.x.
crd_upstream_version() {
    local upstream
    CRD_DEBVER=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions golang-k8s-apiextensions-apiserver-dev |
        awk '/^Version:/ { print $2; exit }')
    upstream=${CRD_DEBVER#*:}
    upstream=${upstream%-*}
    upstream=${upstream%%[+~]*}
    [[ $upstream =~ ^0\.$CRD_MINOR\.[0-9]+$ ]] ||
        die "Debian $CRD_SUITE has golang-k8s-apiextensions-apiserver-dev ${CRD_DEBVER:-(none)}, not 0.$CRD_MINOR.x: update CRD_K8S_MINOR/CRD_GO in $CLUSTER_LIB/lib.sh"
    CRD_KVER="1.${upstream#0.}"
}

# Downloads Go and the golang-*-dev closure into $1/debs; $2 is when the
# download phase (apt-get update included) started.
download_crd_packages() {
    local work=$1 t0=$2 pkgs deps
    pkgs=("golang-$CRD_GO-go" "golang-$CRD_GO-src")
    mapfile -t deps < <(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev |
        grep -E '^golang-[^ <>]+-dev$' | sort -u)
    [[ ${#deps[@]} -gt 50 ]] || die "the golang-*-dev closure of golang-k8s-apiextensions-apiserver-dev has only ${#deps[@]} packages"
    pkgs+=("${deps[@]}")
    log "downloading ${#pkgs[@]} packages from $CRD_SUITE"
    mkdir -p "$work/debs"
    (cd "$work/debs" && apt-get "${APT_OPTS[@]}" download "${pkgs[@]}")
    log "TIMING download: $((SECONDS - t0)) s ($(du -sh "$work/debs" | cut -f1), ${#pkgs[@]} packages)"
}

# Unpacks every downloaded package into the one root $1/root.
unpack_crd_packages() {
    local work=$1 t0=$SECONDS
    local root="$work/root" deb
    mkdir -p "$root"
    for deb in "$work/debs"/*.deb; do
        dpkg-deb -x "$deb" "$root"
    done
    rm -rf "$work/debs"
    log "TIMING unpack: $((SECONDS - t0)) s"
}

# Builds the binary (GOPATH mode, no network, version stamped from the Debian
# version) into $CRD_BIN, staged in $CRD_BIN.tmp so a half-built bin/ never
# looks complete.
go_build_crd_server() {
    local work=$1
    local root="$work/root"
    local goroot="$root/usr/lib/go-$CRD_GO" gopath="$root/usr/share/gocode"
    [[ -x $goroot/bin/go ]] || die "no Go in $goroot"
    [[ -d $gopath/src/k8s.io/apiextensions-apiserver ]] || die "no apiextensions-apiserver sources in $gopath"
    local t0=$SECONDS
    rm -rf "$CRD_BIN.tmp" "$CRD_BIN"
    mkdir -p "$CRD_BIN.tmp"
    local vpkg=k8s.io/component-base/version
    (
        export GOROOT="$goroot" GOPATH="$gopath" GO111MODULE=off GOTOOLCHAIN=local
        export GOCACHE="$work/gocache" GOENV=off GOFLAGS='' GOPROXY=off CGO_ENABLED=0
        export PATH="$goroot/bin:$PATH"
        go version
        go build -buildvcs=false -trimpath -o "$CRD_BIN.tmp/apiextensions-apiserver" -ldflags "-s -w \
            -X $vpkg.gitVersion=v$CRD_KVER -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$CRD_MINOR \
            -X $vpkg.gitCommit=0000000000000000000000000000000000000000 -X $vpkg.gitTreeState=archive \
            -X $vpkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
            k8s.io/apiextensions-apiserver
        echo "apiextensions-apiserver v$CRD_KVER: Debian $CRD_SUITE golang-k8s-apiextensions-apiserver-dev $CRD_DEBVER, $(go version)" \
            >"$CRD_BIN.tmp/VERSION"
    )
    log "TIMING build: $((SECONDS - t0)) s"
    chmod 755 "$CRD_BIN.tmp/apiextensions-apiserver"
    mv "$CRD_BIN.tmp" "$CRD_BIN"
    cat "$CRD_BIN/VERSION"
}
