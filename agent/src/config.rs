//! The agent's TOML configuration (`/etc/skerry/agent.toml`): its keys, their
//! defaults and their allowed ranges.
//!
//! Owns parsing and checking only. It must not create directories, open sockets
//! or read anything but the one config file; the values are used by `main`,
//! `supervisor` and `store`. Every key is optional and has the default shown in
//! `systemd/agent.toml`, which a test keeps equal to [`AgentConfig::default`].
//! Unknown keys are refused, and so is any value out of range, naming the key:
//!
//! ```text
//! version = 1                     # optional; only 1 is understood
//! state_dir = "/var/lib/skerry"
//! desired_dir = "/var/lib/skerry/desired"   # unset => <state_dir>/desired
//! allow_privileged = false
//! seccomp = true                  # Docker's default filter for unprivileged containers
//! restart_backoff_secs = 10       # 1..=3600
//! default_pids_limit = 1024       # 0 = unlimited, else >= 16
//! watchdog = true
//! [logs]
//! max_file_bytes = 10485760       # >= 4096
//! max_files = 3                   # 1..=100
//! [outbox]
//! max_bytes = 8388608             # >= 65536
//! [bridge]                        # networkMode bridge (the ECS default)
//! name = "skerry0"                # 1-15 of a-z 0-9 - _
//! subnet = "10.203.0.0/24"        # /16../29, not Docker's 172.17.0.0/16
//! [mqtt]                          # broker sync: see crate::sync::config
//! [images]                        # pulls and image GC: see `config::images`
//! [registries."host:port"]        # credentials, insecure, ca_file
//! [telemetry]                     # metrics, log shipping: see crate::telemetry::config
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod images;

pub use images::{ImagesConfig, PullBehavior, RegistryConfig};

/// The only config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// A config file larger than this is refused before it is parsed.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Errors from reading, parsing or checking the agent config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The config file exceeds [`MAX_CONFIG_BYTES`].
    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge {
        /// The config file.
        path: PathBuf,
        /// The limit that was exceeded.
        limit: u64,
    },
    /// The text is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("{}", describe_parse(*line, key, message))]
    Parse {
        /// Dotted path of the key involved (`logs.max_files`); empty if none.
        key: String,
        /// 1-based line of the offending text, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key has a value outside its allowed range.
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted path of the key (`logs.max_files`).
        key: &'static str,
        /// Why the value is refused, quoting it.
        reason: String,
    },
    /// A parse or range error inside a config file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The config file.
        path: PathBuf,
        /// The error in it.
        #[source]
        source: Box<ConfigError>,
    },
}

fn describe_parse(line: Option<usize>, key: &str, message: &str) -> String {
    let mut out = String::new();
    if let Some(line) = line {
        let _ = write!(out, "line {line}: ");
    }
    if !key.is_empty() {
        let _ = write!(out, "{key}: ");
    }
    out.push_str(message);
    out
}

/// The agent's configuration. Build it with [`AgentConfig::from_toml_str`] or
/// [`AgentConfig::load`], which both call [`AgentConfig::validate`]; a value
/// built by hand must be validated before use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Config format version; only [`CONFIG_VERSION`] is accepted.
    pub version: u32,
    /// Where the agent keeps images, tasks and container state.
    pub state_dir: PathBuf,
    /// Standalone mode: every `*.json` task definition here is kept running.
    /// `None` means `<state_dir>/desired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_dir: Option<PathBuf>,
    /// Whether task definitions may ask for `privileged: true`.
    pub allow_privileged: bool,
    /// Run unprivileged containers under Docker's default seccomp filter.
    pub seccomp: bool,
    /// Delay before a failed container is restarted, in seconds (1..=3600).
    pub restart_backoff_secs: u64,
    /// `pids.max` for containers that set none: 0 = unlimited, else >= 16.
    pub default_pids_limit: u32,
    /// Answer systemd's watchdog (`WATCHDOG=1`) when the unit asks for it.
    pub watchdog: bool,
    /// Container log rotation.
    pub logs: LogConfig,
    /// Reports kept on disk until delivered.
    pub outbox: OutboxConfig,
    /// `networkMode: bridge`: the bridge and its subnet.
    pub bridge: BridgeConfig,
    /// Broker sync; `None` is the embedded default: standalone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConfig>,
    /// Registry pulls and image GC.
    pub images: ImagesConfig,
    /// Per-registry credentials and transport, by `host[:port]`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub registries: std::collections::BTreeMap<String, RegistryConfig>,
    /// Metrics, log shipping, the Prometheus endpoint: see `crate::telemetry::config`.
    pub telemetry: crate::telemetry::TelemetryConfig,
}

