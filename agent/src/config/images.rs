//! `[images]` and `[registries."host"]`: how images are pulled, which registries are
//! trusted how, and how many unused images the garbage collector keeps.
//!
//! ```text
//! [images]
//! pull_behavior = "default"       # default | always | once | prefer-cached (ECS_IMAGE_PULL_BEHAVIOR)
//! max_concurrent_downloads = 3    # 1..=16 blobs at a time per pull
//! connect_timeout_secs = 30       # 1..=600
//! read_timeout_secs = 60          # 1..=3600, per read: a stalled link is cut after this
//! min_retry_delay_ms = 1000       # 10..=60000, first retry delay (doubles per failure)
//! max_retry_delay_secs = 300      # 1..=3600, cap of the exponential backoff
//! keep_unused = 5                 # GC keeps this many unreferenced images, newest use first
//! prune_interval_secs = 3600      # 0 (never) or 60..=604800: the agent prunes to keep_unused
//! docker_config = "/root/.docker/config.json"   # optional: `auths` of a Docker config.json
//! [registries."registry.example.com:5000"]
//! username = "u"                  # basic auth (ECR: "AWS" and the token)
//! password = "p"
//! token = "..."                   # or a bearer (identity) token
//! insecure = false                # plain HTTP: only for registries listed with this
//! ca_file = "/etc/skerry/registry-ca.pem"   # extra trusted CA (PEM) for this registry
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// ECS's `ECS_IMAGE_PULL_BEHAVIOR`: when a task's image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullBehavior {
    /// Pull; if the pull fails, use the cached image.
    #[default]
    Default,
    /// Pull; a failed pull stops the task.
    Always,
    /// Pull only if this agent never pulled the image successfully.
    Once,
    /// Pull only when nothing is cached.
    PreferCached,
}

/// `[images]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    pub pull_behavior: PullBehavior,
    pub max_concurrent_downloads: u32,
    pub connect_timeout_secs: u64,
    pub read_timeout_secs: u64,
    pub min_retry_delay_ms: u64,
    pub max_retry_delay_secs: u64,
    pub keep_unused: u32,
    pub prune_interval_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_config: Option<PathBuf>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            pull_behavior: PullBehavior::Default,
            max_concurrent_downloads: 3,
            connect_timeout_secs: 30,
            read_timeout_secs: 60,
            min_retry_delay_ms: 1000,
            max_retry_delay_secs: 300,
            keep_unused: 5,
            prune_interval_secs: 3600,
            docker_config: None,
        }
    }
}

/// `[registries."host[:port]"]`: credentials and transport of one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub insecure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Checks `[images]` and every `[registries.*]` table.
pub(super) fn validate(
    images: &ImagesConfig,
    registries: &BTreeMap<String, RegistryConfig>,
) -> Result<(), ConfigError> {
    let range = |key: &'static str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                key,
                reason: format!("must be between {lo} and {hi}, got {v}"),
            })
        }
    };
    range(
        "images.max_concurrent_downloads",
        u64::from(images.max_concurrent_downloads),
        1,
        16,
    )?;
    range(
        "images.connect_timeout_secs",
        images.connect_timeout_secs,
        1,
        600,
    )?;
    range(
        "images.read_timeout_secs",
        images.read_timeout_secs,
        1,
        3600,
    )?;
    range(
        "images.min_retry_delay_ms",
        images.min_retry_delay_ms,
        10,
        60_000,
    )?;
    range(
        "images.max_retry_delay_secs",
        images.max_retry_delay_secs,
        1,
        3600,
    )?;
    if images.prune_interval_secs != 0 {
        range(
            "images.prune_interval_secs",
            images.prune_interval_secs,
            60,
            604_800,
        )?;
    }
    if let Some(path) = &images.docker_config {
        if !path.is_absolute() {
            return Err(ConfigError::Invalid {
                key: "images.docker_config",
                reason: format!(
                    "must be an absolute path, got {:?}",
                    path.display().to_string()
                ),
            });
        }
    }
    for (host, reg) in registries {
        let bad = |reason: String| ConfigError::Invalid {
            key: "registries",
            reason: format!("{host:?}: {reason}"),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !host_ok {
            return Err(bad("not a registry host[:port]".to_owned()));
        }
        match (&reg.username, &reg.password, &reg.token) {
            (Some(_), Some(_), None) | (None, None, None) | (None, None, Some(_)) => {}
            (_, _, Some(_)) => {
                return Err(bad(
                    "set either username + password or token, not both".to_owned()
                ))
            }
            _ => return Err(bad("username and password go together".to_owned())),
        }
        if let Some(ca) = reg.ca_file.as_ref().filter(|p| !p.is_absolute()) {
            return Err(bad(format!(
                "ca_file must be an absolute path, got {}",
                ca.display()
            )));
        }
    }
    Ok(())
}
