//! Deployment documents: the *complete* desired state of one target (a device or a
//! group) under a version that only grows, signed with ed25519 by the operator.
//!
//! ```text
//! SignedDocument { public_key: 32 B, signature: 64 B, doc: deflate(postcard(WireDoc)) }
//! signature = ed25519(key, "skerry/v1 deployment\0" ‖ doc)
//! ```
//!
//! Task definitions and services travel as their JSON (the standalone desired
//! directory's shapes), so the device re-validates them with its own `spec`: an older
//! agent meeting a field it does not know refuses it by name instead of misreading
//! it. Since schema 2 that JSON is [`json_pack`](super::json_pack)ed (ECS words as
//! table indices, lossless for any JSON), then the whole document is deflated; schema
//! 1 (JSON text) is still read. What a document omits is
//! removed; the wall-clock `issued_at_ms` is shown to people and decides nothing.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::json_pack;
use super::topics::Scope;

/// The version of [`DeploymentDoc`]'s encoding written: 2 packs each entry's JSON.
pub const DOC_SCHEMA: u16 = 2;

/// Schema 1: entries as JSON text. Still read, never written.
const DOC_SCHEMA_TEXT: u16 = 1;

/// Largest inflated document: a bomb in a small payload stops here.
pub const MAX_DOC_BYTES: usize = 1024 * 1024;

const SIGNING_CONTEXT: &[u8] = b"skerry/v1 deployment\0";

/// Who a document is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    Device(String),
    Group(String),
}

impl Target {
    pub fn scope(&self) -> Scope {
        match self {
            Target::Device(d) => Scope::Device(d.clone()),
            Target::Group(g) => Scope::Group(g.clone()),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.scope().fmt(f)
    }
}

/// One named task definition or service, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub json: String,
}

/// The desired state of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentDoc {
    /// [`DOC_SCHEMA`] when written.
    pub schema: u16,
    pub fleet: String,
    pub target: Target,
    /// Grows with every document for this target; the device refuses anything not newer.
    pub version: u64,
    /// Operator's wall clock when signed (informational only).
    pub issued_at_ms: u64,
    /// Standalone tasks (ECS RunTask): `<id>.json` of the desired directory.
    pub tasks: Vec<Entry>,
    /// Services: `<name>.service.json` of the desired directory.
    pub services: Vec<Entry>,
}

/// A document with its signature, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDocument {
    /// The signer's ed25519 public key (32 bytes).
    pub public_key: Vec<u8>,
    /// ed25519 signature (64 bytes); empty for an unsigned document.
    pub signature: Vec<u8>,
    /// `deflate(postcard(DeploymentDoc))`.
    pub doc: Vec<u8>,
}

/// Why a document's bytes are not a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("document does not inflate within {MAX_DOC_BYTES} bytes")]
    Inflate,
    #[error("document schema {0} is not understood by this skerry (it reads {DOC_SCHEMA_TEXT} and {DOC_SCHEMA})")]
    Schema(u16),
    #[error("document is malformed: {0}")]
    Malformed(String),
}

/// Schema 2's form of [`DeploymentDoc`] on the wire: the same fields, each entry's
/// JSON packed.
#[derive(Serialize, Deserialize)]
struct WireDoc {
    schema: u16,
    fleet: String,
    target: Target,
    version: u64,
    issued_at_ms: u64,
    tasks: Vec<WireEntry>,
    services: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    name: String,
    body: WireBody,
}

/// An entry's JSON: packed, or as text when it is not JSON at all (the device's
/// `spec` then refuses it by name, as it would the text itself).
#[derive(Serialize, Deserialize)]
enum WireBody {
    Packed(Vec<u8>),
    Text(String),
}

impl WireEntry {
    fn from_entry(e: &Entry) -> Self {
        let body = match serde_json::from_str::<serde_json::Value>(&e.json) {
            Ok(v) => WireBody::Packed(json_pack::pack(&v)),
            Err(_) => WireBody::Text(e.json.clone()),
        };
        WireEntry {
            name: e.name.clone(),
            body,
        }
    }

    fn into_entry(self) -> Result<Entry, DocError> {
        let json = match self.body {
            WireBody::Packed(p) => json_pack::unpack(&p)
                .map_err(|e| DocError::Malformed(format!("entry {:?}: {e}", self.name)))?
                .to_string(),
            WireBody::Text(t) => t,
        };
        Ok(Entry {
            name: self.name,
            json,
        })
    }
}

impl DeploymentDoc {
    /// The compressed encoding that gets signed (schema [`DOC_SCHEMA`], whatever
    /// `self.schema` says).
    pub fn pack(&self) -> Vec<u8> {
        let wire = WireDoc {
            schema: DOC_SCHEMA,
            fleet: self.fleet.clone(),
            target: self.target.clone(),
            version: self.version,
            issued_at_ms: self.issued_at_ms,
            tasks: self.tasks.iter().map(WireEntry::from_entry).collect(),
            services: self.services.iter().map(WireEntry::from_entry).collect(),
        };
        let raw = postcard::to_allocvec(&wire).unwrap_or_default();
        miniz_oxide::deflate::compress_to_vec(&raw, 9)
    }

