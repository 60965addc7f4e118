#!/usr/bin/env bash
# Makes a test PKI for skerry's fleet broker with Debian's openssl: a CA, the broker's
# server certificate, the operator's client certificate and one client certificate per
# device, plus a second, unrelated CA with one device certificate ("wrong CA" tests).
#
# Usage: scripts/make-test-pki.sh OUTDIR DEVICE...
#
# Layout (all PEM; keys are PKCS#8 "BEGIN PRIVATE KEY", ECDSA P-256, which rustls with
# the ring provider reads and signs with):
#   OUTDIR/ca.pem  ca.key                  the fleet CA (CN skerry-test-ca)
#   OUTDIR/server.pem  server.key          CN localhost, SAN DNS:localhost,IP:127.0.0.1,
#                                          IP:10.0.2.2 (the host's loopback as a QEMU
#                                          user-net guest reaches it: hil-tests)
#   OUTDIR/operator.pem  operator.key      CN operator (client auth)
#   OUTDIR/devices/<id>.pem  <id>.key      CN <id> (client auth), one per DEVICE
#   OUTDIR/other-ca/ca.pem                 an unrelated CA (CN skerry-other-ca)
#   OUTDIR/other-ca/intruder.pem .key      CN operator, signed by the other CA: a forged
#                                          operator the broker must refuse
#
# Validity: notBefore 2000-01-01, notAfter 2125-12-31, so a clock anywhere from 2000
# to 2125 (2099 included) accepts them. A clock at 1970 does not: that is the case the
# agent's time floor (build time, last persisted time) must handle.
#
# Idempotent and quiet: existing files are kept (OUTDIR/.version marks the layout; a
# different version starts over), only missing devices are made; a server certificate
# made before IP:10.0.2.2 was in its SAN is made again (same CA, so every client
# certificate stays valid). Concurrent runs on
# the same OUTDIR are serialised with flock. Device ids: [A-Za-z0-9._-]+, not `groups`
# (a topic level of its own) and not starting with `operator` (the operator identity).
set -euo pipefail

PKI_VERSION=2
NOT_BEFORE=20000101000000Z
NOT_AFTER=21251231235959Z

if [[ $# -lt 1 ]]; then
    echo "usage: $0 OUTDIR DEVICE..." >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "missing tool: openssl" >&2; exit 1; }
out=$1
shift
for id in "$@"; do
    if [[ ! $id =~ ^[A-Za-z0-9._-]+$ || $id == groups || $id == operator* ]]; then
        echo "bad device id '$id': use [A-Za-z0-9._-]+, not 'groups', not 'operator*'" >&2
        exit 2
    fi
done

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ ! -f $out/.version || $(cat "$out/.version") != "$PKI_VERSION" ]]; then
    find "$out" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
fi
mkdir -p "$out/devices" "$out/other-ca" "$out/.db"

