# shellcheck shell=bash
# A private apt configuration for the builds: its sources taken from the system's own Debian
# mirror (nothing about the mirror is hard-coded), its lists and caches in the build's work tree,
# so the system's apt state and sources stay untouched. Sourced by scripts/local-cluster.sh.

# Prints one-line `deb` and `deb-src` entries for the Debian archive suites
# "$1" and "$1-security" as configured in the system's own apt sources, so
# the private apt configuration uses the same mirror as the machine.
# Understands both the one-line (*.list) and the deb822 (*.sources) formats.
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

# Lays out a private apt configuration in directory $1 and sets APT_OPTS to the
# options that select it: the sources list printed by function $2 for the
# installed release's codename; with $3 = empty also an empty dpkg status (what
# the system has installed then plays no part in what is downloaded), with
# $3 = system the system's own. $4 is added to the error when no source is
# found. apt.conf.d snippets still apply (e.g. proxies). The caller runs
# `apt-get "${APT_OPTS[@]}" update`.
private_apt() {
    local apt=$1 sources=$2 status=$3 hint=${4:-} codename
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ -n $codename ]] || die "cannot determine the Debian codename from /etc/os-release"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
    [[ $status == system ]] || : >"$apt/status"
    "$sources" "$codename" >"$apt/sources.list"
    [[ -s "$apt/sources.list" ]] ||
        die "no apt source for suite $codename found in /etc/apt/sources.list*$hint"
    log "private apt sources:"
    cat "$apt/sources.list"
    APT_OPTS=(
        -o "Dir::Etc::sourcelist=$apt/sources.list"
        -o "Dir::Etc::sourceparts=$apt/sources.list.d"
        -o "Dir::State::Lists=$apt/lists"
    )
    [[ $status == system ]] || APT_OPTS+=(-o "Dir::State::status=$apt/status")
    APT_OPTS+=(
        -o "Dir::Cache=$apt/cache"
        -o "Dir::Cache::archives=$apt/cache/archives"
        # The private dirs belong to the invoking user; do not drop to _apt.
        -o "APT::Sandbox::User=$(id -un)"
        -q
    )
}
