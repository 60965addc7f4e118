//! A container's secret references resolved against the [`SecretStore`]: values for
//! env vars and log options, and a registry's username and password. What cannot
//! be resolved comes back as a [`Missing`] naming the secret and why (never a value);
//! the task waits on it with ECS's `ResourceInitializationError`.

use skerry_core::spec::{NamedSecret, SecretRef};

use super::store::SecretStore;
use crate::images::pull::Credentials;

/// A secret a container needs that the store cannot give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The local name.
    pub name: String,
    /// Why: not stored, not UTF-8, not JSON with the key, unreadable.
    pub why: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResourceInitializationError: unable to pull secrets or registry auth: secret {:?}: {}",
            self.name, self.why
        )
    }
}

fn missing(r: &SecretRef, why: impl Into<String>) -> Missing {
    Missing {
        name: r.name.clone(),
        why: why.into(),
    }
}

/// The text value `r` names (a JSON key of it when `r.json_key` is set).
fn value(store: &SecretStore, r: &SecretRef) -> Result<String, Missing> {
    let raw = match store.get(&r.name) {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(missing(
                r,
                format!(
                    "not in the device's secret store (skerry secret put {}, or skerry ctl secret put --device D {})",
                    r.name, r.name
                ),
            ))
        }
        Err(e) => return Err(missing(r, e.to_string())),
    };
    let text = String::from_utf8(raw).map_err(|_| missing(r, "the value is not UTF-8"))?;
    let Some(key) = &r.json_key else {
        return Ok(text);
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|_| {
            missing(
                r,
                format!("json-key {key:?}: the value is not a JSON object"),
            )
        })?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(missing(r, format!("json-key {key:?}: no such key"))),
    }
}

/// `(name, value)` for each entry, in order; the first secret that cannot be
/// resolved otherwise.
pub fn resolve_named(
    store: &SecretStore,
    list: &[NamedSecret],
) -> Result<Vec<(String, String)>, Missing> {
    list.iter()
        .map(|s| Ok((s.name.clone(), value(store, &s.from)?)))
        .collect()
}

/// `repositoryCredentials`: ECS's Secrets Manager form, a JSON object with
/// `username` and `password`.
pub fn registry_credentials(store: &SecretStore, r: &SecretRef) -> Result<Credentials, Missing> {
    #[derive(serde::Deserialize)]
    struct UserPass {
        username: String,
        password: String,
    }
    let text = value(store, r)?;
    let up: UserPass = serde_json::from_str(&text).map_err(|_| {
        missing(
            r,
            "registry credentials must be a JSON object {\"username\": .., \"password\": ..}",
        )
    })?;
    Ok(Credentials::Basic {
        username: up.username,
        password: up.password,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;
    use crate::store::StateLayout;

    fn named(name: &str, from: &str, key: Option<&str>) -> NamedSecret {
        NamedSecret {
            name: name.into(),
            from: SecretRef {
                name: from.into(),
                json_key: key.map(str::to_string),
            },
        }
    }

    #[test]
    fn secrets_resolve_values_keys_and_registry_auth() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&StateLayout::new(tmp.path()));
        store.put("plain", b"v1").unwrap();
        store
            .put("db", br#"{"password":"pw","port":5432}"#)
            .unwrap();
        store
            .put("reg", br#"{"username":"u","password":"p"}"#)
            .unwrap();
        let got = resolve_named(
            &store,
            &[
                named("A", "plain", None),
                named("B", "db", Some("password")),
                named("C", "db", Some("port")),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("A".into(), "v1".into()),
                ("B".into(), "pw".into()),
                ("C".into(), "5432".into())
            ]
        );
        let creds = registry_credentials(&store, &named("", "reg", None).from).unwrap();
        assert_eq!(
            creds,
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let err = resolve_named(&store, &[named("A", "gone", None)]).unwrap_err();
        assert_eq!(err.name, "gone");
        assert!(err.to_string().starts_with("ResourceInitializationError: unable to pull secrets or registry auth: secret \"gone\""), "{err}");
        let err = resolve_named(&store, &[named("B", "db", Some("user"))]).unwrap_err();
        assert!(err.why.contains("no such key"), "{err}");
        let err = registry_credentials(&store, &named("", "plain", None).from).unwrap_err();
        assert!(!err.to_string().contains("v1"), "{err}");
    }
}
