//! The store's own metadata files (`refs.json`, `leases/<id>`): a JSON envelope with a
//! magic string, a format version and the sha256 of the body, read under a size limit
//! and written with `store::write_atomic`.
//!
//! ```text
//! {"magic":"skerry-image-refs","version":1,"sha256":"<hex of the body's JSON>","body":{..}}
//! ```
//! The checksum covers the body re-serialized from its Rust type, so body types must
//! serialize deterministically (structs, `BTreeMap`, `Vec`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, IoContext};
use crate::store::write_atomic;

/// Format version of every record this module writes.
pub(crate) const RECORD_VERSION: u32 = 1;
/// Read limit for store records and OCI metadata (manifests, indexes, configs).
pub(crate) const METADATA_LIMIT: u64 = 4 << 20;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    magic: String,
    version: u32,
    sha256: String,
    body: T,
}

/// Writes `body` under `magic` to `path` atomically.
pub(crate) fn save<T: Serialize>(path: &Path, magic: &str, body: &T) -> Result<(), ImageError> {
    let checksum = body_checksum(path, body)?;
    let envelope = Envelope {
        magic: magic.to_owned(),
        version: RECORD_VERSION,
        sha256: checksum,
        body,
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| corrupt(path, e.to_string()))?;
    write_atomic(path, &bytes).at(path)
}

/// Reads a record written by [`save`]; `Ok(None)` if the file does not exist.
pub(crate) fn load<T: Serialize + DeserializeOwned>(
    path: &Path,
    magic: &str,
) -> Result<Option<T>, ImageError> {
    let bytes = match File::open(path) {
        Ok(file) => read_limited(file, METADATA_LIMIT, path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(path),
    };
    let envelope: Envelope<T> =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e.to_string()))?;
    if envelope.magic != magic {
        return Err(corrupt(
            path,
            format!("magic {:?}, want {magic:?}", envelope.magic),
        ));
    }
    if envelope.version != RECORD_VERSION {
        return Err(corrupt(
            path,
            format!(
                "format version {} (this agent reads {RECORD_VERSION})",
                envelope.version
            ),
        ));
    }
    if body_checksum(path, &envelope.body)? != envelope.sha256 {
        return Err(corrupt(path, "checksum mismatch".to_owned()));
    }
    Ok(Some(envelope.body))
}

/// Reads all of `reader`, refusing more than `limit` bytes.
pub(crate) fn read_limited(
    reader: impl Read,
    limit: u64,
    path: &Path,
) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() as u64 > limit {
        return Err(ImageError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

fn body_checksum<T: Serialize>(path: &Path, body: &T) -> Result<String, ImageError> {
    let bytes = serde_json::to_vec(body).map_err(|e| corrupt(path, e.to_string()))?;
    Ok(Digest::of_bytes(&bytes).hex().to_owned())
}

fn corrupt(path: &Path, reason: String) -> ImageError {
    ImageError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn record_round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refs.json");
        let body: BTreeMap<String, String> = [("a:latest".to_owned(), "x".to_owned())].into();
        save(&path, "skerry-test", &body).expect("save");
        let back: Option<BTreeMap<String, String>> = load(&path, "skerry-test").expect("load");
        assert_eq!(back, Some(body));
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("\"x\"", "\"y\"")).expect("write");
        let err = load::<BTreeMap<String, String>>(&path, "skerry-test").expect_err("tampered");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(
            load::<BTreeMap<String, String>>(&dir.path().join("none"), "m")
                .expect("missing is fine")
                .is_none()
        );
    }
}
