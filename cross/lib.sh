# Shared helpers for the cross/ scripts. Sourced, not run.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
OUT=${SKERRY_OUT:-$ROOT/out}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

ALL_TARGETS=(aarch64-unknown-linux-musl x86_64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
APT_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross musl-tools file)

# Prints the calling script's header comment.
usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
}

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# Debian architecture of a Rust target triple.
deb_arch() {
    case $1 in
        x86_64-unknown-linux-musl) echo amd64 ;;
        aarch64-unknown-linux-musl) echo arm64 ;;
        armv7-unknown-linux-gnueabihf) echo armhf ;;
        *) die "unsupported target: $1 (one of: ${ALL_TARGETS[*]})" ;;
    esac
}

# Regex `file` prints for a binary of this target.
file_arch_pattern() {
    case $1 in
        x86_64-*) echo 'ELF 64-bit LSB .*x86-64' ;;
        aarch64-*) echo 'ELF 64-bit LSB .*ARM aarch64' ;;
        armv7-*) echo 'ELF 32-bit LSB .*ARM, EABI5' ;;
        *) die "unsupported target: $1" ;;
    esac
}

# Command prefix that runs a binary of this target here (empty = native).
runner() {
    case $1 in
        x86_64-*) echo "" ;;
        aarch64-*) echo qemu-aarch64 ;;
        armv7-*) echo qemu-arm ;;
        *) die "unsupported target: $1" ;;
    esac
}

strip_tool() {
    case $1 in
        x86_64-*) echo strip ;;
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        armv7-*) echo arm-linux-gnueabihf-strip ;;
        *) die "unsupported target: $1" ;;
    esac
}

# The package version, from agent/Cargo.toml's [package] section.
skerry_version() {
    sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/agent/Cargo.toml" | head -n1
}

# Reproducible timestamps: SOURCE_DATE_EPOCH, else the last commit's time.
source_date_epoch() {
    if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
        echo "$SOURCE_DATE_EPOCH"
    else
        git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s
    fi
}

