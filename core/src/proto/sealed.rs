//! Secrets the operator sends to one device: sealed to the device's static X25519
//! key (so the broker and other devices never see the value), signed with the
//! operator's ed25519 key like a deployment, on `…/<device>/secrets`.
//!
//! ```text
//! SignedSecret { public_key: 32 B, signature: 64 B, doc: postcard(SecretDoc) }
//! signature  = ed25519(operator key, "skerry/v1 secret\0" ‖ doc)
//! shared     = X25519(ephemeral secret, device sealing key)
//! key        = HKDF-SHA256(salt = ephemeral public ‖ device key, ikm = shared,
//!                          info = "skerry/v1 secret seal\0" ‖ fleet ‖ 0 ‖ device ‖ 0 ‖ name ‖ 0 ‖ version LE)
//! ciphertext = ChaCha20-Poly1305(key, nonce 0, aad "", value)
//! ```
//!
//! Every message has a fresh ephemeral key, so the key is never reused and the zero
//! nonce is safe. [`open_secret`] is the one gate, bytes in, a value or a named
//! [`SecretRefusal`] out: size, envelope, signature, fleet, device, name, the key it
//! was sealed for, a version newer than the one stored for that name, then the AEAD.
//! Pure: the caller passes the randomness ([`seal_secret`]) and the device's secret.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use super::envelope::{Body, Envelope, WireError};
use super::topics::check_name;
use crate::spec::validate_secret_name;

/// The version of [`SecretDoc`]'s encoding.
pub const SECRET_SCHEMA: u16 = 1;
const SIGNING_CONTEXT: &[u8] = b"skerry/v1 secret\0";
const HKDF_INFO: &[u8] = b"skerry/v1 secret seal\0";

/// One sealed secret for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretDoc {
    /// [`SECRET_SCHEMA`] when written.
    pub schema: u16,
    pub fleet: String,
    pub device: String,
    /// The local secret name (the device's store).
    pub name: String,
    /// Grows with every value sent for this name; the device refuses one not newer.
    pub version: u64,
    /// Operator's wall clock (informational).
    pub issued_at_ms: u64,
    /// The device sealing key this was sealed for.
    pub sealed_to: [u8; 32],
    /// The sender's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The value, sealed (16-byte tag included).
    pub ciphertext: Vec<u8>,
}

/// A sealed secret with the operator's signature, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSecret {
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
    /// `postcard(SecretDoc)`.
    pub doc: Vec<u8>,
}

/// What the device expects of a secret message.
pub struct SecretExpect<'a> {
    pub fleet: &'a str,
    pub device: &'a str,
    /// ed25519 keys the device trusts (the same as for deployments).
    pub trusted: &'a [[u8; 32]],
    pub max_bytes: usize,
    /// The version stored for a name, if any.
    pub have: &'a dyn Fn(&str) -> Option<u64>,
}

/// A verified, opened secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSecret {
    pub name: String,
    pub version: u64,
    pub value: Vec<u8>,
}

impl std::fmt::Debug for OpenedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenedSecret({} v{}, ***)", self.name, self.version)
    }
}

/// Why a secret message was refused; none names or holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefusal {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("not a secret (an envelope of another kind)")]
    NotASecret,
    #[error("unsigned secret")]
    Unsigned,
    #[error("signed by an untrusted key")]
    UntrustedKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("secret document is malformed: {0}")]
    Malformed(String),
    #[error("secret document schema {0} is not understood (this skerry reads {SECRET_SCHEMA})")]
    Schema(u16),
    #[error("secret is for fleet {got:?} / device {device:?}, not this device")]
    NotAddressed { got: String, device: String },
    #[error("secret name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("secret {name:?} is sealed for another device key")]
    OtherKey { name: String },
    #[error("secret {name:?} version {got} is not newer than the stored version {have} (replay or rollback)")]
    NotNewer { name: String, got: u64, have: u64 },
    #[error("secret {name:?} does not open with this device's key (corrupt or forged)")]
    CannotOpen { name: String },
}

impl SecretRefusal {
    /// A short machine name for reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Wire(WireError::Oversized { .. }) => "oversized",
            Self::Wire(_) | Self::NotASecret | Self::Malformed(_) | Self::BadName { .. } => {
                "malformed"
            }
            Self::Schema(_) => "unknown-schema",
            Self::Unsigned => "unsigned",
            Self::UntrustedKey => "untrusted-key",
            Self::BadSignature => "bad-signature",
            Self::NotAddressed { .. } => "not-addressed",
            Self::OtherKey { .. } => "other-key",
            Self::NotNewer { .. } => "not-newer",
            Self::CannotOpen { .. } => "cannot-open",
        }
    }
}

