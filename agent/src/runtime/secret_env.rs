//! A container's `secrets` as env vars without their values on disk: the bundle's
//! `config.json` in the state directory never holds them. The monitor reads the
//! values from the secret store just before it creates the container, writes a copy
//! of the spec with them into a private directory on tmpfs
//! (`/run/skerry/launch/<container id>.<monitor pid>/`, 0700, `config.json` 0600),
//! hands that bundle to libcontainer, and as soon as the container process exists
//! overwrites the copy with the state directory's spec (no values), which is what
//! libcontainer's later `exec` (health checks) reads. The directory is removed when
//! the monitor ends. A value then lives only in the container's own process
//! environment, as with Docker.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::record::LaunchPlan;
use super::RuntimeError;
use crate::secrets::{resolve_named, SecretStore};
use crate::store::write_atomic_mode;

/// Where the monitors' private bundles live (tmpfs on every systemd host).
pub const LAUNCH_RUN_DIR: &str = "/run/skerry/launch";

/// A private bundle holding the spec with secret values, on tmpfs.
#[derive(Debug)]
pub struct SecretBundle {
    pub dir: PathBuf,
    redacted: Vec<u8>,
}

impl SecretBundle {
    /// Writes the bundle for `plan` if it has secret env vars (`None` otherwise).
    pub fn prepare(plan: &LaunchPlan) -> Result<Option<Self>, RuntimeError> {
        let Some(store_dir) = plan
            .secrets_dir
            .as_ref()
            .filter(|_| !plan.secret_env.is_empty())
        else {
            return Ok(None);
        };
        let store = SecretStore::at(store_dir);
        let values = resolve_named(&store, &plan.secret_env)
            .map_err(|m| RuntimeError::Spec(m.to_string()))?;
        let source = plan.bundle.join("config.json");
        let redacted = fs::read(&source).map_err(|e| RuntimeError::io(&source, e))?;
        let mut spec: Value = serde_json::from_slice(&redacted)
            .map_err(|e| RuntimeError::Record(source.clone(), e.to_string()))?;
        with_env(&mut spec, &values, &plan.bundle)?;
        let dir =
            Path::new(LAUNCH_RUN_DIR).join(format!("{}.{}", plan.container_id, std::process::id()));
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| RuntimeError::io(&dir, e))?;
        let bundle = Self { dir, redacted };
        let data = serde_json::to_vec(&spec)
            .map_err(|e| RuntimeError::Record(source.clone(), e.to_string()))?;
        let path = bundle.dir.join("config.json");
        write_atomic_mode(&path, &data, 0o600).map_err(|e| RuntimeError::io(&path, e))?;
        Ok(Some(bundle))
    }

    /// The container exists: the copy loses its values (libcontainer's `exec`
    /// reads the bundle's spec later).
    pub fn redact(&self) -> Result<(), RuntimeError> {
        let path = self.dir.join("config.json");
        write_atomic_mode(&path, &self.redacted, 0o600).map_err(|e| RuntimeError::io(&path, e))
    }
}

impl Drop for SecretBundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sets `values` in `spec.process.env` (replacing the same names) and makes a
/// relative `root.path` absolute against the original `bundle`.
fn with_env(
    spec: &mut Value,
    values: &[(String, String)],
    bundle: &Path,
) -> Result<(), RuntimeError> {
    let bad = || RuntimeError::Spec("internal: the bundle's config.json has no process.env".into());
    let env = spec
        .pointer_mut("/process/env")
        .and_then(Value::as_array_mut)
        .ok_or_else(bad)?;
    env.retain(|kv| {
        let key = kv.as_str().and_then(|s| s.split_once('=')).map(|(k, _)| k);
        !values.iter().any(|(name, _)| Some(name.as_str()) == key)
    });
    env.extend(
        values
            .iter()
            .map(|(k, v)| Value::String(format!("{k}={v}"))),
    );
    if let Some(root) = spec.pointer_mut("/root/path") {
        if let Some(rel) = root.as_str().filter(|p| !p.starts_with('/')) {
            *root = Value::String(bundle.join(rel).display().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_env_replaces_names_and_anchors_the_rootfs() {
        let mut spec =
            json!({"process": {"env": ["PATH=/bin", "TOKEN=image"]}, "root": {"path": "rootfs"}});
        with_env(&mut spec, &[("TOKEN".into(), "v".into())], Path::new("/b")).unwrap();
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "TOKEN=v"]));
        assert_eq!(spec["root"]["path"], "/b/rootfs");
    }
}
