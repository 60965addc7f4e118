//! A container's `secrets`, `logConfiguration.secretOptions` and
//! `repositoryCredentials`: where each value comes from, checked into
//! [`ContainerSecrets`]. Pure: values are resolved on the device by the agent,
//! from its local secret store (`skerry secret put`).
//!
//! How a `valueFrom` maps to a local secret name ([`SecretRef::parse`]):
//! - `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME` → `NAME`; a hierarchical
//!   parameter `parameter/app/db/password` (or `/app/db/password`) → `app.db.password`
//!   (each `/` becomes `.`, so a path never becomes a directory on the device);
//! - `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf` → `NAME` (the six
//!   characters Secrets Manager appends are dropped; an ARN without them is `NAME`
//!   as written); the suffix `:json-key::` picks one key of a JSON secret;
//!   `version-stage` and `version-id` are refused (the device keeps one version);
//! - anything else is a plain local name.
//!
//! A local name is 1–255 ASCII letters, digits, `-`, `_` and `.`, not starting
//! with `.` (so never `.` or `..`), and never contains `/`.

use std::collections::BTreeSet;

use super::ecs::{RawRepositoryCredentials, RawSecret};
use super::error::Problems;

/// Longest local secret name, in bytes.
pub const MAX_SECRET_NAME: usize = 255;

/// Where one secret value comes from on the device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretRef {
    /// The local store's name (see the module doc for how an ARN maps to it).
    pub name: String,
    /// Secrets Manager's `json-key`: the value is this key of the stored JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_key: Option<String>,
}

/// One secret delivered as a named thing: an env var (`secrets`) or a log driver
/// option (`secretOptions`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedSecret {
    /// The env var or option name.
    pub name: String,
    /// Where its value comes from.
    pub from: SecretRef,
}

/// Everything a container needs from the secret store before it can start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSecrets {
    /// `secrets`: env vars, set on the process only (never in the bundle on disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<NamedSecret>,
    /// `logConfiguration.secretOptions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_options: Vec<NamedSecret>,
    /// `repositoryCredentials.credentialsParameter`: a JSON secret
    /// `{"username": .., "password": ..}` used to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<SecretRef>,
}

impl ContainerSecrets {
    /// No secrets at all (then the field is not serialized, keeping digests).
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.log_options.is_empty() && self.registry.is_none()
    }

    /// Every secret this container reads, each once, by local name.
    pub fn names(&self) -> BTreeSet<&str> {
        self.env
            .iter()
            .chain(&self.log_options)
            .map(|s| s.from.name.as_str())
            .chain(self.registry.iter().map(|r| r.name.as_str()))
            .collect()
    }
}

/// Checks a local secret name (see the module doc).
pub fn validate_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SECRET_NAME {
        return Err(format!(
            "a secret name has 1 to {MAX_SECRET_NAME} characters, got {}",
            name.len()
        ));
    }
    if name.contains('/') {
        return Err(format!("a secret name cannot contain '/', got {name:?}"));
    }
    if name.contains("..") || name.starts_with('.') {
        return Err(format!(
            "a secret name cannot start with '.' or contain \"..\", got {name:?}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
    {
        return Err(format!(
            "a secret name has letters, digits, '-', '_' and '.', got {bad:?} in {name:?}"
        ));
    }
    Ok(())
}

impl SecretRef {
    /// Maps a `valueFrom` to a local reference (see the module doc).
    pub fn parse(value_from: &str) -> Result<Self, String> {
        let (name, json_key) = if let Some(rest) = value_from.strip_prefix("arn:") {
            arn(rest, value_from)?
        } else {
            (value_from.to_string(), None)
        };
        validate_secret_name(&name)?;
        Ok(Self { name, json_key })
    }
}

fn arn(rest: &str, whole: &str) -> Result<(String, Option<String>), String> {
    // partition:service:region:account:resource
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [_partition, service, _region, _account, resource] = parts[..] else {
        return Err(format!(
            "not an ARN (arn:partition:service:region:account:resource): {whole:?}"
        ));
    };
    match service {
        "ssm" => {
            let path = resource.strip_prefix("parameter").ok_or_else(|| {
                format!("an SSM ARN names a parameter (…:parameter/NAME), got {whole:?}")
            })?;
            let segments: Vec<&str> = path.split('/').skip(1).collect();
            if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
                return Err(format!("an SSM parameter path has non-empty parts, got {whole:?}"));
            }
            Ok((segments.join("."), None))
        }
        "secretsmanager" => {
            let rest = resource.strip_prefix("secret:").ok_or_else(|| {
                format!("a Secrets Manager ARN names a secret (…:secret:NAME), got {whole:?}")
            })?;
            let mut fields = rest.split(':');
            let name = fields.next().unwrap_or_default();
            let json_key = fields.next().filter(|k| !k.is_empty()).map(str::to_string);
            for (what, v) in ["version-stage", "version-id"].iter().zip(fields.by_ref()) {
                if !v.is_empty() {
                    return Err(format!(
                        "{what} {v:?} is not supported: the device keeps one version of each secret; drop it from {whole:?}"
                    ));
                }
            }
            if fields.next().is_some() {
                return Err(format!(
                    "a Secrets Manager ARN ends with :json-key:version-stage:version-id at most, got {whole:?}"
                ));
            }
            Ok((strip_random_suffix(name).to_string(), json_key))
        }
        other => Err(format!(
            "secrets come from SSM parameters (arn:aws:ssm:…) or Secrets Manager (arn:aws:secretsmanager:…), got service {other:?}"
        )),
    }
}

/// `NAME-AbCdEf` → `NAME`: Secrets Manager appends `-` and six letters or digits.
fn strip_random_suffix(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, tail))
            if !head.is_empty()
                && tail.len() == 6
                && tail.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            head
        }
        _ => name,
    }
}

