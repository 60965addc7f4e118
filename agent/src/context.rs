//! What every non-internal command needs: the config, the state layout, the runtime
//! and the image store, opened once.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::AgentConfig;
use crate::images::ImageStore;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::StateLayout;

/// The default config file, used when it exists and no --config is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/skerry/agent.toml";

/// Opened config, state and adapters.
pub struct Context {
    pub config: AgentConfig,
    pub config_path: Option<PathBuf>,
    pub layout: StateLayout,
}

impl Context {
    /// Loads the config (explicit path, else the default path if present, else the
    /// built-in defaults) and applies a state-dir override.
    pub fn load(config: Option<&Path>, state_dir: Option<&Path>) -> anyhow::Result<Self> {
        let path = config.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            p.exists().then_some(p)
        });
        let mut cfg = match &path {
            Some(p) => AgentConfig::load(p)?,
            None => AgentConfig::default(),
        };
        if let Some(dir) = state_dir {
            cfg.state_dir = dir.to_path_buf();
        }
        let layout = StateLayout::new(cfg.state_dir.clone());
        Ok(Self {
            config: cfg,
            config_path: path,
            layout,
        })
    }

    /// The image store under the state directory.
    pub fn images(&self) -> anyhow::Result<ImageStore> {
        ImageStore::open(&self.layout.images()).with_context(|| {
            format!(
                "opening the image store in {}",
                self.layout.images().display()
            )
        })
    }

    /// The container runtime, using this very binary as monitor and init.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        let exe = std::env::current_exe().context("locating the skerry binary")?;
        Ok(Runtime::new(RuntimeConfig {
            layout: self.layout.clone(),
            monitor_exe: exe,
            log_max_bytes: self.config.logs.max_file_bytes,
            log_max_files: self.config.logs.max_files,
            pids_limit: self.config.default_pids_limit,
            seccomp: self.config.seccomp,
            bridge: crate::net::bridge::BridgeNet::new(
                self.layout.clone(),
                &self.config.bridge.name,
                self.config.bridge.subnet()?,
            ),
        }))
    }

    /// Parse options for task definitions under this config.
    pub fn parse_options(&self) -> skerry_core::spec::ParseOptions {
        skerry_core::spec::ParseOptions {
            allow_privileged: self.config.allow_privileged,
        }
    }
}
