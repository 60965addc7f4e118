//! Revision identity: how a task definition is named to people and in reports, so
//! two revisions can always be told apart, with or without an ECS `revision`.
//!
//! The identity is the sha256 of the definition's canonical form: its
//! [`TaskDefinition`] serialized as JSON (fields in declaration order, maps sorted:
//! every map in the model is a `BTreeMap`). Two definitions have the same digest
//! exactly when they are equal, which is also when the reconciler treats them as the
//! same revision. Nothing is stored: a definition from a local file, a fleet
//! document or a test gets the same identity for the same content.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::TaskDefinition;

/// Hex digits of the digest shown with a revision (32 bits: a handful of revisions
/// per service never collide in practice; the full digest is in `status.json`).
pub const SHORT_DIGEST_LEN: usize = 8;

/// A revision as shown: ECS `revision` (0 when the definition has none) and the
/// first [`SHORT_DIGEST_LEN`] hex digits of the content digest.
///
/// Displays as `7 (3f9a2c1e)` with an ECS revision, `3f9a2c1e` without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revision {
    /// ECS `revision`, 0 when absent.
    pub number: u32,
    /// Short content digest, lowercase hex.
    pub digest: String,
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.number == 0 {
            f.write_str(&self.digest)
        } else {
            write!(f, "{} ({})", self.number, self.digest)
        }
    }
}

impl TaskDefinition {
    /// sha256 of the canonical JSON form, lowercase hex (64 digits).
    pub fn digest(&self) -> String {
        // Plain data with string keys: serializing to JSON cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let sum = Sha256::digest(&bytes);
        sum.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The identity shown in events, `skerry ps` and `status.json`.
    pub fn revision_id(&self) -> Revision {
        let mut digest = self.digest();
        digest.truncate(SHORT_DIGEST_LEN);
        Revision {
            number: self.revision,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{parse_task_definition, ParseOptions};

    fn def(text: &str) -> TaskDefinition {
        parse_task_definition(text, &ParseOptions::default()).expect("valid")
    }

    const V1: &str = r#"{"family": "web", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 32, "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}"#;

    #[test]
    fn revision_same_content_same_identity_any_change_another() {
        let a = def(V1);
        // Same content written in another order: same identity.
        let reordered = r#"{"containerDefinitions": [{"environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "memory": 32, "image": "busybox", "name": "c"}], "family": "web"}"#;
        assert_eq!(a.revision_id(), def(reordered).revision_id());
        assert_eq!(a.digest().len(), 64);
        let b = def(&V1.replace("32", "33"));
        assert_ne!(a.revision_id(), b.revision_id());
        assert_eq!(a.revision_id().number, 0);
        assert_eq!(a.revision_id().to_string().len(), SHORT_DIGEST_LEN);
        assert!(a
            .revision_id()
            .to_string()
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn revision_number_is_shown_with_the_digest() {
        let mut d = def(V1);
        d.revision = 7;
        let r = d.revision_id();
        assert_eq!(r.to_string(), format!("7 ({})", r.digest));
        // The number is part of the content: a renumbered definition is another one.
        assert_ne!(r.digest, def(V1).revision_id().digest);
    }
}