# openssl ca is the only openssl 3.0 command that sets an explicit notBefore.
cat >"$out/.db/ca.cnf" <<EOF
[ca]
default_ca = skerry
[skerry]
database = \$ENV::DB/index.txt
serial = \$ENV::DB/serial
new_certs_dir = \$ENV::DB
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
email_in_dn = no
[any]
commonName = supplied
[ext_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ext_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:10.0.2.2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ext_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# key FILE: a PKCS#8 ECDSA P-256 key, 0600.
key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

# sign DB CA_PREFIX KEY CN EXT OUT: a certificate for KEY signed by CA_PREFIX.{pem,key}
# (or self-signed when CA_PREFIX is empty), written to OUT only once complete.
sign() {
    local db=$1 ca=$2 k=$3 cn=$4 ext=$5 dest=$6
    mkdir -p "$db"
    [[ -f $db/index.txt ]] || : >"$db/index.txt"
    [[ -f $db/serial ]] || openssl rand -hex 16 | sed 's/^[89a-f]/7/' >"$db/serial"
    local csr=$dest.csr
    openssl req -new -key "$k" -subj "/CN=$cn" -out "$csr" 2>/dev/null
    local args=(-batch -notext -config "$out/.db/ca.cnf" -extensions "$ext"
        -startdate "$NOT_BEFORE" -enddate "$NOT_AFTER" -in "$csr" -out "$dest.tmp")
    if [[ -z $ca ]]; then
        args+=(-selfsign -keyfile "$k")
    else
        args+=(-cert "$ca.pem" -keyfile "$ca.key")
    fi
    if ! DB=$db openssl ca "${args[@]}" 2>"$dest.err"; then
        cat "$dest.err" >&2
        exit 1
    fi
    rm -f "$csr" "$dest.err"
    mv "$dest.tmp" "$dest"
}

# identity DB CA_PREFIX PREFIX CN EXT: PREFIX.key and PREFIX.pem unless both exist.
identity() {
    local db=$1 ca=$2 p=$3 cn=$4 ext=$5
    [[ -f $p.pem && -f $p.key ]] && return 0
    key "$p.key"
    sign "$db" "$ca" "$p.key" "$cn" "$ext" "$p.pem"
}

identity "$out/.db/main" "" "$out/ca" skerry-test-ca ext_ca
if [[ -f $out/server.pem ]] && ! openssl x509 -in "$out/server.pem" -noout -ext subjectAltName 2>/dev/null | grep -q 'IP Address:10.0.2.2'; then
    rm -f "$out/server.pem" "$out/server.key"
fi
identity "$out/.db/main" "$out/ca" "$out/server" localhost ext_server
identity "$out/.db/main" "$out/ca" "$out/operator" operator ext_client
identity "$out/.db/other" "" "$out/other-ca/ca" skerry-other-ca ext_ca
identity "$out/.db/other" "$out/other-ca/ca" "$out/other-ca/intruder" operator ext_client
# Devices: keys and requests one by one, then one `openssl ca` signs them all, so a
# fleet of 1000 stays quick. It appends one index line per certificate, in -infiles
# order, and writes each certificate as <serial>.pem: the new index lines name them.
missing=()
for id in "$@"; do
    [[ -f $out/devices/$id.pem && -f $out/devices/$id.key ]] || missing+=("$id")
done
if ((${#missing[@]})); then
    db=$out/.db/main
    csrs=()
    for id in "${missing[@]}"; do
        key "$out/devices/$id.key"
        openssl req -new -key "$out/devices/$id.key" -subj "/CN=$id" -out "$db/$id.csr" 2>/dev/null
        csrs+=("$db/$id.csr")
    done
    before=$(wc -l <"$db/index.txt")
    if ! DB=$db openssl ca -batch -notext -config "$out/.db/ca.cnf" -extensions ext_client \
        -startdate "$NOT_BEFORE" -enddate "$NOT_AFTER" -cert "$out/ca.pem" -keyfile "$out/ca.key" \
        -out /dev/null -infiles "${csrs[@]}" 2>"$db/batch.err"; then
        cat "$db/batch.err" >&2
        exit 1
    fi
    i=0
    while read -r serial subject; do
        id=${missing[i]}
        [[ $subject == "/CN=$id" ]] || { echo "signed '$subject', expected '/CN=$id'" >&2; exit 1; }
        cp "$db/$serial.pem" "$out/devices/$id.pem.tmp"
        mv "$out/devices/$id.pem.tmp" "$out/devices/$id.pem"
        i=$((i + 1))
    done < <(tail -n +"$((before + 1))" "$db/index.txt" | awk -F '\t' '{ print $4, $6 }')
    ((i == ${#missing[@]})) || { echo "signed $i of ${#missing[@]} devices" >&2; exit 1; }
    rm -f "${csrs[@]}" "$db/batch.err"
fi
echo "$PKI_VERSION" >"$out/.version"