/// `[logs]`: rotation of each container's stdout/stderr files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Rotate a log file once it reaches this many bytes (>= 4096).
    pub max_file_bytes: u64,
    /// Rotated files kept per stream, the live one included (1..=100).
    pub max_files: u32,
}

/// `[bridge]`: the bridge bridged containers hang off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// The bridge's link name (1–15 of `a-z 0-9 - _`).
    pub name: String,
    /// Its IPv4 subnet; the first address is the bridge's (the containers' gateway).
    pub subnet: String,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            name: "skerry0".into(),
            subnet: skerry_core::bridge::DEFAULT_SUBNET.into(),
        }
    }
}

impl BridgeConfig {
    /// The checked subnet.
    pub fn subnet(&self) -> Result<skerry_core::bridge::Subnet, ConfigError> {
        skerry_core::bridge::Subnet::parse(&self.subnet).map_err(|e| ConfigError::Invalid {
            key: "bridge.subnet",
            reason: e.to_string(),
        })
    }
}

/// `[outbox]`: reports (events) kept on disk, in order, until delivered; also the
/// history `skerry events` shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Bytes on disk at most; past it the oldest reports are deleted (>= 65536).
    pub max_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

impl OutboxConfig {
    /// The store's bounds: segments of a sixteenth of the total, 16 KiB to 1 MiB.
    pub fn limits(&self) -> crate::store::outbox::OutboxLimits {
        crate::store::outbox::OutboxLimits {
            max_bytes: self.max_bytes,
            segment_bytes: (self.max_bytes / 16).clamp(16 * 1024, 1024 * 1024),
        }
    }
}

pub use crate::sync::config::MqttConfig;

