#!/usr/bin/env bash
# Builds the OCI test images skerry's tests import, from Debian's busybox-static, with
# no network except Debian apt. Needs: umoci skopeo busybox-static (and qemu-user to
# list the arm64 and armhf applets; without it the amd64 list is reused). Run as root (umoci
# keeps file ownership only as root).
#
# Usage: scripts/build-test-images.sh OUTDIR
#
# OUTDIR/<image>/ is an OCI layout (tag `latest`) and OUTDIR/<image>.tar the same
# layout as an OCI archive, for each image:
#   busybox-amd64   busybox rootfs, Cmd ["/bin/sh"]
#   busybox-arm64   the same from Debian's arm64 busybox-static (config variant v8)
#   busybox-armv7   the same from Debian's armhf busybox-static (arm, variant v7)
#   busybox-multi   an image index holding both platforms
#   busybox-app     amd64, with image defaults tests override (entrypoint, cmd, env,
#                   working dir, user)
#   busybox-layers  amd64, three layers: layer 2 deletes /etc/removed (a whiteout made
#                   by umoci repack) and adds /etc/added; layer 3 makes /opq opaque
#                   (`.wh..wh..opq`) and adds /opq/c, hiding /opq/a and /opq/b
# Idempotent: skips the build when OUTDIR/.stamp matches the inputs' hashes. The arm64
# .deb is cached in OUTDIR/.cache, so reruns need no network.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
for tool in umoci skopeo dpkg-deb apt-get sha256sum tar; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (image files keep their owners)" >&2; exit 1; }
[[ -x /bin/busybox ]] || { echo "missing /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }

mkdir -p "$1"
out=$(cd "$1" && pwd)
cache="$out/.cache"
mkdir -p "$cache"

# Several test processes may call us at once: one builds, the others wait.
exec 9>"$out/.lock"
flock 9

PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGES=(busybox-amd64 busybox-arm64 busybox-armv7 busybox-multi busybox-app busybox-layers)

# --- arm64 and armhf busybox-static, through a private apt configuration -----------

apt_mirror() {
    local uri=""
    if [[ -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($(i + 1) == suite) { print $i; exit } }' suite="$2" /etc/apt/sources.list)
    fi
    if [[ -z "$uri" ]]; then
        local f
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f "$f" ]] || continue
            uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
                { u = ""; s = 0
                  for (i = 1; i <= NF; i++) {
                      if ($i ~ /^URIs:/) { split($i, a, " "); u = a[2] }
                      if ($i ~ /^Suites:/) { n = split($i, b, " "); for (j = 2; j <= n; j++) if (b[j] == suite) s = 1 }
                  }
                  if (s && u != "") { print u; exit } }' suite="$2" "$f")
            [[ -n "$uri" ]] && break
        done
    fi
    echo "${uri:-$1}"
}

# fetch_deb ARCH: the busybox-static .deb of a Debian architecture, cached.
fetch_deb() {
    local arch=$1 deb
    deb=$(find "$cache" -maxdepth 1 -name "busybox-static_*_$arch.deb" | head -n1)
    if [[ -n "$deb" ]]; then
        echo "$deb"
        return
    fi
    local suite mirror apt keyring=""
    suite=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
    suite=${suite:-bookworm}
    mirror=$(apt_mirror http://deb.debian.org/debian "$suite")
    apt="$cache/apt"
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/sources.list.d" "$apt/prefs.d"
    : >"$apt/status"
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] &&
        keyring=" signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
    echo "deb [arch=$arch$keyring] $mirror $suite main" >"$apt/sources.list"
    {
        echo "APT::Architecture \"$arch\";"
        echo "APT::Architectures { \"$arch\"; };"
        echo 'APT::Sandbox::User "root";'
        echo 'Acquire::Languages "none";'
        echo "Dir::State \"$apt\";"
        echo "Dir::State::lists \"$apt/lists\";"
        echo "Dir::State::status \"$apt/status\";"
        echo "Dir::Cache \"$apt/cache\";"
        echo "Dir::Etc::SourceList \"$apt/sources.list\";"
        echo "Dir::Etc::SourceParts \"$apt/sources.list.d\";"
        echo "Dir::Etc::Parts \"$apt/parts\";"
        echo "Dir::Etc::PreferencesParts \"$apt/prefs.d\";"
        # Keep the host's proxy settings (its other apt.conf.d parts are left out).
        apt-config dump | grep -E '^Acquire::(http|https)::Proxy ' || true
    } >"$apt/apt.conf"
    APT_CONFIG="$apt/apt.conf" apt-get -qq update >"$apt/update.log" 2>&1 ||
        { cat "$apt/update.log" >&2; exit 1; }
    (cd "$cache" && APT_CONFIG="$apt/apt.conf" apt-get -qq download "busybox-static:$arch" >/dev/null)
    rm -rf "$apt"
    find "$cache" -maxdepth 1 -name "busybox-static_*_$arch.deb" | head -n1
}