/// `secrets` or `secretOptions` entries: names unique, not in `taken` (the
/// `environment` names or the driver's `options`, whose `what` says which).
pub(crate) fn check_named(
    raw: &[RawSecret],
    at: &str,
    taken: &BTreeSet<&str>,
    what: &str,
    p: &mut Problems,
) -> Vec<NamedSecret> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let name = s.name.clone().unwrap_or_default();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            p.push(
                format!("{here}.name"),
                format!("must be a non-empty name without '=', got {name:?}"),
            );
        } else if taken.contains(name.as_str()) {
            p.push(
                format!("{here}.name"),
                format!("{name:?} is also set in {what}: give it one source"),
            );
        } else if !seen.insert(name.clone()) {
            p.push(format!("{here}.name"), format!("{name:?} is listed twice"));
        }
        let Some(value_from) = s.value_from.as_deref() else {
            p.push(format!("{here}.valueFrom"), "is required");
            continue;
        };
        match SecretRef::parse(value_from) {
            Ok(from) => out.push(NamedSecret { name, from }),
            Err(why) => p.push(format!("{here}.valueFrom"), why),
        }
    }
    out
}

/// `repositoryCredentials`.
pub(crate) fn check_registry(
    raw: &RawRepositoryCredentials,
    at: &str,
    p: &mut Problems,
) -> Option<SecretRef> {
    let Some(param) = raw.credentials_parameter.as_deref() else {
        p.push(format!("{at}.credentialsParameter"), "is required");
        return None;
    };
    SecretRef::parse(param)
        .map_err(|why| p.push(format!("{at}.credentialsParameter"), why))
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    fn r(name: &str, json_key: Option<&str>) -> Result<SecretRef, String> {
        Ok(SecretRef {
            name: name.into(),
            json_key: json_key.map(str::to_string),
        })
    }

    #[test]
    fn secret_ref_maps_arns_to_local_names() {
        let cases = [
            ("db_password", r("db_password", None)),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/db_pass",
                r("db_pass", None),
            ),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/pass",
                r("prod.db.pass", None),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key-AbC123",
                r("api-key", None),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key",
                r("api-key", None),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbC123:password::",
                r("db", Some("password")),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbC123:password",
                r("db", Some("password")),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(SecretRef::parse(input), want, "{input}");
        }
    }

    #[test]
    fn secret_ref_refusals_name_the_problem() {
        for (input, needle) in [
            ("", "1 to 255"),
            ("a/b", "'/'"),
            ("..", "\"..\""),
            ("a..b", "\"..\""),
            (".hidden", "start with '.'"),
            ("bad\u{7}", "letters, digits"),
            ("arn:aws:s3:::bucket/key", "service \"s3\""),
            ("arn:aws:ssm:r:1:parameter/", "non-empty parts"),
            ("arn:aws:ssm:r:1:parameter/a//b", "non-empty parts"),
            (
                "arn:aws:secretsmanager:r:1:secret:db:key:AWSCURRENT:",
                "version-stage",
            ),
            ("arn:aws:secretsmanager:r:1:secret:db:key::v1", "version-id"),
            ("arn:aws:secretsmanager:r:1:secret:..-AbC123", "\"..\""),
            ("arn:aws", "not an ARN"),
        ] {
            let err = SecretRef::parse(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
