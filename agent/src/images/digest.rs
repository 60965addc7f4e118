//! Content digests: the `Digest` newtype (only `sha256:<64 lowercase hex>` can be built,
//! so a digest is always safe to use as a file name) and a reader that hashes what
//! passes through it.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::error::ImageError;

/// A checked `sha256:<hex>` content digest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; anything else is refused.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        match s.strip_prefix("sha256:") {
            Some(hex) if is_sha256_hex(hex) => Ok(Self(s.to_owned())),
            _ => Err(ImageError::InvalidDigest {
                digest: s.to_owned(),
            }),
        }
    }

    /// From the 64 hex digits alone (a blob or layer file name).
    pub fn from_hex(hex: &str) -> Result<Self, ImageError> {
        Self::parse(&format!("sha256:{hex}"))
    }

    /// From an oci-spec digest (refusing algorithms other than sha256).
    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Self, ImageError> {
        Self::parse(d.as_ref())
    }

    /// The sha256 of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(data))))
    }

    /// The 64 hex digits (the file name under `blobs/sha256/` and `layers/`).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True for exactly 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hashes (and counts) every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns its digest and total length.
    pub(crate) fn finish(&mut self) -> io::Result<(Digest, u64)> {
        io::copy(self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.clone().finalize());
        Ok((Digest(format!("sha256:{hex}")), self.count))
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parse_accepts_only_sha256_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&good).expect("valid").hex(), "a".repeat(64));
        for bad in [
            "sha256:abc",
            "sha512:aa",
            "../../etc/passwd",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/", "a".repeat(63)),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn digest_hashing_reader_matches_of_bytes() {
        let data = b"hello world".to_vec();
        let (d, n) = HashingReader::new(&data[..]).finish().expect("hash");
        assert_eq!(d, Digest::of_bytes(&data));
        assert_eq!(n, 11);
    }
}