impl Default for AgentConfig {
    /// The embedded default: standalone, no broker.
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            state_dir: PathBuf::from("/var/lib/skerry"),
            desired_dir: None,
            allow_privileged: false,
            seccomp: true,
            restart_backoff_secs: 10,
            default_pids_limit: 1024,
            watchdog: true,
            logs: LogConfig::default(),
            outbox: OutboxConfig::default(),
            bridge: BridgeConfig::default(),
            mqtt: None,
            images: ImagesConfig::default(),
            registries: std::collections::BTreeMap::new(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

impl AgentConfig {
    /// Parses and validates a config from TOML text.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let config: Self =
            serde_path_to_error::deserialize(toml::Deserializer::new(s)).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                ConfigError::Parse {
                    key: if key == "." { String::new() } else { key },
                    line: inner.span().map(|span| line_of(s, span.start)),
                    message: one_line(inner.message()),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads (at most [`MAX_CONFIG_BYTES`]), parses and validates a config
    /// file. Every error names the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_CONFIG_BYTES,
            });
        }
        let in_file = |source| ConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            in_file(ConfigError::Parse {
                key: String::new(),
                line: None,
                message: format!("not valid UTF-8: {e}"),
            })
        })?;
        Self::from_toml_str(&text).map_err(in_file)
    }

    /// The standalone desired-tasks directory.
    pub fn desired_dir(&self) -> PathBuf {
        self.desired_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("desired"))
    }

    /// True when no broker is configured.
    pub fn is_standalone(&self) -> bool {
        self.mqtt.is_none()
    }

    /// Checks every value against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.version != CONFIG_VERSION {
            return invalid(
                "version",
                format!(
                    "unsupported config version {}, this build reads version {CONFIG_VERSION}",
                    self.version
                ),
            );
        }
        check_dir("state_dir", &self.state_dir)?;
        if let Some(dir) = &self.desired_dir {
            check_dir("desired_dir", dir)?;
        }
        if !(1..=3600).contains(&self.restart_backoff_secs) {
            return invalid(
                "restart_backoff_secs",
                format!(
                    "must be between 1 and 3600, got {}",
                    self.restart_backoff_secs
                ),
            );
        }
        if self.default_pids_limit != 0 && self.default_pids_limit < 16 {
            return invalid(
                "default_pids_limit",
                format!(
                    "must be 0 (unlimited) or at least 16, got {}",
                    self.default_pids_limit
                ),
            );
        }
        if self.logs.max_file_bytes < 4096 {
            return invalid(
                "logs.max_file_bytes",
                format!("must be at least 4096, got {}", self.logs.max_file_bytes),
            );
        }
        if !(1..=100).contains(&self.logs.max_files) {
            return invalid(
                "logs.max_files",
                format!("must be between 1 and 100, got {}", self.logs.max_files),
            );
        }
        if self.outbox.max_bytes < 65_536 {
            return invalid(
                "outbox.max_bytes",
                format!("must be at least 65536, got {}", self.outbox.max_bytes),
            );
        }
        let name = &self.bridge.name;
        if name.is_empty()
            || name.len() > 15
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return invalid(
                "bridge.name",
                format!("must be 1 to 15 of a-z, 0-9, - and _, got {name:?}"),
            );
        }
        self.bridge.subnet()?;
        images::validate(&self.images, &self.registries)?;
        self.telemetry
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })?;
        if let Some(m) = &self.mqtt {
            m.validate()
                .map_err(|(key, reason)| ConfigError::Invalid { key, reason })?;
        }
        Ok(())
    }
}

/// Directories must be absolute and free of `..`, so that what the agent
/// deletes under them is what the admin meant.
fn check_dir(key: &'static str, dir: &Path) -> Result<(), ConfigError> {
    let bad = |reason: &str| {
        Err(ConfigError::Invalid {
            key,
            reason: format!("{reason}, got {:?}", dir.display().to_string()),
        })
    };
    if !dir.is_absolute() {
        return bad("must be an absolute path");
    }
    if dir
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return bad("must not contain `..`");
    }
    if dir.parent().is_none() {
        return bad("must not be `/`");
    }
    Ok(())
}

