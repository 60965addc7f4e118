#!/usr/bin/env bash
# Builds the emulated gateway's boot files: Debian's arm64 kernel and an initramfs with
# busybox, the kernel modules the board needs, skerry (aarch64, and armv7 for the 32-bit
# step), hil-svc (the guest's service manager), the busybox test images and /init.
#
# Usage: hil-tests/board/build-board.sh OUTDIR SKERRY_AARCH64 HIL_SVC IMAGES_DIR [SKERRY_ARMV7]
#   IMAGES_DIR: output of scripts/build-test-images.sh (busybox-arm64.tar, busybox-armv7.tar)
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.gz. Downloads (kernel, busybox .debs) are cached
# in OUTDIR/../cache and fetched through a private apt config (fetch-debs.sh); with a
# warm cache it needs no network and takes about a second.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$1 skerry=$2 svc=$3 images=$4 skerry32=${5:-}
for f in "$skerry" "$svc" "$images/busybox-arm64.tar"; do
    [[ -f $f ]] || { echo "build-board: missing $f" >&2; exit 1; }
done
for tool in dpkg-deb depmod modprobe cpio gzip; do
    command -v "$tool" >/dev/null || { echo "build-board: missing tool $tool (apt-get install kmod cpio)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=$(dirname "$out")/cache

mapfile -t debs < <("$here/fetch-debs.sh" arm64 "$cache" 'linux-image-arm64>' busybox-static)
kdeb=${debs[0]} bbdeb=${debs[1]}

# Kernel tree, extracted and depmod'ed once per kernel package.
kdir="$cache/$(basename "$kdeb" .deb)"
if [[ ! -f "$kdir/.done" ]]; then
    rm -rf "$kdir"
    dpkg-deb -x "$kdeb" "$kdir"
    depmod -b "$kdir" "$(ls "$kdir/lib/modules")"
    touch "$kdir/.done"
fi
kver=$(ls "$kdir/lib/modules")
bbdir="$cache/$(basename "$bbdeb" .deb)"
[[ -x "$bbdir/bin/busybox" ]] || { rm -rf "$bbdir"; dpkg-deb -x "$bbdeb" "$bbdir"; }

root=$(mktemp -d "$out/.root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,hil/bin,hil/images,var/lib/skerry,lib/modules/"$kver"}
install -m 0755 "$bbdir/bin/busybox" "$root/bin/busybox"
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$skerry" "$root/hil/bin/skerry"
install -m 0755 "$svc" "$root/hil/bin/hil-svc"
[[ -z "$skerry32" ]] || install -m 0755 "$skerry32" "$root/hil/bin/skerry-armv7"
for img in busybox-arm64 busybox-armv7; do
    [[ ! -f "$images/$img.tar" ]] || cp "$images/$img.tar" "$root/hil/images/"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' >"$root/etc/group"

# Modules and everything they depend on, as modprobe resolves them.
modules=(virtio_mmio virtio_blk virtio_net virtio-rng virtio_console ext4 overlay veth bridge
    nf_tables nft_chain_nat nft_masq nft_nat nft_fib_ipv4 nf_nat)
for m in "${modules[@]}"; do
    modprobe -d "$kdir" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
    rel=${ko#"$kdir"}
    mkdir -p "$root$(dirname "$rel")"
    cp "$ko" "$root$rel"
done
cp "$kdir/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"

cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$out/initrd.gz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "board: kernel $kver, initrd $(stat -c %s "$out/initrd.gz") bytes, $(find "$root/lib/modules" -name '*.ko' | wc -l) modules"
