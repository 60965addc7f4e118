#!/usr/bin/env bash
# Downloads Debian packages of a foreign architecture into a cache directory through a
# private apt configuration: the host's dpkg architectures and apt state are never
# touched. Packages already in the cache are not fetched again (no network needed).
#
# Usage: hil-tests/board/fetch-debs.sh ARCH CACHEDIR PACKAGE...
#   PACKAGE may be a metapackage name followed by `>` (e.g. `linux-image-arm64>`):
#   its first `linux-image-*` dependency is fetched instead (the ABI package).
# Prints the path of each .deb, one per line, in the order asked.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 ARCH CACHEDIR PACKAGE..." >&2; exit 2; }
arch=$1 cache=$2
shift 2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 8>"$cache/.lock-$arch"
flock 8

suite=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
suite=${suite:-bookworm}

# The mirror the host uses for SUITE (sources.list or deb822 .sources), else deb.debian.org.
mirror() {
    local uri="" f
    if [[ -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($(i + 1) == suite) { print $i; exit } }' suite="$suite" /etc/apt/sources.list)
    fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -z "$uri" && -f "$f" ]] || continue
        uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
            { u = ""; s = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { split($i, a, " "); u = a[2] }
                  if ($i ~ /^Suites:/) { n = split($i, b, " "); for (j = 2; j <= n; j++) if (b[j] == suite) s = 1 }
              }
              if (s && u != "") { print u; exit } }' suite="$suite" "$f")
    done
    echo "${uri:-http://deb.debian.org/debian}"
}

apt_dir="$cache/apt-$arch"
apt_ready=0
private_apt() {
    if [[ $apt_ready == 0 ]]; then
        local keyring=""
        rm -rf "$apt_dir"
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" \
            "$apt_dir/sources.list.d" "$apt_dir/prefs.d"
        : >"$apt_dir/status"
        [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
            keyring=" signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
        echo "deb [arch=$arch$keyring] $(mirror) $suite main" >"$apt_dir/sources.list"
        {
            echo "APT::Architecture \"$arch\";"
            echo "APT::Architectures { \"$arch\"; };"
            echo 'APT::Sandbox::User "root";'
            echo 'Acquire::Languages "none";'
            echo "Dir::State \"$apt_dir\";"
            echo "Dir::State::lists \"$apt_dir/lists\";"
            echo "Dir::State::status \"$apt_dir/status\";"
            echo "Dir::Cache \"$apt_dir/cache\";"
            echo "Dir::Etc::SourceList \"$apt_dir/sources.list\";"
            echo "Dir::Etc::SourceParts \"$apt_dir/sources.list.d\";"
            echo "Dir::Etc::Parts \"$apt_dir/parts\";"
            echo "Dir::Etc::PreferencesParts \"$apt_dir/prefs.d\";"
            apt-config dump | grep -E '^Acquire::(http|https)::Proxy ' || true
        } >"$apt_dir/apt.conf"
        APT_CONFIG="$apt_dir/apt.conf" apt-get -qq update >"$apt_dir/update.log" 2>&1 ||
            { cat "$apt_dir/update.log" >&2; exit 1; }
        apt_ready=1
    fi
    APT_CONFIG="$apt_dir/apt.conf" "$@"
}

for want in "$@"; do
    name=$want
    if [[ $want == *'>' ]]; then
        meta=${want%'>'}
        # The ABI package a metapackage pointed at last time is remembered.
        if [[ -f "$cache/$meta.$arch.target" ]]; then
            name=$(cat "$cache/$meta.$arch.target")
        else
            name=$(private_apt apt-cache depends "$meta:$arch" |
                awk '/Depends: linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }')
            [[ -n "$name" ]] || { echo "fetch-debs: no linux-image dependency of $meta" >&2; exit 1; }
            echo "$name" >"$cache/$meta.$arch.target"
        fi
    fi
    deb=$(find "$cache" -maxdepth 1 -name "${name}_*_$arch.deb" | head -n1)
    if [[ -z "$deb" ]]; then
        (cd "$cache" && private_apt apt-get -qq download "$name:$arch" >/dev/null)
        deb=$(find "$cache" -maxdepth 1 -name "${name}_*_$arch.deb" | head -n1)
        [[ -n "$deb" ]] || { echo "fetch-debs: could not download $name:$arch" >&2; exit 1; }
    fi
    echo "$deb"
done
rm -rf "$apt_dir"