/// What to seal, and for whom.
pub struct SealInput<'a> {
    pub fleet: &'a str,
    pub device: &'a str,
    pub name: &'a str,
    pub version: u64,
    pub issued_at_ms: u64,
    /// The device's public sealing key (from its reported state).
    pub device_key: [u8; 32],
    pub value: &'a [u8],
}

/// Why a secret cannot be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("secret name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("device sealing key is not usable (a low-order point)")]
    BadDeviceKey,
}

fn name_problem(fleet: &str, device: &str, name: &str) -> Option<String> {
    check_name("fleet", fleet)
        .and_then(|()| check_name("device", device))
        .map_err(|e| e.to_string())
        .and_then(|()| validate_secret_name(name))
        .err()
}

fn derive_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    sealed_to: &[u8; 32],
    doc: (&str, &str, &str, u64),
) -> Option<LessSafeKey> {
    let (fleet, device, name, version) = doc;
    let mut salt = Vec::with_capacity(64);
    salt.extend_from_slice(ephemeral);
    salt.extend_from_slice(sealed_to);
    let version = version.to_le_bytes();
    let info: [&[u8]; 8] = [
        HKDF_INFO,
        fleet.as_bytes(),
        b"\0",
        device.as_bytes(),
        b"\0",
        name.as_bytes(),
        b"\0",
        &version,
    ];
    let prk = Salt::new(HKDF_SHA256, &salt).extract(shared);
    let okm = prk.expand(&info, &CHACHA20_POLY1305).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Seals `input` with the ephemeral secret `ephemeral_seed` (32 random bytes the
/// caller draws) and signs it with `signer`: an envelope's bytes, ready to publish.
pub fn seal_secret(
    input: &SealInput<'_>,
    ephemeral_seed: [u8; 32],
    signer: &Ed25519KeyPair,
) -> Result<Vec<u8>, SealError> {
    if let Some(why) = name_problem(input.fleet, input.device, input.name) {
        return Err(SealError::BadName {
            name: input.name.to_owned(),
            why,
        });
    }
    let eph = StaticSecret::from(ephemeral_seed);
    let eph_pub = PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&PublicKey::from(input.device_key));
    if !shared.was_contributory() {
        return Err(SealError::BadDeviceKey);
    }
    let key = derive_key(
        shared.as_bytes(),
        &eph_pub,
        &input.device_key,
        (input.fleet, input.device, input.name, input.version),
    )
    .ok_or(SealError::BadDeviceKey)?;
    let mut ciphertext = input.value.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::empty(),
        &mut ciphertext,
    )
    .map_err(|_| SealError::BadDeviceKey)?;
    let doc = SecretDoc {
        schema: SECRET_SCHEMA,
        fleet: input.fleet.to_owned(),
        device: input.device.to_owned(),
        name: input.name.to_owned(),
        version: input.version,
        issued_at_ms: input.issued_at_ms,
        sealed_to: input.device_key,
        ephemeral: eph_pub,
        ciphertext,
    };
    let doc = postcard::to_allocvec(&doc).unwrap_or_default();
    let signature = signer.sign(&signed_bytes(&doc));
    let signed = SignedSecret {
        public_key: signer.public_key().as_ref().to_vec(),
        signature: signature.as_ref().to_vec(),
        doc,
    };
    Ok(Envelope::new(input.device, input.version, Body::Secret(signed)).encode())
}

fn signed_bytes(doc: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + doc.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(doc);
    m
}

/// The public sealing key of a device secret.
pub fn sealing_public(device_secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*device_secret)).to_bytes()
}