arm64_deb=$(fetch_deb arm64)
[[ -f "$arm64_deb" ]] || { echo "could not download busybox-static:arm64" >&2; exit 1; }
armhf_deb=$(fetch_deb armhf)
[[ -f "$armhf_deb" ]] || { echo "could not download busybox-static:armhf" >&2; exit 1; }

# --- idempotency ----------------------------------------------------------------------

stamp=$( { cat "$0" /bin/busybox "$arm64_deb" "$armhf_deb" | sha256sum; umoci --version; } | sha256sum | cut -d' ' -f1)
complete=1
for image in "${IMAGES[@]}"; do
    [[ -f "$out/$image/index.json" && -f "$out/$image.tar" ]] || complete=0
done
if [[ $complete == 1 && -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]]; then
    echo "test images up to date in $out"
    exit 0
fi
rm -f "$out/.stamp"

work="$out/.work"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# --- helpers ----------------------------------------------------------------------------

# The single manifest digest a layout's index.json names.
top_digest() { grep -o '"digest":"sha256:[0-9a-f]\{64\}"' "$1/index.json" | head -n1 | cut -d'"' -f4; }
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
# Stores FILE as a blob of LAYOUT; prints "digest size".
put_blob() {
    local hex size
    hex=$(sha256sum "$2" | cut -d' ' -f1)
    size=$(stat -c %s "$2")
    cp "$2" "$1/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

# Fills ROOTFS with busybox (binary BUSYBOX, applets from LIST_CMD) and a minimal /etc.
fill_rootfs() {
    local rootfs=$1 busybox=$2
    shift 2
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/home/app" "$rootfs/tmp"
    install -m 0755 "$busybox" "$rootfs/bin/busybox"
    local applet
    for applet in $("$@" --list); do
        [[ "$applet" == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'app:x:1000:1000:app:/home/app:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$rootfs/etc/passwd"
    printf '%s\n' 'root:x:0:' 'app:x:1000:' 'nogroup:x:65534:' >"$rootfs/etc/group"
    chmod 1777 "$rootfs/tmp"
    chmod 0700 "$rootfs/root"
    chown 1000:1000 "$rootfs/home/app"
}

# Builds a one-layer busybox layout at DIR for ARCH.
build_busybox() {
    local dir=$1 arch=$2 busybox=$3
    shift 3
    umoci init --layout "$dir"
    umoci new --image "$dir:latest"
    umoci unpack --image "$dir:latest" "$work/bundle-$arch" >/dev/null
    fill_rootfs "$work/bundle-$arch/rootfs" "$busybox" "$@"
    umoci repack --image "$dir:latest" "$work/bundle-$arch"
    umoci config --image "$dir:latest" --os linux --architecture "$arch" \
        --config.cmd /bin/sh --config.env "$PATH_ENV" --config.workingdir / \
        --config.label org.opencontainers.image.title=busybox --no-history
    rm -rf "$work/bundle-$arch"
}

# umoci cannot set a config's variant: rewrite config, manifest and index.json.
set_variant() {
    local dir=$1 variant=$2 manifest config new_config new_manifest
    manifest=$(top_digest "$dir")
    config=$(grep -o '"config":{[^}]*}' "$(blob "$dir" "$manifest")" | grep -o 'sha256:[0-9a-f]\{64\}')
    sed "s/\"architecture\":\"\([a-z0-9]*\)\"/\"architecture\":\"\1\",\"variant\":\"$variant\"/" \
        "$(blob "$dir" "$config")" >"$work/config.json"
    read -r new_config new_size < <(put_blob "$dir" "$work/config.json")
    sed "s/\"digest\":\"$config\",\"size\":[0-9]*/\"digest\":\"$new_config\",\"size\":$new_size/" \
        "$(blob "$dir" "$manifest")" >"$work/manifest.json"
    read -r new_manifest new_size < <(put_blob "$dir" "$work/manifest.json")
    sed -i "s/\"digest\":\"$manifest\",\"size\":[0-9]*/\"digest\":\"$new_manifest\",\"size\":$new_size/" \
        "$dir/index.json"
    umoci gc --layout "$dir"
}

archive() {
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -C "$1" -cf "$1.tar" oci-layout index.json blobs
}

# --- images -------------------------------------------------------------------------------

new="$work/out"
mkdir -p "$new"

build_busybox "$new/busybox-amd64" amd64 /bin/busybox /bin/busybox
umoci gc --layout "$new/busybox-amd64"

dpkg-deb -x "$arm64_deb" "$work/arm64-deb"
arm64_busybox="$work/arm64-deb/bin/busybox"
if command -v qemu-aarch64 >/dev/null; then
    build_busybox "$new/busybox-arm64" arm64 "$arm64_busybox" qemu-aarch64 "$arm64_busybox"
else
    build_busybox "$new/busybox-arm64" arm64 "$arm64_busybox" /bin/busybox
fi
set_variant "$new/busybox-arm64" v8

dpkg-deb -x "$armhf_deb" "$work/armhf-deb"
armhf_busybox="$work/armhf-deb/bin/busybox"
if command -v qemu-arm >/dev/null; then
    build_busybox "$new/busybox-armv7" arm "$armhf_busybox" qemu-arm "$armhf_busybox"
else
    build_busybox "$new/busybox-armv7" arm "$armhf_busybox" /bin/busybox
fi
set_variant "$new/busybox-armv7" v7

# busybox-multi: both images' blobs and an image index tagged latest.
multi="$new/busybox-multi"
umoci init --layout "$multi"
cp -n "$new"/busybox-amd64/blobs/sha256/* "$new"/busybox-arm64/blobs/sha256/* "$multi/blobs/sha256/"
descriptor() {
    local digest size
    digest=$(top_digest "$1")
    size=$(stat -c %s "$(blob "$1" "$digest")")
    printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":%s}' \
        "$digest" "$size" "$2"
}
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
    "$(descriptor "$new/busybox-amd64" '{"architecture":"amd64","os":"linux"}')" \
    "$(descriptor "$new/busybox-arm64" '{"architecture":"arm64","os":"linux","variant":"v8"}')" \
    >"$work/index-blob.json"
read -r index_digest index_size < <(put_blob "$multi" "$work/index-blob.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$index_digest" "$index_size" >"$multi/index.json"
skopeo inspect --override-arch arm64 --override-variant v8 "oci:$multi:latest" >/dev/null
skopeo inspect --override-arch amd64 "oci:$multi:latest" >/dev/null

# busybox-app: the amd64 layer with defaults that task definitions override.
app="$new/busybox-app"
cp -a "$new/busybox-amd64" "$app"
umoci config --image "$app:latest" --config.entrypoint /bin/sh --config.entrypoint=-c \
    --config.cmd "echo image-default" --config.env FOO=from-image --config.workingdir /tmp \
    --config.user app --no-history
umoci gc --layout "$app"

# busybox-layers: whiteout (layer 2, by umoci) and opaque dir (layer 3, hand-made tar).
layers="$new/busybox-layers"
bundle="$work/bundle-layers"
umoci init --layout "$layers"
umoci new --image "$layers:latest"
umoci unpack --image "$layers:latest" "$bundle" >/dev/null
fill_rootfs "$bundle/rootfs" /bin/busybox /bin/busybox
mkdir -p "$bundle/rootfs/opq"
echo removed >"$bundle/rootfs/etc/removed"
echo a >"$bundle/rootfs/opq/a"
echo b >"$bundle/rootfs/opq/b"
umoci repack --refresh-bundle --image "$layers:latest" "$bundle"
rm "$bundle/rootfs/etc/removed"
echo added >"$bundle/rootfs/etc/added"
umoci repack --image "$layers:latest" "$bundle"
mkdir -p "$work/layer3/opq"
: >"$work/layer3/opq/.wh..wh..opq"
echo c >"$work/layer3/opq/c"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$work/layer3" -cf "$work/layer3.tar" opq
umoci raw add-layer --image "$layers:latest" "$work/layer3.tar"
umoci config --image "$layers:latest" --os linux --architecture amd64 \
    --config.cmd /bin/sh --config.env "$PATH_ENV" --config.workingdir / --no-history
umoci gc --layout "$layers"

# --- publish -------------------------------------------------------------------------------

for image in "${IMAGES[@]}"; do
    archive "$new/$image"
    rm -rf "${out:?}/$image" "$out/$image.tar"
    mv "$new/$image" "$new/$image.tar" "$out/"
done
echo "$stamp" >"$out/.stamp"
for image in "${IMAGES[@]}"; do
    echo "built $out/$image $out/$image.tar ($(stat -c %s "$out/$image.tar") bytes, manifest $(top_digest "$out/$image"))"
done
