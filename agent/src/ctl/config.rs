//! `skerry ctl`'s own config (TOML), every key also a flag:
//!
//! ```text
//! broker = "mqtts://broker.example:8883"
//! ca = "/etc/skerry/ca.pem"
//! cert = "/home/op/operator.pem"      # the operator's client certificate
//! key = "/home/op/operator.key"
//! fleet = "acme"
//! signing_key = "/home/op/skerry-signing.key"   # from `skerry ctl keygen`
//! max_payload = 131072
//! ```
//! Looked for at `--config FILE`, `$SKERRY_CTL_CONFIG`, then `/etc/skerry/ctl.toml`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// The config file's keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlFile {
    pub broker: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub fleet: Option<String>,
    pub signing_key: Option<PathBuf>,
    pub max_payload: Option<usize>,
}

/// Flags that override the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CtlFlags {
    /// Broker URL (mqtts://host:port).
    #[arg(long, global = true)]
    pub broker: Option<String>,
    /// CA certificate of the broker (PEM).
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// Operator client certificate (PEM).
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Operator client key (PEM).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Fleet name.
    #[arg(long, global = true)]
    pub fleet: Option<String>,
    /// ed25519 signing key (from `skerry ctl keygen`).
    #[arg(long, global = true)]
    pub signing_key: Option<PathBuf>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct CtlConfig {
    pub file: Option<PathBuf>,
    pub values: CtlFile,
}

impl CtlConfig {
    /// Reads the file (if any) and applies the flags.
    pub fn load(path: Option<&Path>, flags: &CtlFlags) -> anyhow::Result<Self> {
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SKERRY_CTL_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("/etc/skerry/ctl.toml")).filter(|p| p.exists()));
        let mut values = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
                toml::from_str::<CtlFile>(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {}", p.display(), e.message()))?
            }
            None => CtlFile::default(),
        };
        let f = flags.clone();
        values.broker = f.broker.or(values.broker);
        values.ca = f.ca.or(values.ca);
        values.cert = f.cert.or(values.cert);
        values.key = f.key.or(values.key);
        values.fleet = f.fleet.or(values.fleet);
        values.signing_key = f.signing_key.or(values.signing_key);
        Ok(Self { file: path, values })
    }

    fn need<'a, T>(&self, v: &'a Option<T>, key: &str) -> anyhow::Result<&'a T> {
        v.as_ref().ok_or_else(|| {
            let from = self
                .file
                .as_ref()
                .map_or("no config file".to_string(), |p| p.display().to_string());
            anyhow::anyhow!(
                "{key} is not set (--{} or `{key} = …` in the ctl config; {from})",
                key.replace('_', "-")
            )
        })
    }

    pub fn broker(&self) -> anyhow::Result<&String> {
        self.need(&self.values.broker, "broker")
    }
    pub fn ca(&self) -> anyhow::Result<&PathBuf> {
        self.need(&self.values.ca, "ca")
    }
    pub fn cert(&self) -> anyhow::Result<&PathBuf> {
        self.need(&self.values.cert, "cert")
    }
    pub fn key(&self) -> anyhow::Result<&PathBuf> {
        self.need(&self.values.key, "key")
    }
    pub fn fleet(&self) -> anyhow::Result<&String> {
        self.need(&self.values.fleet, "fleet")
    }
    pub fn signing_key(&self) -> anyhow::Result<&PathBuf> {
        self.need(&self.values.signing_key, "signing_key")
    }
    pub fn max_payload(&self) -> usize {
        self.values
            .max_payload
            .unwrap_or(skerry_core::proto::MAX_PAYLOAD)
    }
}