/// Checks and opens a payload from the device's secrets topic.
pub fn open_secret(
    bytes: &[u8],
    e: &SecretExpect<'_>,
    device_secret: &[u8; 32],
) -> Result<OpenedSecret, SecretRefusal> {
    let env = Envelope::decode(bytes, e.max_bytes)?;
    let Body::Secret(signed) = env.body else {
        return Err(SecretRefusal::NotASecret);
    };
    if signed.signature.is_empty() {
        return Err(SecretRefusal::Unsigned);
    }
    if !e.trusted.iter().any(|k| k[..] == signed.public_key[..]) {
        return Err(SecretRefusal::UntrustedKey);
    }
    UnparsedPublicKey::new(&ED25519, &signed.public_key)
        .verify(&signed_bytes(&signed.doc), &signed.signature)
        .map_err(|_| SecretRefusal::BadSignature)?;
    let (schema, _) = postcard::take_from_bytes::<u16>(&signed.doc)
        .map_err(|err| SecretRefusal::Malformed(err.to_string()))?;
    if schema != SECRET_SCHEMA {
        return Err(SecretRefusal::Schema(schema));
    }
    let doc: SecretDoc = postcard::from_bytes(&signed.doc)
        .map_err(|err| SecretRefusal::Malformed(err.to_string()))?;
    if doc.fleet != e.fleet || doc.device != e.device {
        return Err(SecretRefusal::NotAddressed {
            got: doc.fleet,
            device: doc.device,
        });
    }
    if let Err(why) = validate_secret_name(&doc.name) {
        return Err(SecretRefusal::BadName {
            name: doc.name,
            why,
        });
    }
    let secret = StaticSecret::from(*device_secret);
    if PublicKey::from(&secret).to_bytes() != doc.sealed_to {
        return Err(SecretRefusal::OtherKey { name: doc.name });
    }
    if let Some(have) = (e.have)(&doc.name).filter(|have| doc.version <= *have) {
        return Err(SecretRefusal::NotNewer {
            name: doc.name,
            got: doc.version,
            have,
        });
    }
    let cannot = || SecretRefusal::CannotOpen {
        name: doc.name.clone(),
    };
    let shared = secret.diffie_hellman(&PublicKey::from(doc.ephemeral));
    if !shared.was_contributory() {
        return Err(cannot());
    }
    let key = derive_key(
        shared.as_bytes(),
        &doc.ephemeral,
        &doc.sealed_to,
        (&doc.fleet, &doc.device, &doc.name, doc.version),
    )
    .ok_or_else(cannot)?;
    let mut buf = doc.ciphertext.clone();
    let value = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        )
        .map_err(|_| cannot())?
        .to_vec();
    Ok(OpenedSecret {
        name: doc.name,
        version: doc.version,
        value,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;
    use crate::proto::document::tests::generate_test_key;

    const DEVICE_SECRET: [u8; 32] = [7; 32];

    fn input(version: u64, key: [u8; 32]) -> SealInput<'static> {
        SealInput {
            fleet: "plant",
            device: "gw1",
            name: "db.pass",
            version,
            issued_at_ms: 1,
            device_key: key,
            value: b"hunter2-value",
        }
    }

    fn open(bytes: &[u8], have: Option<u64>) -> Result<OpenedSecret, SecretRefusal> {
        let trusted = [generate_test_key(1)
            .public_key()
            .as_ref()
            .try_into()
            .unwrap()];
        let have = move |_: &str| have;
        let e = SecretExpect {
            fleet: "plant",
            device: "gw1",
            trusted: &trusted,
            max_bytes: 4096,
            have: &have,
        };
        open_secret(bytes, &e, &DEVICE_SECRET)
    }

    #[test]
    fn sealed_secret_opens_only_for_its_device_key_and_newer_versions() {
        let public = sealing_public(&DEVICE_SECRET);
        let bytes = seal_secret(&input(5, public), [9; 32], &generate_test_key(1)).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"), "value in clear");
        let got = open(&bytes, Some(4)).unwrap();
        assert_eq!((got.name.as_str(), got.version), ("db.pass", 5));
        assert_eq!(got.value, b"hunter2-value");
        assert!(!format!("{got:?}").contains("hunter2"));
        assert_eq!(open(&bytes, Some(5)).unwrap_err().code(), "not-newer");
        let other = sealing_public(&[8; 32]);
        let bytes = seal_secret(&input(6, other), [9; 32], &generate_test_key(1)).unwrap();
        assert_eq!(open(&bytes, None).unwrap_err().code(), "other-key");
    }

    #[test]
    fn sealed_secret_refusals_are_named() {
        let public = sealing_public(&DEVICE_SECRET);
        let untrusted = seal_secret(&input(1, public), [9; 32], &generate_test_key(2)).unwrap();
        assert_eq!(open(&untrusted, None).unwrap_err().code(), "untrusted-key");
        assert_eq!(open(b"garbage", None).unwrap_err().code(), "malformed");
        let good = seal_secret(&input(1, public), [9; 32], &generate_test_key(1)).unwrap();
        let env = Envelope::decode(&good, 4096).unwrap();
        let Body::Secret(mut signed) = env.body.clone() else {
            panic!("not a secret")
        };
        // A flipped ciphertext byte breaks the signature first.
        let last = signed.doc.len() - 1;
        signed.doc[last] ^= 1;
        let forged = Envelope::new("gw1", 1, Body::Secret(signed.clone())).encode();
        assert_eq!(open(&forged, None).unwrap_err().code(), "bad-signature");
        // Re-signed by the trusted key after tampering: the AEAD catches it.
        let key = generate_test_key(1);
        signed.signature = key.sign(&signed_bytes(&signed.doc)).as_ref().to_vec();
        let resigned = Envelope::new("gw1", 1, Body::Secret(signed)).encode();
        assert_eq!(open(&resigned, None).unwrap_err().code(), "cannot-open");
        let err = seal_secret(
            &SealInput {
                name: "../x",
                ..input(1, public)
            },
            [9; 32],
            &key,
        )
        .unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }
}