/// toml's messages may span lines ("invalid string\nexpected ..."); logs want one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line number of byte offset `at` in `s`.
fn line_of(s: &str, at: usize) -> usize {
    s.as_bytes()
        .iter()
        .take(at)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../systemd/agent.toml");

    fn err(s: &str) -> String {
        match AgentConfig::from_toml_str(s) {
            Ok(c) => panic!("accepted {s:?} as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn config_empty_is_default() {
        let c = AgentConfig::from_toml_str("").unwrap();
        assert_eq!(c, AgentConfig::default());
        assert!(c.is_standalone());
        assert_eq!(c.desired_dir(), PathBuf::from("/var/lib/skerry/desired"));
        c.validate().unwrap();
    }

    #[test]
    fn config_full_file_parses() {
        let c = AgentConfig::from_toml_str(
            r#"
            version = 1
            state_dir = "/data/skerry"
            desired_dir = "/etc/skerry/tasks"
            allow_privileged = true
            restart_backoff_secs = 3600
            default_pids_limit = 0
            watchdog = false
            [logs]
            max_file_bytes = 4096
            max_files = 100
            "#,
        )
        .unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/data/skerry"));
        assert_eq!(c.desired_dir(), PathBuf::from("/etc/skerry/tasks"));
        assert!(c.allow_privileged && !c.watchdog);
        assert_eq!((c.restart_backoff_secs, c.default_pids_limit), (3600, 0));
        assert_eq!((c.logs.max_file_bytes, c.logs.max_files), (4096, 100));
    }

    #[test]
    fn config_partial_logs_keeps_other_defaults() {
        let c = AgentConfig::from_toml_str("[logs]\nmax_files = 7\n").unwrap();
        assert_eq!(c.logs.max_files, 7);
        assert_eq!(c.logs.max_file_bytes, LogConfig::default().max_file_bytes);
    }

    #[test]
    fn config_range_errors_name_the_key() {
        assert_eq!(
            err("[logs]\nmax_files = 0"),
            "logs.max_files: must be between 1 and 100, got 0"
        );
        assert_eq!(
            err("[logs]\nmax_files = 101"),
            "logs.max_files: must be between 1 and 100, got 101"
        );
        assert_eq!(
            err("[logs]\nmax_file_bytes = 4095"),
            "logs.max_file_bytes: must be at least 4096, got 4095"
        );
        assert_eq!(
            err("[outbox]\nmax_bytes = 1000"),
            "outbox.max_bytes: must be at least 65536, got 1000"
        );
        assert_eq!(
            err("restart_backoff_secs = 0"),
            "restart_backoff_secs: must be between 1 and 3600, got 0"
        );
        assert!(err("restart_backoff_secs = 3601").starts_with("restart_backoff_secs: "));
        assert_eq!(
            err("default_pids_limit = 15"),
            "default_pids_limit: must be 0 (unlimited) or at least 16, got 15"
        );
        assert!(err("state_dir = \"var/lib\"").starts_with("state_dir: must be an absolute"));
        assert!(err("state_dir = \"/\"").starts_with("state_dir: must not be `/`"));
        assert!(err("desired_dir = \"/a/../b\"").starts_with("desired_dir: must not contain"));
    }

    #[test]
    fn config_version_is_checked() {
        assert!(AgentConfig::from_toml_str("version = 1").is_ok());
        assert_eq!(
            err("version = 2"),
            "version: unsupported config version 2, this build reads version 1"
        );
    }

    #[test]
    fn config_unknown_keys_are_refused() {
        let e = err("state_dir = \"/x\"\nstate_dri = \"/y\"");
        assert!(e.starts_with("line 2: state_dri: unknown field"), "{e}");
        assert_eq!(
            err("[logs]\nmax_files = 3\nmax_size = 1"),
            "line 3: logs.max_size: unknown field `max_size`, \
             expected `max_file_bytes` or `max_files`"
        );
        let e = err("[log]\nmax_files = 3");
        assert!(e.starts_with("line 1: log: unknown field `log`"), "{e}");
    }

    #[test]
    fn config_type_errors_name_the_key() {
        let e = err("[logs]\nmax_files = \"three\"");
        assert!(e.starts_with("line 2: logs.max_files: invalid type"), "{e}");
        let e = err("default_pids_limit = -1");
        assert!(e.contains("default_pids_limit: "), "{e}");
        assert_eq!(
            err("watchdog = yes"),
            "line 1: invalid string; expected `\"`, `'`"
        );
    }

    #[test]
    fn config_mqtt_section_is_checked() {
        let good = format!(
            "[mqtt]\nbroker = \"mqtts://127.0.0.1:8883\"\nca = \"/c\"\ncert = \"/d\"\nkey = \"/k\"\nfleet = \"acme\"\ntrusted_keys = [\"{}\"]\n",
            "ab".repeat(32)
        );
        let c = AgentConfig::from_toml_str(&good).unwrap();
        assert!(!c.is_standalone());
        assert_eq!(c.mqtt.as_ref().unwrap().max_payload, 131072);
        assert!(err(&good.replace("mqtts:", "mqtt:")).starts_with("mqtt.broker:"));
        assert!(err(&good.replace("acme", "a/b")).starts_with("mqtt.fleet:"));
        assert!(err(&format!("{good}groups = [\"g\", \"g\"]\n")).contains("twice"));
        assert!(err(&good.replace(&"ab".repeat(32), "abc")).starts_with("mqtt.trusted_keys:"));
        assert!(err("[mqtt]\n").contains("missing field"));
        assert!(err(&format!("{good}colour = 1\n")).contains("colour"));
    }

    #[test]
    fn config_load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "[logs]\nmax_files = 0\n").unwrap();
        let e = AgentConfig::load(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: logs.max_files: must be between 1 and 100, got 0",
                path.display()
            )
        );

        std::fs::write(&path, "watchdog = false\n").unwrap();
        assert!(!AgentConfig::load(&path).unwrap().watchdog);

        let missing = dir.path().join("missing.toml");
        let e = AgentConfig::load(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read", missing.display())));

        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(&path, big).unwrap();
        let e = AgentConfig::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn config_bridge_name_and_subnet_are_checked() {
        let e = err("[bridge]\nsubnet = \"172.17.0.0/24\"");
        assert!(
            e.contains("bridge.subnet: 172.17.0.0/24 overlaps Docker"),
            "{e}"
        );
        let e = err("[bridge]\nsubnet = \"10.1.0.1/24\"");
        assert!(
            e.contains("bridge.subnet: 10.1.0.1/24: host bits are set"),
            "{e}"
        );
        let e = err("[bridge]\nname = \"Skerry-bridge-zero\"");
        assert!(e.contains("bridge.name: must be 1 to 15"), "{e}");
        let c =
            AgentConfig::from_toml_str("[bridge]\nname = \"br-edge\"\nsubnet = \"10.50.0.0/16\"")
                .unwrap();
        assert_eq!(
            c.bridge.subnet().unwrap().gateway().to_string(),
            "10.50.0.1"
        );
    }

    #[test]
    fn config_shipped_file_is_default() {
        assert_eq!(
            AgentConfig::from_toml_str(SHIPPED).unwrap(),
            AgentConfig::default()
        );
    }

    /// Every key (with every optional one set) is documented in
    /// `systemd/agent.toml`, as a line `# key = ...` inside its `# [table]`.
    #[test]
    fn config_shipped_file_documents_every_key() {
        let full = AgentConfig {
            desired_dir: Some(PathBuf::from("/x")),
            mqtt: Some(MqttConfig {
                broker: "mqtts://b:8883".into(),
                ca: "/c".into(),
                cert: "/c".into(),
                key: "/k".into(),
                fleet: "f".into(),
                device_id: Some("d".into()),
                groups: vec![],
                trusted_keys: vec![],
                max_payload: 1,
                keepalive_secs: 1,
            }),
            ..AgentConfig::default()
        };
        let serde_json::Value::Object(top) = serde_json::to_value(&full).unwrap() else {
            panic!("config does not serialize to a map");
        };
        let lines: Vec<&str> = SHIPPED
            .lines()
            .map(|l| l.trim_start_matches('#').trim())
            .collect();
        let section_of = |key: &str| -> Option<usize> {
            lines.iter().position(|l| {
                l.split_once('=')
                    .is_some_and(|(k, _)| k.trim() == key && !l.starts_with('['))
            })
        };
        let header = |name: &str| lines.iter().position(|l| *l == format!("[{name}]"));
        let first_header = lines.iter().position(|l| l.starts_with('['));
        for (key, value) in &top {
            match value {
                serde_json::Value::Object(table) => {
                    let start = header(key).unwrap_or_else(|| panic!("no `# [{key}]`"));
                    for sub in table.keys() {
                        let at = lines
                            .iter()
                            .skip(start + 1)
                            .take_while(|l| !l.starts_with('['))
                            .any(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == sub));
                        assert!(at, "agent.toml does not document {key}.{sub}");
                    }
                }
                _ => {
                    let at = section_of(key).unwrap_or_else(|| panic!("no `# {key} =`"));
                    assert!(
                        first_header.is_none_or(|h| at < h),
                        "{key} is documented inside a table"
                    );
                }
            }
        }
    }
}
