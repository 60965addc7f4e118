//! The operator's ed25519 signing key: `ctl keygen` writes it as a PKCS#8 PEM file
//! (mode 0600, the form `openssl genpkey -algorithm ed25519` also writes), and prints
//! the public key the agents' `trusted_keys` list.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context as _;
use ring::signature::{Ed25519KeyPair, KeyPair};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Makes a key pair; writes the private key to `path` (refusing to overwrite).
/// Returns the public key in hex.
pub fn keygen(path: &Path) -> anyhow::Result<String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = base64(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "{}: cannot create (an existing key is never overwritten)",
                path.display()
            )
        })?;
    f.write_all(pem.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| path.display().to_string())?;
    Ok(hex::encode(key.public_key().as_ref()))
}

/// Reads a PKCS#8 PEM ed25519 key.
pub fn load(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let der = crate::sync::tls::load_key(path)?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_der())
        .map_err(|e| anyhow::anyhow!("{}: not an ed25519 PKCS#8 key: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_roundtrip_and_no_overwrite() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let public = keygen(&p).unwrap();
        assert_eq!(public.len(), 64);
        let k = load(&p).unwrap();
        assert_eq!(hex::encode(k.public_key().as_ref()), public);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(keygen(&p).is_err());
    }
}
