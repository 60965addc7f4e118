//! The one gate for desired state from the wire: bytes in, an [`Accepted`] document
//! or a named [`Refusal`] out. Checks, in order: size, envelope and schema, a
//! deployment body, a signature present, a trusted key, a valid signature, the
//! document's schema, fleet, target (this device or one of its groups, and the topic
//! it came on), and a version newer than the one stored for that target. The task
//! definitions inside are re-validated by the agent's own `spec` afterwards.

use sha2::{Digest, Sha256};

use super::document::{DeploymentDoc, DocError, SignedDocument, Target};
use super::envelope::{Body, Envelope, WireError};
use super::topics::Scope;

/// What the device expects of a document arriving on the topic of `scope`.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub fleet: &'a str,
    pub device: &'a str,
    pub groups: &'a [String],
    /// ed25519 public keys the device trusts.
    pub trusted: &'a [[u8; 32]],
    pub max_bytes: usize,
    /// The topic it arrived on.
    pub scope: &'a Scope,
    /// The version and digest stored for that scope, if any.
    pub have: Option<(u64, [u8; 32])>,
}

/// A verified document, with what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub doc: DeploymentDoc,
    pub signed: SignedDocument,
    /// sha256 of the signed payload: the same version re-delivered is recognised.
    pub digest: [u8; 32],
}

/// Why a document was refused. Each names what is wrong; none changes anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("not a deployment document (an envelope of another kind)")]
    NotADeployment,
    #[error("unsigned document")]
    Unsigned,
    #[error("signed by an untrusted key {0}")]
    UntrustedKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error(transparent)]
    Document(#[from] DocError),
    #[error("document is for fleet {got:?}, this device is in fleet {want:?}")]
    WrongFleet { got: String, want: String },
    #[error("document is addressed to {target}, not to this device or its groups")]
    NotAddressed { target: Target },
    #[error("document for {target} arrived on the topic of {topic}")]
    WrongTopic { target: Target, topic: Scope },
    #[error("version {got} is not newer than the stored version {have} (replay or rollback)")]
    NotNewer { got: u64, have: u64 },
    /// The stored document, delivered again (retained re-delivery): not an error.
    #[error("version {0} is already stored")]
    Unchanged(u64),
}

impl Refusal {
    /// A short machine name for reports.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Wire(WireError::Oversized { .. }) => "oversized",
            Refusal::Wire(WireError::Malformed(_)) => "malformed",
            Refusal::Wire(WireError::UnknownSchema { .. }) => "unknown-schema",
            Refusal::NotADeployment => "malformed",
            Refusal::Unsigned => "unsigned",
            Refusal::UntrustedKey(_) => "untrusted-key",
            Refusal::BadSignature => "bad-signature",
            Refusal::Document(DocError::Schema(_)) => "unknown-schema",
            Refusal::Document(_) => "malformed",
            Refusal::WrongFleet { .. }
            | Refusal::NotAddressed { .. }
            | Refusal::WrongTopic { .. } => "not-addressed",
            Refusal::NotNewer { .. } => "not-newer",
            Refusal::Unchanged(_) => "unchanged",
        }
    }
}

/// Checks a payload that arrived on a desired topic.
pub fn check_document(bytes: &[u8], e: &Expect<'_>) -> Result<Accepted, Refusal> {
    let env = Envelope::decode(bytes, e.max_bytes)?;
    let Body::Deployment(signed) = env.body else {
        return Err(Refusal::NotADeployment);
    };
    if signed.signature.is_empty() {
        return Err(Refusal::Unsigned);
    }
    if !e.trusted.iter().any(|k| k[..] == signed.public_key[..]) {
        return Err(Refusal::UntrustedKey(short_hex(&signed.public_key)));
    }
    if !signed.signature_valid() {
        return Err(Refusal::BadSignature);
    }
    let doc = DeploymentDoc::unpack(&signed.doc)?;
    if doc.fleet != e.fleet {
        return Err(Refusal::WrongFleet {
            got: doc.fleet,
            want: e.fleet.to_owned(),
        });
    }
    let mine = match &doc.target {
        Target::Device(d) => d == e.device,
        Target::Group(g) => e.groups.iter().any(|x| x == g),
    };
    if !mine {
        return Err(Refusal::NotAddressed { target: doc.target });
    }
    if doc.target.scope() != *e.scope {
        return Err(Refusal::WrongTopic {
            target: doc.target,
            topic: e.scope.clone(),
        });
    }
    let digest: [u8; 32] = Sha256::digest(&signed.doc).into();
    if let Some((have, have_digest)) = e.have {
        if doc.version == have && digest == have_digest {
            return Err(Refusal::Unchanged(have));
        }
        if doc.version <= have {
            return Err(Refusal::NotNewer {
                got: doc.version,
                have,
            });
        }
    }
    Ok(Accepted {
        doc,
        signed,
        digest,
    })
}

