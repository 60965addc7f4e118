//! TLS for the broker link (agent and `ctl` alike): rustls with the ring provider,
//! the broker's CA as the only root, this identity's certificate and key (mTLS), and
//! the [`TimeFloor`](super::timefloor::TimeFloor) as rustls' clock. Also reads the
//! device id from a certificate's subject CN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::timefloor::{FloorClock, TimeFloor};

/// A TLS setup that cannot be built, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_err(p: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        file: p.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the PEM certificates of `path` (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads the PEM private key of `path` (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| file_err(path, format!("not a PEM private key: {e}")))?
        .ok_or_else(|| file_err(path, "holds no PEM private key"))
}

/// The client config for one identity.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    floor: Arc<TimeFloor>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| file_err(ca, format!("not a usable CA certificate: {e}")))?;
    }
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_details(provider, Arc::new(FloorClock(floor)))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| file_err(key, format!("does not match {}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// The subject CN of the first certificate in `path`: the default device id.
pub fn common_name(path: &Path) -> Result<String, TlsError> {
    let certs = load_certs(path)?;
    subject_cn(certs[0].as_ref()).ok_or_else(|| file_err(path, "certificate has no subject CN"))
}

/// One DER TLV: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, mut b) = b.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let v = b[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        b = &b[n..];
        v
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// Walks Certificate → tbsCertificate → subject → the commonName attribute.
fn subject_cn(der: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (tag, body, r) = tlv(rest)?;
        fields.push((tag, body));
        rest = r;
    }
    // [0] version is optional; then serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, subject) = *fields.get(skip + 4)?;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, r) = tlv(rdns)?;
        rdns = r;
        let (_, attr, _) = tlv(set)?;
        let (_, oid, value) = tlv(attr)?;
        if oid == CN {
            let (_, text, _) = tlv(value)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_der_walk_refuses_garbage() {
        assert_eq!(subject_cn(b""), None);
        assert_eq!(subject_cn(&[0x30, 0x82, 0xff]), None);
        assert_eq!(subject_cn(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