    /// Reads [`pack`](Self::pack)ed bytes back (schema 1 or 2), refusing another
    /// schema. Entries' JSON comes back as compact text.
    pub fn unpack(packed: &[u8]) -> Result<Self, DocError> {
        let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_DOC_BYTES)
            .map_err(|_| DocError::Inflate)?;
        let (schema, _) = postcard::take_from_bytes::<u16>(&raw)
            .map_err(|e| DocError::Malformed(e.to_string()))?;
        let malformed = |e: postcard::Error| DocError::Malformed(e.to_string());
        match schema {
            DOC_SCHEMA_TEXT => postcard::from_bytes(&raw).map_err(malformed),
            DOC_SCHEMA => {
                let w: WireDoc = postcard::from_bytes(&raw).map_err(malformed)?;
                let entries = |v: Vec<WireEntry>| {
                    v.into_iter()
                        .map(WireEntry::into_entry)
                        .collect::<Result<Vec<_>, _>>()
                };
                Ok(DeploymentDoc {
                    schema: w.schema,
                    fleet: w.fleet,
                    target: w.target,
                    version: w.version,
                    issued_at_ms: w.issued_at_ms,
                    tasks: entries(w.tasks)?,
                    services: entries(w.services)?,
                })
            }
            other => Err(DocError::Schema(other)),
        }
    }

    /// Names of every entry, tasks then services.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks
            .iter()
            .chain(self.services.iter())
            .map(|e| e.name.as_str())
    }
}

/// Signs `doc` with `key`.
pub fn sign_document(doc: &DeploymentDoc, key: &Ed25519KeyPair) -> SignedDocument {
    let packed = doc.pack();
    let signature = key.sign(&signed_bytes(&packed));
    SignedDocument {
        public_key: key.public_key().as_ref().to_vec(),
        signature: signature.as_ref().to_vec(),
        doc: packed,
    }
}

fn signed_bytes(packed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + packed.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(packed);
    m
}

impl SignedDocument {
    /// Whether the signature is `public_key`'s over `doc`.
    pub fn signature_valid(&self) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&signed_bytes(&self.doc), &self.signature)
            .is_ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    pub(crate) fn generate_test_key(seed: u8) -> Ed25519KeyPair {
        // Deterministic keys for tests: a fixed seed per number.
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("seed key")
    }

    pub(crate) fn generate_test_doc(target: Target, version: u64) -> DeploymentDoc {
        DeploymentDoc {
            schema: DOC_SCHEMA,
            fleet: "acme".into(),
            target,
            version,
            issued_at_ms: 0,
            tasks: vec![Entry {
                name: "hello".into(),
                // Compact, keys sorted: the form entries unpack to.
                json: r#"{"containerDefinitions":[{"image":"busybox","memory":32,"name":"c"}],"family":"hello"}"#.into(),
            }],
            services: vec![],
        }
    }

    #[test]
    fn document_sign_and_verify() {
        let key = generate_test_key(1);
        let s = sign_document(&generate_test_doc(Target::Device("gw1".into()), 3), &key);
        assert!(s.signature_valid());
        assert_eq!(
            DeploymentDoc::unpack(&s.doc).unwrap().target,
            Target::Device("gw1".into())
        );
        let mut tampered = s.clone();
        tampered.doc[0] ^= 1;
        assert!(!tampered.signature_valid());
        let mut other = s.clone();
        other.public_key = generate_test_key(2).public_key().as_ref().to_vec();
        assert!(!other.signature_valid());
        let mut short = s;
        short.signature.truncate(10);
        assert!(!short.signature_valid());
    }

    #[test]
    fn document_real_keys_work_too() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let s = sign_document(&generate_test_doc(Target::Group("g".into()), 1), &key);
        assert!(s.signature_valid());
    }

    #[test]
    fn document_bomb_and_schema_are_refused() {
        let zeros = vec![0u8; MAX_DOC_BYTES + 10];
        let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 9);
        assert_eq!(DeploymentDoc::unpack(&bomb), Err(DocError::Inflate));
        let three = [3u8, 0, 0, 0, 0];
        let packed = miniz_oxide::deflate::compress_to_vec(&three, 9);
        assert_eq!(DeploymentDoc::unpack(&packed), Err(DocError::Schema(3)));
        assert!(DeploymentDoc::unpack(b"not deflate").is_err());
        // A packed entry that is not packed JSON is refused naming the entry.
        let bad = WireDoc {
            schema: DOC_SCHEMA,
            fleet: "acme".into(),
            target: Target::Device("gw1".into()),
            version: 1,
            issued_at_ms: 0,
            tasks: vec![WireEntry {
                name: "web".into(),
                body: WireBody::Packed(vec![42]),
            }],
            services: vec![],
        };
        let raw = postcard::to_allocvec(&bad).unwrap();
        let err = DeploymentDoc::unpack(&miniz_oxide::deflate::compress_to_vec(&raw, 9));
        assert!(
            matches!(&err, Err(DocError::Malformed(m)) if m.contains("\"web\"") && m.contains("tag 42")),
            "{err:?}"
        );
    }

    #[test]
    fn document_schema_1_text_entries_are_still_read() {
        let mut d = generate_test_doc(Target::Device("gw1".into()), 4);
        d.schema = DOC_SCHEMA_TEXT;
        let raw = postcard::to_allocvec(&d).unwrap();
        let back = DeploymentDoc::unpack(&miniz_oxide::deflate::compress_to_vec(&raw, 9)).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn document_entries_round_trip_as_equal_json_and_non_json_as_text() {
        let mut d = generate_test_doc(Target::Device("gw1".into()), 5);
        d.tasks.push(Entry {
            name: "broken".into(),
            json: "{not json".into(),
        });
        let back = DeploymentDoc::unpack(&d.pack()).unwrap();
        assert_eq!(back.schema, DOC_SCHEMA);
        assert_eq!(back.tasks[1].json, "{not json");
        let a: serde_json::Value = serde_json::from_str(&d.tasks[0].json).unwrap();
        let b: serde_json::Value = serde_json::from_str(&back.tasks[0].json).unwrap();
        assert_eq!(a, b);
    }
}