/// The first 8 bytes of a key in hex, for messages.
pub fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::document::sign_document;
    use super::super::document::tests::{generate_test_doc, generate_test_key};
    use super::*;
    use ring::signature::KeyPair;

    fn trusted() -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(generate_test_key(1).public_key().as_ref());
        k
    }

    fn payload(doc: &DeploymentDoc, seed: u8) -> Vec<u8> {
        let s = sign_document(doc, &generate_test_key(seed));
        Envelope::new("gw1", doc.version, Body::Deployment(s)).encode()
    }

    fn check(
        bytes: &[u8],
        scope: Scope,
        have: Option<(u64, [u8; 32])>,
    ) -> Result<Accepted, Refusal> {
        let keys = [trusted()];
        let groups = ["north".to_string()];
        check_document(
            bytes,
            &Expect {
                fleet: "acme",
                device: "gw1",
                groups: &groups,
                trusted: &keys,
                max_bytes: 128 * 1024,
                scope: &scope,
                have,
            },
        )
    }

    fn dev() -> Scope {
        Scope::Device("gw1".into())
    }

    #[test]
    fn check_accepts_a_good_document_for_device_and_group() {
        let d = generate_test_doc(Target::Device("gw1".into()), 5);
        let a = check(&payload(&d, 1), dev(), Some((4, [0; 32]))).unwrap();
        assert_eq!(a.doc, d);
        let g = generate_test_doc(Target::Group("north".into()), 1);
        check(&payload(&g, 1), Scope::Group("north".into()), None).unwrap();
    }

    #[test]
    fn check_refuses_each_bad_document_by_name() {
        let d = generate_test_doc(Target::Device("gw1".into()), 5);
        let good = payload(&d, 1);
        let code = |r: Result<Accepted, Refusal>| r.unwrap_err().code();
        // wrong key
        assert_eq!(code(check(&payload(&d, 2), dev(), None)), "untrusted-key");
        // unsigned
        let mut s = sign_document(&d, &generate_test_key(1));
        s.signature.clear();
        let unsigned = Envelope::new("gw1", 5, Body::Deployment(s.clone())).encode();
        assert_eq!(code(check(&unsigned, dev(), None)), "unsigned");
        // tampered: signature by the trusted key over other bytes
        s = sign_document(&d, &generate_test_key(1));
        s.doc = generate_test_doc(Target::Device("gw1".into()), 99).pack();
        let forged = Envelope::new("gw1", 5, Body::Deployment(s)).encode();
        assert_eq!(code(check(&forged, dev(), None)), "bad-signature");
        // replay and older
        let a = check(&good, dev(), None).unwrap();
        assert_eq!(code(check(&good, dev(), Some((5, a.digest)))), "unchanged");
        assert_eq!(code(check(&good, dev(), Some((5, [1; 32])))), "not-newer");
        assert_eq!(code(check(&good, dev(), Some((9, [1; 32])))), "not-newer");
        // another device, a group it is not in, another fleet, the wrong topic
        let other = generate_test_doc(Target::Device("gw2".into()), 6);
        assert_eq!(
            code(check(&payload(&other, 1), dev(), None)),
            "not-addressed"
        );
        let south = generate_test_doc(Target::Group("south".into()), 6);
        assert_eq!(
            code(check(&payload(&south, 1), dev(), None)),
            "not-addressed"
        );
        let mut fleet = d.clone();
        fleet.fleet = "other".into();
        assert_eq!(
            code(check(&payload(&fleet, 1), dev(), None)),
            "not-addressed"
        );
        assert_eq!(
            code(check(&good, Scope::Group("north".into()), None)),
            "not-addressed"
        );
        // oversized, garbage, unknown schema, another body kind
        let big = vec![1u8; 200 * 1024];
        assert_eq!(code(check(&big, dev(), None)), "oversized");
        assert_eq!(code(check(b"\x01garbage", dev(), None)), "malformed");
        let mut env = Envelope::decode(&good, usize::MAX).unwrap();
        env.schema = 2;
        assert_eq!(code(check(&env.encode(), dev(), None)), "unknown-schema");
        let status = Envelope::new("gw1", 1, Body::Status(super::super::Presence::Offline));
        assert_eq!(code(check(&status.encode(), dev(), None)), "malformed");
    }
}
