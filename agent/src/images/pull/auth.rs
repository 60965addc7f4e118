//! Which credentials a pull presents to a registry: the agent config's
//! `[registries."host"]` first, else the `auths` entry of a Docker-style
//! `config.json`, else none (anonymous). `credHelpers`/`credsStore` entries for the
//! registry are refused by name: skerry runs no helper programs. ECR's `/v2/` asks for
//! Basic `AWS:<token>`, which is a username and password like any other.

use std::fs::File;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::PullError;
use crate::config::RegistryConfig;
use crate::images::record::{read_limited, METADATA_LIMIT};

/// What is sent to one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Credentials {
    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The credentials for `host` (`registry.example.com:5000`).
pub fn credentials_for(
    host: &str,
    configured: Option<&RegistryConfig>,
    docker_config: Option<&Path>,
) -> Result<Credentials, PullError> {
    if let Some(reg) = configured {
        if let Some(token) = &reg.token {
            return Ok(Credentials::Bearer(token.clone()));
        }
        if let (Some(u), Some(p)) = (&reg.username, &reg.password) {
            return Ok(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            });
        }
    }
    match docker_config {
        Some(path) => from_docker_config(host, path),
        None => Ok(Credentials::Anonymous),
    }
}

fn from_docker_config(host: &str, path: &Path) -> Result<Credentials, PullError> {
    let bad = |reason: String| PullError::Credentials {
        path: path.to_path_buf(),
        reason,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::Anonymous),
        Err(e) => return Err(bad(format!("cannot read: {e}"))),
    };
    let bytes = read_limited(file, METADATA_LIMIT, path)?;
    let config: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not a Docker config.json: {e}")))?;
    let keys = [
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return Err(bad(format!(
            "credHelpers names docker-credential-{helper} for {host}: credential helpers are not supported, put the credentials in [registries.\"{host}\"] of the agent config"
        )));
    }
    let Some(entry) = keys.iter().find_map(|k| config.auths.get(k)) else {
        if let Some(store) = &config.creds_store {
            return Err(bad(format!(
                "credsStore docker-credential-{store} holds the credentials: credential helpers are not supported, put them in [registries.\"{host}\"] of the agent config"
            )));
        }
        return Ok(Credentials::Anonymous);
    };
    if let Some(token) = entry
        .registrytoken
        .as_ref()
        .or(entry.identitytoken.as_ref())
    {
        return Ok(Credentials::Bearer(token.clone()));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let Some(auth) = &entry.auth else {
        return Ok(Credentials::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| bad(format!("auths.{host}.auth is not base64: {e}")))?;
    let text =
        String::from_utf8(decoded).map_err(|_| bad(format!("auths.{host}.auth is not UTF-8")))?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| bad(format!("auths.{host}.auth is not user:password")))?;
    Ok(Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(json: &str, host: &str) -> Result<Credentials, PullError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).expect("write");
        credentials_for(host, None, Some(&path))
    }

    #[test]
    fn auth_docker_config_auths_and_helpers() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("AWS:tok:en");
        let json = format!(
            r#"{{"auths":{{"r.example:5000":{{"auth":"{b64}"}},"https://t.example":{{"identitytoken":"xyz"}}}},
                "credHelpers":{{"123.dkr.ecr.eu-west-1.amazonaws.com":"ecr-login"}}}}"#
        );
        assert_eq!(
            docker(&json, "r.example:5000").expect("auths"),
            Credentials::Basic {
                username: "AWS".into(),
                password: "tok:en".into()
            }
        );
        assert_eq!(
            docker(&json, "t.example").expect("token"),
            Credentials::Bearer("xyz".into())
        );
        assert_eq!(
            docker(&json, "other").expect("none"),
            Credentials::Anonymous
        );
        let err = docker(&json, "123.dkr.ecr.eu-west-1.amazonaws.com")
            .expect_err("helper")
            .to_string();
        assert!(
            err.contains("credHelpers names docker-credential-ecr-login"),
            "{err}"
        );
        let err = docker(r#"{"credsStore":"desktop"}"#, "x")
            .expect_err("store")
            .to_string();
        assert!(
            err.contains("credsStore docker-credential-desktop"),
            "{err}"
        );
        assert!(docker("{not json", "x").is_err());
        assert!(docker(r#"{"auths":{"x":{"auth":"!!"}}}"#, "x").is_err());
    }

    #[test]
    fn auth_agent_config_wins() {
        let reg = RegistryConfig {
            username: Some("u".into()),
            password: Some("p".into()),
            ..RegistryConfig::default()
        };
        let got = credentials_for("x", Some(&reg), None).expect("creds");
        assert_eq!(format!("{got:?}"), "Basic(u, ***)");
        assert_eq!(
            credentials_for("x", None, None).expect("anon"),
            Credentials::Anonymous
        );
    }
}