# Installs the rustup targets and Debian packages the builds need, if missing.
ensure_tools() {
    local t missing_targets=() missing_pkgs=() installed
    command -v cargo >/dev/null || die "cargo not found (install rustup)"
    installed=$(rustup target list --installed 2>/dev/null || true)
    for t in "$@"; do
        grep -qx "$t" <<<"$installed" || missing_targets+=("$t")
    done
    if [ ${#missing_targets[@]} -gt 0 ]; then
        rustup target add "${missing_targets[@]}" >/dev/null 2>&1 ||
            die "rustup target add ${missing_targets[*]} failed"
    fi
    for t in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$t" 2>/dev/null | grep -q 'install ok installed' || missing_pkgs+=("$t")
    done
    if [ ${#missing_pkgs[@]} -gt 0 ]; then
        echo "${0##*/}: installing ${missing_pkgs[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing_pkgs[@]}" >/dev/null ||
            die "apt-get install ${missing_pkgs[*]} failed"
    fi
}

# 32-bit targets build from a private copy of the source tree in which
# [patch.crates-io] points at crates patched with cross/patches/*-32bit.patch
# (libcontainer 0.7.0 does not compile for 32-bit otherwise). The shared
# Cargo.toml and Cargo.lock are never touched.
is_32bit() {
    case $1 in armv7-*) return 0 ;; *) return 1 ;; esac
}

# Copies the cargo project at SRC (without target/, out/, .git) to DEST and
# patches it for 32-bit targets. DEST is wiped first.
prepare_32bit_tree() {
    local src=$1 dest=$2 p base crate version reg first=1
    rm -rf "$dest"
    mkdir -p "$dest/.patched"
    tar -C "$src" --exclude=./target --exclude=./out --exclude=./.git -cf - . | tar -C "$dest" -xf -
    # Linkers and runners come from the repository's .cargo/config.toml.
    [ -d "$dest/.cargo" ] || cp -a "$ROOT/.cargo" "$dest/.cargo"
    (cd "$dest" && cargo fetch -q) || die "cargo fetch failed in $dest"
    for p in "$ROOT"/cross/patches/*-32bit.patch; do
        base=$(basename "$p" -32bit.patch)
        crate=${base%-*}
        version=${base##*-}
        grep -A1 -x "name = \"$crate\"" "$dest/Cargo.lock" | grep -qx "version = \"$version\"" ||
            die "Cargo.lock no longer has $crate $version: update or drop $p"
        reg=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$base" | head -n1)
        [ -n "$reg" ] || die "no registry source for $base (cargo fetch)"
        cp -a "$reg" "$dest/.patched/$base"
        patch -s -p1 -d "$dest/.patched/$base" <"$p" || die "$p does not apply to $base"
        if [ "$first" = 1 ]; then
            printf '\n[patch.crates-io]\n' >>"$dest/Cargo.toml"
            first=0
        fi
        printf '%s = { path = ".patched/%s" }\n' "$crate" "$base" >>"$dest/Cargo.toml"
    done
}

# cargo build of the skerry binary for TARGET with extra cargo arguments
# (e.g. --config overrides). Sets BUILT to the binary's path. Output goes to
# the file named by $BUILD_LOG (default: discarded unless the build fails).
build_skerry() {
    local target=$1 dir=$ROOT log rc=0
    shift
    if is_32bit "$target"; then
        dir=$CARGO_TARGET_DIR/src-32bit
        prepare_32bit_tree "$ROOT" "$dir"
    fi
    log=${BUILD_LOG:-$(mktemp)}
    (
        cd "$dir"
        # build.rs asks git for the commit: point it at the real repository.
        if [ "$dir" != "$ROOT" ] && [ -d "$ROOT/.git" ]; then
            export GIT_DIR=$ROOT/.git GIT_WORK_TREE=$ROOT
        fi
        cargo build --release -p skerry --bin skerry --target "$target" "$@"
    ) >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log" >&2
        [ -n "${BUILD_LOG:-}" ] || rm -f "$log"
        die "cargo build --target $target failed"
    fi
    [ -n "${BUILD_LOG:-}" ] || rm -f "$log"
    # shellcheck disable=SC2034 # read by the caller
    BUILT=$CARGO_TARGET_DIR/$target/release/skerry
}

# Checks a built binary: static, right architecture. Prints nothing on success.
check_binary() {
    local target=$1 bin=$2 desc
    [ -x "$bin" ] || die "$bin: missing or not executable"
    desc=$(file -b "$bin")
    grep -Eq "$(file_arch_pattern "$target")" <<<"$desc" || die "$bin: wrong architecture for $target: $desc"
    grep -Eq 'statically linked|static-pie linked' <<<"$desc" || die "$bin: not static: $desc"
    grep -q 'dynamically linked' <<<"$desc" && die "$bin: dynamically linked: $desc"
    return 0
}

# Runs `skerry version` (under qemu-user for ARM) and checks its output has a
# line starting "skerry " that names the target triple.
check_version() {
    local target=$1 bin=$2 run out
    run=$(runner "$target")
    if ! out=$(${run:+$run} "$bin" version 2>&1); then
        die "$bin version (${run:-native}) failed: $out"
    fi
    grep -q "^skerry .*$target" <<<"$out" ||
        die "$bin version (${run:-native}): no line 'skerry ... $target' in: $(head -c 200 <<<"$out")"
}

# Where packages put what `skerry __generate` writes: "generated-name path" lines.
# Man pages go to usr/share/man/man1 (gzipped); zsh's directory differs between
# the .deb (Debian's vendor-completions) and the overlay (zsh's site-functions).
completion_paths() {
    local zsh_dir=$1
    echo "skerry usr/share/bash-completion/completions/skerry"
    echo "_skerry $zsh_dir/_skerry"
    echo "skerry.fish usr/share/fish/vendor_completions.d/skerry.fish"
}

# generate_docs DIR: man pages (DIR/man/*.1) and shell completions
# (DIR/completions/) from the clap definition, written by skerry-gen (a
# packaging helper, not shipped) built for this machine: its output is the
# same for every target. A debug build, shared with the tests'.
generate_docs() {
    local dir=$1 host=x86_64-unknown-linux-musl gen
    case "$(uname -m)" in aarch64) host=aarch64-unknown-linux-musl ;; esac
    gen=$CARGO_TARGET_DIR/$host/debug/skerry-gen
    (cd "$ROOT" && cargo build -q -p skerry --bin skerry-gen --target "$host") >&2 ||
        die "cargo build --bin skerry-gen failed"
    "$gen" man "$dir/man" >/dev/null || die "skerry-gen man failed"
    "$gen" completions "$dir/completions" >/dev/null || die "skerry-gen completions failed"
    [ -s "$dir/man/skerry.1" ] || die "no skerry.1 generated"
}

# install_docs DIR ROOT ZSH_DIR: installs generate_docs' output under ROOT.
install_docs() {
    local dir=$1 root=$2 zsh_dir=$3 p name path
    install -d -m 0755 "$root/usr/share/man/man1"
    for p in "$dir"/man/*.1; do
        gzip -9n <"$p" >"$root/usr/share/man/man1/${p##*/}.gz"
        chmod 0644 "$root/usr/share/man/man1/${p##*/}.gz"
    done
    while read -r name path; do
        install -d -m 0755 "$root/$(dirname "$path")"
        install -m 0644 "$dir/completions/$name" "$root/$path"
    done < <(completion_paths "$zsh_dir")
}
